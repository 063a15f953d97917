"""SubscriptionService: the rules of subscriptions (validation, create, update, pause, ...).

Configuration changes are written to storage before they answer; the delivery engine runs the
loops and group-commits their progress. Both APIs (v1 and the original) go through here.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from .clock import format_utc, parse_utc, utc_now
from .delivery import DeliveryEngine
from .delivery.loop import SubscriptionLoop
from .delivery.policy import ORIGINAL_DELAYS, ORIGINAL_MAX_ATTEMPTS, RetryPolicy
from .delivery.signing import SECRET_RULE, secret_key
from .durations import Durations
from .errors import InvalidRequest, SubscriptionExists, SubscriptionNotFound
from .names import check_stream_name, check_subscription_name
from .settings import Settings
from .storage.base import Storage
from .store import CONTROL_CHARACTER, MAX_TYPE_LENGTH, EventStore
from .types import (
    ACTIVE,
    MAX_POSITION,
    PARK,
    PAUSE,
    PAUSED,
    RETRYING,
    DeliveryAttempt,
    ParkedEvent,
    Subscription,
    SubscriptionConfig,
    SubscriptionRecord,
)

#: The reason recorded when a subscription is paused by request (the original's wording).
PAUSED_BY_REQUEST: Final = "API request"
BEGINNING: Final = "beginning"
END: Final = "end"
Start = int | str

MAX_URL_LENGTH = 2048
MAX_TIMEOUT = 300.0
MAX_BACKOFF = 86_400.0
MAX_BATCH = 1000
#: Attempts per event beyond this are what `max_attempts: 0` (for ever) is for; bounded so
#: that every client's integers hold it.
MAX_ATTEMPTS = 1_000_000
MAX_EVENT_TYPES = 100
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: Headers that frame the HTTP message itself: the client sets them, a subscription may not.
_FRAMING = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "keep-alive"}
)


class Unset:
    """Marks an option that was not given (e.g. `secret` on update keeps the current one)."""


UNSET: Final = Unset()


log = logging.getLogger("eventor.subscriptions")


@dataclass(slots=True)
class SubscriptionSpec:
    """A v1 PUT body, typed but not yet checked."""

    stream: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    start: Start | None = None
    event_types: list[str] | None = None
    secret: str | Unset | None = UNSET
    batch_size: int = 1
    timeout: float = 10.0
    max_attempts: int = 5
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    on_exhausted: str = PAUSE


def _capped_retry(next_attempt_at: str | None, config: SubscriptionConfig) -> str | None:
    """A retry time `config`'s backoff.max brings forward; None when it leaves it as it is."""
    if next_attempt_at is None:
        return None
    until = parse_utc(next_attempt_at)
    capped = RetryPolicy.for_config(config).latest(until)
    return format_utc(capped) if capped < until else None


def status_of(subscription: Subscription) -> str:
    """active | retrying | paused."""
    if subscription.status == PAUSED:
        return PAUSED
    return RETRYING if subscription.attempts > 0 else ACTIVE


