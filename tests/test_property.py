"""Property: any interleaving of appends and reads keeps positions gap-free, and reads return
exactly what was appended, byte for byte. Driven through the real HTTP API of a real server."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from helpers import raw_data, unique
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# -- what a test does --------------------------------------------------------------------------


@dataclass(frozen=True)
class EventSpec:
    type: str
    data: bytes  # JSON text as sent, or any bytes when `binary`
    binary: bool
    id: str | None  # "new", "reuse:<n>", or None (the server makes one)


@dataclass(frozen=True)
class Append:
    events: tuple[EventSpec, ...]
    as_array: bool
    expected: str  # any | no_stream | exists | head | wrong | omitted


@dataclass(frozen=True)
class OriginalAppend:
    body: bytes
    content_type: str | None


@dataclass(frozen=True)
class Read:
    start: int | None  # offset from the head (forward: absolute from 0..head+2)
    limit: int
    backward: bool


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def json_text(draw: st.DrawFn) -> bytes:
    """A JSON document, spelled one of many ways (spacing, indentation, escapes)."""
    value = draw(json_values)
    indent = draw(st.sampled_from([None, 0, 2]))
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " :  ")]))
    ascii_only = draw(st.booleans())
    return json.dumps(value, indent=indent, separators=separators, ensure_ascii=ascii_only).encode()


event_specs = st.builds(
    EventSpec,
    type=st.sampled_from(["A", "B", "Order.Placed", "x" * 200]),
    data=json_text(),
    binary=st.just(False),
    id=st.sampled_from([None, None, "new", "reuse:0", "reuse:-1", "reuse:1"]),
) | st.builds(
    EventSpec,
    type=st.just("Bin"),
    data=st.binary(max_size=40),
    binary=st.just(True),
    id=st.sampled_from([None, "new"]),
)

operations = st.one_of(
    st.builds(
        Append,
        events=st.lists(event_specs, min_size=1, max_size=4).map(tuple),
        as_array=st.booleans(),
        expected=st.sampled_from(["omitted", "any", "no_stream", "exists", "head", "wrong"]),
    ),
    st.builds(
        OriginalAppend,
        body=st.binary(max_size=40) | json_text(),
        content_type=st.sampled_from([None, "application/json", "application/octet-stream"]),
    ),
    st.builds(
        Read,
        start=st.none() | st.integers(0, 12),
        limit=st.integers(1, 6),
        backward=st.booleans(),
    ),
)


# -- the model ---------------------------------------------------------------------------------


@dataclass
class Stored:
    id: str
    type: str
    data: bytes


class Model:
    """What the stream must hold: events in position order (position = index + 1)."""

    def __init__(self) -> None:
        self.events: list[Stored] = []

    @property
    def head(self) -> int:
        return len(self.events)

    def resolve_id(self, spec_id: str | None) -> str | None:
        if spec_id is None:
            return None
        if spec_id == "new" or not self.events:
            return str(uuid.uuid4())
        index = int(spec_id.removeprefix("reuse:"))
        return self.events[index].id if -len(self.events) <= index < len(self.events) else None

    def position_of(self, event_id: str) -> int | None:
        for position, stored in enumerate(self.events, 1):
            if stored.id == event_id:
                return position
        return None

    def expect_append(self, ids: list[str | None], expected: str) -> tuple[int, int | None]:
        """(status, first position) the server must answer; mirrors api-v1.md's rules."""
        given_ids = [i for i in ids if i is not None]
        if len(set(given_ids)) != len(given_ids):
            return 400, None
        found = [None if i is None else self.position_of(i) for i in ids]
        if any(p is not None for p in found):
            first = found[0]
            if first is not None and found == list(range(first, first + len(ids))):
                return 200, first
            return 409, None
        ok = {
            "omitted": True,
            "any": True,
            "no_stream": self.head == 0,
            "exists": self.head > 0,
            "head": True,
            "wrong": False,
        }[expected]
        return (201, self.head + 1) if ok else (409, None)


# -- the test ----------------------------------------------------------------------------------


