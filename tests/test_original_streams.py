"""The original Eventor's stream routes (original-api.md, "Streams"), over HTTP."""

from __future__ import annotations

import base64
import http.client
import json
import uuid
from typing import Any

import httpx
import pytest
from helpers import (
    MISSING_TYPE,
    SSE,
    TIMESTAMP,
    UUID_V4,
    assert_text_error,
    positions,
    raw_request,
    read_all,
    stream_files,
)


def post(
    client: httpx.Client, stream: str, body: bytes, event_type: str | None = "T", **headers: str
):
    sent = {name.replace("_", "-"): value for name, value in headers.items()}
    if event_type is not None:
        sent["x-event-type"] = event_type
    return client.post(f"/streams/{stream}", content=body, headers=sent)


def get(
    client: httpx.Client, stream: str, offset: Any = 0, limit: Any = 100
) -> list[dict[str, Any]]:
    r = client.get(f"/streams/{stream}/{offset}/{limit}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    events: list[dict[str, Any]] = r.json()
    return events


def test_append_answers_created(client, stream):
    r = post(client, stream, b'{"id": 1}', "OrderPlaced")
    assert r.status_code == 200
    assert r.text == "Created\n"
    assert r.headers["content-type"].startswith("text/plain")
    [event] = get(client, stream)
    assert event["position"] == 1
    assert event["stream"] == stream
    assert event["type"] == "OrderPlaced"
    assert set(event) == {"uuid", "position", "stream", "type", "body", "body_json", "created"}


@pytest.mark.parametrize("event_type", [None, "", "   "])
def test_missing_or_empty_event_type_is_400(client, server, stream, event_type):
    before = stream_files(server.data_dir)
    headers = {} if event_type is None else {"X-Event-Type": event_type}
    status, got, body = raw_request(server.url, "POST", f"/streams/{stream}", b'{"a": 1}', headers)
    assert status == 400
    assert got["content-type"].startswith("text/plain")
    assert body.decode() == MISSING_TYPE  # exactly as original-api.md spells it
    assert get(client, stream) == []
    assert stream_files(server.data_dir) == before


@pytest.mark.parametrize("event_type", ["x" * 201, "a\tb"])
def test_event_type_breaking_the_rule_is_400(client, server, stream, event_type):
    status, got, body = raw_request(
        server.url, "POST", f"/streams/{stream}", b"{}", {"X-Event-Type": event_type}
    )
    assert status == 400
    assert got["content-type"].startswith("text/plain")
    assert body.startswith(b"X-Event-Type must be 1-200 characters")  # the header, by name
    assert get(client, stream) == []


def test_event_type_of_200_characters(client, stream):
    assert post(client, stream, b"{}", "y" * 200).status_code == 200
    assert get(client, stream)[0]["type"] == "y" * 200


def test_a_utf8_event_type_header_reads_back_as_sent(client, stream):
    """curl and Go send header values as UTF-8 bytes; the original stored those bytes."""
    r = client.post(
        f"/streams/{stream}", content=b"{}", headers=[(b"X-Event-Type", "Über".encode())]
    )
    assert r.status_code == 200
    assert get(client, stream)[0]["type"] == "Über"
    assert client.get(f"/v1/streams/{stream}/events").json()["events"][0]["type"] == "Über"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [(" \tOrder\u00a0 ", "Order\u00a0"), ("\u3000", "\u3000"), ("T\u3000", "T\u3000")],
)
def test_event_type_keeps_other_whitespace(client, server, stream, sent, stored):
    """Go trims spaces and tabs around a header value, and nothing else."""
    latin1 = sent.encode().decode("latin-1")  # the UTF-8 bytes, as http.client sends them
    status, _, body = raw_request(
        server.url, "POST", f"/streams/{stream}", b"{}", {"X-Event-Type": latin1}
    )
    assert (status, body) == (200, b"Created\n")
    assert get(client, stream)[0]["type"] == stored


def test_positions_start_at_one_without_gaps(client, stream):
    for n in range(5):
        assert post(client, stream, json.dumps({"n": n}).encode()).status_code == 200
    events = get(client, stream)
    assert positions(events) == [1, 2, 3, 4, 5]
    assert [json.loads(e["body_json"]) for e in events] == [{"n": n} for n in range(5)]
    assert len({e["uuid"] for e in events}) == 5


