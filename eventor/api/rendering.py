"""Events and results as the v1 API writes them."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Raw
from starlette.responses import Response
from starlette.types import Send

from ..types import RecordedEvent
from .schemas import EventOut

JSON = "application/json"
encoder = msgspec.json.Encoder()


_JSON_TYPE = (b"content-type", b"application/json")


class JSONResponse(Response):
    """A Starlette Response with its headers built directly: it is on every hot route."""

    media_type = JSON

    def __init__(self, value: Any, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body = encoder.encode(value)
        self.raw_headers = [(b"content-length", b"%d" % len(body)), _JSON_TYPE]


async def send_json(send: Send, value: Any, status: int = 200) -> None:
    """Answer with `value` as JSON straight through ASGI (the raw routes' JSONResponse)."""
    body = encoder.encode(value)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", b"%d" % len(body)), _JSON_TYPE],
        }
    )
    await send({"type": "http.response.body", "body": body})


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if headers is None:
        return JSONResponse(value, status)
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
