"""Stream names: odd and hostile names never reach outside the data dir (api-v1.md, "Names")."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ServerProcess
from helpers import raw_request

#: Windows device names: a file whose name (before the first dot) is one of these is a device.
RESERVED = {"con", "prn", "aux", "nul"} | {f"{d}{n}" for d in ("com", "lpt") for n in range(10)}
SAFE_FILE = re.compile(r"[a-z0-9_-]{1,40}-[0-9a-f]{24}\.db(-wal)?")

#: Names as they appear in the URL path, each one path segment (the server decodes escapes).
HOSTILE = [
    ".",
    "..",
    "...",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fescaped",
    "..%5C..%5Cwindows",
    "a%5Cb",
    "a%2Fb",
    "%2Ftmp%2Fabsolute",
    "a%00b",
    "%00",
    "a%0Ab",
    "a%0Db",
    "a%09b",
    "a%20b",
    "%20",
    "a%3Fb",
    "a%23b",
    "a%25b",
    "%252e%252e",
    "%C3%A9t%C3%A9",
    "%EF%BD%81",  # a full-width 'a'
    "a~b",
    "~",
    "a;b",
    "a*b",
    "a%22b",
    "a'b",
    "-rf",
    ".bashrc",
    "a" * 201,
]

#: Valid names that are awkward for a file system.
ODD = [
    "a",
    "0",
    "_",
    ":",
    "C:",
    "a:b",
    "a.b",
    "a_b",
    "a..b",
    "a.",
    "a-",
    "CON",
    "con",
    "nul",
    "NUL.txt",
    "COM1",
    "lpt9",
    "aux",
    "prn.log",
    "x" * 200,
    "Z" * 200,
    "_.-:",
]


@pytest.fixture(scope="module")
def names_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("names")
    proc = ServerProcess(base / "data", base / "server.log").start()
    yield proc
    proc.stop()


def routes(name: str) -> list[tuple[str, str, bytes, dict[str, str]]]:
    """(method, path, body, headers) for every stream route, with `name` as sent."""
    json_headers = {"Content-Type": "application/json"}
    return [
        ("POST", f"/streams/{name}", b"{}", {"X-Event-Type": "T"}),
        ("GET", f"/streams/{name}/0/10", b"", {}),
        ("GET", f"/introspect/{name}", b"", {}),
        ("POST", f"/v1/streams/{name}/events", b'{"type": "T"}', json_headers),
        ("GET", f"/v1/streams/{name}/events", b"", {}),
        ("GET", f"/v1/streams/{name}/events?wait=0.2", b"", {}),
        ("GET", f"/v1/streams/{name}/live", b"", {}),
        ("GET", f"/v1/streams/{name}", b"", {}),
    ]


def everything_under(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def test_hostile_names_are_400_on_every_route_and_create_nothing(names_server):
    base = names_server.data_dir.parent
    before = everything_under(base)
    cwd_before = set(Path.cwd().iterdir())
    failures = []
    for name in HOSTILE:
        for method, path, body, headers in routes(name):
            status, got, text = raw_request(names_server.url, method, path, body, headers)
            if status != 400:
                failures.append(f"{method} {path} -> {status} {text[:80]!r}")
                continue
            kind = got["content-type"]
            if path.startswith("/v1/"):
                assert kind.startswith("application/problem+json"), (path, kind)
                assert json.loads(text)["status"] == 400
            else:
                assert kind.startswith("text/plain"), (path, kind)
    assert failures == []
    assert everything_under(base) == before
    assert set(Path.cwd().iterdir()) == cwd_before
    with httpx.Client(base_url=names_server.url) as c:
        assert c.get("/v1/streams").json()["streams"] == []


def test_an_encoded_slash_never_makes_a_name_reach_another_route(server, stream):
    """`x%2Fevents` is the stream `x/events` (a bad name), though its decoded path is the
    events route of `x`: an append went to `x`, a read or a live stream gave `x`'s events."""
    with httpx.Client(base_url=server.url) as c:
        assert c.post(f"/v1/streams/{stream}/events", json={"type": "T"}).status_code == 201
        for method, path in [
            ("POST", f"/v1/streams/{stream}%2Fevents"),
            ("POST", f"/v1/streams/{stream}%2fevents"),
            ("GET", f"/v1/streams/{stream}%2Fevents"),
            ("HEAD", f"/v1/streams/{stream}%2Fevents"),
            ("GET", f"/v1/streams/{stream}%2Flive?from=1"),
            ("GET", f"/v1/subscriptions/{stream}%2Fdeliveries"),
            ("POST", f"/v1/subscriptions/{stream}%2Fpause"),
        ]:
            body = b'{"type": "T"}' if method == "POST" else b""
            headers = {"Content-Type": "application/json"}
            status, got, text = raw_request(server.url, method, path, body, headers)
            assert status == 400, (method, path, status, text)
            assert got["content-type"].startswith("application/problem+json")
        assert c.get(f"/v1/streams/{stream}").json()["head"] == 1
        # Where the name is no name (an original offset) or the same route is meant, the
        # encoded slash changes nothing.
        assert len(c.get(f"/streams/{stream}/0%2F1/5").json()) == 1
        assert c.get("/dashboard/x%2Fy").status_code == 200


