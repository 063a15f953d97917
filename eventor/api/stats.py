"""The dashboard's numbers: counts and counters (`GET /v1/stats`), pushed every second over SSE
(`GET /v1/stats/live`), with appends/s and deliveries/s over the last five minutes.

A sampler reads the counters once a second on the event loop; nothing is counted on the hot
paths. Rates are kept server-side so a dashboard opened now still sees the last minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import __version__
from ..clock import format_utc
from ..storage.base import Storage
from ..store import EventStore
from .rendering import encoder, event_stream, json_response
from .routing import Doc, Media, Route

SubscriptionStats = Callable[[], dict[str, int]]

INTERVAL = 1.0
KEEP = 300  # samples: five minutes at one a second


class StreamCounts(msgspec.Struct):
    total: int
    events: int
    open: int


class SubscriptionCounts(msgspec.Struct):
    total: int
    active: int
    retrying: int
    paused: int
    parked_events: int


class Counters(msgspec.Struct):
    """Monotonic since the server started. Delivery counters are null without subscriptions."""

    appended_events: int
    commits: int
    delivered_events: int | None
    attempts: int | None
    failed_attempts: int | None
    #: Subscriptions created, updated, paused, resumed, reset, deleted or replayed by request.
    subscription_changes: int | None


class Rates(msgspec.Struct):
    """Per-second rates, oldest first; the last value is for the second ending at `end`."""

    interval: float
    end: str | None
    appends_per_second: list[float]
    deliveries_per_second: list[float]


class StatsOut(msgspec.Struct):
    version: str
    time: str
    started: str
    streams: StreamCounts
    subscriptions: SubscriptionCounts | None
    counters: Counters
    rates: Rates


@dataclass(frozen=True, slots=True)
class _Sample:
    wall: float
    appends: float
    deliveries: float


class StatsSampler:
    """Samples the append and delivery counters every `interval` seconds, keeping `keep`."""

    def __init__(
        self,
        storage: Storage,
        subscription_stats: SubscriptionStats | None,
        *,
        interval: float = INTERVAL,
        keep: int = KEEP,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        self._storage = storage
        self.subscription_stats = subscription_stats
        self.interval = interval
        self._wall = wall_clock or time.time
        self.started = self._wall()
        self.samples: deque[_Sample] = deque(maxlen=keep)
        #: Samples taken since start (the deque keeps the last `keep`).
        self.count = 0
        self._task: asyncio.Task[None] | None = None
        self._tick: asyncio.Future[None] | None = None
        self._interrupted = False

    def now(self) -> float:
        return self._wall()

    def counters(self) -> tuple[dict[str, int], dict[str, int] | None]:
        subscriptions = self.subscription_stats() if self.subscription_stats else None
        return self._storage.stats(), subscriptions

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="stats")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def interrupt(self) -> None:
        """The server stops: end every wait now (live dashboards close at once, not after
        the next sample)."""
        self._interrupted = True
        if self._tick is not None and not self._tick.done():
            self._tick.set_result(None)
        self._tick = None

    async def wait_beyond(self, count: int) -> None:
        """Return once more than `count` samples were taken (or at once once interrupted)."""
        while self.count <= count and not self._interrupted:
            if self._tick is None:
                self._tick = asyncio.get_running_loop().create_future()
            # Shielded: the tick is shared, a waiter that gives up must not cancel it.
            await asyncio.shield(self._tick)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_at = loop.time()
        last = self._totals()
        due = last_at
        while True:
            due += self.interval
            now = loop.time()
            if due < now:  # the loop stalled: skip the missed ticks rather than burst
                due = now + self.interval
            await asyncio.sleep(due - now)
            at = loop.time()
            totals = self._totals()
            elapsed = max(at - last_at, 1e-6)
            self.samples.append(
                _Sample(
                    self._wall(),
                    round((totals[0] - last[0]) / elapsed, 2),
                    round((totals[1] - last[1]) / elapsed, 2),
                )
            )
            self.count += 1
            last, last_at = totals, at
            tick, self._tick = self._tick, None
            if tick is not None and not tick.done():
                tick.set_result(None)

    def _totals(self) -> tuple[int, int]:
        storage, subscriptions = self.counters()
        delivered = subscriptions.get("delivered_events", 0) if subscriptions else 0
        return storage.get("appended_events", 0), delivered


class StatsRoutes:
    def __init__(self, store: EventStore, sampler: StatsSampler) -> None:
        self._store = store
        self.sampler = sampler
        # The one-sample message of the latest tick, shared by every open dashboard.
        self._tick_message: tuple[int, bytes] | None = None

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/v1/stats", self.stats, doc=_STATS_DOC),
            Route("GET", "/v1/stats/live", self.live, doc=_LIVE_DOC),
        ]

    async def snapshot(self, history: int) -> StatsOut:
        """The counts now, with the last `history` samples of the rates."""
        storage, subs = self.sampler.counters()
        # Taken before the await below: the caller counted the samples it sends from
        # `sampler.count` as it is now, and a tick during the await would shift them.
        samples = list(self.sampler.samples)[-history:] if history else []
        if "streams" in storage and "events" in storage:
            # Kept as they change: listing every stream each second cost 50 ms at 100,000.
            stream_count, events = storage["streams"], storage["events"]
        else:
            streams = await self._store.list_streams()
            stream_count, events = len(streams), sum(s.head for s in streams)
        subscriptions = None
        if subs is not None:
            subscriptions = SubscriptionCounts(
                subs.get("subscriptions", 0),
                subs.get("active", 0),
                subs.get("retrying", 0),
                subs.get("paused", 0),
                subs.get("parked_events", 0),
            )
        return StatsOut(
            version=__version__,
            time=format_utc(self.sampler.now()),
            started=format_utc(self.sampler.started),
            streams=StreamCounts(stream_count, events, storage.get("open_streams", 0)),
            subscriptions=subscriptions,
            counters=Counters(
                storage.get("appended_events", 0),
                storage.get("commits", 0),
                None if subs is None else subs.get("delivered_events", 0),
                None if subs is None else subs.get("attempts", 0),
                None if subs is None else subs.get("failed_attempts", 0),
                None if subs is None else subs.get("changes", 0),
            ),
            rates=Rates(
                self.sampler.interval,
                format_utc(samples[-1].wall) if samples else None,
                [s.appends for s in samples],
                [s.deliveries for s in samples],
            ),
        )

    async def stats(self, request: Request) -> Response:
        return json_response(await self.snapshot(KEEP))

    async def live(self, request: Request) -> Response:
        return event_stream(request, self._sse())

    async def _sse(self) -> AsyncIterator[bytes]:
        sampler = self.sampler
        yield b"retry: 1000\n\n"
        sent = -KEEP  # the first message carries the whole history
        while not self._store.stopping:
            taken = sampler.count
            cached = self._tick_message
            if taken - sent == 1 and cached is not None and cached[0] == taken:
                message = cached[1]
            else:
                body = encoder.encode(await self.snapshot(min(taken - sent, KEEP)))
                message = b"id: %d\nevent: stats\ndata: %s\n\n" % (taken, body)
                if taken - sent == 1:
                    self._tick_message = (taken, message)
            sent = taken
            yield message
            # Without a sample (the sampler is not running) the counts still go out.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(sampler.interval * 2):
                    await sampler.wait_beyond(taken)


_STATS_DOC = Doc(
    "Counts, counters and rates, for the dashboard",
    "Streams and their events, subscriptions by status, monotonic counters since the server "
    "started, and appends/s and deliveries/s, one sample a second over the last five minutes "
    "(`rates`, oldest first). `subscriptions` and the delivery counters are null when the "
    "server runs no subscription engine.",
    tag="operations",
    responses={200: (StatsOut, "the numbers now")},
)
_LIVE_DOC = Doc(
    "The same numbers, pushed every second (Server-Sent Events)",
    "`text/event-stream`: one `stats` message a second, its data shaped as `GET /v1/stats`. "
    "The first message carries the rates of the last five minutes; each later one only the "
    "sample taken since the message before (append it to the series). A reconnect starts "
    "over with the full history.",
    tag="operations",
    responses={200: (Media("text/event-stream", StatsOut), "an endless stream of `stats`")},
)
