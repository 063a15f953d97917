"""Bodies built to break parsers: nested past any parser's depth, or not UTF-8. Never a 500;
what is refused changes nothing, and what is kept reads back as valid JSON."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from helpers import assert_problem, positions, read_all

DEEP = b"[" * 5000 + b"]" * 5000
JSON = {"content-type": "application/json"}


def v1(client: httpx.Client, stream: str, body: bytes) -> httpx.Response:
    return client.post(f"/v1/streams/{stream}/events", content=body, headers=JSON)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"type": "T", "data": ' + DEEP + b"}", "nested too deeply"),
        (b'{"type": "T\xff", "data": 1}', "not valid UTF-8"),
        (b'{"type": "T", "data": "caf\xe9"}', "not valid UTF-8"),
        (b'{"type": "T", "data": 1, "metadata": {"k": "\xff"}}', "not valid UTF-8"),
        (b'{"type": "T", "data_base64": "\xff"}', "not valid UTF-8"),
        (b'{"type": "T", "data": {"\xff": 1}}', "not valid UTF-8"),
    ],
)
def test_v1_appends_of_hostile_json_are_400(client, stream, body, says):
    problem = assert_problem(v1(client, stream, body), 400)
    assert says in problem["detail"]
    assert client.get(f"/v1/streams/{stream}").status_code == 404  # nothing was made


def test_subscription_bodies_that_are_not_utf8_or_too_deep_are_400(client):
    for body in (b'{"stream": "s", "url": "http://x/\xff"}', b'{"stream": ' + DEEP + b"}"):
        r = client.put("/v1/subscriptions/hostile", content=body, headers=JSON)
        assert_problem(r, 400)
        r = client.post("/subscriptions/hostile", content=body, headers=JSON)
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("text/plain")
    assert client.get("/v1/subscriptions/hostile").status_code == 404


@pytest.mark.parametrize("body", [DEEP, b'{"a": "\xff"}', b'["caf\xe9"]'])
def test_original_route_keeps_any_bytes_and_reads_them_back_as_base64(client, stream, body):
    """original-api.md: the body is any bytes. Labelled JSON but not parseable as JSON, it is
    kept exactly and read back through v1 as data_base64 (a page stays valid JSON)."""
    r = client.post(f"/streams/{stream}", content=body, headers={"X-Event-Type": "T", **JSON})
    assert r.status_code == 200, r.text
    events = read_all(client, stream)  # parses the page as JSON
    assert positions(events) == [1]
    assert "data" not in events[0]
    assert base64.b64decode(events[0]["data_base64"]) == body
    [original] = client.get(f"/streams/{stream}/0/10").json()
    assert base64.b64decode(original["body"]) == body
    json.dumps(original)  # and the original read is valid JSON too


def test_an_empty_v1_stream_name_is_400(client):
    for method, path in [
        ("POST", "/v1/streams//events"),
        ("GET", "/v1/streams//events"),
        ("GET", "/v1/streams//live"),
        ("GET", "/v1/streams/"),
    ]:
        r = client.request(method, path, json={"type": "T"} if method == "POST" else None)
        problem = assert_problem(r, 400)
        assert problem["type"].endswith("invalid-name"), problem


def test_a_content_type_built_to_backtrack_is_refused_at_once(make_server):
    """`a/b ; ; ; ... !` made the media type check backtrack exponentially, on the event loop:
    at 16 repetitions 7 s with every other request waiting, at 30 hours. Its own server, so
    that a regression stalls only this test (it fails on the client's timeout)."""
    server = make_server()
    hostile = "a/b" + " ; " * 30 + "!"
    event = {"type": "T", "data_base64": "aGk=", "content_type": hostile}
    with httpx.Client(base_url=server.url, timeout=20) as c:
        refused = c.post("/v1/streams/hostile/events", json=event)
        assert "is not a media type" in assert_problem(refused, 400)["detail"]
        assert c.get("/health").status_code == 200
        # The same shape, well formed, is a media type.
        event["content_type"] = "a/b" + " ; " * 30
        assert c.post("/v1/streams/hostile/events", json=event).status_code == 201


def test_a_number_parameter_built_to_backtrack_is_refused_at_once(make_server):
    """`wait=111...1x`: the decimal check backtracked quadratically on the event loop (20,000
    digits: 6 s with every other request waiting). Its own server, as above."""
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        refused = c.get("/v1/streams/hostile/events", params={"wait": "1" * 30_000 + "x"})
        assert_problem(refused, 400)
        assert c.get("/health").status_code == 200
        waited = c.get("/v1/streams/hostile/events", params={"wait": "0.0" + "0" * 30_000})
        assert waited.status_code == 404  # a number after all (no wait): the stream is unknown
