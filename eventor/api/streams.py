"""The v1 stream routes: append, read (with long poll), live (SSE), list and info."""

from __future__ import annotations

import asyncio
import binascii
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, TypeVar

import msgspec
from msgspec import UNSET, Meta
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..errors import InvalidRequest, StreamNotFound
from ..names import check_stream_name
from ..payloads import describe, is_json_content_type, is_media_type
from ..store import EventStore
from ..types import JSON_CONTENT_TYPE, MAX_POSITION, NewEvent, RecordedEvent
from .params import (
    choice_param,
    decode_json,
    expected_version,
    header,
    int_param,
    number_param,
    query,
    read_body,
    require_json,
)
from .problems import HTTPProblem
from .rendering import encoder, event_out, event_stream, json_response, send_json
from .routing import APPEND_503, APPEND_507, Doc, Media, Param, Route
from .schemas import (
    EXPECTED_VERSION,
    AppendBody,
    AppendedEvent,
    AppendOut,
    ConflictProblem,
    EventIn,
    EventOut,
    PageLimit,
    Problem,
    ReadOut,
    StreamInfoOut,
    StreamListOut,
    StreamName,
    StreamOut,
)

T = TypeVar("T")

MAX_WAIT = 60.0
SSE_KEEPALIVE = 15.0
SSE_PAGE = 500
#: The event data of one SSE message batch. A client that stops reading holds about two
#: batches in the server (one written, one waiting): 16 MiB batches made that 130-160 MB per
#: such client when events were large.
SSE_PAGE_BYTES = 1024 * 1024
_LAST_POSITION = MAX_POSITION

_append_decoder = msgspec.json.Decoder(AppendBody)


def parse_events(body: bytes) -> list[NewEvent]:
    """The events of a v1 append body, or InvalidRequest saying what to fix."""
    decoded = decode_json(_append_decoder, body, "event")
    items = decoded if isinstance(decoded, list) else [decoded]
    if not items:
        raise InvalidRequest("the array holds no events: send at least one")
    return [_new_event(index, item) for index, item in enumerate(items)]


def _new_event(index: int, item: EventIn) -> NewEvent:
    metadata: bytes | None = None if item.metadata is UNSET else bytes(item.metadata)
    if metadata == b"null":
        metadata = None
    elif metadata is not None and metadata[:1] != b"{":
        raise InvalidRequest(f"event {index}: metadata must be a JSON object or null")
    if item.content_type is not None and not is_media_type(item.content_type):
        raise InvalidRequest(
            f"event {index}: content_type {item.content_type[:100]!r} is not a media type;"
            " send one such as text/plain or image/png; charset=... parameters may follow"
        )
    if item.data_base64 is not None:
        if bytes(item.data) != b"null":
            raise InvalidRequest(f"event {index}: give data or data_base64, not both")
        try:
            data = binascii.a2b_base64(item.data_base64, strict_mode=True)
        except ValueError:  # binascii.Error, or a non-ASCII character
            raise InvalidRequest(f"event {index}: data_base64 is not valid base64") from None
        content_type = item.content_type or "application/octet-stream"
        is_json, shape = describe(data, content_type)
    else:
        content_type = item.content_type or JSON_CONTENT_TYPE
        if not is_json_content_type(content_type):
            raise InvalidRequest(
                f"event {index}: content_type {content_type!r} needs data_base64;"
                " data is always JSON"
            )
        data = bytes(item.data)
        is_json, shape = describe(data, content_type, known_json=True)
    return NewEvent(
        item.type,
        data,
        content_type,
        is_json,
        metadata,
        None if item.id is None else str(item.id),
        shape,
    )


