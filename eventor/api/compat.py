"""The original Eventor's routes (original-api.md), served unchanged: streams and introspection.

Errors here are plain text, as the original's were (Go's http.Error: the message and a newline).
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from ..names import check_stream_name
from ..payloads import describe
from ..settings import Limits
from ..store import EventStore
from ..types import JSON_CONTENT_TYPE, NewEvent, RecordedEvent
from .params import header, read_body
from .problems import HTTPProblem
from .rendering import json_response
from .routing import Route
from .schemas import (
    EventTypeCount,
    IntrospectStream,
    IntrospectVariants,
    OriginalEventOut,
    Variant,
)

MISSING_TYPE = "Event must have type specified in x-event-type header"
_GO_INT = re.compile(r"[+-]?[0-9]+")
_MAX_OFFSET = 2**62


def go_atoi(text: str) -> int:
    """Go's strconv.Atoi with the error ignored, as the original did: 0 when not a number."""
    if _GO_INT.fullmatch(text) is None:
        return 0
    return max(-_MAX_OFFSET, min(int(text), _MAX_OFFSET))


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
            Route("POST", "/streams/{stream}", self.append, errors="text"),
            Route("GET", "/streams/{stream}/{offset}/{limit}", self.read, errors="text"),
            Route("GET", "/introspect", self.introspect, errors="text"),
            Route("GET", "/introspect/{stream}", self.introspect_stream, errors="text"),
        ]

    async def append(self, request: Request) -> Response:
        stream = check_stream_name(request.path_params["stream"])
        event_type = (header(request, b"x-event-type") or "").strip()
        if not event_type:
            raise HTTPProblem(400, MISSING_TYPE)
        content_type = header(request, b"content-type") or JSON_CONTENT_TYPE
        body = await read_body(request, self._limits.max_event_bytes)
        is_json, shape = describe(body, content_type)
        event = NewEvent(event_type, body, content_type, is_json, None, None, shape, id_version=4)
        result = await self._store.append(stream, [event])
        return Response(
            "Created\n",
            headers={
                "x-event-position": str(result.first_position),
                "x-event-uuid": result.ids[0],
            },
            media_type="text/plain",
        )

    async def read(self, request: Request) -> Response:
        stream = check_stream_name(request.path_params["stream"])
        offset = max(go_atoi(request.path_params["offset"]), 0)
        limit = go_atoi(request.path_params["limit"])
        cap = self._limits.max_original_read
        if limit < 0 or limit > cap:
            limit = cap
        events = await self._store.read_all(stream, offset, limit) if limit else []
        return json_response([original_event(e) for e in events])

    async def introspect(self, request: Request) -> Response:
        streams = await self._store.list_streams()
        return json_response(
            [
                IntrospectStream(
                    s.name,
                    s.head,
                    [EventTypeCount(t, n) for t, n in sorted(s.event_types.items())],
                )
                for s in streams
            ]
        )

    async def introspect_stream(self, request: Request) -> Response:
        stream = check_stream_name(request.path_params["stream"])
        variants = {} if self._store.head(stream) is None else await self._store.variants(stream)
        return json_response(
            IntrospectVariants(
                stream,
                {
                    type_: [
                        Variant(e.position, e.id, e.created, e.data.decode("utf-8", "replace"))
                        for e in events
                    ]
                    for type_, events in variants.items()
                },
            )
        )