class SubscriptionService:
    def __init__(self, store: EventStore, storage: Storage, settings: Settings) -> None:
        self._store = store
        self._storage = storage
        self.engine = DeliveryEngine(store, storage, settings)
        #: Changes (create, update, pause, resume, reset, delete) run one at a time. Each is
        #: short, and one lock for all names leaves no per-name lock to outlive its name.
        self._changes = asyncio.Lock()
        #: How many changes were made since start (the dashboard refreshes when it moves).
        self.changes = 0
        self.clock = time.time

    async def start(self) -> None:
        records = await self._storage.load_subscriptions(self.engine.log_size)
        for record in records:
            s = record.subscription
            head = self._storage.head(s.config.stream) or 0
            if s.position > head:
                # The registry's head may lag the file after a crash (it is re-checked in the
                # background): ask the stream's file before warning.
                found = await self._true_head(s.config.stream)
                head = head if found is None else found
            if s.position > head:
                # The stream lost events it had (its file removed or replaced by hand): new
                # events up to the position would pass unseen. Say so; a reset decides.
                log.warning(
                    "subscription %r stands at position %d, past the head (%d) of stream %r:"
                    " events appended up to %d will not be delivered unless it is reset",
                    s.name, s.position, head, s.config.stream, s.position,
                )  # fmt: skip
        await self.engine.start(records)

    async def stop(self) -> None:
        await self.engine.stop()

    async def _true_head(self, stream: str) -> int | None:
        """The head as the stream's own file says; None when the file cannot say (the
        background re-check logs why: one broken file must not keep the server from starting)."""
        try:
            return await self._store.durable_head(stream)
        except Exception:
            return None

    def hurry(self) -> None:
        """Stop now: abandon the requests in flight that `stop` would wait for."""
        self.engine.hurry()

    # -- reading -----------------------------------------------------------------------------

    def get(self, name: str) -> Subscription:
        return self._loop(name).subscription

    def all(self) -> list[Subscription]:
        return [self.engine.loops[n].subscription for n in sorted(self.engine.loops)]

    def names_for(self, stream: str) -> list[str]:
        """Names of the subscriptions to `stream`."""
        return sorted(
            name
            for name, loop in self.engine.loops.items()
            if loop.subscription.config.stream == stream
        )

    def head(self, stream: str) -> int:
        return self._store.head(stream) or 0

    def deliveries(self, name: str, limit: int) -> list[DeliveryAttempt]:
        """The latest attempts, newest first."""
        log = self._loop(name).log
        return [log[i] for i in range(len(log) - 1, max(len(log) - limit, 0) - 1, -1)]

    def parked(self, name: str, after: int = 0, limit: int | None = None) -> list[ParkedEvent]:
        """The parked events past position `after`, in position order, at most `limit`."""
        parked = self._loop(name).parked
        positions = sorted(p for p in parked if p > after) if after else sorted(parked)
        return [parked[p] for p in positions[:limit]]

    def parked_count(self, name: str) -> int:
        return len(self._loop(name).parked)

    def progress(self) -> list[tuple[str, str, str, int, int, int, int]]:
        """Each subscription's (name, stream, status, position, lag, failed attempts on its
        next event, parked events), for metrics."""
        out = []
        for loop in self.engine.loops.values():
            s = loop.subscription
            lag = max(self.head(s.config.stream) - s.position, 0)
            status = status_of(s)
            out.append(
                (s.name, s.config.stream, status, s.position, lag, s.attempts, len(loop.parked))
            )
        return out

    def stats(self) -> dict[str, int]:
        counts = {ACTIVE: 0, RETRYING: 0, PAUSED: 0}
        parked = 0
        for loop in self.engine.loops.values():
            counts[status_of(loop.subscription)] += 1
            parked += len(loop.parked)
        return {
            "subscriptions": len(self.engine.loops),
            **counts,
            **self.engine.stats(),
            "parked_events": parked,
            "changes": self.changes,
            "progress_saved": int(self.engine.progress_saved.is_set()),
        }

    @property
    def delivery_durations(self) -> Durations:
        """How long webhook attempts took, by outcome (for metrics)."""
        return self.engine.counters.durations

    # -- changes -----------------------------------------------------------------------------

    async def put(
        self, name: str, spec: SubscriptionSpec, *, exists: bool | None = None
    ) -> tuple[Subscription, bool]:
        """Create (True) or update (False) a subscription from a v1 PUT. `exists`: only update
        (SubscriptionNotFound when there is none), or only create (SubscriptionExists)."""
        check_subscription_name(name)
        async with self._changes:
            loop = self.engine.loops.get(name)
            if exists is not None and exists != (loop is not None):
                if exists:
                    raise SubscriptionNotFound(name)
                raise SubscriptionExists(f"subscription {name!r} already exists")
            if loop is None:
                config = self._config(spec, None)
                if spec.start == END:  # the file's head: the one in memory may lag after a crash
                    position = await self._store.durable_head(config.stream)
                else:
                    position = self._start_position(config.stream, spec.start)
                return await self._create(name, config, position), True
            s = loop.subscription
            config = self._config(spec, s.config)
            if config.stream != s.config.stream:
                raise InvalidRequest(
                    f"stream cannot change (it is {s.config.stream!r}): delete the subscription"
                    " and create it again, or use another name"
                )
            if config == s.config:
                return s, False  # nothing changed: deliveries carry on undisturbed
            # One request at a time: one in flight finishes under the old configuration, and
            # the loop takes up the new one after it; a failing event keeps its attempt count
            # and its retry time. Applied once stored, not before: a write that fails leaves
            # the old configuration in force.
            in_flight = self.engine.in_request(loop)
            if not in_flight:
                await self._stop(loop)
            changes: dict[str, Any] = {"config": config}
            if (capped := _capped_retry(s.next_attempt_at, config)) is not None:
                changes["next_attempt_at"] = capped  # the retry waits at most backoff.max
            if config.url != s.config.url:
                loop.url_changing_to = config.url
            try:
                saved = await self._save(loop, **changes)
            finally:
                loop.url_changing_to = None
                if not in_flight and s.status == ACTIVE:
                    self.engine.run(loop)
            if in_flight and not self.engine.in_request(loop):
                # That request ended while the change was written: the loop may be waiting to
                # retry under the old configuration. Start it again under the new one, its
                # retry time (set under the old backoff.max) capped by the new one.
                await self._stop(loop)
                if (capped := _capped_retry(s.next_attempt_at, config)) is not None:
                    s.next_attempt_at = capped
                    self.engine.mark_dirty(name)
                if s.status == ACTIVE:
                    self.engine.run(loop)
            return saved, False

    async def create_original(
        self, name: str, stream: str, url: str, headers: Mapping[str, str], position: int
    ) -> Subscription:
        """Create through the original API: its name rule and its retry schedule."""
        config = original_config(name, stream, url, headers)
        check_position(position)
        async with self._changes:
            if name in self.engine.loops:
                raise SubscriptionExists("Subscription with this name already exists")
            return await self._create(name, config, position)

    async def delete(self, name: str) -> bool:
        """Stop deliveries at once and forget the subscription; False when there was none."""
        async with self._changes:
            loop = self.engine.loops.get(name)
            if loop is None:
                return False
            await self._stop(loop)
            try:
                await self._storage.delete_subscription(name)
            except BaseException:
                if loop.subscription.status == ACTIVE:
                    self.engine.run(loop)
                raise
            await self.engine.remove(loop)
            self.changes += 1
        return True

    async def pause(self, name: str, reason: str = PAUSED_BY_REQUEST) -> Subscription:
        """Pause: no request starts after this (one in flight may still finish)."""
        async with self._changes:
            loop = self._loop(name)
            s = loop.subscription
            if s.status != PAUSED:
                self.engine.halt(loop, cancel_in_flight=False)
                s.status = PAUSED
                s.paused_reason = reason
                s.next_attempt_at = None
                return await self._save(loop)
            if s.paused_reason != reason:
                # Paused already (after max_attempts, say): the hand pause is what holds it now
                # (original-api.md: the reason recorded is "API request"); `last_error` keeps
                # the error.
                return await self._save(loop, paused_reason=reason)
            return await self._unchanged(loop)

    async def resume(self, name: str) -> Subscription:
        """Resume a paused subscription: the event it stopped on is tried again, afresh."""
        async with self._changes:
            loop = self._loop(name)
            s = loop.subscription
            if s.status == PAUSED:
                s.status = ACTIVE
                s.paused_reason = None
                s.attempts = 0
                s.next_attempt_at = None
                if not self.engine.carry_on(loop):
                    await self.engine.stopped(loop)
                    try:
                        return await self._save(loop)
                    finally:
                        self.engine.run(loop)
                return await self._save(loop)
            return await self._unchanged(loop)

    async def reset(self, name: str, position: int) -> Subscription:
        """Move the position: the next delivery is `position` + 1 (replays or skips)."""
        check_position(position)
        async with self._changes:
            loop = self._loop(name)
            s = loop.subscription
            in_flight = self.engine.in_request(loop)
            if in_flight:
                # One request at a time: the one in flight finishes (its outcome is logged but
                # moves nothing), and the loop goes on from `position` after it.
                loop.resets += 1
            else:
                await self._stop(loop)
            s.position = position
            s.attempts = 0
            s.next_attempt_at = None
            try:
                return await self._save(loop)
            finally:
                if not in_flight and s.status == ACTIVE:
                    self.engine.run(loop)

    async def replay_parked(self, name: str) -> int:
        """Have the loop re-deliver the parked events, in order; how many there are."""
        async with self._changes:
            loop = self._loop(name)
            if not loop.parked:
                return 0
            loop.replay_requested = True
            loop.replays_asked += 1
            self.changes += 1
            if loop.subscription.status == ACTIVE and not loop.in_request:
                await self._stop(loop)  # wakes it from waiting; it replays first
                self.engine.run(loop)
            return len(loop.parked)

    # -- helpers -----------------------------------------------------------------------------

    async def _create(self, name: str, config: SubscriptionConfig, position: int) -> Subscription:
        now = utc_now()
        s = Subscription(name, config, position, ACTIVE, created=now, updated=now)
        await self._storage.save_subscription(copy.copy(s))
        self.engine.run(self.engine.add(SubscriptionRecord(s)))
        self.changes += 1
        return s

    async def _stop(self, loop: SubscriptionLoop) -> None:
        self.engine.halt(loop, cancel_in_flight=True)
        await self.engine.stopped(loop)

    async def _save(self, loop: SubscriptionLoop, **changes: Any) -> Subscription:
        """Store the subscription as it now stands with `changes`, which are applied once
        stored; that snapshot is the answer to the change (delivery may move on meanwhile)."""
        s = loop.subscription
        before = {key: getattr(s, key) for key in changes}
        try:
            saved = await self.engine.store(loop, updated=utc_now(), **changes)
            for key, value in changes.items():
                # A request in flight may have ended meanwhile and moved it on: that stands.
                if getattr(s, key) == before[key]:
                    setattr(s, key, value)
            s.updated = saved.updated
            self.changes += 1
            return copy.copy(saved)
        finally:
            # The progress flusher writes the state again: should this write fail, the change
            # (already acted on) reaches the disk with a later flush; should delivery have
            # moved on during it, the flush keeps the disk from lagging behind.
            self.engine.mark_dirty(s.name)

    async def _unchanged(self, loop: SubscriptionLoop) -> Subscription:
        """The answer to a change that changes nothing: the subscription as it is, once it is
        on disk. A change whose write failed (a full disk: 507) stays in effect and is written
        by a later flush; asked again meanwhile, it is written now, and fails again until it
        can be: a 2xx always means stored."""
        if await self.engine.unsaved(loop):
            return await self._save(loop)
        return loop.subscription

    def _loop(self, name: str) -> SubscriptionLoop:
        loop = self.engine.loops.get(name)
        if loop is None:
            raise SubscriptionNotFound(name)
        return loop

    def _start_position(self, stream: str, start: Start | None) -> int:
        if start is None or start == BEGINNING:
            return 0
        if start == END:
            return self.head(stream)
        if isinstance(start, int) and not isinstance(start, bool) and 0 <= start <= MAX_POSITION:
            return start
        raise InvalidRequest(
            f'start must be "beginning", "end" or a position (an integer from 0 to'
            f" {MAX_POSITION}), got {start!r}"
        )

    def _config(
        self, spec: SubscriptionSpec, current: SubscriptionConfig | None
    ) -> SubscriptionConfig:
        """Check every option of `spec`; the configuration it describes."""
        check_stream_name(spec.stream)
        if spec.start is not None:
            self._start_position(spec.stream, spec.start)  # checked on update too, then ignored
        if not 1 <= spec.batch_size <= MAX_BATCH:
            raise InvalidRequest(
                f"batch_size must be between 1 and {MAX_BATCH}, got {spec.batch_size}"
            )
        if not (math.isfinite(spec.timeout) and 0 < spec.timeout <= MAX_TIMEOUT):
            raise InvalidRequest(
                f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds,"
                f" got {spec.timeout}"
            )
        if not 0 <= spec.max_attempts <= MAX_ATTEMPTS:
            raise InvalidRequest(
                f"max_attempts must be 0 (retry forever) or between 1 and {MAX_ATTEMPTS:,},"
                f" got {spec.max_attempts}"
            )
        initial, maximum = spec.backoff_initial, spec.backoff_max
        if not (math.isfinite(initial) and 0 < initial <= MAX_BACKOFF):
            raise InvalidRequest(
                f"backoff.initial must be more than 0 and at most {MAX_BACKOFF:g} seconds,"
                f" got {initial}"
            )
        if not (math.isfinite(maximum) and initial <= maximum <= MAX_BACKOFF):
            raise InvalidRequest(
                f"backoff.max must be at least backoff.initial ({initial:g}) and at most"
                f" {MAX_BACKOFF:g} seconds, got {maximum}"
            )
        if spec.on_exhausted not in (PAUSE, PARK):
            raise InvalidRequest(
                f'on_exhausted must be "pause" or "park", got {spec.on_exhausted!r}'
            )
        config = SubscriptionConfig(
            spec.stream,
            _check_url(spec.url),
            _check_headers(spec.headers),
            _check_event_types(spec.event_types),
            batch_size=spec.batch_size,
            timeout=spec.timeout,
            max_attempts=spec.max_attempts,
            backoff_initial=initial,
            backoff_max=maximum,
            on_exhausted=spec.on_exhausted,
        )
        self._set_secret(config, spec.secret, current)
        return config

    def _set_secret(
        self,
        config: SubscriptionConfig,
        secret: str | Unset | None,
        current: SubscriptionConfig | None,
    ) -> None:
        if current is not None:
            config.secret = current.secret
            config.previous_secret = current.previous_secret
            config.secret_replaced_at = current.secret_replaced_at
        if isinstance(secret, Unset) or (secret == config.secret and secret is not None):
            return
        if secret is not None and secret_key(secret) is None:
            raise InvalidRequest(
                f"secret must be {SECRET_RULE} (e.g. whsec_ plus 32 random bytes in base64)"
            )
        if secret is None:  # unsigned from now on: no old secret may sign again, nor later
            config.previous_secret = None
            config.secret_replaced_at = 0.0
        elif config.secret is not None:
            config.previous_secret = config.secret
            config.secret_replaced_at = self.clock()
        config.secret = secret


