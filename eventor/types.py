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


#: The largest position anything may name: far past any real stream, and within SQLite's
#: 64-bit integers even after adding one.
MAX_POSITION = 2**62


@dataclass(slots=True)
class NewEvent:
    """An event on its way into a stream.

    `data` holds the bytes exactly as the client sent them. `is_json` says whether they parse as
    JSON (for a JSON content type), and `shape` names the payload's shape for introspection.
    `id` is the canonical UUID text; None lets the storage make one of version `id_version`.
    `created` (RFC 3339 UTC, microseconds) keeps an imported event's own time; None stamps the
    time of the append.
    """

    type: str
    data: bytes
    content_type: str = JSON_CONTENT_TYPE
    is_json: bool = True
    metadata: bytes | None = None
    id: str | None = None
    shape: str = ""
    id_version: int = 7
    created: str | None = None


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


# -- subscriptions ---------------------------------------------------------------------------

ACTIVE: Final = "active"
RETRYING: Final = "retrying"
PAUSED: Final = "paused"
PAUSE: Final = "pause"
PARK: Final = "park"


@dataclass(slots=True)
class SubscriptionConfig:
    """What a subscription was told: where and what to deliver, and how to retry.

    `secret` signs deliveries; after a change `previous_secret` keeps signing beside it until
    `secret_replaced_at` (Unix seconds) is a day old. `original` marks a subscription created
    through the original API: it keeps the original retry schedule.
    """

    stream: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    event_types: list[str] | None = None
    secret: str | None = None
    previous_secret: str | None = None
    secret_replaced_at: float = 0.0
    batch_size: int = 1
    timeout: float = 10.0
    max_attempts: int = 5
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    on_exhausted: str = PAUSE
    original: bool = False


@dataclass(slots=True)
class DeliveryAttempt:
    """One delivery attempt, as the attempt log keeps it."""

    position: int
    event_id: str
    attempt: int
    status_code: int | None
    error: str | None
    response_excerpt: str | None
    duration_ms: float
    at: str
    #: The request's last event (`position` is its first) and how many it carried: a batch
    #: skips the positions `event_types` passes over.
    last_position: int = 0
    events: int = 1


@dataclass(slots=True)
class ParkedEvent:
    """An event that exhausted its attempts under the "park" policy (a dead letter)."""

    position: int
    event_id: str
    error: str
    at: str


@dataclass(slots=True)
class Subscription:
    """A subscription's configuration and progress, as persisted in the catalog.

    `position` is the last position delivered or passed over; `attempts` counts the failed
    attempts on the event after it. `status` is ACTIVE or PAUSED (RETRYING is derived).
    """

    name: str
    config: SubscriptionConfig
    position: int = 0
    status: str = ACTIVE
    paused_reason: str | None = None
    attempts: int = 0
    last_error: str | None = None
    last_delivered_at: str | None = None
    created: str = ""
    updated: str = ""
    #: When the failed event is tried again (a retry is scheduled); None otherwise. Kept so
    #: that a restart waits out a backoff or a Retry-After rather than retrying at once.
    next_attempt_at: str | None = None


@dataclass(slots=True)
class SubscriptionRecord:
    """A subscription as loaded at start: state, newest attempts (oldest first), parked events."""

    subscription: Subscription
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    parked: list[ParkedEvent] = field(default_factory=list)


@dataclass(slots=True)
class SubscriptionProgress:
    """What delivery changed for one subscription since the last flush (group-committed).

    `attempts` are new attempt-log rows (oldest first); the log keeps the newest `keep` rows.
    """

    subscription: Subscription
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    parked: list[ParkedEvent] = field(default_factory=list)
    unparked: list[int] = field(default_factory=list)