def test_uuids_are_v4_and_times_have_microseconds(client, stream):
    for _ in range(5):
        post(client, stream, b"{}")
    events = get(client, stream)
    for event in events:
        assert UUID_V4.fullmatch(event["uuid"]), event["uuid"]
        assert uuid.UUID(event["uuid"]).version == 4
        assert TIMESTAMP.fullmatch(event["created"])
    # Random, as the contract says: ids made within moments share no leading time bits (with a
    # timestamp in front, the first 32 bits change only every 49 days).
    assert len({event["uuid"][:8] for event in events}) == 5


def test_empty_body_is_accepted_and_everything_still_works(server, client, stream):
    assert post(client, stream, b"", "Empty").text == "Created\n"
    assert post(client, stream, b'{"after": true}', "Full").status_code == 200

    empty, full = get(client, stream)
    assert (empty["body"], empty["body_json"]) == ("", "")
    assert full["body_json"] == '{"after": true}'

    introspect = client.get("/introspect").json()
    [mine] = [s for s in introspect if s["name"] == stream]
    assert mine["total"] == 2
    variants = client.get(f"/introspect/{stream}").json()["event_variants"]
    assert variants["Empty"][0]["body"] == ""
    assert variants["Empty"][0]["position"] == 1

    v1 = client.get(f"/v1/streams/{stream}/events").json()["events"]
    assert v1[0]["data_base64"] == ""
    assert "data" not in v1[0]
    assert v1[1]["data"] == {"after": True}
    info = client.get(f"/v1/streams/{stream}").json()
    assert info["event_types"] == {"Empty": 1, "Full": 1}
    backward = client.get(f"/v1/streams/{stream}/events", params={"direction": "backward"})
    assert positions(backward.json()["events"]) == [2, 1]

    with (
        httpx.Client(base_url=server.url, timeout=httpx.Timeout(10, read=5)) as c,
        c.stream("GET", f"/v1/streams/{stream}/live", params={"from": 1}) as response,
    ):
        first = SSE(response).next()
    assert first["event"] == "Empty"
    assert json.loads(first["data"])["data_base64"] == ""


def test_any_bytes_body_comes_back_exactly(client, stream):
    bodies = [bytes(range(256)), b"\x00", b"plain text\n", b"{not json", "\u00e9t\u00e9".encode()]
    for body in bodies:
        assert (
            post(client, stream, body, content_type="application/octet-stream").status_code == 200
        )
    assert [base64.b64decode(e["body"]) for e in get(client, stream)] == bodies
    v1 = read_all(client, stream)
    assert [base64.b64decode(e["data_base64"]) for e in v1] == bodies


def test_request_content_type_becomes_the_event_content_type(client, stream):
    post(client, stream, b'{"a": 1}')  # no Content-Type at all
    post(client, stream, b'{"a": 1}', content_type="application/json")
    post(client, stream, b"hello", content_type="text/plain; charset=utf-8")
    post(client, stream, b"<a/>", content_type="application/xml")
    post(client, stream, b"not json", content_type="application/json")
    events = read_all(client, stream)
    assert [e["content_type"] for e in events] == [
        "application/json",
        "application/json",
        "text/plain; charset=utf-8",
        "application/xml",
        "application/json",
    ]
    assert events[0]["data"] == events[1]["data"] == {"a": 1}
    assert base64.b64decode(events[2]["data_base64"]) == b"hello"
    assert base64.b64decode(events[3]["data_base64"]) == b"<a/>"
    # JSON content type but bytes that are not JSON: kept, and read as bytes.
    assert base64.b64decode(events[4]["data_base64"]) == b"not json"


def test_a_content_type_is_stored_as_sent_trimmed_as_go_trims_it(client, server, stream):
    """Read as X-Event-Type is: UTF-8 bytes as the text they are (not their latin-1 reading,
    which deliveries sent re-encoded), spaces and tabs around it dropped."""
    sent = 'text/plain; x="é"'.encode().decode("latin-1")  # the UTF-8 bytes, as sent raw
    for content_type in (f" {sent} \t", " \t "):
        headers = {"X-Event-Type": "T", "Content-Type": content_type}
        status, _, _ = raw_request(server.url, "POST", f"/streams/{stream}", b"x", headers)
        assert status == 200
    assert [e["content_type"] for e in read_all(client, stream)] == [
        'text/plain; x="é"',
        "application/json",  # none given
    ]