@pytest.mark.parametrize(
    "path", ["/streams/../../escape", "/streams/..//..//escape", "/streams/./x/"]
)
def test_paths_with_real_slashes_reach_no_stream(names_server, path):
    base = names_server.data_dir.parent
    before = everything_under(base)
    status, _, _ = raw_request(names_server.url, "POST", path, b"{}", {"X-Event-Type": "T"})
    assert status in (400, 404, 405)  # another route's shape at most, never a stream
    status, _, _ = raw_request(names_server.url, "GET", path + "/0/10")
    assert status in (400, 404)
    assert everything_under(base) == before


def test_odd_valid_names_stay_inside_the_streams_dir(names_server):
    data = names_server.data_dir
    outside_before = everything_under(data.parent) - everything_under(data)
    with httpx.Client(base_url=names_server.url, timeout=10) as c:
        for index, name in enumerate(ODD):
            r = c.post(f"/v1/streams/{name}/events", json={"type": "T", "data": index})
            assert r.status_code == 201, (name, r.text)
            r = c.post(f"/streams/{name}", content=b"[1]", headers={"x-event-type": "O"})
            assert r.status_code == 200, (name, r.text)
        for index, name in enumerate(ODD):
            events = c.get(f"/v1/streams/{name}/events").json()["events"]
            assert [(e["stream"], e["data"]) for e in events] == [(name, index), (name, [1])]
            assert len(c.get(f"/streams/{name}/0/10").json()) == 2
            assert c.get(f"/v1/streams/{name}").json()["name"] == name
            assert list(c.get(f"/introspect/{name}").json()["event_variants"]) == ["O", "T"]
        listed = []
        after = ""
        while True:
            page = c.get("/v1/streams", params={"after": after, "limit": 7}).json()
            listed += [s["name"] for s in page["streams"]]
            if page["next"] is None:
                break
            after = page["next"]
    assert sorted(listed) == sorted(ODD)

    files = [p.name for p in (data / "streams").iterdir()]
    databases = [f for f in files if f.endswith(".db")]
    assert len(databases) == len(ODD)
    for file in files:
        assert SAFE_FILE.fullmatch(file), file
        assert file.split(".")[0].lower() not in RESERVED
    # Distinct even on a case-insensitive file system.
    assert len({f.lower() for f in databases}) == len(ODD)
    assert everything_under(data.parent) - everything_under(data) == outside_before


def test_names_differing_only_in_case_are_distinct_streams(names_server):
    spellings = ["Orders", "orders", "ORDERS", "oRdErS"]
    with httpx.Client(base_url=names_server.url, timeout=10) as c:
        for count, name in enumerate(spellings, 1):
            body = [{"type": "T", "data": name}] * count
            assert c.post(f"/v1/streams/{name}/events", json=body).status_code == 201
        for count, name in enumerate(spellings, 1):
            events = c.get(f"/v1/streams/{name}/events").json()["events"]
            assert [e["data"] for e in events] == [name] * count
            assert c.get(f"/v1/streams/{name}").json()["head"] == count
            assert len(c.get(f"/streams/{name}/0/100").json()) == count
        found = {
            s["name"]: s["total"] for s in c.get("/introspect").json() if s["name"] in spellings
        }
    assert found == {name: count for count, name in enumerate(spellings, 1)}


def test_longest_name(names_server):
    with httpx.Client(base_url=names_server.url) as c:
        longest = "L" + "m" * 199
        assert c.post(f"/v1/streams/{longest}/events", json={"type": "T"}).status_code == 201
        assert c.post(f"/v1/streams/{longest}m/events", json={"type": "T"}).status_code == 400
        assert c.get(f"/v1/streams/{longest}").json()["name"] == longest
