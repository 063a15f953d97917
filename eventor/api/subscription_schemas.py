"""The JSON bodies of the subscription routes (v1 and original) as msgspec structs."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ..types import MAX_POSITION

Seconds = Annotated[float, Meta(description="seconds, may be fractional")]
Time = Annotated[str, Meta(description="RFC 3339, UTC, with microseconds")]


def _doc_only(**schema: object) -> Meta:
    """A rule for the OpenAPI document only: the service checks it, with a message that says
    what to fix (msgspec's own would say less)."""
    return Meta(extra_json_schema=schema)


#: The largest subscription request body (a configuration is small), unless
#: --max-request-bytes is smaller.
MAX_CONFIG_BODY = 1024 * 1024


_BASE64_SECRET = (
    "^whsec_(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$"
)
_READ_ONLY = "read-only: taken and ignored, so that a status's `config` can be sent back as is"


class BackoffIn(msgspec.Struct, forbid_unknown_fields=True):
    """Retry backoff: exponential from `initial`, capped at `max`, with jitter; every wait lies
    between `initial` and `max`."""

    initial: Annotated[Seconds, _doc_only(exclusiveMinimum=0, maximum=86400)] = 1.0
    max: Annotated[Seconds, _doc_only(exclusiveMinimum=0, maximum=86400)] = 300.0


class SubscriptionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """PUT /v1/subscriptions/{name}: create or update."""

    stream: Annotated[
        str,
        _doc_only(minLength=1, maxLength=200, pattern=r"^[A-Za-z0-9_:][A-Za-z0-9_.:-]*$"),
    ]
    url: Annotated[
        str,
        Meta(description="http:// or https:// address to deliver to"),
        _doc_only(maxLength=2048, pattern="^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]"),
    ]
    headers: (
        Annotated[
            dict[str, str],
            Meta(
                description="sent with every delivery; not the headers Eventor sets itself"
                " (Content-Type, X-Event-*, ce-*, webhook-*, Host, Content-Length, ...)"
            ),
            _doc_only(propertyNames={"pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"}),
        ]
        | None
    ) = None
    start: (
        Annotated[
            Annotated[str, _doc_only(enum=["beginning", "end"])]
            | Annotated[int, _doc_only(minimum=0, maximum=MAX_POSITION)],
            Meta(description='create only: "beginning" (default), "end", or a position P'),
        ]
        | None
    ) = None
    event_types: (
        Annotated[
            list[Annotated[str, _doc_only(minLength=1, maxLength=200)]],
            _doc_only(minItems=1, maxItems=100),
        ]
        | None
    ) = None
    secret: (
        Annotated[
            str,
            Meta(description="whsec_ + base64 of the key (24-64 bytes advised); null removes it"),
            _doc_only(pattern=_BASE64_SECRET),
        ]
        | UnsetType
        | None
    ) = UNSET
    batch_size: (
        Annotated[
            int, Meta(description="1-1000 events per request"), _doc_only(minimum=1, maximum=1000)
        ]
        | None
    ) = None
    timeout: Annotated[Seconds, _doc_only(exclusiveMinimum=0, maximum=300)] | None = None
    max_attempts: (
        Annotated[
            int,
            Meta(description="attempts per event; 0 = forever"),
            _doc_only(minimum=0, maximum=1_000_000),
        ]
        | None
    ) = None
    backoff: BackoffIn | None = None
    on_exhausted: (
        Annotated[
            str,
            Meta(description='"pause" (default) or "park"'),
            _doc_only(enum=["pause", "park"]),
        ]
        | None
    ) = None
    # What a status's `config` says of itself, so that it can be sent back as read.
    secret_set: Annotated[bool, Meta(description=_READ_ONLY)] | UnsetType = UNSET
    created_by: Annotated[str, Meta(description=_READ_ONLY)] | UnsetType = UNSET


class BackoffOut(msgspec.Struct):
    initial: float
    max: float


class ConfigOut(msgspec.Struct):
    """A subscription's configuration, without its secret."""

    stream: str
    url: str
    headers: dict[str, str]
    event_types: list[str] | None
    batch_size: int
    timeout: float
    max_attempts: int
    backoff: BackoffOut
    on_exhausted: str
    secret_set: bool
    created_by: Annotated[str, Meta(description='"v1" or "original" (original retry schedule)')]


class SubscriptionOut(msgspec.Struct):
    """A subscription's status."""

    name: str
    stream: str
    url: str
    status: Annotated[str, Meta(description="active | retrying | paused")]
    position: Annotated[int, Meta(description="last position delivered (or passed over)")]
    head: int
    lag: int
    last_delivered_at: Time | None
    last_error: str | None
    paused_reason: str | None
    attempts: Annotated[int, Meta(description="failed attempts on the next event")]
    next_attempt_at: Annotated[
        Time | None,
        Meta(description="when the failed event is tried again (null: no retry is waiting)"),
    ]
    parked: Annotated[int, Meta(description="events parked (see /parked)")]
    config: ConfigOut
    created: Time
    updated: Time


class SubscriptionListOut(msgspec.Struct):
    subscriptions: list[SubscriptionOut]


class ResetIn(msgspec.Struct, forbid_unknown_fields=True):
    position: Annotated[
        int, Meta(ge=0, le=MAX_POSITION, description="the next delivery is position + 1")
    ]


class DeliveryOut(msgspec.Struct):
    position: Annotated[int, Meta(description="the (first) event's position")]
    event_id: str
    attempt: int
    status_code: int | None
    error: str | None
    response_excerpt: str | None
    duration_ms: float
    at: Time
    # Beside the spec's fields, for a batch only: an attempt of one event has the spec's shape.
    last_position: (
        Annotated[int, Meta(description="a batch's last event's position (absent: `position`)")]
        | UnsetType
    ) = UNSET
    events: (
        Annotated[int, Meta(description="how many events a batch carried (absent: 1)")] | UnsetType
    ) = UNSET


class DeliveriesOut(msgspec.Struct):
    deliveries: list[DeliveryOut]


class ParkedOut(msgspec.Struct):
    position: int
    event_id: str
    error: str
    at: Time


class ParkedListOut(msgspec.Struct):
    parked: list[ParkedOut]
    # Only with `limit`: without it, the answer has the spec's shape.
    next: (
        Annotated[
            int | None,
            Meta(description="with `limit`: the following page's `after`; null on the last"),
        ]
        | UnsetType
    ) = UNSET


class ReplayOut(msgspec.Struct):
    replaying: Annotated[int, Meta(description="parked events queued for re-delivery")]


# -- the original API ------------------------------------------------------------------------


class OriginalSubscriptionFields(msgspec.Struct):
    """POST /subscriptions/{name} as read: member by member (see compat_subscriptions), each
    optional here and checked after (an absent `stream` is a 400 saying so)."""

    stream: str = ""
    url: str = ""
    headers: dict[str, str] | None = None
    position: int = 0


class OriginalSubscriptionIn(msgspec.Struct):
    """POST /subscriptions/{name}, as the OpenAPI document describes it (unknown members are
    ignored, as the original's were; `null` counts as absent)."""

    stream: Annotated[str, Meta(min_length=1, max_length=200)]
    url: Annotated[str, Meta(min_length=1, description="http:// or https:// address")]
    headers: dict[str, str] | None = None
    position: Annotated[
        int, Meta(ge=0, le=MAX_POSITION, description="the last position already delivered")
    ] = 0


class OriginalSubscriptionOut(msgspec.Struct):
    name: str
    stream: str
    url: str
    position: int
    headers: dict[str, str]
    active: bool
    pause_reason: str
    created: str
    updated: str