@pytest.mark.parametrize(
    ("body", "body_json"),
    [
        (b'{"a": 1}', '{"a": 1}'),
        (b"[1, 2]", "[1, 2]"),
        (b'{"a":\n 1}', '{"a":\n 1}'),
        (b"{broken", "{broken"),
        (b' {"a": 1}', ""),
        (b'"text"', ""),
        (b"42", ""),
        (b"null", ""),
        (b"", ""),
        (b"plain", ""),
    ],
)
def test_body_and_body_json(client, stream, body, body_json):
    post(client, stream, body)
    [event] = get(client, stream)
    assert base64.b64decode(event["body"]) == body
    assert event["body_json"] == body_json
    assert isinstance(event["body_json"], str)


def test_read_from_offset_with_limit(client, stream):
    for n in range(1, 8):
        post(client, stream, str(n).encode())
    assert positions(get(client, stream, 0, 3)) == [1, 2, 3]
    assert positions(get(client, stream, 3, 3)) == [4, 5, 6]
    assert positions(get(client, stream, 6, 3)) == [7]
    assert get(client, stream, 7, 3) == []
    assert get(client, stream, 100, 3) == []
    assert positions(get(client, stream, 2, 100)) == [3, 4, 5, 6, 7]


def test_a_read_of_large_events_comes_page_by_page_and_whole(client, stream):
    """Past a few MiB of event data the answer is sent as it is read (chunked), not built
    whole: the array still holds every event asked for, exactly."""
    bodies = [bytes([65 + n]) * 1_000_000 for n in range(10)]  # 10 MB in all
    for body in bodies:
        post(client, stream, body)
    answer = client.get(f"/streams/{stream}/0/100")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers.get("transfer-encoding") == "chunked"  # sent page by page
    events = answer.json()
    assert positions(events) == list(range(1, 11))
    assert [base64.b64decode(e["body"]) for e in events] == bodies
    assert positions(get(client, stream, 0, 9)) == list(range(1, 10))  # the limit holds
    assert positions(get(client, stream, 5, 100)) == [6, 7, 8, 9, 10]
    # HTTP/1.0 has no chunked encoding, and HEAD says the whole answer's length: built whole.
    host, port = client.base_url.host, client.base_url.port
    old = http.client.HTTPConnection(host, port, timeout=30)
    old._http_vsn, old._http_vsn_str = 10, "HTTP/1.0"  # type: ignore[attr-defined]
    old.request("GET", f"/streams/{stream}/0/100")
    answer = old.getresponse()
    assert answer.version == 11  # the server's own version, on its status line
    assert answer.getheader("transfer-encoding") is None
    whole = answer.read()
    assert int(answer.getheader("content-length")) == len(whole)
    assert positions(json.loads(whole)) == list(range(1, 11))
    head = client.head(f"/streams/{stream}/0/100")
    assert int(head.headers["content-length"]) == len(whole)


@pytest.mark.parametrize(
    ("offset", "limit", "expected"),
    [
        ("abc", 10, [1, 2, 3, 4, 5]),  # non-numeric offset: 0
        ("2x", 10, [1, 2, 3, 4, 5]),
        ("-3", 10, [1, 2, 3, 4, 5]),  # below zero: from the start
        ("1.5", 10, [1, 2, 3, 4, 5]),
        ("+2", 10, [3, 4, 5]),  # Go's Atoi takes a sign
        ("0" * 30 + "3", 10, [4, 5]),  # and any number of leading zeros
        ("-" + "0" * 30 + "3", 10, [1, 2, 3, 4, 5]),
        ("0" * 5000 + "3", "0" * 5000 + "1", [4]),  # past what int() takes as text
        (0, "abc", []),  # non-numeric limit: 0
        (0, 0, []),
        (0, "", None),  # an empty segment is another route: 404
        (1, "-1", [2, 3, 4, 5]),  # negative: everything, up to the cap
        (0, "9223372036854775807", [1, 2, 3, 4, 5]),  # Go's largest int: up to the cap
        (0, "9223372036854775808", []),  # beyond Go's range: Atoi fails, so 0
        (0, "99999999999999999999999", []),
        (0, "9" * 5000, []),
        (0, "-" + "9" * 5000, []),
        ("9223372036854775807", 10, []),
        ("9223372036854775808", 10, [1, 2, 3, 4, 5]),
        ("9" * 5000, 10, [1, 2, 3, 4, 5]),
        ("-" + "9" * 5000, 10, [1, 2, 3, 4, 5]),
        ("2%2F", 10, [1, 2, 3, 4, 5]),  # an encoded slash is not a digit either: 0
        (0, "2%2F", []),
    ],
)
def test_numeric_segments_follow_go_atoi(client, stream, offset, limit, expected):
    for n in range(5):
        post(client, stream, str(n).encode())
    r = client.get(f"/streams/{stream}/{offset}/{limit}")
    if expected is None:
        assert r.status_code == 404
    else:
        assert r.status_code == 200
        assert positions(r.json()) == expected


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    from conftest import ServerProcess

    base = tmp_path_factory.mktemp("capped")
    proc = ServerProcess(base / "data", base / "server.log", "--max-original-read", "3").start()
    with httpx.Client(base_url=proc.url, timeout=10) as c:
        yield c
    proc.stop()