def run_append(c: httpx.Client, stream: str, model: Model, op: Append) -> None:
    ids = [model.resolve_id(e.id) for e in op.events]
    items = []
    for spec, event_id in zip(op.events, ids, strict=True):
        item = b'{"type": ' + json.dumps(spec.type).encode()
        if spec.binary:
            item += b', "data_base64": "' + base64.b64encode(spec.data) + b'"'
        else:
            item += b', "data": ' + spec.data
        if event_id is not None:
            item += b', "id": "' + event_id.encode() + b'"'
        items.append(item + b"}")
    body = b"[" + b", ".join(items) + b"]" if op.as_array or len(items) > 1 else items[0]
    params: dict[str, Any] = {}
    if op.expected == "head":
        params["expected_version"] = model.head
    elif op.expected == "wrong":
        params["expected_version"] = model.head + 1
    elif op.expected != "omitted":
        params["expected_version"] = op.expected

    status, first = model.expect_append(ids, op.expected)
    r = c.post(
        f"/v1/streams/{stream}/events",
        content=body,
        params=params,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == status, (r.text, op, ids)
    import os

    if os.environ.get("PROPDEBUG"):
        print("STATUS", status)
    if status == 409 and r.json().get("current_version") is not None:
        assert r.json()["current_version"] == model.head
    if status in (200, 201):
        answer = r.json()
        assert first is not None
        assert answer["first_position"] == first
        assert answer["last_position"] == first + len(items) - 1
        assert [e["position"] for e in answer["events"]] == list(range(first, first + len(items)))
        if status == 201:
            for spec, event in zip(op.events, answer["events"], strict=True):
                model.events.append(Stored(event["id"], spec.type, spec.data))


def run_original_append(c: httpx.Client, stream: str, model: Model, op: OriginalAppend) -> None:
    headers = {"x-event-type": "Original"}
    if op.content_type is not None:
        headers["content-type"] = op.content_type
    r = c.post(f"/streams/{stream}", content=op.body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["x-event-position"] == str(model.head + 1)
    model.events.append(Stored(r.headers["x-event-uuid"], "Original", op.body))


def check_read(c: httpx.Client, stream: str, model: Model, op: Read) -> None:
    params: dict[str, Any] = {"limit": op.limit}
    if op.backward:
        params["direction"] = "backward"
    if op.start is not None:
        params["from"] = op.start
    r = c.get(f"/v1/streams/{stream}/events", params=params)
    if model.head == 0:
        assert r.status_code == 404
        return
    assert r.status_code == 200, r.text
    if op.backward:
        top = model.head if op.start is None else min(op.start, model.head)
        expected = list(range(top, max(top - op.limit, 0), -1))
        following = expected[-1] - 1 if expected and expected[-1] > 1 else None
    else:
        start = 1 if op.start is None else op.start
        expected = list(range(max(start, 1), min(max(start, 1) + op.limit, model.head + 1)))
        following = expected[-1] + 1 if expected else start
    body = r.json()
    assert body["head"] == model.head
    assert [e["position"] for e in body["events"]] == expected
    assert body["next"] == following
    exact = raw_data(r)
    for event in body["events"]:
        stored = model.events[event["position"] - 1]
        assert (event["id"], event["type"]) == (stored.id, stored.type)
        assert exact[event["position"]] == stored.data


def check_everything(c: httpx.Client, stream: str, model: Model) -> None:
    start, seen = 1, 0
    while True:
        r = c.get(f"/v1/streams/{stream}/events", params={"from": start, "limit": 3})
        if model.head == 0:
            assert r.status_code == 404
            return
        body = r.json()
        if not body["events"]:
            break
        exact = raw_data(r)
        for event in body["events"]:
            seen += 1
            assert event["position"] == seen  # gap-free, in order
            assert exact[seen] == model.events[seen - 1].data
        start = body["next"]
    assert seen == model.head
    original = c.get(f"/streams/{stream}/0/-1").json()
    assert [e["position"] for e in original] == list(range(1, model.head + 1))
    assert [base64.b64decode(e["body"]) for e in original] == [s.data for s in model.events]
    assert [e["uuid"] for e in original] == [s.id for s in model.events]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(ops=st.lists(operations, min_size=1, max_size=10))
def test_any_interleaving_keeps_streams_exact(server, ops):
    stream = unique("prop")
    model = Model()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for op in ops:
            if isinstance(op, Append):
                run_append(c, stream, model, op)
            elif isinstance(op, OriginalAppend):
                run_original_append(c, stream, model, op)
            else:
                check_read(c, stream, model, op)
        check_everything(c, stream, model)
