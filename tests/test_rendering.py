"""The v1 event rendering: built by position for speed, written exactly as the schema's EventOut."""

from __future__ import annotations

import msgspec
import pytest
from msgspec import UNSET, Raw

from eventor.api.rendering import encoder, event_out
from eventor.api.schemas import EventOut
from eventor.types import RecordedEvent

CREATED = "2026-11-28T02:54:41.123456Z"


def _as_schema(event: RecordedEvent) -> EventOut:
    return EventOut(
        id=event.id,
        stream=event.stream,
        position=event.position,
        type=event.type,
        data=Raw(event.data) if event.is_json else UNSET,
        data_base64=UNSET if event.is_json else event.data,
        metadata=None if event.metadata is None else Raw(event.metadata),
        content_type=event.content_type,
        created=CREATED,
    )


@pytest.mark.parametrize(
    ("data", "content_type", "is_json", "metadata"),
    [
        (b'{"order": 42, "lines": [1, 2]}', "application/json", True, None),
        (b"[1,2]", "application/cloudevents+json", True, b'{"trace": "t-1"}'),
        (b"\x89PNG\r\n\x00", "image/png", False, None),
        (b"plain text", "text/plain; charset=utf-8", False, b"{}"),
    ],
)
def test_event_out_is_written_as_the_schema_says(
    data: bytes, content_type: str, is_json: bool, metadata: bytes | None
) -> None:
    event = RecordedEvent(
        "0193b0c2-1111-7abc-8def-0123456789ab",
        'a "stream" é',
        7,
        "Order\u00e9Placed",
        data,
        content_type,
        is_json,
        metadata,
        CREATED,
    )
    assert encoder.encode(event_out(event)) == encoder.encode(_as_schema(event))


@pytest.mark.parametrize(("is_json", "absent"), [(True, "data_base64"), (False, "data")])
def test_every_schema_field_is_rendered(is_json: bool, absent: str) -> None:
    # A field added to EventOut must be added to the positional structs too.
    event = RecordedEvent("i", "s", 1, "t", b"{}", "application/json", is_json, b"{}", CREATED)
    rendered = msgspec.json.decode(encoder.encode(event_out(event)))
    assert list(rendered) == [f for f in EventOut.__struct_fields__ if f != absent]