@pytest.mark.parametrize("limit", ["-1", "-100", "4", "1000000"])
def test_negative_or_huge_limit_is_capped(capped, stream, limit):
    for n in range(6):
        post(capped, stream, str(n).encode())
    assert positions(get(capped, stream, 0, limit)) == [1, 2, 3]
    assert positions(get(capped, stream, 3, limit)) == [4, 5, 6]
    assert positions(get(capped, stream, 0, 2)) == [1, 2]


def test_unknown_stream_reads_empty_and_creates_nothing(client, server, stream):
    before = stream_files(server.data_dir)
    r = client.get(f"/streams/{stream}/0/10")
    assert r.status_code == 200
    assert r.json() == []
    assert client.get(f"/streams/{stream}/0/-1").json() == []
    assert stream_files(server.data_dir) == before
    assert client.get(f"/v1/streams/{stream}").status_code == 404


@pytest.mark.parametrize(
    "name", [".hidden", "-dash", "sp ace", "a" * 201, "%C3%A9", "a%2Fb", "a%00"]
)
def test_bad_stream_name_is_a_text_400(client, server, name):
    before = stream_files(server.data_dir)
    assert_text_error(
        client.post(f"/streams/{name}", content=b"{}", headers={"x-event-type": "T"}), 400
    )
    assert_text_error(client.get(f"/streams/{name}/0/10"), 400)
    assert stream_files(server.data_dir) == before


def test_original_and_v1_see_the_same_stream(client, stream):
    post(client, stream, b'{"from": "original"}', "A")
    client.post(f"/v1/streams/{stream}/events", json={"type": "B", "data": {"from": "v1"}})
    post(client, stream, b"[3]", "C")
    original = get(client, stream)
    v1 = read_all(client, stream)
    assert positions(original) == positions(v1) == [1, 2, 3]
    assert [e["uuid"] for e in original] == [e["id"] for e in v1]
    assert [e["created"] for e in original] == [e["created"] for e in v1]
    assert [e["type"] for e in original] == ["A", "B", "C"]
    assert [json.loads(e["body_json"]) for e in original] == [e["data"] for e in v1]


def test_append_headers_carry_the_position(client, stream):
    post(client, stream, b"{}")
    r = post(client, stream, b"{}")
    assert r.headers["x-event-position"] == "2"
    assert r.headers["x-event-uuid"] == get(client, stream)[1]["uuid"]


def test_wrong_method_is_a_text_405(client, stream):
    r = client.delete(f"/streams/{stream}")
    assert_text_error(r, 405)
    assert "POST" in r.headers["allow"]
    assert_text_error(client.post(f"/streams/{stream}/0/10"), 405)


def test_get_allows_any_origin(client, stream):
    r = client.get(f"/streams/{stream}/0/10", headers={"origin": "http://elsewhere.example"})
    assert r.headers["access-control-allow-origin"] == "*"


def test_a_content_type_too_long_for_a_header_is_a_400(client, stream):
    r = post(client, stream, b"{}", content_type="text/" + "x" * 300)
    assert assert_text_error(r, 400).startswith("Content-Type must be 1-255 characters")
    assert get(client, stream) == []
    assert post(client, stream, b"{}", content_type="text/" + "x" * 250).status_code == 200
