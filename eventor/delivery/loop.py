"""One subscription's delivery loop, and the in-memory state the engine keeps for it.

Catch-up and live are one code path: read the next page after the position from storage; when
there is none, wait for the stream's appended signal. Nothing is queued in memory beyond the
page being delivered, and the loop holds one request in flight at a time.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..clock import format_utc, parse_utc, utc_now
from ..durations import Durations
from ..errors import StreamNotFound
from ..types import (
    PARK,
    PAUSED,
    DeliveryAttempt,
    ParkedEvent,
    RecordedEvent,
    Subscription,
    SubscriptionConfig,
    SubscriptionProgress,
)
from .policy import RetryPolicy
from .webhook import WebhookBuilder

if TYPE_CHECKING:
    from ..store import EventStore
    from .sender import Sender

log = logging.getLogger("eventor.delivery")

#: Events read from storage at a time (at least one batch).
READ_PAGE = 200
#: A batch stops growing past this much event data (events may be up to the data limit).
MAX_BATCH_BYTES = 8 * 1024 * 1024
#: A page read for one-event requests stops past this much: every subscription holds a page,
#: and a page of 8 MiB each cost 600 MB for 40 subscriptions of 1 MB events.
SINGLE_PAGE_BYTES = 1024 * 1024
#: After an unexpected error (e.g. the storage failing), wait this long before trying again.
ERROR_PAUSE = 1.0
#: A parked event is warned of at most once in this many seconds per subscription.
PARK_LOG_INTERVAL = 60.0


class Result(enum.Enum):
    DELIVERED = 1
    GAVE_UP = 2  # exhausted under the park policy (or a replay that failed again)
    STOPPED = 3  # paused or halted: the loop ends
    RECONFIGURED = 4  # the configuration or position changed meanwhile: start again from it


_SUCCESS = ("success",)
_FAILURE = ("failure",)


class Counters:
    """Engine-wide counters for metrics (since start)."""

    __slots__ = ("attempts", "delivered_events", "durations", "failed_attempts")

    def __init__(self) -> None:
        self.delivered_events = 0
        self.attempts = 0
        self.failed_attempts = 0
        #: Attempts' durations by outcome (`success`, `failure`).
        self.durations = Durations()


class SubscriptionLoop:
    """A subscription's live state: the persisted record, its attempt log, parked events, task."""

    def __init__(
        self,
        subscription: Subscription,
        attempts: list[DeliveryAttempt],
        parked: list[ParkedEvent],
        log_size: int,
        on_dirty: Callable[[str], None],
        progress_saved: asyncio.Event,
    ) -> None:
        self.subscription = subscription
        self.log: deque[DeliveryAttempt] = deque(attempts, maxlen=log_size)
        self.parked: dict[int, ParkedEvent] = {p.position: p for p in parked}
        self.task: asyncio.Task[None] | None = None
        self.halted = False
        self.in_request = False
        #: When the request in flight times out (time.monotonic()).
        self.request_deadline = 0.0
        self.replay_requested = False
        #: Counts replay requests: a pass clears `replay_requested` only if none came meanwhile.
        self.replays_asked = 0
        #: Counts `reset`s: one made while a request is in flight leaves that request alone and
        #: takes effect when it ends (its outcome no longer moves the position).
        self.resets = 0
        #: The URL an update being written moves the subscription to (None: no such update):
        #: a 410 from the old one then pauses nothing, as after the update.
        self.url_changing_to: str | None = None
        self._on_dirty = on_dirty
        #: Clear while progress cannot be stored (a full disk): no request starts meanwhile.
        self._progress_saved = progress_saved
        self._new_attempts: deque[DeliveryAttempt] = deque(maxlen=log_size)
        self._new_parked: dict[int, ParkedEvent] = {}
        self._unparked: set[int] = set()
        self._park_logged_at = -math.inf
        self._recovery_logged_at = -math.inf
        self._parks_unlogged = 0

    @property
    def name(self) -> str:
        return self.subscription.name

    # -- progress, group-committed by the engine -----------------------------------------------

    def take_progress(self) -> SubscriptionProgress:
        """A snapshot of what changed since the last call, to be written to storage."""
        progress = SubscriptionProgress(
            copy.copy(self.subscription),
            list(self._new_attempts),
            list(self._new_parked.values()),
            sorted(self._unparked),
        )
        self._new_attempts.clear()
        self._new_parked.clear()
        self._unparked.clear()
        return progress

    def restore_progress(self, progress: SubscriptionProgress) -> None:
        """Put back a snapshot whose write failed (newer changes win)."""
        # Older than those logged since: a full log drops them first, not the newest.
        self._new_attempts = deque(
            [*progress.attempts, *self._new_attempts], maxlen=self._new_attempts.maxlen
        )
        for parked in progress.parked:
            if parked.position not in self._unparked:
                self._new_parked.setdefault(parked.position, parked)
        self._unparked.update(p for p in progress.unparked if p not in self._new_parked)

    def _dirty(self) -> None:
        self._on_dirty(self.subscription.name)

    def _park(self, event: RecordedEvent, error: str) -> None:
        parked = ParkedEvent(event.position, event.id, error, utc_now())
        self.parked[event.position] = parked
        self._new_parked[event.position] = parked
        self._unparked.discard(event.position)

    def _log_park(self, events: int, message: str, *args: object) -> None:
        """A warning for `events` parked, at most one a minute per subscription (a receiver
        that is down parks every event); the others are logged at debug level and counted in
        the next warning, or in the one the next success gives (_warn_parks)."""
        now = time.monotonic()
        if now - self._park_logged_at < PARK_LOG_INTERVAL:
            self._parks_unlogged += events
            log.debug("subscription %r: " + message, self.name, *args)
            return
        self._park_logged_at = now
        self._warn_parks(message, *args)

    def _log_recovery(self, position: int) -> None:
        """A delivery succeeded after parks not yet told: said at most once a minute too (a
        receiver failing now and then would say it after every park); the count waits for
        the next warning meanwhile."""
        now = time.monotonic()
        if now - self._recovery_logged_at < PARK_LOG_INTERVAL:
            return
        self._recovery_logged_at = now
        self._warn_parks("delivers again, at %d", position)

    def _warn_parks(self, message: str, *args: object) -> None:
        more = f" ({self._parks_unlogged} more events parked since the last warning)"
        log.warning(
            "subscription %r: " + message + (more if self._parks_unlogged else ""),
            self.name,
            *args,
        )
        self._parks_unlogged = 0

    def _unpark(self, position: int) -> None:
        self.parked.pop(position, None)
        self._new_parked.pop(position, None)
        self._unparked.add(position)

    def pause(self, reason: str) -> None:
        s = self.subscription
        s.status = PAUSED
        s.paused_reason = reason
        s.next_attempt_at = None
        s.updated = utc_now()
        self._dirty()

    # -- the loop --------------------------------------------------------------------------------

    async def run(self, store: EventStore, sender: Sender, counters: Counters) -> None:
        """Deliver until paused or halted (or cancelled)."""
        while not self.halted:
            try:
                if not await self._run(store, sender, counters):
                    return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("subscription %r: delivery failed; retrying", self.name)
                await asyncio.sleep(ERROR_PAUSE)

    async def _run(self, store: EventStore, sender: Sender, counters: Counters) -> bool:
        """Deliver under the current configuration; True when it changed (run again)."""
        s = self.subscription
        config = s.config
        stream = config.stream
        batch_size = config.batch_size
        types = frozenset(config.event_types) if config.event_types else None
        builder = WebhookBuilder(s.name, config)
        policy = RetryPolicy.for_config(config)
        page = max(READ_PAGE, batch_size)
        page_bytes = MAX_BATCH_BYTES if batch_size > 1 else SINGLE_PAGE_BYTES
        while not self.halted:
            if s.config is not config:
                return True
            if self.replay_requested:
                stopped = await self._replay(store, sender, counters, builder, policy, config)
                if stopped is Result.STOPPED:
                    return False
                if stopped is Result.RECONFIGURED:
                    return True
                continue
            if store.heads_exact and (store.head(stream) or 0) <= s.position:
                # Nothing after the position, as memory knows without opening the stream's
                # file: thousands of caught-up subscriptions read nothing at a start or a stop.
                # (After a crash, until every head is re-checked, the file is read as before.)
                await store.appended.wait(stream, s.position)
                continue
            try:
                events = (
                    await store.read(stream, s.position + 1, page, max_bytes=page_bytes)
                ).events
            except StreamNotFound:
                events = []
            if not events:
                await store.appended.wait(stream, s.position)
                continue
            index, count = 0, len(events)
            first_batch = True
            while index < count:
                if self.halted or self.replay_requested or s.config is not config:
                    break
                batch: list[RecordedEvent] = []
                size = 0
                # An event still being retried from before (a restart, an update) goes alone:
                # the events after it that came since have not failed with it, and must not
                # be parked (or share its attempt count) with it.
                most = 1 if s.attempts else batch_size
                while index < count and len(batch) < most:
                    event = events[index]
                    if types is None or event.type in types:
                        size += len(event.data)
                        if batch and size > MAX_BATCH_BYTES:
                            break
                        batch.append(event)
                    elif not batch:
                        s.position = event.position  # passed over: filtered out
                        # (after an update of `event_types`, perhaps the event being retried:
                        # its attempts and retry time are not the next one's)
                        s.attempts = 0
                        s.next_attempt_at = None
                        self._dirty()
                    index += 1
                if not batch:
                    continue
                if index == count and len(batch) < batch_size and not first_batch:
                    # A short batch at the end of a page read before the previous request:
                    # more may have arrived since. Read again from this batch.
                    break
                first_batch = False
                result = await self._deliver(batch, config, builder, policy, sender, counters)
                if result is Result.STOPPED:
                    return False
                if result is Result.RECONFIGURED:
                    return True
                if s.position != batch[-1].position:
                    break  # not all of the batch is behind: read on from the position
        return False

    def _give_up(
        self, batch: list[RecordedEvent], config: SubscriptionConfig, error: str, failures: int
    ) -> Result:
        """`batch` failed as often as the policy allows: park it or pause on it."""
        s, first = self.subscription, batch[0]
        if config.on_exhausted == PARK:
            wanted = frozenset(config.event_types or ())
            # An update while the batch was in flight may have filtered some out: those are
            # passed over, as any other event of a type not wanted.
            parked = [e for e in batch if not wanted or e.type in wanted]
            for event in parked:
                self._park(event, error)
            if parked:
                self._log_park(
                    len(parked), "parked %d-%d after %d attempts: %s",
                    parked[0].position, parked[-1].position, failures, error,
                )  # fmt: skip
            s.position = batch[-1].position
            s.attempts = 0
            s.next_attempt_at = None
            self._dirty()
            return Result.GAVE_UP
        self.pause(error)
        log.warning(
            "subscription %r paused at %d after %d attempts: %s",
            s.name, first.position, failures, error,
        )  # fmt: skip
        return Result.STOPPED

    async def _replay(
        self,
        store: EventStore,
        sender: Sender,
        counters: Counters,
        builder: WebhookBuilder,
        policy: RetryPolicy,
        config: SubscriptionConfig,
    ) -> Result | None:
        """Re-deliver the parked events in order: None when done, else why it stopped
        (STOPPED: the loop ends; RECONFIGURED: it starts again, replaying first)."""
        stream = config.stream
        asked = self.replays_asked
        for position in sorted(self.parked):
            if self.halted:
                self.replay_requested = True
                return Result.STOPPED
            if self.subscription.config is not config:
                self.replay_requested = True
                return Result.RECONFIGURED
            try:
                events = (await store.read(stream, position, 1)).events
            except StreamNotFound:
                events = []
            if not events or events[0].position != position:
                self._unpark(position)  # nothing there any more to deliver
                self._dirty()
                continue
            result = await self._deliver(
                events, config, builder, policy, sender, counters, replay=True
            )
            if result is Result.STOPPED or result is Result.RECONFIGURED:
                self.replay_requested = position in self.parked
                return result
        # Cleared only now: a replay cut short (the task cancelled by a pause, say, while it
        # waited to retry) is taken up again when the loop runs next.
        self.replay_requested = self.replays_asked != asked
        return None

    async def _deliver(
        self,
        batch: list[RecordedEvent],
        config: SubscriptionConfig,
        builder: WebhookBuilder,
        policy: RetryPolicy,
        sender: Sender,
        counters: Counters,
        *,
        replay: bool = False,
    ) -> Result:
        """Deliver `batch` in one request, retrying per the policy (`config` made `builder` and
        `policy`; when the subscription's configuration changes, the loop starts again)."""
        s = self.subscription
        first = batch[0]
        failures = 0
        if not replay and s.attempts and policy.exhausted(s.attempts):
            # `max_attempts` lowered below the failures already made: no attempt more (the
            # batch is the one event that failed them: see `_run`).
            return self._give_up(batch, config, s.last_error or "failed", s.attempts)
        while True:
            if self.halted:
                return Result.STOPPED
            if not replay and s.attempts and s.next_attempt_at is not None:
                # A retry scheduled before a restart: its wait (a Retry-After, say) still holds.
                await policy.sleep(policy.remaining(parse_utc(s.next_attempt_at)))
                if self.halted:
                    return Result.STOPPED
            if not self._progress_saved.is_set():
                # Delivering on would widen what a crash repeats past the flush interval.
                await self._progress_saved.wait()
                if self.halted:
                    return Result.STOPPED
            if not replay:  # a replay's retries are its own: the next event's time stands
                s.next_attempt_at = None
            attempt = (failures if replay else s.attempts) + 1
            body, headers = builder.build(batch, attempt)
            at = utc_now()
            resets = self.resets
            self.in_request = True
            self.request_deadline = time.monotonic() + config.timeout
            try:
                outcome = await sender.send(config.url, body, headers, config.timeout)
            finally:
                self.in_request = False
            entry = DeliveryAttempt(
                first.position,
                first.id,
                attempt,
                outcome.status,
                outcome.error,
                outcome.excerpt,
                outcome.duration_ms,
                at,
                batch[-1].position,
                len(batch),
            )
            self.log.append(entry)
            self._new_attempts.append(entry)
            counters.attempts += 1
            counters.durations.observe(
                _SUCCESS if outcome.ok else _FAILURE, outcome.duration_ms / 1000
            )
            # Reset while this request was in flight: the position is the one asked for.
            reset_meanwhile = self.resets != resets and not replay
            if outcome.ok:
                if reset_meanwhile:
                    self._dirty()
                    return Result.RECONFIGURED
                if self._parks_unlogged:
                    self._log_recovery(first.position)
                if replay:
                    self._unpark(first.position)
                else:
                    s.position = batch[-1].position
                    s.attempts = 0
                s.last_error = None
                s.last_delivered_at = at
                counters.delivered_events += len(batch)
                self._dirty()
                return Result.DELIVERED
            counters.failed_attempts += 1
            error = outcome.error or "failed"
            s.last_error = error
            gone = outcome.status == 410 and not config.original and s.status != PAUSED
            if gone and s.config.url == config.url and self.url_changing_to in (None, config.url):
                # api-v1.md: 410 pauses at once (a reset or an update meanwhile changes nothing
                # to that, unless it moved the subscription to another URL). The original
                # retried it like any failure.
                if replay:
                    self._park(first, error)  # still parked, with the error of this attempt
                elif not reset_meanwhile:
                    s.attempts += 1  # the status says how often the event failed, as always
                self.pause(f"{error}: the receiver asked to stop")
                log.warning(
                    "subscription %r paused at %d: %s", s.name, first.position, s.paused_reason
                )
                return Result.STOPPED
            if reset_meanwhile:
                self._dirty()
                return Result.RECONFIGURED
            reconfigured = s.config is not config
            if reconfigured:
                # Updated while this attempt was in flight: the attempt counts, and what comes
                # next (a retry, a pause, parking) is as configured now.
                config = s.config
                policy = RetryPolicy.for_config(config)
            if replay:
                failures = attempt
            else:
                # Counted on from the count now, not set to `attempt`: a resume while this
                # attempt was in flight started the count afresh.
                s.attempts += 1
                failures = s.attempts
            self._dirty()
            log.debug(
                "subscription %r: attempt %d at %d failed: %s",
                s.name,
                attempt,
                first.position,
                error,
            )
            if s.status == PAUSED:  # paused by hand while this attempt was in flight
                return Result.STOPPED  # the reason stays "API request"; resume tries again
            if policy.exhausted(failures):
                if replay:
                    self._park(first, error)
                    self._log_park(1, "parked %d again: %s", first.position, error)
                    return Result.GAVE_UP
                return self._give_up(batch, config, error, failures)
            delay = policy.delay(failures, outcome.retry_after)
            if not replay:
                # Stored before anything can end the loop: a restart, an update or a replay
                # of parked events (which goes first) waits out the rest of it after.
                s.next_attempt_at = format_utc(time.time() + delay)
                self._dirty()
                if self.replay_requested:
                    return Result.RECONFIGURED
            if reconfigured:
                return Result.RECONFIGURED
            if self.halted:
                return Result.STOPPED
            await policy.sleep(delay)
