"""Plain value types shared by every layer. Imports nothing from eventor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, NamedTuple

JSON_CONTENT_TYPE: Final = "application/json"

# Expected version of a stream for an append: an exact head (0 = empty or absent) or one of these.
ANY: Final = "any"
NO_STREAM: Final = "no_stream"
EXISTS: Final = "exists"
ExpectedVersion = int | str


@dataclass(slots=True)
class NewEvent:
    """An event on its way into a stream.

    `data` holds the bytes exactly as the client sent them. `is_json` says whether they parse as
    JSON (for a JSON content type), and `shape` names the payload's shape for introspection.
    `id` is the canonical UUID text; None lets the storage make one of version `id_version`.
    """

    type: str
    data: bytes
    content_type: str = JSON_CONTENT_TYPE
    is_json: bool = True
    metadata: bytes | None = None
    id: str | None = None
    shape: str = ""
    id_version: int = 7


class RecordedEvent(NamedTuple):
    """An event as stored: a tuple, so that storage rows become events without copying."""

    id: str
    stream: str
    position: int
    type: str
    data: bytes
    content_type: str
    is_json: bool
    metadata: bytes | None
    created: str  # RFC 3339, UTC, microseconds: 2026-11-28T02:54:41.123456Z


@dataclass(slots=True)
class AppendResult:
    """Positions given to one append. `created` is False when an idempotent retry matched."""

    stream: str
    first_position: int
    last_position: int
    ids: tuple[str, ...]
    created: bool = True


@dataclass(frozen=True, slots=True)
class ReadResult:
    """A page of events and the stream's head when it was read."""

    head: int
    events: list[RecordedEvent]


@dataclass(slots=True)
class StreamSummary:
    """What the stream registry knows of one stream."""

    name: str
    head: int
    created: str
    updated: str
    event_types: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """One stream in detail."""

    name: str
    head: int
    created: str
    updated: str
    size_bytes: int
    event_types: dict[str, int]
