"""The original Eventor's subscription routes (original-api.md), served unchanged.

Errors are plain text, as the original's were. Fixed bugs: deleting stops deliveries at once,
and resuming an unknown name is a 400, like pausing one.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..errors import SubscriptionExists, SubscriptionNotFound
from ..subscriptions import SubscriptionService
from ..types import PAUSED, Subscription
from .params import ENCODED_BODY, decode_json, read_body
from .problems import HTTPProblem
from .rendering import json_response
from .routing import Doc, Media, Param, Route
from .subscription_schemas import (
    MAX_CONFIG_BODY,
    OriginalSubscriptionFields,
    OriginalSubscriptionIn,
    OriginalSubscriptionOut,
)

NOT_FOUND = "Subscription doesn't exist"
EXISTS = "Subscription with this name already exists"
_members = msgspec.json.Decoder(dict[str, msgspec.Raw])
_FIELD_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    field.name: msgspec.json.Decoder(field.type)
    for field in msgspec.structs.fields(OriginalSubscriptionFields)
}
_NAME = Param("name", {"type": "string"}, "the subscription's name", True, "path")


def original_subscription(s: Subscription) -> OriginalSubscriptionOut:
    return OriginalSubscriptionOut(
        s.name,
        s.config.stream,
        s.config.url,
        s.position,
        s.config.headers,
        s.status != PAUSED,
        s.paused_reason or "",
        s.created,
        s.updated,
    )


def decode_original_subscription(raw: bytes) -> OriginalSubscriptionFields:
    """The body as the original's Go `encoding/json` read it: member names match the fields
    case-insensitively (a Go client without json tags sends `Stream`, `Url`), a later member
    overrides an earlier one, and `null` leaves a field at its default."""
    members = decode_json(_members, raw, "subscription")
    values: dict[str, Any] = {}
    for key in _in_order(raw, members):
        value = members[key]  # a name given twice holds its last value
        field = key if key in _FIELD_DECODERS else key.lower()
        decoder = _FIELD_DECODERS.get(field)
        if decoder is None or bytes(value) == b"null":
            continue  # unknown members are ignored, as the original's were
        try:
            values[field] = decoder.decode(value)
        except msgspec.ValidationError as exc:
            raise HTTPProblem(400, f"invalid subscription: {key}: {exc}") from None
    return OriginalSubscriptionFields(**values)


def _in_order(raw: bytes, members: dict[str, msgspec.Raw]) -> list[str]:
    """The member names of the JSON object `raw` in the order they last appear (a dict keeps
    a repeated name where it first appeared; Go lets the last one win)."""
    try:
        names = json.loads(raw, object_pairs_hook=lambda pairs: [name for name, _ in pairs])
    except (ValueError, RecursionError):  # msgspec took it: only a limit of json's
        return list(members)
    return list(dict.fromkeys(reversed(names)))[::-1]


def _text(body: str) -> Response:
    return Response(body, media_type="text/plain")


def _doc(summary: str, responses: dict[int, tuple[object, str]], **more: object) -> Doc:
    return Doc(summary, tag="original", params=(_NAME,), responses=responses, **more)  # type: ignore[arg-type]


class OriginalSubscriptionRoutes:
    def __init__(self, service: SubscriptionService, max_body: int = MAX_CONFIG_BODY) -> None:
        """`max_body`: the largest request body (413 beyond)."""
        self._service = service
        self._max_body = max_body

    def routes(self) -> list[Route]:
        name = "/subscriptions/{name}"
        return [
            Route(
                "POST",
                name,
                self.create,
                errors="text",
                doc=_doc(
                    "Create a subscription (original API)",
                    {
                        200: (str, "Created"),
                        400: (str, "invalid, or the name is taken"),
                        413: (str, "the body is over 1 MiB (or --max-request-bytes, when smaller)"),
                        415: (str, ENCODED_BODY),
                    },
                    body=Media(
                        "application/json",
                        OriginalSubscriptionIn,
                        example={"stream": "orders", "url": "http://127.0.0.1:8000/hook"},
                    ),
                    description="`name` must match ^[a-z0-9_]+$ (any case). `position` is the"
                    " last position already delivered (0: from the beginning). Deliveries use"
                    " the original retry schedule: 5 attempts, 4/8/16/32 s apart, then pause.",
                ),
            ),
            Route(
                "GET",
                "/subscriptions",
                self.list,
                errors="text",
                doc=Doc(
                    "List subscriptions (original API)",
                    tag="original",
                    responses={200: (list[OriginalSubscriptionOut], "all subscriptions")},
                ),
            ),
            Route(
                "DELETE",
                name,
                self.delete,
                errors="text",
                doc=_doc("Delete a subscription (idempotent)", {200: (str, "Deleted")}),
            ),
            Route(
                "POST",
                name + "/pause",
                self.pause,
                errors="text",
                doc=_doc(
                    "Pause a subscription (original API)",
                    {200: (str, "Paused"), 400: (str, NOT_FOUND)},
                ),
            ),
            Route(
                "POST",
                name + "/resume",
                self.resume,
                errors="text",
                doc=_doc(
                    "Resume a subscription (original API)",
                    {200: (str, "Resumed"), 400: (str, NOT_FOUND)},
                ),
            ),
        ]

    async def create(self, request: Request) -> Response:
        name = request.path_params["name"]
        raw = await read_body(request.scope, request.receive, self._max_body)
        body = decode_original_subscription(raw)
        if not body.stream:
            raise HTTPProblem(400, "stream is required")
        if not body.url:
            raise HTTPProblem(400, "url is required")
        try:
            await self._service.create_original(
                name, body.stream, body.url, body.headers or {}, body.position
            )
        except SubscriptionExists:
            raise HTTPProblem(400, EXISTS) from None
        return _text("Created\n")

    async def list(self, request: Request) -> Response:
        return json_response([original_subscription(s) for s in self._service.all()])

    async def delete(self, request: Request) -> Response:
        await self._service.delete(request.path_params["name"])
        return _text("Deleted\n")

    async def pause(self, request: Request) -> Response:
        try:
            await self._service.pause(request.path_params["name"])
        except SubscriptionNotFound:
            raise HTTPProblem(400, NOT_FOUND) from None
        return _text("Paused\n")

    async def resume(self, request: Request) -> Response:
        try:
            await self._service.resume(request.path_params["name"])
        except SubscriptionNotFound:
            raise HTTPProblem(400, NOT_FOUND) from None
        return _text("Resumed\n")
