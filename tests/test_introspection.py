"""The original's introspection routes (original-api.md, "Introspection"), over HTTP."""

from __future__ import annotations

import asyncio
import http.client
import json
from typing import Any

import httpx
import pytest
from helpers import TIMESTAMP, assert_text_error, read_all, stream_files, unique

from eventor.api import compat, create_app
from eventor.types import NewEvent


def post(client: httpx.Client, stream: str, event_type: str, body: bytes, **headers: str) -> None:
    headers = {"x-event-type": event_type, **headers}
    r = client.post(f"/streams/{stream}", content=body, headers=headers)
    assert r.status_code == 200, r.text


def summary(client: httpx.Client, stream: str) -> dict[str, Any] | None:
    r = client.get("/introspect")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    found = [s for s in r.json() if s["name"] == stream]
    return found[0] if found else None


def variants(client: httpx.Client, stream: str) -> dict[str, list[dict[str, Any]]]:
    r = client.get(f"/introspect/{stream}")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == stream
    result: dict[str, list[dict[str, Any]]] = body["event_variants"]
    return result


def test_introspect_counts_per_type_as_events_arrive(client, stream):
    assert summary(client, stream) is None
    post(client, stream, "OrderPlaced", b'{"id": 1}')
    assert summary(client, stream) == {
        "name": stream,
        "total": 1,
        "event_types": [{"name": "OrderPlaced", "total": 1}],
    }
    for _ in range(3):
        post(client, stream, "OrderShipped", b'{"id": 1}')
    client.post(f"/v1/streams/{stream}/events", json=[{"type": "OrderPlaced"}, {"type": "Audit"}])
    mine = summary(client, stream)
    assert mine is not None
    assert mine["total"] == 6
    counts = {t["name"]: t["total"] for t in mine["event_types"]}
    assert counts == {"OrderPlaced": 2, "OrderShipped": 3, "Audit": 1}
    assert sum(counts.values()) == mine["total"]


def test_introspect_lists_every_stream(client):
    names = [unique("intro") for _ in range(3)]
    for index, name in enumerate(names):
        for _ in range(index + 1):
            post(client, name, "T", b"{}")
    listed = {s["name"]: s["total"] for s in client.get("/introspect").json()}
    assert {name: listed[name] for name in names} == {names[0]: 1, names[1]: 2, names[2]: 3}


def test_one_variant_per_top_level_key_set(client, stream):
    bodies = [
        b'{"a": 1}',  # 1: shape [a]
        b'{"a": 2}',  # same shape
        b'{"b": 1, "a": 2}',  # 3: shape [a, b]
        b'{"a": 0, "b": {"x": 1}}',  # same shape: only top-level keys count
        b'{"b": 1}',  # 5: shape [b]
        b'{"a": {"y": [1]}}',  # same shape as 1: nested keys do not count
        b"{}",  # 7: shape []
    ]
    for body in bodies:
        post(client, stream, "Changed", body)
    post(client, stream, "Other", b'{"a": 1}')  # 8: the same keys, another type

    found = variants(client, stream)
    assert sorted(found) == ["Changed", "Other"]
    changed = found["Changed"]
    assert [v["position"] for v in changed] == [1, 3, 5, 7]
    assert [v["body"] for v in changed] == [
        bodies[0].decode(),
        bodies[2].decode(),
        '{"b": 1}',
        "{}",
    ]
    assert [v["position"] for v in found["Other"]] == [8]

    events = read_all(client, stream)
    for variant in changed:
        event = events[variant["position"] - 1]
        assert variant["uuid"] == event["id"]
        assert variant["created"] == event["created"]
        assert TIMESTAMP.fullmatch(variant["created"])
        assert set(variant) == {"position", "uuid", "created", "body"}


def test_variants_are_kept_as_events_arrive(client, stream):
    post(client, stream, "T", b'{"a": 1}')
    assert [v["position"] for v in variants(client, stream)["T"]] == [1]
    post(client, stream, "T", b'{"a": 9}')
    assert [v["position"] for v in variants(client, stream)["T"]] == [1]
    post(client, stream, "T", b'{"c": 1, "a": 2}')
    assert [v["position"] for v in variants(client, stream)["T"]] == [1, 3]
    client.post(f"/v1/streams/{stream}/events", json={"type": "T", "data": {"d": None}})
    assert [v["position"] for v in variants(client, stream)["T"]] == [1, 3, 4]


def test_at_most_100_shapes_are_kept_per_type_however_they_arrive(client, stream):
    def shaped(start: int, count: int, event_type: str = "T") -> list[dict[str, Any]]:
        return [{"type": event_type, "data": {f"k{i}": 1}} for i in range(start, start + count)]

    append = f"/v1/streams/{stream}/events"
    assert client.post(append, json=shaped(0, 150)).status_code == 201  # a new type, one append
    assert client.post(append, json=shaped(0, 99, "U")).status_code == 201
    assert client.post(append, json=shaped(99, 10, "U")).status_code == 201  # crosses the bound
    kept = variants(client, stream)
    assert [v["position"] for v in kept["T"]] == list(range(1, 101))  # the first 100 shapes
    assert len(kept["U"]) == 100


