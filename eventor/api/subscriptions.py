"""The v1 subscription routes: PUT (create/update), status, pause/resume/reset, logs, DELETE."""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..errors import SubscriptionExists, SubscriptionNotFound
from ..names import check_stream_name, check_subscription_name
from ..subscriptions import UNSET, SubscriptionService, SubscriptionSpec, status_of
from ..types import Subscription
from .params import decode_json, header, int_param, query, read_body, require_json
from .problems import HTTPProblem
from .rendering import json_response
from .routing import Doc, Media, Param, Route
from .schemas import Problem, SubscriptionName
from .subscription_schemas import (
    MAX_CONFIG_BODY,
    BackoffIn,
    BackoffOut,
    ConfigOut,
    DeliveriesOut,
    DeliveryOut,
    ParkedListOut,
    ParkedOut,
    ReplayOut,
    ResetIn,
    SubscriptionIn,
    SubscriptionListOut,
    SubscriptionOut,
)

T = TypeVar("T")
_put = msgspec.json.Decoder(SubscriptionIn)
_reset = msgspec.json.Decoder(ResetIn)

_NAME = Param("name", SubscriptionName, "the subscription's name", True, "path")
_NOT_FOUND = (Problem, "no subscription has this name")
_BAD = (Problem, "invalid input: the detail says what to fix")
_UNAVAILABLE = (
    Problem,
    "the storage cannot be written now (its data directory is gone): the change may not be"
    " kept; restart Eventor on its data directory",
)
_IF_MATCH = Param(
    "If-Match",
    {"type": "string"},
    "`*`: update only, never create. Subscriptions have no ETags: entity tags never match (412)",
    where="header",
)
_IF_NONE_MATCH = Param(
    "If-None-Match",
    {"type": "string"},
    "`*`: create only, never update. Subscriptions have no ETags: entity tags always pass",
    where="header",
)
_TOO_LARGE = (Problem, "the body is over 1 MiB (or --max-request-bytes, when smaller)")
_NOT_JSON = (
    Problem,
    "the body is not declared JSON (send `Content-Type: application/json`), or comes with a"
    " `Content-Encoding` (send it as is)",
)


def subscription_out(s: Subscription, head: int) -> SubscriptionOut:
    c = s.config
    return SubscriptionOut(
        name=s.name,
        stream=c.stream,
        url=c.url,
        status=status_of(s),
        position=s.position,
        head=head,
        lag=max(0, head - s.position),
        last_delivered_at=s.last_delivered_at,
        last_error=s.last_error,
        paused_reason=s.paused_reason,
        attempts=s.attempts,
        next_attempt_at=s.next_attempt_at,
        parked=0,
        config=ConfigOut(
            stream=c.stream,
            url=c.url,
            headers=c.headers,
            event_types=c.event_types,
            batch_size=c.batch_size,
            timeout=c.timeout,
            max_attempts=c.max_attempts,
            backoff=BackoffOut(c.backoff_initial, c.backoff_max),
            on_exhausted=c.on_exhausted,
            secret_set=c.secret is not None,
            created_by="original" if c.original else "v1",
        ),
        created=s.created,
        updated=s.updated,
    )


