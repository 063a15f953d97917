"""Events and results as the v1 API writes them."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Raw
from starlette.responses import Response

from ..types import RecordedEvent
from .schemas import EventOut

JSON = "application/json"
encoder = msgspec.json.Encoder()


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(encoder.encode(value), status, headers=headers, media_type=JSON)


def event_out(event: RecordedEvent) -> EventOut:
    metadata = None if event.metadata is None else Raw(event.metadata)
    if event.is_json:
        return EventOut(
            id=event.id,
            stream=event.stream,
            position=event.position,
            type=event.type,
            data=Raw(event.data),
            metadata=metadata,
            content_type=event.content_type,
            created=event.created,
        )
    return EventOut(
        id=event.id,
        stream=event.stream,
        position=event.position,
        type=event.type,
        data_base64=event.data,
        metadata=metadata,
        content_type=event.content_type,
        created=event.created,
    )
