"""The v1 stream routes (api-v1.md, "Streams"), over HTTP against a real server."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import uuid
from typing import Any

import httpx
import pytest
from helpers import (
    SSE,
    TIMESTAMP,
    append,
    append_ok,
    assert_problem,
    positions,
    raw_data,
    raw_request,
    read_all,
    stream_files,
    unique,
)

JSON = {"content-type": "application/json"}


def post_raw(client: httpx.Client, stream: str, body: bytes, **params: Any) -> httpx.Response:
    return client.post(f"/v1/streams/{stream}/events", content=body, headers=JSON, params=params)


def read(client: httpx.Client, stream: str, **params: Any) -> httpx.Response:
    return client.get(f"/v1/streams/{stream}/events", params=params)


def head_of(client: httpx.Client, stream: str) -> int:
    response = client.get(f"/v1/streams/{stream}")
    if response.status_code == 404:
        return 0
    head: int = response.json()["head"]
    return head


# -- append ------------------------------------------------------------------------------------


def test_append_one_event(client, stream):
    r = append(client, stream, {"type": "OrderPlaced", "data": {"total": 12}})
    assert r.status_code == 201
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["stream"] == stream
    assert body["first_position"] == body["last_position"] == 1
    [event] = body["events"]
    assert event["position"] == 1
    uuid.UUID(event["id"])

    [read_back] = read(client, stream).json()["events"]
    assert read_back["id"] == event["id"]
    assert read_back["stream"] == stream
    assert read_back["position"] == 1
    assert read_back["type"] == "OrderPlaced"
    assert read_back["data"] == {"total": 12}
    assert read_back["metadata"] is None
    assert read_back["content_type"] == "application/json"
    assert TIMESTAMP.fullmatch(read_back["created"])


def test_append_many_events_gets_consecutive_positions(client, stream):
    append_ok(client, stream, {"type": "First"})
    body = append_ok(client, stream, [{"type": f"T{i}", "data": i} for i in range(5)])
    assert (body["first_position"], body["last_position"]) == (2, 6)
    assert positions(body["events"]) == [2, 3, 4, 5, 6]
    events = read_all(client, stream)
    assert positions(events) == [1, 2, 3, 4, 5, 6]
    assert [e["type"] for e in events[1:]] == [f"T{i}" for i in range(5)]
    assert [e["id"] for e in events[1:]] == [e["id"] for e in body["events"]]
    assert len({e["id"] for e in events}) == 6


def test_client_ids_are_kept(client, stream):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    body = append_ok(client, stream, [{"type": "T", "id": i} for i in ids])
    assert [e["id"] for e in body["events"]] == ids
    assert [e["id"] for e in read_all(client, stream)] == ids


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"[]", "empty array"),
        (b"{}", "missing type"),
        (b'{"type": ""}', "empty type"),
        (b'{"type": "' + b"x" * 201 + b'"}', "type too long"),
        (b'{"type": "a\\tb"}', "type with a control character"),
        (b'{"type": 5}', "type not a string"),
        (b'{"type": null}', "type null"),
        (b'{"type": "T", "id": 5}', "id not a string"),
        (b'{"type": "T", "id": "not-a-uuid"}', "id not a UUID"),
        (b'{"type": "T", "unknown": 1}', "unknown field"),
        (b'{"type": "T", "metadata": [1]}', "metadata an array"),
        (b'{"type": "T", "metadata": "x"}', "metadata a string"),
        (b'{"type": "T", "metadata": 3}', "metadata a number"),
        (b'{"type": "T", "data_base64": "%%%"}', "data_base64 not base64"),
        (b'{"type": "T", "data_base64": "AA==", "data": 1}', "data and data_base64"),
        (b'{"type": "T", "content_type": "text/plain", "data": "x"}', "non-JSON type with data"),
        (
            b'{"type": "T", "data_base64": "aGk=",'
            b' "content_type": "text/plain\\r\\nX-Injected: 1"}',
            "content type with a line break (it becomes a webhook header)",
        ),
        (b'{"type": "T", "data_base64": "aGk=", "content_type": "bogus"}', "no subtype"),
        (b'{"type": "T", "data_base64": "aGk=", "content_type": "t\xc3\xa9xt/plain"}', "not ASCII"),
        (b'{"type": "T", "data_base64": "aGk=", "content_type": ""}', "empty content type"),
        (
            b'{"type": "T", "data_base64": "aGk=", "content_type": "text/' + b"x" * 300 + b'"}',
            "content type too long",
        ),
        (b"5", "a number"),
        (b'"event"', "a string"),
        (b"[1, 2]", "an array of numbers"),
        (b"null", "null"),
        (b'{"type": "T",', "truncated JSON"),
        (b"not json", "not JSON"),
        (b"", "an empty body"),
        (b'{"type": "T"} trailing', "trailing garbage"),
        (b'\xff\xfe{"type": "T"}', "not UTF-8"),
    ],
)
def test_bad_append_body_is_400_and_changes_nothing(client, server, stream, body, why):
    before = stream_files(server.data_dir)
    r = post_raw(client, stream, body)
    assert_problem(r, 400)
    assert_problem(read(client, stream), 404)
    assert stream_files(server.data_dir) == before, why


def test_problem_detail_says_what_to_fix(client, stream):
    detail = assert_problem(post_raw(client, stream, b'{"data": 1}'), 400)["detail"]
    assert "type" in detail
    detail = assert_problem(post_raw(client, stream, b'{"type": "T", "colour": 1}'), 400)["detail"]
    assert "colour" in detail
    detail = assert_problem(append(client, stream, []), 400)["detail"]
    assert "at least one" in detail
    lone = b'{"type": "T", "data": "\\ud800"}'
    detail = assert_problem(post_raw(client, stream, lone), 400)["detail"]
    assert "surrogate" in detail
    # Broken JSON is said as such, though its first values already have the wrong type.
    for broken in (b"[1,", b"[[", b'{"type": 5,'):
        detail = assert_problem(post_raw(client, stream, broken), 400)["detail"]
        assert detail.startswith("the body is not valid JSON"), (broken, detail)


def test_type_of_200_characters_is_accepted(client, stream):
    append_ok(client, stream, {"type": "x" * 200})
    assert read_all(client, stream)[0]["type"] == "x" * 200


def test_batch_with_one_bad_event_appends_nothing(client, stream):
    append_ok(client, stream, {"type": "Existing"})
    for bad in ({"type": ""}, {"type": "T", "id": "nope"}, {"type": "T", "metadata": [1]}):
        r = append(client, stream, [{"type": "Good"}, bad, {"type": "Good"}])
        assert_problem(r, 400)
    assert positions(read_all(client, stream)) == [1]


def test_duplicate_ids_in_one_request_are_refused(client, stream):
    same = str(uuid.uuid4())
    r = append(client, stream, [{"type": "A", "id": same}, {"type": "B", "id": same}])
    assert "appears twice" in assert_problem(r, 400)["detail"]
    assert_problem(read(client, stream), 404)


def test_metadata_object_or_null(client, stream):
    append_ok(
        client,
        stream,
        [
            {"type": "T", "metadata": {"correlation_id": "c-1", "n": [1, 2]}},
            {"type": "T", "metadata": None},
            {"type": "T"},
        ],
    )
    events = read_all(client, stream)
    assert [e["metadata"] for e in events] == [{"correlation_id": "c-1", "n": [1, 2]}, None, None]


@pytest.mark.parametrize(
    "data",
    [None, "text", "", 0, -12.5, 1e300, True, False, [], [1, "a", None], {}, {"a": {"b": [{}]}}],
)
def test_data_is_any_json_value(client, stream, data):
    append_ok(client, stream, {"type": "T", "data": data})
    [event] = read_all(client, stream)
    assert event["data"] == data
    assert "data_base64" not in event


def test_data_defaults_to_null(client, stream):
    append_ok(client, stream, {"type": "T"})
    [event] = read_all(client, stream)
    assert "data" in event
    assert event["data"] is None


def test_data_bytes_come_back_exactly(client, stream):
    # Whitespace, key order, escapes and number spelling are the client's, kept byte for byte.
    datas = [
        b'{"b": 1,  "a":[2 , 3]}',
        b'{\n  "z": "\\u00e9",\n  "a": 1.50E+2\n}',
        '{"s": "caf\u00e9 \U0001f600"}'.encode(),
        b"[ ]",
        b'"\\/"',
    ]
    body = b"[" + b",".join(b'{"type": "T", "data": ' + d + b"}" for d in datas) + b"]"
    assert post_raw(client, stream, body).status_code == 201

    assert raw_data(read(client, stream)) == dict(enumerate(datas, 1))
    original = client.get(f"/streams/{stream}/0/100").json()
    assert [base64.b64decode(e["body"]) for e in original] == datas
    assert original[0]["body_json"] == datas[0].decode()


def test_data_base64_and_content_type(client, stream):
    blob = bytes(range(256))
    append_ok(
        client,
        stream,
        [
            {
                "type": "Png",
                "data_base64": base64.b64encode(blob).decode(),
                "content_type": "image/png",
            },
            {"type": "Raw", "data_base64": base64.b64encode(b"\x00\x01").decode()},
            {
                "type": "Js",
                "data_base64": base64.b64encode(b'{"k": 1}').decode(),
                "content_type": "application/json",
            },
        ],
    )
    png, raw, js = read_all(client, stream)
    assert "data" not in png
    assert base64.b64decode(png["data_base64"]) == blob
    assert png["content_type"] == "image/png"
    assert base64.b64decode(raw["data_base64"]) == b"\x00\x01"
    assert raw["content_type"] == "application/octet-stream"
    # JSON bytes with a JSON content type read back as `data` (api-v1.md, "The event, as read").
    assert js["data"] == {"k": 1}
    assert js["content_type"] == "application/json"
    assert raw_data(read(client, stream))[3] == b'{"k": 1}'


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/json; charset=utf-16",
        'application/json; Charset="ISO-8859-1"',
        "application/json;;charset=latin1",  # empty and odd parameters before it
        "application/json; x; charset=latin1",
    ],
)
def test_unsupported_content_type_is_415(client, stream, content_type):
    r = client.post(
        f"/v1/streams/{stream}/events",
        content=b'{"type": "T"}',
        headers={"content-type": content_type},
    )
    assert_problem(r, 415)
    assert_problem(read(client, stream), 404)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        'application/json;charset="UTF-8"',
        "application/json; charset=us-ascii",
        'application/json; profile="a;charset=latin1"',  # a quoted value, not a charset
        "Application/JSON",
        "application/vnd.x+json",
    ],
)
def test_json_content_types_are_accepted(client, stream, content_type):
    headers = {} if content_type is None else {"content-type": content_type}
    r = client.post(f"/v1/streams/{stream}/events", content=b'{"type": "T"}', headers=headers)
    assert r.status_code == 201, r.text


# -- expected_version --------------------------------------------------------------------------


def test_expected_version_any(client, stream):
    append_ok(client, stream, {"type": "T"}, expected_version="any")
    append_ok(client, stream, {"type": "T"}, expected_version="any")
    append_ok(client, stream, {"type": "T"})
    assert head_of(client, stream) == 3


def test_expected_version_no_stream(client, stream):
    append_ok(client, stream, {"type": "T"}, expected_version="no_stream")
    r = append(client, stream, {"type": "T"}, expected_version="no_stream")
    assert assert_problem(r, 409)["current_version"] == 1
    assert head_of(client, stream) == 1


def test_expected_version_exists(client, server, stream):
    before = stream_files(server.data_dir)
    r = append(client, stream, {"type": "T"}, expected_version="exists")
    assert assert_problem(r, 409)["current_version"] == 0
    assert stream_files(server.data_dir) == before  # no file for a refused append
    assert_problem(client.get(f"/v1/streams/{stream}"), 404)
    append_ok(client, stream, {"type": "T"})
    append_ok(client, stream, {"type": "T"}, expected_version="exists")
    assert head_of(client, stream) == 2


def test_expected_version_number(client, stream):
    append_ok(client, stream, {"type": "T"}, expected_version=0)
    append_ok(client, stream, [{"type": "T"}, {"type": "T"}], expected_version=1)
    for wrong in (0, 1, 2, 4, 100, 2**62):  # 2^62: the largest a position may be
        r = append(client, stream, {"type": "T"}, expected_version=wrong)
        problem = assert_problem(r, 409)
        assert problem["current_version"] == 3
        assert "3" in problem["detail"]
    append_ok(client, stream, {"type": "T"}, expected_version=3)
    assert positions(read_all(client, stream)) == [1, 2, 3, 4]


def test_a_misspelt_query_parameter_of_a_write_is_400_and_changes_nothing(client, stream):
    """A typo in `expected_version` made a conditional append an unconditional one."""
    for query in ("expected_verison=0", "expectedVersion=0", "expected_version=0&force=1"):
        r = client.post(f"/v1/streams/{stream}/events?{query}", json={"type": "T"})
        problem = assert_problem(r, 400)
        assert "unknown query parameter" in problem["detail"], query
        assert problem["type"] == "urn:eventor:problem:invalid-parameter"
    detail = assert_problem(
        client.post(f"/v1/streams/{stream}/events?expected_verison=0", json={"type": "T"}), 400
    )["detail"]
    assert "did you mean 'expected_version'" in detail
    assert_problem(read(client, stream), 404)
    r = client.put(
        f"/v1/subscriptions/{stream}?start=end", json={"stream": stream, "url": "http://h/"}
    )
    assert "takes none" in assert_problem(r, 400)["detail"]
    # Reads let unknown parameters through (an EventSource polyfill adds its own).
    append_ok(client, stream, {"type": "T"}, expected_version=0)
    assert client.get(f"/v1/streams/{stream}/events?lastEventId=1&_=2").status_code == 200


def test_expected_version_mismatch_on_absent_stream_creates_nothing(client, server, stream):
    before = stream_files(server.data_dir)
    for expected in (1, 7):
        r = append(client, stream, {"type": "T"}, expected_version=expected)
        assert assert_problem(r, 409)["current_version"] == 0
    assert stream_files(server.data_dir) == before
    assert all(
        s["name"] != stream
        for s in client.get("/v1/streams", params={"prefix": stream}).json()["streams"]
    )
    assert client.get(f"/streams/{stream}/0/10").json() == []


@pytest.mark.parametrize(
    "value",
    ["bogus", "-1", "+1", "1.5", "ANY", "0x1", " 0", "1_0", "\u0660", str(2**62 + 1), "9" * 25],
)
def test_bad_expected_version_is_400(client, stream, value):
    assert_problem(append(client, stream, {"type": "T"}, expected_version=value), 400)
    assert_problem(read(client, stream), 404)


@pytest.mark.parametrize("param", ["from", "limit"])
@pytest.mark.parametrize("value", ["1_0", " 5", "\u0663", "+\u0665"])
def test_integers_are_ascii_digits_only(client, stream, param, value):
    append_ok(client, stream, {"type": "T"})
    assert_problem(client.get(f"/v1/streams/{stream}/events", params={param: value}), 400)


# -- idempotency -------------------------------------------------------------------------------


def test_idempotent_retry_returns_original_positions(client, stream):
    append_ok(client, stream, {"type": "Before"})
    batch = [{"type": "T", "id": str(uuid.uuid4()), "data": i} for i in range(3)]
    first = append_ok(client, stream, batch)
    append_ok(client, stream, {"type": "After"})

    retry = append(client, stream, batch)
    assert retry.status_code == 200
    assert retry.json() == first
    # A retry of the last event alone is idempotent too, and so is one with a stale version.
    single = append(client, stream, batch[2], expected_version=1)
    assert single.status_code == 200
    assert single.json()["first_position"] == single.json()["last_position"] == 4
    assert head_of(client, stream) == 5


@pytest.mark.parametrize(
    "which",
    ["partial overlap", "reordered", "not consecutive", "old ids and a new event without id"],
)
def test_partial_overlap_is_409_and_appends_nothing(client, stream, which):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    append_ok(client, stream, [{"type": "T", "id": i} for i in ids])
    new = str(uuid.uuid4())
    request = {
        "partial overlap": [{"type": "T", "id": ids[2]}, {"type": "T", "id": new}],
        "reordered": [{"type": "T", "id": ids[1]}, {"type": "T", "id": ids[0]}],
        "not consecutive": [{"type": "T", "id": ids[0]}, {"type": "T", "id": ids[2]}],
        "old ids and a new event without id": [{"type": "T", "id": ids[2]}, {"type": "T"}],
    }[which]
    assert_problem(append(client, stream, request), 409)
    assert [e["id"] for e in read_all(client, stream)] == ids


# -- limits ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_limits(tmp_path_factory):
    from conftest import ServerProcess

    base = tmp_path_factory.mktemp("limits")
    proc = ServerProcess(
        base / "data",
        base / "server.log",
        "--max-event-bytes",
        "100",
        "--max-request-bytes",
        "1000",
        "--max-append-events",
        "3",
    ).start()
    with httpx.Client(base_url=proc.url, timeout=10) as c:
        yield c
    proc.stop()


def test_event_over_the_limit_is_413(small_limits, stream):
    client = small_limits
    append_ok(client, stream, {"type": "T", "data": "x" * 98})  # 100 bytes with the quotes
    r = append(client, stream, [{"type": "T"}, {"type": "T", "data": "x" * 99}])
    assert "100" in assert_problem(r, 413)["detail"]
    r = append(client, stream, {"type": "T", "data_base64": base64.b64encode(b"x" * 101).decode()})
    assert_problem(r, 413)
    r = client.post(f"/streams/{stream}", content=b"x" * 101, headers={"x-event-type": "T"})
    assert r.status_code == 413
    assert positions(read_all(client, stream)) == [1]


def test_request_over_the_limit_is_413(small_limits, stream):
    client = small_limits
    small = json.dumps([{"type": "T", "data": "y" * 90}] * 3).encode()
    assert len(small) <= 1000
    assert post_raw(client, stream, small).status_code == 201
    # Every event within its own limit, the request over its limit.
    big = json.dumps([{"type": "T", "data": "y" * 90, "metadata": {"m": "z" * 250}}] * 3).encode()
    assert len(big) > 1000
    assert_problem(post_raw(client, stream, big), 413)

    def chunks():  # no Content-Length: the limit holds while reading
        yield big[:500]
        yield big[500:]

    r = client.post(f"/v1/streams/{stream}/events", content=chunks(), headers=JSON)
    assert_problem(r, 413)
    assert positions(read_all(client, stream)) == [1, 2, 3]


def test_too_many_events_is_413(small_limits, stream):
    r = append(small_limits, stream, [{"type": "T"}] * 4)
    assert "3" in assert_problem(r, 413)["detail"]
    assert_problem(read(small_limits, stream), 404)


def test_default_limits(client, stream):
    mib = 1024 * 1024
    ok = b'{"type": "T", "data": "' + b"x" * (mib - 2) + b'"}'
    assert post_raw(client, stream, ok).status_code == 201
    too_big = b'{"type": "T", "data": "' + b"x" * (mib - 1) + b'"}'
    assert_problem(post_raw(client, stream, too_big), 413)
    huge = b"[" + b",".join([ok] * 17) + b"]"  # 17 MiB
    assert_problem(post_raw(client, stream, huge), 413)
    assert head_of(client, stream) == 1


# -- reading -----------------------------------------------------------------------------------


@pytest.fixture
def ten(client, stream) -> str:
    append_ok(client, stream, [{"type": "T", "data": i} for i in range(1, 11)])
    return stream


def test_read_forward_pages(client, ten):
    r = read(client, ten, limit=4)
    body = r.json()
    assert body["stream"] == ten
    assert body["head"] == 10
    assert positions(body["events"]) == [1, 2, 3, 4]
    assert body["next"] == 5
    body = read(client, ten, limit=4, **{"from": 5}).json()
    assert positions(body["events"]) == [5, 6, 7, 8]
    body = read(client, ten, limit=4, **{"from": body["next"]}).json()
    assert positions(body["events"]) == [9, 10]
    assert body["next"] == 11
    body = read(client, ten, limit=4, **{"from": 11}).json()
    assert body["events"] == []
    assert body["next"] == 11  # nothing returned: next is `from`
    body = read(client, ten, **{"from": 50}).json()
    assert (body["events"], body["next"], body["head"]) == ([], 50, 10)
    assert positions(read(client, ten).json()["events"]) == list(range(1, 11))  # default 100


def test_read_backward_pages(client, ten):
    body = read(client, ten, direction="backward", limit=4).json()
    assert positions(body["events"]) == [10, 9, 8, 7]
    assert body["next"] == 6
    body = read(client, ten, direction="backward", limit=4, **{"from": 6}).json()
    assert positions(body["events"]) == [6, 5, 4, 3]
    assert body["next"] == 2
    body = read(client, ten, direction="backward", limit=4, **{"from": 2}).json()
    assert positions(body["events"]) == [2, 1]
    assert body["next"] is None  # the start of the stream
    body = read(client, ten, direction="backward", limit=3, **{"from": 3}).json()
    assert positions(body["events"]) == [3, 2, 1]
    assert body["next"] is None
    body = read(client, ten, direction="backward", **{"from": 99}).json()
    assert positions(body["events"]) == list(range(10, 0, -1))


def test_read_forward_and_backward_agree(client, ten):
    forward = read(client, ten, limit=1000).json()["events"]
    backward = []
    start: int | None = None
    while True:
        params: dict[str, Any] = {"direction": "backward", "limit": 3}
        if start is not None:
            params["from"] = start
        body = read(client, ten, **params).json()
        backward += body["events"]
        start = body["next"]
        if start is None:
            break
    assert backward == forward[::-1]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": -1},
        {"limit": "ten"},
        {"limit": "1.5"},
        {"from": "x"},
        {"from": -1},
        {"direction": "sideways"},
        {"direction": "BACKWARD"},
        {"wait": 61},
        {"wait": -1},
        {"wait": "soon"},
        {"wait": "nan"},
        {"wait": "inf"},
        {"wait": "1_0"},  # float() takes these; a query parameter does not
        {"wait": " 1"},
        {"wait": "\u0665"},  # ARABIC-INDIC DIGIT FIVE
        {"wait": 1, "direction": "backward"},
    ],
)
def test_bad_read_parameters_are_400(client, ten, params):
    problem = assert_problem(read(client, ten, **params), 400)
    assert any(name in problem["detail"] for name in params)
    assert problem["type"] == "urn:eventor:problem:invalid-parameter"


def test_positions_beyond_any_head(client, ten):
    huge = "9" * 30
    body = read(client, ten, direction="backward", limit=2, **{"from": huge}).json()
    assert positions(body["events"]) == [10, 9]
    assert_problem(read(client, ten, **{"from": huge}), 400)
    assert_problem(read(client, ten, **{"from": "9" * 5000}), 400)


def test_limit_bounds_are_accepted(client, ten):
    assert positions(read(client, ten, limit=1).json()["events"]) == [1]
    assert len(read(client, ten, limit=1000).json()["events"]) == 10


def test_a_repeated_query_parameter_counts_with_its_first_value(client, ten):
    r = client.get(f"/v1/streams/{ten}/events?limit=5&limit=500&from=3&from=1")
    assert positions(r.json()["events"]) == [3, 4, 5, 6, 7]
    r = client.get(f"/v1/streams/{ten}/events?limit=&from=")  # empty: the defaults
    assert positions(r.json()["events"]) == list(range(1, 11))


def test_unknown_stream_is_404(client, server, stream):
    before = stream_files(server.data_dir)
    assert_problem(read(client, stream), 404)
    assert_problem(read(client, stream, direction="backward"), 404)
    assert_problem(client.get(f"/v1/streams/{stream}"), 404)
    assert stream_files(server.data_dir) == before


# -- long poll ---------------------------------------------------------------------------------


class Background:
    """Runs `fn` on a thread; `result()` joins it."""

    def __init__(self, fn: Any) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.done_at = 0.0
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Any) -> None:
        try:
            self.value = fn()
        except BaseException as exc:
            self.error = exc
        self.done_at = time.monotonic()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def result(self, timeout: float) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "still running"
        if self.error is not None:
            raise self.error
        return self.value


def test_long_poll_returns_as_soon_as_an_event_arrives(server, client, ten):
    def poll() -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            return read(c, ten, wait=20, **{"from": 11})

    waiter = Background(poll)
    time.sleep(0.3)
    assert waiter.running, "the long poll must hold while there is nothing to read"
    appended_at = time.monotonic()
    append_ok(client, ten, {"type": "Late", "data": 11})
    r = waiter.result(timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert positions(body["events"]) == [11]
    assert body["events"][0]["type"] == "Late"
    assert body["next"] == 12
    assert waiter.done_at - appended_at < 2.0, "the long poll must return well before `wait`"


def test_long_poll_is_not_ended_by_events_before_from(server, client, ten):
    """`from` past the head: appends that stop short of it keep the poll waiting."""

    def poll() -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            return read(c, ten, wait=20, **{"from": 13})

    waiter = Background(poll)
    time.sleep(0.3)
    assert waiter.running
    append_ok(client, ten, {"type": "Early", "data": 11})
    append_ok(client, ten, {"type": "Early", "data": 12})
    time.sleep(0.3)
    assert waiter.running, "events before `from` must not end the long poll"
    append_ok(client, ten, {"type": "Late", "data": 13})
    body = waiter.result(timeout=5).json()
    assert positions(body["events"]) == [13]
    assert body["head"] == 13


def test_long_poll_times_out_with_the_current_head(server, client, ten):
    def poll() -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            return read(c, ten, wait=1.0, **{"from": 20})

    waiter = Background(poll)
    time.sleep(0.2)
    append_ok(client, ten, {"type": "Early", "data": 11})
    body = waiter.result(timeout=5).json()
    assert body["events"] == []
    assert body["head"] == 11, "the head as it is when the time is up"
    assert body["next"] == 20


def test_long_poll_returns_at_once_when_events_are_there(client, ten):
    started = time.monotonic()
    body = read(client, ten, wait=60, **{"from": 10}).json()
    assert positions(body["events"]) == [10]
    assert time.monotonic() - started < 2


def test_long_poll_times_out_empty(client, ten):
    started = time.monotonic()
    r = read(client, ten, wait=0.3, **{"from": 11})
    elapsed = time.monotonic() - started
    assert r.status_code == 200
    assert r.json()["events"] == []
    assert r.json()["next"] == 11
    assert 0.25 < elapsed < 3


@pytest.mark.parametrize(
    "start", [{}, {"from": 0}, {"from": 1}], ids=["no-from", "from-0", "from-1"]
)
def test_long_poll_waits_for_an_unknown_stream(server, client, stream, start):
    def poll() -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            return read(c, stream, wait=20, **start)

    waiter = Background(poll)
    time.sleep(0.3)
    assert waiter.running
    append_ok(client, stream, {"type": "Born"})
    body = waiter.result(timeout=5).json()
    assert body["head"] == 1
    assert [e["type"] for e in body["events"]] == ["Born"]


def test_long_poll_on_an_unknown_stream_that_never_appears(client, server, stream):
    before = stream_files(server.data_dir)
    r = read(client, stream, wait=0.2)
    assert r.status_code == 200
    assert r.json() == {"stream": stream, "head": 0, "events": [], "next": 1}
    assert stream_files(server.data_dir) == before


# -- live (SSE) --------------------------------------------------------------------------------


def live(server, stream: str, **kwargs: Any):
    c = httpx.Client(base_url=server.url, timeout=httpx.Timeout(10, read=5))
    return c, c.stream("GET", f"/v1/streams/{stream}/live", **kwargs)


def test_live_sends_new_events(server, client, ten):
    c, request = live(server, ten)
    with c, request as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = SSE(response)
        append_ok(client, ten, [{"type": "Eleven", "data": {"n": 11}}, {"type": "Twelve"}])
        first, second = events.take(2)
    assert (first["id"], first["event"]) == ("11", "Eleven")
    assert json.loads(first["data"])["data"] == {"n": 11}
    assert json.loads(first["data"])["position"] == 11
    assert (second["id"], second["event"]) == ("12", "Twelve")
    event = json.loads(second["data"])
    assert event["stream"] == ten
    assert TIMESTAMP.fullmatch(event["created"])


def test_live_from_a_position(server, client, ten):
    c, request = live(server, ten, params={"from": 9})
    with c, request as response:
        events = SSE(response)
        assert [m["id"] for m in events.take(2)] == ["9", "10"]
        append_ok(client, ten, {"type": "New"})
        assert events.next()["id"] == "11"


def test_live_resumes_after_last_event_id(server, client, ten):
    c, request = live(server, ten, headers={"last-event-id": "7"}, params={"from": 1})
    with c, request as response:
        assert [m["id"] for m in SSE(response).take(3)] == ["8", "9", "10"]
    c, request = live(server, ten, headers={"last-event-id": "0" * 30 + "8"})  # zeros are zeros
    with c, request as response:
        assert [m["id"] for m in SSE(response).take(2)] == ["9", "10"]


def test_live_waits_for_an_unknown_stream(server, client, stream):
    c, request = live(server, stream, params={"from": 1})
    with c, request as response:
        events = SSE(response)
        append_ok(client, stream, {"type": "Born", "data": [1]})
        message = events.next()
    assert (message["id"], message["event"]) == ("1", "Born")


def test_live_keeps_multiline_data_intact(server, client, stream):
    data = b'{\n  "a": [1,\n 2]\n}'
    post_raw(client, stream, b'{"type": "Pretty", "data": ' + data + b"}")
    c, request = live(server, stream, params={"from": 1})
    with c, request as response:
        message = SSE(response).next()
    assert json.loads(message["data"])["data"] == {"a": [1, 2]}
    assert data in message["data"].encode()


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"from": "x"}, {}),
        ({"from": -3}, {}),
        ({"from": "9" * 30}, {}),
        ({}, {"last-event-id": "abc"}),
        ({}, {"last-event-id": "-1"}),
        ({}, {"last-event-id": "9" * 30}),
        ({}, {"last-event-id": "9" * 5000}),
        ({}, {"last-event-id": str(2**62)}),  # past the last position
    ],
)
def test_bad_live_parameters_are_400(client, stream, params, headers):
    r = client.get(f"/v1/streams/{stream}/live", params=params, headers=headers)
    assert assert_problem(r, 400)["type"] == "urn:eventor:problem:invalid-parameter"


def test_last_event_id_with_whitespace_around_it_is_taken(server, ten):
    """Whitespace around a header value is not part of it (RFC 9110 5.5); h11 will not even
    send it, so the request goes out by hand."""
    url = httpx.URL(server.url)
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        head = f"GET /v1/streams/{ten}/live HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 7 \t\r\n"
        sock.sendall(head.encode() + b"\r\n")
        received = b""
        while b"id: 8" not in received:
            chunk = sock.recv(65536)
            assert chunk, f"closed early: {received!r}"
            received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    assert b"id: 7\n" not in received


def test_last_event_id_that_is_not_ascii_is_400(server, stream):
    # '\xb2' is a superscript two: a digit to Python's str.isdigit, not a position.
    status, got, _ = raw_request(
        server.url, "GET", f"/v1/streams/{stream}/live", headers={"Last-Event-ID": "\xb2"}
    )
    assert status == 400
    assert got["content-type"].startswith("application/problem+json")


# -- listing and info --------------------------------------------------------------------------


def test_list_streams_with_prefix_after_limit_and_next(client):
    prefix = unique("list") + "-"
    names = [f"{prefix}{c}" for c in "dbeac"]
    for index, name in enumerate(names):
        append_ok(client, name, [{"type": "T"}] * (index + 1))

    body = client.get("/v1/streams", params={"prefix": prefix}).json()
    assert [s["name"] for s in body["streams"]] == sorted(names)
    assert body["next"] is None
    heads = {s["name"]: s["head"] for s in body["streams"]}
    assert heads == {name: index + 1 for index, name in enumerate(names)}
    for s in body["streams"]:
        assert set(s) == {"name", "head", "created", "updated"}
        assert TIMESTAMP.fullmatch(s["created"])
        assert TIMESTAMP.fullmatch(s["updated"])

    seen = []
    after = ""
    while True:
        page = client.get("/v1/streams", params={"prefix": prefix, "limit": 2, "after": after})
        body = page.json()
        assert len(body["streams"]) <= 2
        seen += [s["name"] for s in body["streams"]]
        if body["next"] is None:
            break
        assert body["next"] == body["streams"][-1]["name"]
        after = body["next"]
    assert seen == sorted(names)

    body = client.get("/v1/streams", params={"prefix": prefix, "after": f"{prefix}c"}).json()
    assert [s["name"] for s in body["streams"]] == [f"{prefix}d", f"{prefix}e"]
    body = client.get("/v1/streams", params={"prefix": prefix + "zzz"}).json()
    assert body == {"streams": [], "next": None}


def test_list_streams_without_parameters(client, stream):
    append_ok(client, stream, {"type": "T"})
    body = client.get("/v1/streams", params={"limit": 1000}).json()
    assert len(body["streams"]) <= 1000
    names = [s["name"] for s in body["streams"]]
    assert names == sorted(names)


@pytest.mark.parametrize("limit", [0, 1001, "x", -5])
def test_list_streams_bad_limit_is_400(client, limit):
    assert_problem(client.get("/v1/streams", params={"limit": limit}), 400)


def test_stream_info(client, stream):
    append_ok(client, stream, [{"type": "A"}, {"type": "B"}, {"type": "A"}])
    first = client.get(f"/v1/streams/{stream}")
    assert first.status_code == 200
    info = first.json()
    assert info["name"] == stream
    assert info["head"] == 3
    assert TIMESTAMP.fullmatch(info["created"])
    assert TIMESTAMP.fullmatch(info["updated"])
    assert info["event_types"] == {"A": 2, "B": 1}
    assert info["subscriptions"] == []
    assert isinstance(info["size_bytes"], int)
    assert info["size_bytes"] > 0
    events = read_all(client, stream)
    assert info["created"] == events[0]["created"]
    assert info["updated"] == events[-1]["created"]

    append_ok(client, stream, {"type": "C", "data": "x" * 50_000})
    later = client.get(f"/v1/streams/{stream}").json()
    assert later["head"] == 4
    assert later["event_types"] == {"A": 2, "B": 1, "C": 1}
    assert later["created"] == info["created"]
    assert later["updated"] > info["updated"]
    assert later["size_bytes"] > info["size_bytes"]


def test_stream_info_lists_its_subscriptions(client, stream):
    append_ok(client, stream, {"type": "T"})
    names = [f"{stream}-b", f"{stream}-a"]
    for name in names:  # from the end: nothing to deliver to the (closed) receiver
        config = {"stream": stream, "url": "http://127.0.0.1:9/hook", "start": "end"}
        assert client.put(f"/v1/subscriptions/{name}", json=config).status_code == 201
    try:
        assert client.get(f"/v1/streams/{stream}").json()["subscriptions"] == sorted(names)
    finally:
        for name in names:
            client.delete(f"/v1/subscriptions/{name}")
    assert client.get(f"/v1/streams/{stream}").json()["subscriptions"] == []


# -- errors and methods ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/streams/s/events", {"GET", "POST"}),
        ("DELETE", "/v1/streams/s/events", {"GET", "POST"}),
        ("POST", "/v1/streams/s", {"GET"}),
        ("DELETE", "/v1/streams/s", {"GET"}),
        ("POST", "/v1/streams", {"GET"}),
        ("POST", "/v1/streams/s/live", {"GET"}),
    ],
)
def test_wrong_method_is_405(client, method, path, allowed):
    r = client.request(method, path)
    assert_problem(r, 405)
    assert {m.strip() for m in r.headers["allow"].split(",")} >= allowed


def test_405_allow_lists_head_beside_get(client):
    r = client.request("DELETE", "/v1/streams/s")
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "HEAD"}


@pytest.mark.parametrize("path", ["/v1/streams/s/events", "/streams/s/0/10", "/introspect"])
def test_cors_preflight_for_reads(client, path):
    r = client.options(
        path,
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "last-event-id",
        },
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert "GET" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"] == "last-event-id"
    assert "GET" in r.headers["allow"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    "path", ["/v1/streams/s/events", "/v1/nothing-here", "/streams/s/0/10", "/v1/streams/a%2Fb"]
)
def test_reads_allow_any_origin_whatever_the_answer(client, stream, method, path):
    append_ok(client, "s", {"type": "T"})
    r = client.request(method, path, headers={"Origin": "https://app.example"})
    assert r.headers["access-control-allow-origin"] == "*", (r.status_code, r.headers)


def test_unknown_v1_path_is_a_404_problem(client):
    problem = assert_problem(client.get("/v1/nothing-here"), 404)
    assert problem["detail"] == "no route here takes GET '/v1/nothing-here': /docs lists the routes"
    long = assert_problem(client.delete("/v1/" + "x" * 5000), 404)["detail"]
    assert len(long) < 300
    # The original's paths keep Go's words.
    assert client.get("/nothing-here").text == "404 page not found\n"
    assert_problem(client.get("/v1/streams/s/events/extra"), 404)
    assert_problem(client.get("/v1"), 404)  # the API's root, without its slash
    # A newline after a route's last word is another path (a regex's $ would take it).
    r = client.post("/v1/streams/nl/events%0A", json={"type": "T"})
    assert r.status_code == 404
    assert_problem(client.get("/v1/streams/nl"), 404)  # nothing was appended
    assert client.get("/v1/stats/live%0A").status_code == 404


@pytest.mark.parametrize("path", ["/v1/<b>x</b>", "/dashboard/js/<b>x</b>.js", "/<b>x</b>"])
def test_error_answers_echoing_the_path_are_never_sniffed_as_html(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert r.headers["x-content-type-options"] == "nosniff"


def test_reads_leave_no_trace_in_the_listing(client, stream):
    read(client, stream)
    client.get(f"/v1/streams/{stream}")
    client.get(f"/streams/{stream}/0/10")
    names = [
        s["name"] for s in client.get("/v1/streams", params={"prefix": stream}).json()["streams"]
    ]
    assert names == []


def test_appends_are_visible_to_other_readers_at_once(server, stream):
    with httpx.Client(base_url=server.url) as writer, httpx.Client(base_url=server.url) as reader:
        for n in range(1, 6):
            append_ok(writer, stream, {"type": "T", "data": n})
            body = read(reader, stream, **{"from": n}).json()
            assert positions(body["events"]) == [n]
            assert body["head"] == n


def test_many_streams_are_independent(client):
    names = [unique("ind") for _ in range(3)]
    for round_ in range(3):
        for index, name in enumerate(names):
            append_ok(client, name, {"type": "T", "data": [round_, index]})
    for index, name in enumerate(names):
        events = read_all(client, name)
        assert positions(events) == [1, 2, 3]
        assert [e["data"] for e in events] == [[r, index] for r in range(3)]


def test_content_types_with_parameters_are_kept(client, stream):
    data = base64.b64encode(b"hi").decode()
    kinds = ["text/plain; charset=utf-8", 'multipart/mixed; boundary="a b"', "application/x.y+z"]
    append_ok(
        client, stream, [{"type": "T", "data_base64": data, "content_type": c} for c in kinds]
    )
    assert [e["content_type"] for e in read_all(client, stream)] == kinds


def test_the_request_limit_holds_on_every_route(small_limits, stream):
    client = small_limits
    body = {"stream": stream, "url": "http://127.0.0.1:9/", "headers": {"X-Pad": "p" * 1000}}
    assert_problem(client.put("/v1/subscriptions/too-big", json=body), 413)
    assert client.get("/v1/subscriptions/too-big").status_code == 404
    r = client.post("/subscriptions/too_big", json=body)
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("text/plain")


def test_the_original_append_keeps_to_a_request_limit_below_the_event_limit(make_server):
    server = make_server("--max-event-bytes", "4096", "--max-request-bytes", "1024")
    with httpx.Client(base_url=server.url, timeout=10) as c:
        headers = {"x-event-type": "T"}
        assert c.post("/streams/orig", content=b"x" * 1025, headers=headers).status_code == 413
        assert c.post("/streams/orig", content=b"x" * 1024, headers=headers).status_code == 200


def test_a_backward_read_takes_wait_0_as_no_wait(client, stream):
    append_ok(client, stream, {"type": "T"})
    r = client.get(f"/v1/streams/{stream}/events", params={"direction": "backward", "wait": 0})
    assert r.status_code == 200
    assert [e["position"] for e in r.json()["events"]] == [1]


def test_a_page_of_big_events_ends_early_and_next_goes_on(make_server):
    """A page carries about a request's worth of event data at most (bounded memory whatever
    the events' size); `next` continues from where it ended."""
    server = make_server("--max-event-bytes", "1000", "--max-request-bytes", "4000")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for n in range(5):
            events = [{"type": "Big", "data": "x" * 880, "metadata": {"n": n}}] * 4
            assert append(client, "big", events).status_code == 201
        body = read(client, "big", limit=100).json()
        assert 4 <= len(body["events"]) < 20
        assert body["next"] == body["events"][-1]["position"] + 1
        seen = [e["position"] for e in body["events"]]
        while body["events"]:
            body = read(client, "big", limit=100, **{"from": body["next"]}).json()
            seen += [e["position"] for e in body["events"]]
        assert seen == list(range(1, 21))
        back = read(client, "big", direction="backward", limit=100).json()
        assert 4 <= len(back["events"]) < 20
        assert back["events"][0]["position"] == 20