async def _unless_gone(request: Request, waiting: Awaitable[T]) -> T:
    """`waiting`, ended early (ClientDisconnect) when the client goes: an abandoned long poll
    would otherwise hold its task and its waiter for up to a minute."""
    answer = asyncio.ensure_future(waiting)
    gone = asyncio.ensure_future(_disconnect(request.receive))
    try:
        await asyncio.wait((answer, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not answer.done():
            answer.cancel()
    if not answer.done() or answer.cancelled():
        raise ClientDisconnect
    return answer.result()


async def _disconnect(receive: Receive) -> None:
    """Returns once the client has gone (the request's body, if any, is read and dropped)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class StreamRoutes:
    def __init__(self, store: EventStore, subscriptions_of: Callable[[str], list[str]]) -> None:
        self._store = store
        self._subscriptions_of = subscriptions_of

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/v1/streams/{stream}/events", self.append, doc=APPEND_DOC, raw=True),
            Route("GET", "/v1/streams/{stream}/events", self.read, doc=READ_DOC),
            Route("GET", "/v1/streams/{stream}/live", self.live, doc=LIVE_DOC),
            Route("GET", "/v1/streams", self.list, doc=LIST_DOC),
            Route("GET", "/v1/streams/{stream}", self.info, doc=INFO_DOC),
        ]

    async def append(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Raw ASGI: the hottest route (see routing.py)."""
        stream = check_stream_name(scope["path_params"]["stream"])
        expected = expected_version(query(scope))
        require_json(scope)
        body = await read_body(scope, receive, self._store.limits.max_request_bytes)
        result = await self._store.append(stream, parse_events(body), expected)
        out = AppendOut(
            stream,
            result.first_position,
            result.last_position,
            [
                AppendedEvent(event_id, position)
                for position, event_id in enumerate(result.ids, result.first_position)
            ],
        )
        await send_json(send, out, 201 if result.created else 200)

    async def read(self, request: Request) -> Response:
        stream = check_stream_name(request.path_params["stream"])
        params = query(request.scope)
        direction = choice_param(params, "direction", ("forward", "backward"))
        limit = int_param(params, "limit", 100, low=1, high=1000)
        wait = number_param(params, "wait", low=0, high=MAX_WAIT)
        assert limit is not None
        # A page carries about a request's worth of event data at most (then `next` goes on).
        page_bytes = self._store.limits.max_request_bytes
        if direction == "backward":
            if wait:  # wait=0 asks for no waiting: harmless
                raise HTTPProblem(
                    400,
                    "query parameter 'wait' applies to forward reads only",
                    code="invalid-parameter",
                )
            start = int_param(params, "from", None, low=0)
            result = await self._store.read(
                stream,
                _LAST_POSITION if start is None else min(start, _LAST_POSITION),
                limit,
                backward=True,
                max_bytes=page_bytes,
            )
            last = result.events[-1].position if result.events else 0
            next_: int | None = last - 1 if last > 1 else None
        else:
            start = int_param(params, "from", 1, low=0, high=_LAST_POSITION)
            assert start is not None
            if wait:
                result = await _unless_gone(
                    request,
                    self._store.read_or_wait(stream, start, limit, wait, max_bytes=page_bytes),
                )
            else:
                result = await self._store.read(stream, start, limit, max_bytes=page_bytes)
            next_ = result.events[-1].position + 1 if result.events else start
        events = [event_out(e) for e in result.events]
        return json_response(ReadOut(stream, result.head, events, next_))

    async def live(self, request: Request) -> Response:
        stream = check_stream_name(request.path_params["stream"])
        last_id = (header(request.scope, b"last-event-id") or "").strip(" \t")
        if last_id:
            digits = last_id.lstrip("0") or "0"  # leading zeros are only zeros, however many
            if not (
                last_id.isascii()
                and last_id.isdigit()
                and len(digits) <= 19
                and int(digits) < _LAST_POSITION
            ):
                raise HTTPProblem(
                    400,
                    f"Last-Event-ID must be a position (0 to {_LAST_POSITION - 1}),"
                    f" got {last_id[:100]!r}",
                    code="invalid-parameter",
                )
            start = int(digits) + 1
        else:
            start_param = int_param(query(request.scope), "from", None, low=0, high=_LAST_POSITION)
            if start_param is None:
                start = await self._store.durable_head(stream) + 1
            else:
                start = start_param
        return event_stream(request, self._sse(stream, max(start, 1)))

    async def _sse(self, stream: str, start: int) -> AsyncIterator[bytes]:
        yield b"retry: 1000\n\n"
        position = start
        while not self._store.stopping:
            try:
                events = (
                    await self._store.read(stream, position, SSE_PAGE, max_bytes=SSE_PAGE_BYTES)
                ).events
            except StreamNotFound:
                events = []
            if events:
                position = events[-1].position + 1
                message = _sse_messages(events)
                # While a client that stopped reading holds this message, nothing else of
                # the page is held with it: the events and the pieces went with the call.
                del events
                yield message
                del message
            elif not await self._store.appended.wait(stream, position - 1, SSE_KEEPALIVE):
                yield b": keep-alive\n\n"

    async def list(self, request: Request) -> Response:
        params = query(request.scope)
        limit = int_param(params, "limit", 100, low=1, high=1000)
        assert limit is not None
        page = await self._store.list_streams(
            prefix=params.get("prefix", ""), after=params.get("after", ""), limit=limit + 1
        )
        more = len(page) > limit
        page = page[:limit]
        return json_response(
            StreamListOut(
                [StreamOut(s.name, s.head, s.created, s.updated) for s in page],
                page[-1].name if more else None,
            )
        )

    async def info(self, request: Request) -> Response:
        stream = check_stream_name(request.path_params["stream"])
        info = await self._store.stream_info(stream)
        return json_response(
            StreamInfoOut(
                info.name,
                info.head,
                info.created,
                info.updated,
                info.size_bytes,
                info.event_types,
                self._subscriptions_of(stream),
            )
        )


# -- the OpenAPI document --------------------------------------------------------------------

_STREAM = Param("stream", StreamName, "the stream's name (case-sensitive)", where="path")
_BAD_NAME = "a bad stream name or query parameter: the detail says what to fix"
_FROM = Annotated[int, Meta(ge=0)]

APPEND_DOC = Doc(
    "Append events",
    "One event (a JSON object) or several (a JSON array), atomically: all are appended or "
    "none. `201` means durable: on disk per the server's durability setting, visible to "
    "readers and handed to subscriptions. Idempotent by event `id`: when every id of the "
    "request already stands in the stream as the same consecutive events, nothing is appended "
    "and the answer is `200` with the original positions.",
    params=(
        _STREAM,
        Param(
            "expected_version",
            EXPECTED_VERSION,
            "optimistic concurrency: `any`, `no_stream` (the stream must not exist), `exists`, "
            "or the stream's head N (0: empty or absent)",
        ),
    ),
    body=Media(
        "application/json",
        AppendBody,
        example={"type": "OrderPlaced", "data": {"order_id": 42, "total": 19.99}},
    ),
    responses={
        201: (AppendOut, "appended: the new events' ids and positions"),
        200: (AppendOut, "already appended (every id stands in the stream): nothing changed"),
        400: (
            Problem,
            "not JSON, not events, an empty array, two data fields, bad base64, or " + _BAD_NAME,
        ),
        409: (
            ConflictProblem,
            "the stream's head is not `expected_version` (the problem carries "
            "`current_version`), or only some of the ids already stand in the stream",
        ),
        413: (
            Problem,
            "over a limit: one event's data (default 1 MiB), the request (16 MiB) or the "
            "number of events (10,000)",
        ),
        415: (
            Problem,
            "the body is not declared JSON (send `Content-Type: application/json`), or comes"
            " with a `Content-Encoding` (send it as is)",
        ),
        503: (Problem, APPEND_503),
        507: (Problem, APPEND_507),
    },
)
READ_DOC = Doc(
    "Read events",
    "A page of events, forward (ascending from `from`) or backward (descending from `from`). "
    "`next` is the `from` of the following page. With `wait`, a forward read that finds "
    "nothing at or after `from` holds the request until an event arrives (long poll).",
    params=(
        _STREAM,
        Param(
            "from",
            _FROM,
            "first position to return: forward, default 1; backward, default the head",
        ),
        Param("limit", PageLimit, "most events to return"),
        Param(
            "direction",
            {"type": "string", "enum": ["forward", "backward"], "default": "forward"},
            "reading order",
        ),
        Param(
            "wait",
            {"type": "number", "minimum": 0, "maximum": MAX_WAIT},
            "seconds to wait for an event when there is none yet (forward only)",
        ),
    ),
    responses={
        200: (ReadOut, "a page of events (possibly empty)"),
        400: (Problem, _BAD_NAME),
        404: (Problem, "no such stream (with `wait`, the request waits for it instead)"),
    },
)
LIVE_DOC = Doc(
    "Follow a stream live (Server-Sent Events)",
    "Every event from `from` on (default: only new ones), as they are appended. Each message: "
    "`id: <position>`, `event: <type>`, `data: <the event as JSON>`. A reconnect with "
    "`Last-Event-ID` resumes after that position. A comment line every 15 s keeps proxies "
    "from closing the connection. The stream need not exist yet.",
    params=(
        _STREAM,
        Param("from", _FROM, "first position to send (default: the head + 1)"),
        Param(
            "Last-Event-ID",
            {"type": "string", "pattern": "^[0-9]+$"},
            "resume after this position (sent by EventSource on reconnect); overrides `from`",
            where="header",
        ),
    ),
    responses={
        200: (Media("text/event-stream", EventOut), "an endless stream of events"),
        400: (Problem, _BAD_NAME + ", or a Last-Event-ID that is not a position"),
    },
)
LIST_DOC = Doc(
    "List streams",
    "Streams in name order, a page at a time: pass `next` as `after` for the following page.",
    params=(
        Param("prefix", str, "only streams whose name starts with this"),
        Param("after", str, "only streams whose name sorts after this (a page's `next`)"),
        Param("limit", PageLimit, "most streams to return"),
    ),
    responses={
        200: (StreamListOut, "a page of streams; `next` is null on the last page"),
        400: (Problem, "a bad query parameter: the detail says what to fix"),
    },
)
INFO_DOC = Doc(
    "Describe a stream",
    "Its head, times, size on disk, events per type, and the subscriptions that follow it.",
    params=(_STREAM,),
    responses={
        200: (StreamInfoOut, "the stream"),
        400: (Problem, "a bad stream name: the detail says what to fix"),
        404: (Problem, "no such stream"),
    },
)


def _sse_messages(events: list[RecordedEvent]) -> bytes:
    """Server-Sent Events messages, one per event: `id`, `event`, and the event's JSON as
    `data` lines."""
    parts = []
    for event in events:
        body = encoder.encode(event_out(event))
        parts.append(b"id: %d\nevent: %s\n" % (event.position, event.type.encode()))
        for line in body.splitlines():
            parts.append(b"data: " + line + b"\n")
        parts.append(b"\n")
    return b"".join(parts)
