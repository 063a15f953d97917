"""The original Eventor's routes (original-api.md), served unchanged: streams and introspection.

Errors here are plain text, as the original's were (Go's http.Error: the message and a newline).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from ..errors import InvalidRequest, StreamNotFound
from ..names import check_stream_name
from ..payloads import describe
from ..settings import Limits
from ..store import EventStore
from ..types import JSON_CONTENT_TYPE, NewEvent, RecordedEvent, StreamSummary
from .params import header, read_body
from .problems import HTTPProblem
from .rendering import JSON, encoder, json_response
from .routing import APPEND_503, APPEND_507, Doc, Media, Param, Route
from .schemas import (
    EventTypeCount,
    IntrospectStream,
    IntrospectVariants,
    OriginalEventOut,
    StreamName,
    Variant,
)

MISSING_TYPE = "Event must have type specified in x-event-type header"
#: Streams `/introspect` renders at a time, handing the event loop back in between: built
#: whole, 100,000 streams held every other request for 0.8 s.
_INTROSPECT_CHUNK = 2000
_GO_INT = re.compile(r"[+-]?[0-9]+")
_MAX_OFFSET = 2**62
_GO_INT_MIN, _GO_INT_MAX = -(2**63), 2**63 - 1  # Go's int on 64-bit machines
#: A guard on the original read (bounded by count only, as the original's was): past this much
#: event data the page ends early, so that 10,000 events of 1 MiB cannot take the server down.
ORIGINAL_READ_BYTES = 256 * 1024 * 1024
#: The event data of one page of such a read: a read past it is sent page by page.
ORIGINAL_PAGE_BYTES = 4 * 1024 * 1024
_CREATED = b"Created\n"
_CREATED_LENGTH = (b"content-length", b"%d" % len(_CREATED))
_TEXT_PLAIN = (b"content-type", b"text/plain; charset=utf-8")


def _in_headers(message: str) -> str:
    """The store's word for an event's field, as the original route takes it: a header."""
    for field, header_name in (("type", "X-Event-Type"), ("the content type", "Content-Type")):
        if message.startswith(f"event 0: {field} "):
            return header_name + message[len(f"event 0: {field}") :]
    return message


def go_atoi(text: str) -> int:
    """A number as the original read `offset` and `limit` (its `intval`): Go's strconv.Atoi,
    and 0 whenever Atoi reports an error, be it syntax or range (Atoi's saturated value is
    dropped with the error)."""
    if _GO_INT.fullmatch(text) is None:
        return 0
    negative = text[0] == "-"
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > 19:  # out of int64 (and int() refuses 4,300+ digits)
        return 0
    value = -int(digits or "0") if negative else int(digits or "0")
    if not _GO_INT_MIN <= value <= _GO_INT_MAX:
        return 0  # Atoi's range error, ignored as any other error: 0
    return max(-_MAX_OFFSET, min(value, _MAX_OFFSET))


def _utf8(latin1: str) -> str:
    """A header value as its sender meant it: UTF-8 bytes (what curl and Go send) when they
    are valid UTF-8, else the latin-1 reading HTTP gives them."""
    raw = latin1.encode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return latin1


def original_event(event: RecordedEvent) -> OriginalEventOut:
    data = event.data
    body_json = data.decode("utf-8", "replace") if data[:1] in (b"{", b"[") else ""
    return OriginalEventOut(
        event.id, event.position, event.stream, event.type, data, body_json, event.created
    )


class OriginalRoutes:
    def __init__(self, store: EventStore, limits: Limits) -> None:
        self._store = store
        self._limits = limits

    def routes(self) -> list[Route]:
        return [
            Route(
                "POST", "/streams/{stream}", self.append, errors="text", doc=APPEND_DOC, raw=True
            ),
            Route(
                "GET", "/streams/{stream}/{offset}/{limit}", self.read, errors="text", doc=READ_DOC
            ),
            Route("GET", "/introspect", self.introspect, errors="text", doc=INTROSPECT_DOC),
            Route(
                "GET",
                "/introspect/{stream}",
                self.introspect_stream,
                errors="text",
                doc=INTROSPECT_STREAM_DOC,
            ),
        ]

    async def append(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Raw ASGI: the hottest route (see routing.py)."""
        stream = check_stream_name(scope["path_params"]["stream"])
        # Go trims the optional whitespace around a header value (spaces and tabs), no more.
        event_type = _utf8(header(scope, b"x-event-type") or "").strip(" \t")
        if not event_type:
            raise HTTPProblem(400, MISSING_TYPE)
        # As X-Event-Type: stored as the client sent it, so that deliveries carry its bytes.
        content_type = _utf8(header(scope, b"content-type") or "").strip(" \t")
        content_type = content_type or JSON_CONTENT_TYPE
        limits = self._limits
        # original-api.md: the body is any bytes, stored as sent, whatever its coding (as the
        # original did: a client that compressed its bodies reads them back compressed).
        body = await read_body(
            scope, receive, min(limits.max_event_bytes, limits.max_request_bytes), any_coding=True
        )
        is_json, shape = describe(body, content_type)
        event = NewEvent(event_type, body, content_type, is_json, None, None, shape, id_version=4)
        try:
            result = await self._store.append(stream, [event])
        except InvalidRequest as error:  # worded for v1's bodies: say which header it means
            raise InvalidRequest(_in_headers(str(error))) from None
        # The headers Starlette's Response("Created\n", headers=..., media_type="text/plain")
        # gave, in its order.
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"x-event-position", b"%d" % result.first_position),
                    (b"x-event-uuid", result.ids[0].encode()),
                    _CREATED_LENGTH,
                    _TEXT_PLAIN,
                ],
            }
        )
        await send({"type": "http.response.body", "body": _CREATED})

    async def read(self, request: Request) -> Response:
        stream = check_stream_name(request.path_params["stream"])
        offset = max(go_atoi(request.path_params["offset"]), 0)
        limit = go_atoi(request.path_params["limit"])
        cap = self._limits.max_original_read
        if limit < 0 or limit > cap:
            limit = cap
        if not limit:
            return json_response([])
        # HTTP/1.0 has no chunked encoding, and a HEAD answer's length is the whole body's:
        # those are built whole, as before.
        whole = request.method == "HEAD" or request.scope.get("http_version") == "1.0"
        page_bytes = ORIGINAL_READ_BYTES if whole else ORIGINAL_PAGE_BYTES
        try:
            page = await self._store.read(stream, offset + 1, limit, max_bytes=page_bytes)
        except StreamNotFound:
            return json_response([])
        events = page.events
        if whole or len(events) >= limit or not events or events[-1].position >= page.head:
            return json_response([original_event(e) for e in events])
        # More than a page's worth: sent page by page, so that a read of 10,000 large events
        # is never one answer of hundreds of MB built at once on the event loop (nor held
        # whole for a client that reads slowly).
        return StreamingResponse(self._pages(stream, events, limit), media_type=JSON)

    async def _pages(
        self, stream: str, events: list[RecordedEvent], limit: int
    ) -> AsyncIterator[bytes]:
        """The JSON array of up to `limit` events, `events` the first page of them."""
        opening = b"["
        data_bytes = 0
        while True:
            yield opening + encoder.encode([original_event(e) for e in events])[1:-1]
            opening = b","
            limit -= len(events)
            data_bytes += sum(len(e.data) for e in events)
            # Read on through a stop (for its grace period): an array cut short but well
            # formed would read as the whole answer.
            if limit <= 0 or data_bytes >= ORIGINAL_READ_BYTES:
                break
            start = events[-1].position + 1
            page = await self._store.read(stream, start, limit, max_bytes=ORIGINAL_PAGE_BYTES)
            events = page.events
            if not events:
                break
        yield b"]"

    async def introspect(self, request: Request) -> Response:
        streams = await self._store.list_streams()
        whole = request.method == "HEAD" or request.scope.get("http_version") == "1.0"
        if whole or len(streams) <= _INTROSPECT_CHUNK:
            return json_response([_introspected(s) for s in streams])
        return StreamingResponse(_introspect_chunks(streams), media_type=JSON)

    async def introspect_stream(self, request: Request) -> Response:
        stream = check_stream_name(request.path_params["stream"])
        whole = request.method == "HEAD" or request.scope.get("http_version") == "1.0"
        page_bytes = None if whole else ORIGINAL_PAGE_BYTES
        try:
            events = (
                []
                if self._store.head(stream) is None
                else await self._store.variants(stream, max_bytes=page_bytes)
            )
        except StreamNotFound:
            events = []
        if page_bytes is None or sum(map(_weight, events)) < page_bytes:  # all there is
            by_type: dict[str, list[Variant]] = {}
            for event in events:
                by_type.setdefault(event.type, []).append(_variant(event))
            return json_response(IntrospectVariants(stream, by_type))
        # Up to 100 examples of each type, each up to an event's size: sent page by page,
        # as a large read is, not built whole.
        return StreamingResponse(self._variant_pages(stream, events), media_type=JSON)

    async def _variant_pages(
        self, stream: str, events: list[RecordedEvent]
    ) -> AsyncIterator[bytes]:
        """IntrospectVariants as JSON, `events` the first page of its examples."""
        yield b'{"name":' + encoder.encode(stream) + b',"event_variants":{'
        current: str | None = None
        while events:
            parts = []
            for event in events:
                if event.type != current:
                    opening = b"" if current is None else b"],"
                    parts.append(opening + encoder.encode(event.type) + b":[")
                    current = event.type
                else:
                    parts.append(b",")
                parts.append(encoder.encode(_variant(event)))
            yield b"".join(parts)
            last = events[-1]
            events = await self._store.variants(
                stream, after=(last.type, last.position), max_bytes=ORIGINAL_PAGE_BYTES
            )
        yield (b"" if current is None else b"]") + b"}}"