def original_config(
    name: str, stream: str, url: str, headers: Mapping[str, str]
) -> SubscriptionConfig:
    """The configuration of a subscription made through the original API (checked): its name
    rule and its retry schedule."""
    check_subscription_name(name, original=True)
    check_stream_name(stream)
    # The retry fields say what the original schedule does (4, 8, 16, 32 s; 5 attempts), so
    # that a status read back and PUT through v1 keeps much the same behaviour.
    return SubscriptionConfig(
        stream,
        _check_url(url),
        _check_headers(headers),
        max_attempts=ORIGINAL_MAX_ATTEMPTS,
        backoff_initial=ORIGINAL_DELAYS[0],
        backoff_max=ORIGINAL_DELAYS[-1],
        original=True,
    )


def _check_url(url: str) -> str:
    if not url:
        raise InvalidRequest("url is required: the http:// or https:// address to deliver to")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequest(f"url is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise InvalidRequest(f"url {url!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"url must be an http:// or https:// URL with a host, got {url!r}")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidRequest("url must not contain spaces or control characters")
    return url


def _check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    seen: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidRequest("headers must be an object of strings (header name -> value)")
        if _TOKEN.fullmatch(name) is None:
            raise InvalidRequest(f"header name {name!r} is not a valid HTTP header name")
        if name.lower() in _FRAMING:
            raise InvalidRequest(f"header {name!r} cannot be set: the HTTP client sets it")
        if _BAD_VALUE.search(value):
            raise InvalidRequest(f"header {name!r} has a control character in its value")
        other = seen.setdefault(name.lower(), name)
        if other != name:
            # header names are case-insensitive: one of the two would be dropped on the wire
            raise InvalidRequest(f"headers {other!r} and {name!r} are the same header: keep one")
    return dict(headers)


def _check_event_types(types: list[str] | None) -> list[str] | None:
    if types is None:
        return None
    if not types:
        raise InvalidRequest(
            "event_types is empty: list at least one type, or leave it out for all"
        )
    if len(types) > MAX_EVENT_TYPES:
        raise InvalidRequest(f"event_types lists {len(types)} types; at most {MAX_EVENT_TYPES}")
    for t in types:
        if not 1 <= len(t) <= MAX_TYPE_LENGTH or CONTROL_CHARACTER.search(t):
            raise InvalidRequest(
                f"each of event_types must be 1-{MAX_TYPE_LENGTH} characters, without control"
                " characters (as event types are)"
            )
    return list(dict.fromkeys(types))


def check_position(position: int) -> None:
    """Raise InvalidRequest unless a subscription may stand at `position`."""
    if not 0 <= position <= MAX_POSITION:
        raise InvalidRequest(f"position must be from 0 to {MAX_POSITION}, got {position}")