class SubscriptionRoutes:
    def __init__(self, service: SubscriptionService, max_body: int = MAX_CONFIG_BODY) -> None:
        """`max_body`: the largest request body (413 beyond)."""
        self._service = service
        self._max_body = max_body

    def routes(self) -> list[Route]:
        base = "/v1/subscriptions/{name}"
        return [
            Route(
                "GET",
                "/v1/subscriptions",
                self.list,
                doc=_doc(
                    "List subscriptions, in name order",
                    {200: (SubscriptionListOut, "every subscription"), 400: _BAD},
                    params=(
                        Param(
                            "stream",
                            str,
                            "only the subscriptions to this stream (one not there yet too)",
                        ),
                    ),
                ),
            ),
            Route(
                "PUT",
                base,
                self.put,
                doc=_doc(
                    "Create or update a subscription",
                    {
                        201: (SubscriptionOut, "created"),
                        200: (SubscriptionOut, "updated"),
                        400: _BAD,
                        412: (
                            Problem,
                            "`If-Match: *` and there is no such subscription, or"
                            " `If-None-Match: *` and there is one",
                        ),
                        413: _TOO_LARGE,
                        415: _NOT_JSON,
                        503: _UNAVAILABLE,
                    },
                    body=Media(
                        "application/json",
                        SubscriptionIn,
                        example={
                            "stream": "orders",
                            "url": "https://billing.example/hooks/orders",
                            "event_types": ["OrderPlaced"],
                            "max_attempts": 5,
                            "backoff": {"initial": 1, "max": 300},
                        },
                    ),
                    params=(_NAME, _IF_MATCH, _IF_NONE_MATCH),
                    description="`start` applies on create only (checked, then ignored on update)."
                    " A `secret` left out on update keeps the current one; null removes it; a new"
                    " one replaces it while the old one keeps signing beside it for 24 hours."
                    " `stream` cannot change.",
                ),
            ),
            Route(
                "GET",
                base,
                self.get,
                doc=_doc(
                    "A subscription's status", {200: (SubscriptionOut, "status"), 404: _NOT_FOUND}
                ),
            ),
            Route(
                "DELETE",
                base,
                self.delete,
                doc=_doc(
                    "Delete a subscription (deliveries stop at once)",
                    {204: (None, "deleted"), 404: _NOT_FOUND, 503: _UNAVAILABLE},
                ),
            ),
            Route(
                "POST",
                base + "/pause",
                self.pause,
                doc=_doc(
                    "Pause deliveries (a request in flight may finish)",
                    {200: (SubscriptionOut, "paused"), 404: _NOT_FOUND, 503: _UNAVAILABLE},
                ),
            ),
            Route(
                "POST",
                base + "/resume",
                self.resume,
                doc=_doc(
                    "Resume deliveries (the event it stopped on is retried, attempts afresh)",
                    {200: (SubscriptionOut, "resumed"), 404: _NOT_FOUND, 503: _UNAVAILABLE},
                ),
            ),
            Route(
                "POST",
                base + "/reset",
                self.reset,
                doc=_doc(
                    "Move the position: the next delivery is position + 1 (replays or skips)",
                    {
                        200: (SubscriptionOut, "reset"),
                        400: _BAD,
                        404: _NOT_FOUND,
                        413: _TOO_LARGE,
                        415: _NOT_JSON,
                        503: _UNAVAILABLE,
                    },
                    body=Media("application/json", ResetIn, example={"position": 0}),
                ),
            ),
            Route(
                "GET",
                base + "/deliveries",
                self.deliveries,
                doc=_doc(
                    "The latest delivery attempts, newest first",
                    {200: (DeliveriesOut, "attempts"), 400: _BAD, 404: _NOT_FOUND},
                    params=(
                        _NAME,
                        Param(
                            "limit",
                            {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                            "how many attempts",
                        ),
                    ),
                ),
            ),
            Route(
                "GET",
                base + "/parked",
                self.parked,
                doc=_doc(
                    "Parked events (exhausted under on_exhausted: park), in position order",
                    {200: (ParkedListOut, "parked events"), 400: _BAD, 404: _NOT_FOUND},
                    params=(
                        _NAME,
                        Param(
                            "after",
                            {"type": "integer", "minimum": 0, "default": 0},
                            "only events parked at positions after this (a page's `next`)",
                        ),
                        Param(
                            "limit",
                            {"type": "integer", "minimum": 1, "maximum": 1000},
                            "at most this many (every one when left out)",
                        ),
                    ),
                    description="Every parked event unless `limit` is given; with it, a page"
                    " at a time: pass `next` as `after` for the following page.",
                ),
            ),
            Route(
                "POST",
                base + "/parked/replay",
                self.replay,
                doc=_doc(
                    "Re-deliver the parked events in order; those that succeed are cleared",
                    {
                        202: (ReplayOut, "queued: the subscription's loop delivers them next"),
                        404: _NOT_FOUND,
                    },
                    description="Replay happens in the subscription's own loop (one request in"
                    " flight, before further new events); a paused subscription replays when"
                    " resumed. A replayed event that fails again stays parked.",
                ),
            ),
        ]

    def _out(self, s: Subscription) -> SubscriptionOut:
        out = subscription_out(s, self._service.head(s.config.stream))
        out.parked = self._service.parked_count(s.name)
        return out

    async def list(self, request: Request) -> Response:
        stream = query(request.scope).get("stream")
        if not stream:  # empty is absent, as for every parameter
            subscriptions = self._service.all()
        else:
            check_stream_name(stream)
            subscriptions = [self._service.get(n) for n in self._service.names_for(stream)]
        return json_response(SubscriptionListOut([self._out(s) for s in subscriptions]))

    async def put(self, request: Request) -> Response:
        name = _name(request)
        require_json(request.scope)
        raw = await read_body(request.scope, request.receive, self._max_body)
        body = decode_json(_put, raw, "subscription")
        # An option given as null takes its default, as one left out does (clients that send
        # every field of a model send their unset ones so).
        default = SubscriptionSpec(body.stream, body.url)
        backoff = body.backoff or BackoffIn()
        spec = SubscriptionSpec(
            stream=body.stream,
            url=body.url,
            headers=_given(body.headers, default.headers),
            start=body.start,
            event_types=body.event_types,
            secret=UNSET if body.secret is msgspec.UNSET else body.secret,
            batch_size=_given(body.batch_size, default.batch_size),
            timeout=_given(body.timeout, default.timeout),
            max_attempts=_given(body.max_attempts, default.max_attempts),
            backoff_initial=backoff.initial,
            backoff_max=backoff.max,
            on_exhausted=_given(body.on_exhausted, default.on_exhausted),
        )
        exists = _precondition(request)
        try:
            subscription, created = await self._service.put(name, spec, exists=exists)
        except (SubscriptionNotFound, SubscriptionExists) as failed:
            raise HTTPProblem(
                412,
                f"{failed}: the request's {'If-Match' if exists else 'If-None-Match'}: * says"
                f" to {'update' if exists else 'create'} only",
                code="precondition-failed",
            ) from None
        return json_response(self._out(subscription), 201 if created else 200)

    async def get(self, request: Request) -> Response:
        return json_response(self._out(self._service.get(_name(request))))

    async def delete(self, request: Request) -> Response:
        name = _name(request)
        if not await self._service.delete(name):
            self._service.get(name)  # raises SubscriptionNotFound
        return Response(status_code=204)

    async def pause(self, request: Request) -> Response:
        return json_response(self._out(await self._service.pause(_name(request))))

    async def resume(self, request: Request) -> Response:
        return json_response(self._out(await self._service.resume(_name(request))))

    async def reset(self, request: Request) -> Response:
        name = _name(request)
        self._service.get(name)
        require_json(request.scope)
        body = decode_json(
            _reset, await read_body(request.scope, request.receive, self._max_body), "reset"
        )
        return json_response(self._out(await self._service.reset(name, body.position)))

    async def deliveries(self, request: Request) -> Response:
        limit = int_param(query(request.scope), "limit", 100, low=1, high=1000)
        assert limit is not None
        attempts = self._service.deliveries(_name(request), limit)
        return json_response(
            DeliveriesOut(
                [
                    DeliveryOut(
                        a.position,
                        a.event_id,
                        a.attempt,
                        a.status_code,
                        a.error,
                        a.response_excerpt,
                        a.duration_ms,
                        a.at,
                        *((a.last_position, a.events) if a.events > 1 else _SPEC_SHAPE),
                    )
                    for a in attempts
                ]
            )
        )

    async def parked(self, request: Request) -> Response:
        params = query(request.scope)
        after = int_param(params, "after", 0, low=0)
        limit = int_param(params, "limit", None, low=1, high=1000)
        assert after is not None
        parked = self._service.parked(_name(request), after, None if limit is None else limit + 1)
        more = limit is not None and len(parked) > limit
        if more:
            parked = parked[:limit]
        return json_response(
            ParkedListOut(
                [ParkedOut(p.position, p.event_id, p.error, p.at) for p in parked],
                msgspec.UNSET if limit is None else parked[-1].position if more else None,
            )
        )

    async def replay(self, request: Request) -> Response:
        count = await self._service.replay_parked(_name(request))
        return json_response(ReplayOut(count), 202)


#: An attempt of one event without the fields a batch's has: the spec's shape.
_SPEC_SHAPE = (msgspec.UNSET, msgspec.UNSET)


def _precondition(request: Request) -> bool | None:
    """`If-Match: *`: update only (True); `If-None-Match: *`: create only (False); else None.

    Subscriptions have no ETags, so (RFC 9110, 13.1) `If-Match` with entity tags never holds
    (412), and `If-None-Match` with entity tags always does (no constraint)."""
    match = _condition(request, b"if-match", "If-Match")
    none_match = _condition(request, b"if-none-match", "If-None-Match")
    if match is not None and none_match is not None:
        raise HTTPProblem(400, "send If-Match or If-None-Match, not both", code="invalid-parameter")
    if match == "tags":
        raise HTTPProblem(
            412,
            "If-Match names entity tags, and subscriptions have none: it can never match"
            " (send If-Match: * to update only)",
            code="precondition-failed",
        )
    if match is not None:
        return True
    return False if none_match == "*" else None


_ENTITY_TAGS = re.compile(
    r'(W/)?"[\x21\x23-\x7e\x80-\xff]*"(\s*,\s*(W/)?"[\x21\x23-\x7e\x80-\xff]*")*'
)


def _condition(request: Request, key: bytes, name: str) -> str | None:
    """The header's value as `*` or `tags`; None when absent; 400 when neither."""
    value = header(request.scope, key)
    if value is None:
        return None
    value = value.strip(" \t")
    if value == "*":
        return "*"
    if _ENTITY_TAGS.fullmatch(value):
        return "tags"
    raise HTTPProblem(
        400,
        f'{name} must be * or a list of entity tags ("..."), got {value[:100]!r}',
        code="invalid-parameter",
    )


def _given(value: T | None, default: T) -> T:
    return default if value is None else value


def _name(request: Request) -> str:
    """The subscription name in the path; 400 unless it follows the naming rule."""
    return check_subscription_name(request.path_params["name"])


def _doc(
    summary: str,
    responses: dict[int, tuple[object, str]],
    *,
    params: tuple[Param, ...] = (_NAME,),
    body: object = None,
    description: str = "",
) -> Doc:
    return Doc(
        summary,
        description,
        tag="subscriptions",
        params=params,
        body=body,
        responses=responses,
    )