def _weight(event: RecordedEvent) -> int:
    """What an event weighs against a page's `max_bytes` (the storage's measure)."""
    return len(event.data) + len(event.metadata or b"")


def _variant(event: RecordedEvent) -> Variant:
    return Variant(event.position, event.id, event.created, event.data.decode("utf-8", "replace"))


# -- the OpenAPI document --------------------------------------------------------------------

_STREAM = Param("stream", StreamName, "the stream's name (case-sensitive)", where="path")
_BAD_NAME = "a bad stream name (text body)"
_GO_INT_DOC = "an integer; anything else counts as 0 (as in the original)"

APPEND_DOC = Doc(
    "Append one event (original)",
    "The body is the event's data, any bytes (usually JSON), stored exactly as sent; its "
    "`Content-Type` is kept as the event's content type (none: `application/json`). The "
    "server gives the event a random UUID (v4), a creation time and the next position.",
    tag="original",
    params=(
        _STREAM,
        Param(
            "X-Event-Type",
            {"type": "string", "minLength": 1},
            "the event's type",
            required=True,
            where="header",
        ),
    ),
    body=bytes,
    responses={
        200: (
            Media(
                "text/plain",
                {"type": "string", "const": "Created\n"},
                headers=(
                    Param(
                        "X-Event-Position",
                        {"type": "integer", "minimum": 1},
                        "the event's position",
                        required=True,
                    ),
                    Param(
                        "X-Event-Uuid",
                        {"type": "string", "format": "uuid"},
                        "the event's id",
                        required=True,
                    ),
                ),
            ),
            "appended (the body is `Created`); the headers give the position and id",
        ),
        400: (str, f"no X-Event-Type header (`{MISSING_TYPE}`), or {_BAD_NAME}"),
        413: (
            str,
            "the body is over the largest event allowed (default 1 MiB), or over"
            " --max-request-bytes when that is smaller",
        ),
        503: (str, APPEND_503),
        507: (str, APPEND_507),
    },
)
READ_DOC = Doc(
    "Read events (original)",
    "Events whose position is greater than `offset`, ascending, at most `limit`. An unknown "
    "stream reads as empty (and is not created).",
    tag="original",
    params=(
        _STREAM,
        Param(
            "offset",
            {"type": "string"},
            "return events after this position; " + _GO_INT_DOC,
            required=True,
            where="path",
        ),
        Param(
            "limit",
            {"type": "string"},
            "most events to return: 0 → none; negative or over the server's cap (default "
            "10,000) → the cap; " + _GO_INT_DOC,
            required=True,
            where="path",
        ),
    ),
    responses={
        200: (list[OriginalEventOut], "the events (an empty array when none)"),
        400: (str, _BAD_NAME),
    },
)
INTROSPECT_DOC = Doc(
    "Event counts of every stream (original)",
    "One entry per stream: its number of events and its events per type.",
    tag="original",
    responses={200: (list[IntrospectStream], "every stream")},
)
INTROSPECT_STREAM_DOC = Doc(
    "Payload shapes of a stream (original)",
    "One example event per type and distinct body shape (the sorted set of the top-level keys "
    "of its JSON object). An unknown stream has no variants.",
    tag="original",
    params=(_STREAM,),
    responses={
        200: (IntrospectVariants, "the stream's event variants, by type"),
        400: (str, _BAD_NAME),
    },
)


def _introspected(stream: StreamSummary) -> IntrospectStream:
    counts = [EventTypeCount(t, n) for t, n in sorted(stream.event_types.items())]
    return IntrospectStream(stream.name, stream.head, counts)


async def _introspect_chunks(streams: list[StreamSummary]) -> AsyncIterator[bytes]:
    """The `/introspect` array, `_INTROSPECT_CHUNK` streams at a time."""
    yield b"["
    for start in range(0, len(streams), _INTROSPECT_CHUNK):
        if start:
            await asyncio.sleep(0)  # the others' turn
        part = encoder.encode(
            [_introspected(s) for s in streams[start : start + _INTROSPECT_CHUNK]]
        )
        yield (b"," if start else b"") + part[1:-1]
    yield b"]"
