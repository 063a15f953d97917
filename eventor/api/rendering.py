"""Events and results as the v1 API writes them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import msgspec
from msgspec import Raw
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Send

from ..protocol import ENDLESS_ANSWER
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


_EVENT_STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def event_stream(request: Request, messages: AsyncIterator[bytes]) -> StreamingResponse:
    """A Server-Sent Events answer of `messages`; to a HEAD request, its headers alone (the
    messages never end, and a HEAD answer must)."""
    body = _no_messages() if request.method == "HEAD" else messages
    request.scope[ENDLESS_ANSWER] = True  # a stop cuts it short if its client stops reading
    return StreamingResponse(body, media_type="text/event-stream", headers=_EVENT_STREAM_HEADERS)


async def _no_messages() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing


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


class _JSONEventOut(msgspec.Struct):
    """EventOut with JSON data, field for field and in the same order: built positionally,
    which costs half of EventOut's keywords (0.3 of 0.6 ms for a page of 1000)."""

    id: str
    stream: str
    position: int
    type: str
    data: Raw
    metadata: Raw | None
    content_type: str
    created: str


class _BinaryEventOut(msgspec.Struct):
    """EventOut with `data_base64` (see _JSONEventOut)."""

    id: str
    stream: str
    position: int
    type: str
    data_base64: bytes
    metadata: Raw | None
    content_type: str
    created: str


def event_out(event: RecordedEvent) -> EventOut:
    """The event as the v1 API writes it (encoded exactly as an EventOut)."""
    id_, stream, position, type_, data, content_type, is_json, metadata, created = event
    meta = None if metadata is None else Raw(metadata)
    if is_json:
        out: object = _JSONEventOut(
            id_, stream, position, type_, Raw(data), meta, content_type, created
        )
    else:
        out = _BinaryEventOut(id_, stream, position, type_, data, meta, content_type, created)
    return cast(EventOut, out)
