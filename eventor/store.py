"""EventStore: the rules of appending and reading, over any storage, plus the appended signal."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .appended import AppendedSignal
from .errors import InvalidRequest, LimitExceeded, StreamNotFound
from .names import check_stream_name
from .payloads import NOT_IN_HEADER
from .settings import Limits
from .storage.base import Storage
from .types import (
    ANY,
    JSON_CONTENT_TYPE,
    MAX_POSITION,
    AppendResult,
    ExpectedVersion,
    NewEvent,
    ReadResult,
    RecordedEvent,
    StreamInfo,
    StreamSummary,
)

MAX_TYPE_LENGTH = 200
#: A content type travels as a header on every delivery: it must fit in one.
MAX_CONTENT_TYPE_LENGTH = 255
#: What an event type may not hold.
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


class EventStore:
    """Appends and reads streams. The HTTP layer and the delivery engine both go through it."""

    def __init__(self, storage: Storage, limits: Limits) -> None:
        self.storage = storage
        self.limits = limits
        self.appended = AppendedSignal()
        self.stopping = False
        storage.set_append_listener(self.appended.notify)

    def begin_shutdown(self) -> None:
        """The server is stopping: end long polls and live streams instead of waiting."""
        self.stopping = True
        self.appended.wake_all()

    async def append(
        self, stream: str, events: Sequence[NewEvent], expected: ExpectedVersion = ANY
    ) -> AppendResult:
        """Append `events` atomically; durable (per the durability setting) when it returns."""
        check_stream_name(stream)
        self.check_events(events)
        return await self.storage.append(stream, events, expected)

    def check_events(self, events: Sequence[NewEvent]) -> None:
        """Raise unless `events` may be appended: non-empty, within limits, ids unique."""
        if not events:
            raise InvalidRequest("no events to append: send at least one")
        limits = self.limits
        if len(events) > limits.max_append_events:
            raise LimitExceeded(
                f"{len(events)} events in one append; at most {limits.max_append_events} allowed"
            )
        ids: set[str] = set()
        for index, event in enumerate(events):
            if not 1 <= len(event.type) <= MAX_TYPE_LENGTH or CONTROL_CHARACTER.search(event.type):
                raise InvalidRequest(
                    f"event {index}: type must be 1-{MAX_TYPE_LENGTH} characters,"
                    " without control characters"
                )
            content_type = event.content_type
            if content_type != JSON_CONTENT_TYPE and (  # the usual one needs no look
                not content_type
                or len(content_type) > MAX_CONTENT_TYPE_LENGTH
                or NOT_IN_HEADER.search(content_type)
            ):
                raise InvalidRequest(
                    f"event {index}: the content type must be 1-{MAX_CONTENT_TYPE_LENGTH}"
                    " characters, without control characters other than tabs"
                )
            if len(event.data) > limits.max_event_bytes:
                raise LimitExceeded(
                    f"event {index}: data is {len(event.data)} bytes;"
                    f" at most {limits.max_event_bytes} allowed"
                )
            if event.id is not None:
                if event.id in ids:
                    raise InvalidRequest(f"event {index}: id {event.id} appears twice")
                ids.add(event.id)

    async def read(
        self,
        stream: str,
        start: int,
        limit: int,
        *,
        backward: bool = False,
        max_bytes: int | None = None,
    ) -> ReadResult:
        """A page of events (ending early past `max_bytes` of data: see Storage.read).
        Raises StreamNotFound for a stream with no events."""
        check_stream_name(stream)
        return await self.storage.read(stream, start, limit, backward=backward, max_bytes=max_bytes)

    async def read_or_wait(
        self, stream: str, start: int, limit: int, wait: float, *, max_bytes: int | None = None
    ) -> ReadResult:
        """Read forward from `start`; when nothing is there yet, wait up to `wait` seconds.

        An unknown stream is waited for too; if it never appears, the result is empty (head 0).
        """
        check_stream_name(stream)
        try:
            result = await self.storage.read(stream, start, limit, max_bytes=max_bytes)
        except StreamNotFound:
            result = ReadResult(0, [])
        if result.events or wait <= 0 or self.stopping:
            return result
        # from=0 reads from position 1, so it waits for the first event, as from=1 does.
        await self.appended.wait(stream, max(start, 1) - 1, wait)
        if self.stopping:
            return result
        try:  # events arrived, or the time is up: either way, answer with the head as it is now
            return await self.storage.read(stream, start, limit, max_bytes=max_bytes)
        except StreamNotFound:
            return result

    def head(self, stream: str) -> int | None:
        """The head as kept in memory: after a crash it may lag the stream's file for a while
        (until the background re-check reaches it). Where that matters, see `durable_head`."""
        return self.storage.head(stream)

    @property
    def heads_exact(self) -> bool:
        """Whether `head` holds every stream's head exactly (False for a while after a crash)."""
        return self.storage.heads_exact

    async def durable_head(self, stream: str) -> int:
        """The head as the stream's own storage says (0 for no stream): where a stale head would
        replay events as new (a live stream from the end, a subscription from the end)."""
        check_stream_name(stream)
        try:
            return (await self.storage.read(stream, MAX_POSITION, 1)).head
        except StreamNotFound:
            return 0

    async def list_streams(
        self, *, prefix: str = "", after: str = "", limit: int | None = None
    ) -> list[StreamSummary]:
        return await self.storage.list_streams(prefix=prefix, after=after, limit=limit)

    async def stream_info(self, stream: str) -> StreamInfo:
        check_stream_name(stream)
        return await self.storage.stream_info(stream)

    async def variants(
        self,
        stream: str,
        *,
        after: tuple[str, int] | None = None,
        max_bytes: int | None = None,
    ) -> list[RecordedEvent]:
        check_stream_name(stream)
        return await self.storage.variants(stream, after=after, max_bytes=max_bytes)
