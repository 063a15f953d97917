"""The JSON bodies of the v1 API as msgspec structs: they validate requests, render responses,
and are the source of the OpenAPI document's schemas."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, Raw, UnsetType

SubscriptionName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="1-100 characters of A-Z a-z 0-9 _ - .",
    ),
]
StreamName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_:][A-Za-z0-9_.:-]*$",
        description="1-200 characters of A-Z a-z 0-9 _ - . : not starting with '.' or '-'",
    ),
]
EventType = Annotated[
    str,
    Meta(min_length=1, max_length=200, extra_json_schema={"pattern": "^[^\\x00-\\x1f\\x7f]+$"}),
]
Position = Annotated[int, Meta(ge=0)]
Time = Annotated[
    str,
    Meta(description="RFC 3339, UTC, with microseconds", extra_json_schema={"format": "date-time"}),
]
JSONValue = Annotated[Raw, Meta(description="any JSON value")]
JSONDefaultNull = Meta(extra_json_schema={"default": None})


def _json_null() -> Raw:
    # A factory, not a default: msgspec cannot write a Raw default into a JSON schema.
    return Raw(b"null")


class EventIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One event to append."""

    type: Annotated[EventType, Meta(examples=["OrderPlaced"])]
    data: Annotated[JSONValue, JSONDefaultNull, Meta(examples=[{"order_id": 42}])] = msgspec.field(
        default_factory=_json_null
    )
    id: uuid.UUID | None = None
    # UNSET, not a factory like data's: most events carry no metadata, and the factory's call
    # was 3 % of a batch append's time on the event loop.
    metadata: (
        Annotated[
            Raw,
            Meta(
                description="a JSON object, or null", extra_json_schema={"type": ["object", "null"]}
            ),
            JSONDefaultNull,
        ]
        | UnsetType
    ) = UNSET
    data_base64: (
        Annotated[str, Meta(description="Eventor extension: non-JSON data, base64-encoded")] | None
    ) = None
    content_type: (
        Annotated[
            str,
            Meta(
                description="Eventor extension: the type of data_base64",
                # checked by the store, with a message that says what to fix
                extra_json_schema={
                    "minLength": 1,
                    "maxLength": 255,
                    "pattern": "^[^\\x00-\\x08\\x0a-\\x1f\\x7f]+$",
                },
            ),
        ]
        | None
    ) = None


AppendBody = EventIn | Annotated[list[EventIn], Meta(extra_json_schema={"minItems": 1})]


class AppendedEvent(msgspec.Struct):
    id: str
    position: int


class AppendOut(msgspec.Struct):
    stream: str
    first_position: int
    last_position: int
    events: list[AppendedEvent]


class EventOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An event as read. `data` for JSON, `data_base64` for anything else."""

    id: str
    stream: str
    position: int
    type: str
    data: JSONValue | UnsetType = UNSET
    data_base64: bytes | UnsetType = UNSET
    metadata: Annotated[Raw, Meta(description="a JSON object")] | None
    content_type: str
    created: Time


class ReadOut(msgspec.Struct):
    stream: str
    head: int
    events: list[EventOut]
    next: int | None


class StreamOut(msgspec.Struct):
    name: str
    head: int
    created: Time
    updated: Time


class StreamListOut(msgspec.Struct):
    streams: list[StreamOut]
    next: str | None


class StreamInfoOut(msgspec.Struct):
    name: str
    head: int
    created: Time
    updated: Time
    size_bytes: int
    event_types: dict[str, int]
    subscriptions: list[str]


class Problem(msgspec.Struct, kw_only=True):
    """RFC 9457 problem details."""

    type: Annotated[str, Meta(description="urn:eventor:problem:<code>")]
    title: str
    status: int
    detail: Annotated[str, Meta(description="what went wrong and what to fix")]


class ConflictProblem(Problem, kw_only=True):
    """A 409 problem; a wrong expected_version also says where the stream is."""

    stream: str | UnsetType = UNSET
    current_version: Annotated[int, Meta(description="the stream's head now")] | UnsetType = UNSET
    expected_version: int | str | UnsetType = UNSET


class HealthOut(msgspec.Struct):
    status: str
    version: str


class ReadyOut(msgspec.Struct):
    status: str


# -- parameters (for the OpenAPI document) ---------------------------------------------------

PageLimit = Annotated[int, Meta(ge=1, le=1000, extra_json_schema={"default": 100})]
EXPECTED_VERSION = {
    "oneOf": [
        {"type": "string", "enum": ["any", "no_stream", "exists"]},
        {"type": "integer", "minimum": 0, "maximum": 2**62},
    ],
    "default": "any",
}


# -- the original API ------------------------------------------------------------------------


class OriginalEventOut(msgspec.Struct):
    uuid: str
    position: int
    stream: str
    type: str
    body: bytes
    body_json: str
    created: str


class EventTypeCount(msgspec.Struct):
    name: str
    total: int


class IntrospectStream(msgspec.Struct):
    name: str
    total: int
    event_types: list[EventTypeCount]


class Variant(msgspec.Struct):
    position: int
    uuid: str
    created: str
    body: str


class IntrospectVariants(msgspec.Struct):
    name: str
    event_variants: dict[str, list[Variant]]
