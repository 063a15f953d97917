"""The storage interface every backend implements, and `open_storage`, which picks one.

A backend persists streams (append-only, gap-free positions from 1) and the stream registry with
its introspection counters. It knows nothing of HTTP or webhooks. After every durable append it
calls the append listener with the stream's new head, on the event loop, before the append
returns: that is the signal subscription loops and long polls wait on.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..types import (
    ANY,
    AppendResult,
    ExpectedVersion,
    NewEvent,
    ReadResult,
    RecordedEvent,
    StreamInfo,
    StreamSummary,
    Subscription,
    SubscriptionProgress,
    SubscriptionRecord,
)

if TYPE_CHECKING:
    from ..settings import Settings

AppendListener = Callable[[str, int], None]


class Storage(abc.ABC):
    """Durable streams and the registry of them."""

    _append_listener: AppendListener | None = None

    def set_append_listener(self, listener: AppendListener) -> None:
        """Call `listener(stream, head)` on the event loop after each durable append."""
        self._append_listener = listener

    def _appended(self, stream: str, head: int) -> None:
        if self._append_listener is not None:
            self._append_listener(stream, head)

    @abc.abstractmethod
    async def open(self) -> None:
        """Open (and, after a crash, recover) the storage. Called once before any other call."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush and close everything. Calls after this raise StorageUnavailable."""

    @property
    @abc.abstractmethod
    def is_open(self) -> bool:
        """True between a successful `open` and `close` while the storage can serve (a
        backend may say False sooner: its disk failed, its files went away)."""

    @property
    def unwritable(self) -> str | None:
        """Why appends cannot be stored now although the storage is open (its data directory
        made read-only, say); None when they can. For readiness checks."""
        return None

    @property
    def heads_exact(self) -> bool:
        """Whether `head` is every stream's head as its storage holds it (a backend that
        mirrors heads in memory may say False while it re-checks them after a crash)."""
        return True

    @abc.abstractmethod
    async def append(
        self, stream: str, events: Sequence[NewEvent], expected: ExpectedVersion = ANY
    ) -> AppendResult:
        """Append `events` atomically, creating the stream with its first event.

        Raises WrongExpectedVersion when the head is not `expected`, and IdempotencyConflict
        when some of the given ids already stand in the stream. When every id already stands
        there as the same consecutive events, nothing is written and the result has
        `created=False` with the original positions.
        """

    @abc.abstractmethod
    async def read(
        self,
        stream: str,
        start: int,
        limit: int,
        *,
        backward: bool = False,
        max_bytes: int | None = None,
    ) -> ReadResult:
        """Read up to `limit` events from position `start` on (or down, when `backward`).

        With `max_bytes`, the page may end early once the events' data passes that many bytes
        (it holds at least one event, and may overshoot by about `max_bytes`): memory for a
        page stays bounded whatever size the events are.
        Raises StreamNotFound for a stream that has no events. Never creates anything.
        """

    @abc.abstractmethod
    def head(self, stream: str) -> int | None:
        """The stream's last position as the registry knows it, None when there is no stream."""

    @abc.abstractmethod
    async def list_streams(
        self, *, prefix: str = "", after: str = "", limit: int | None = None
    ) -> list[StreamSummary]:
        """Streams in name order: those starting with `prefix`, named after `after`."""

    @abc.abstractmethod
    async def stream_info(self, stream: str) -> StreamInfo:
        """One stream in detail. Raises StreamNotFound."""

    @abc.abstractmethod
    async def variants(
        self,
        stream: str,
        *,
        after: tuple[str, int] | None = None,
        max_bytes: int | None = None,
    ) -> list[RecordedEvent]:
        """One example event for each distinct payload shape of each event type, ordered by
        type, then position (oldest first); only those after `after` (the type and position of
        the last one had). With `max_bytes`, the list ends once their data and metadata pass
        it (so it holds all that is left when they weigh less).

        Raises StreamNotFound.
        """

    # -- subscription state (persistence only: the storage knows nothing of webhooks) ---------

    @abc.abstractmethod
    async def load_subscriptions(self, attempt_log_size: int) -> list[SubscriptionRecord]:
        """Every subscription, with its newest `attempt_log_size` attempts and its parked events."""

    @abc.abstractmethod
    async def save_subscription(
        self,
        subscription: Subscription,
        pending: SubscriptionProgress | None = None,
        attempt_log_size: int = 0,
    ) -> None:
        """Create or replace one subscription's configuration and state, durably, at once.

        With `pending`: its new attempt-log rows (keeping the newest `attempt_log_size`) and
        parked events added and removed, in the same transaction (its own state is ignored:
        `subscription`'s is written). A state written without the events parked before it
        would, after a crash, have passed them unlisted."""

    @abc.abstractmethod
    async def delete_subscription(self, name: str) -> None:
        """Forget a subscription, its attempt log and its parked events (no error when unknown)."""

    @abc.abstractmethod
    async def save_progress(
        self, progress: Sequence[SubscriptionProgress], attempt_log_size: int
    ) -> None:
        """Write delivery progress of many subscriptions in one transaction (group commit).

        For each: its position, attempt counter, errors, times and status; new attempt-log rows
        (keeping the newest `attempt_log_size` per subscription); parked events added and
        removed. Subscriptions that no longer exist are skipped.
        """

    def stats(self) -> dict[str, int]:
        """Counters for metrics (e.g. commits, appended events, open stream files; `streams`
        and `events`, when given, count the streams and all their events as listed)."""
        return {}


def open_storage(location: str | Path, settings: Settings) -> Storage:
    """Pick the backend for `location`: a directory path (SQLite) or a postgresql:// URL."""
    text = str(location)
    if text.startswith(("postgres://", "postgresql://")):
        raise NotImplementedError("the PostgreSQL backend is not built yet")
    from .sqlite import SQLiteStorage

    path = Path(text.removeprefix("sqlite://"))
    return SQLiteStorage(path, settings)