def test_variant_body_is_the_raw_text(client, stream):
    body = b'{ "b" : 1 ,\n  "a": "\\u00e9" }'
    post(client, stream, "T", body)
    [variant] = variants(client, stream)["T"]
    assert variant["body"] == body.decode()


def test_bodies_that_are_not_objects(client, stream):
    # Not a JSON object: one variant per kind of body (see docs/api.md).
    bodies = [b"[1]", b"[2, 3]", b'"s"', b"12", b"12.5", b"null", b"true", b"", b"not json", b"{}"]
    for body in bodies:
        post(client, stream, "T", body)
    post(client, stream, "Bin", b"\x00\x01", content_type="application/octet-stream")
    post(client, stream, "Bin", b"\x02", content_type="application/octet-stream")
    found = variants(client, stream)
    assert [v["position"] for v in found["T"]] == [1, 3, 4, 6, 7, 8, 10]
    assert [v["position"] for v in found["Bin"]] == [11]


def test_shapes_come_from_the_body_whatever_its_content_type(client, stream):
    # curl -d sends a form content type; the original Eventor parsed the body all the same.
    form = "application/x-www-form-urlencoded"
    post(client, stream, "E", b'{"a": 1}', content_type=form)
    post(client, stream, "E", b'{"b": 1}', content_type=form)
    post(client, stream, "E", b'{"a": 2}')
    post(client, stream, "E", b'{"c": 1}', content_type="text/plain")
    post(client, stream, "E", b'{"a": 3}', content_type="text/plain")
    found = variants(client, stream)
    assert [v["position"] for v in found["E"]] == [1, 2, 4]


def test_large_examples_come_page_by_page_and_whole(client, stream):
    """Past a few MiB of example data the answer is sent as it is read (chunked), not built
    whole: the same JSON as HTTP/1.0 gets whole, with every example in order."""
    shapes = 4
    for event_type in ("A", "B", "C"):
        for n in range(shapes):
            post(client, stream, event_type, b'{"k%d": "%s"}' % (n, b"x" * 500_000))
    post(client, stream, "A", b'{"k0": "again"}')  # a shape already kept
    answer = client.get(f"/introspect/{stream}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers.get("transfer-encoding") == "chunked"  # sent page by page
    found = answer.json()
    assert list(found["event_variants"]) == ["A", "B", "C"]
    positions = {t: [v["position"] for v in vs] for t, vs in found["event_variants"].items()}
    assert positions == {"A": [1, 2, 3, 4], "B": [5, 6, 7, 8], "C": [9, 10, 11, 12]}
    assert found["event_variants"]["C"][3]["body"] == '{"k3": "%s"}' % ("x" * 500_000)
    host, port = client.base_url.host, client.base_url.port
    old = http.client.HTTPConnection(host, port, timeout=30)
    old._http_vsn, old._http_vsn_str = 10, "HTTP/1.0"  # type: ignore[attr-defined]
    old.request("GET", f"/introspect/{stream}")
    whole = old.getresponse()
    assert whole.status == 200
    assert whole.getheader("content-length") is not None
    assert json.loads(whole.read()) == found
    old.close()


def test_unknown_stream(client, server, stream):
    before = stream_files(server.data_dir)
    r = client.get(f"/introspect/{stream}")
    assert r.status_code == 200
    assert r.json() == {"name": stream, "event_variants": {}}
    assert summary(client, stream) is None
    assert stream_files(server.data_dir) == before


@pytest.mark.parametrize("name", [".x", "a b", "é", "a%2Fb"])
def test_bad_stream_name_is_a_text_400(client, name):
    assert_text_error(client.get(f"/introspect/{name}"), 400)


def test_v1_info_counts_agree(client, stream):
    for event_type in ("A", "B", "A", "C", "A"):
        post(client, stream, event_type, b"{}")
    mine = summary(client, stream)
    assert mine is not None
    info = client.get(f"/v1/streams/{stream}").json()
    assert info["event_types"] == {t["name"]: t["total"] for t in mine["event_types"]}
    assert info["head"] == mine["total"] == 5


def test_many_streams_come_in_chunks_as_one_array(tmp_path, monkeypatch):
    """Past a few thousand streams `/introspect` is rendered a chunk at a time (other requests
    run in between); the array is the same as built whole."""

    async def main() -> tuple[bytes, bytes]:
        app = create_app(data_dir=tmp_path / "data")
        await app.startup()
        try:
            for n in range(7):
                types = ["A", "B"][: 1 + n % 2]
                await app.store.append(f"s{n}", [NewEvent(t, b"{}") for t in types])
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://eventor") as c:
                whole = (await c.get("/introspect")).content
                monkeypatch.setattr(compat, "_INTROSPECT_CHUNK", 3)
                chunked = (await c.get("/introspect")).content
            return whole, chunked
        finally:
            await app.shutdown()

    whole, chunked = asyncio.run(main())
    assert chunked == whole
    found = json.loads(chunked)
    assert [s["name"] for s in found] == [f"s{n}" for n in range(7)]
    assert found[1] == {
        "name": "s1",
        "total": 2,
        "event_types": [{"name": "A", "total": 1}, {"name": "B", "total": 1}],
    }
