"""Operations routes: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from .. import __version__
from ..durations import Durations
from ..storage.base import Storage
from .problems import HTTPProblem
from .rendering import json_response
from .routing import Doc, Media, Route
from .schemas import HealthOut, Problem, ReadyOut

MetricsSource = Callable[[], Iterator[CounterMetricFamily | GaugeMetricFamily]]


class _StorageCollector(Collector):
    """Reads the storage's counters at scrape time: nothing is counted on the hot path."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._storage.stats()
        yield _info()
        yield CounterMetricFamily(
            "eventor_appended_events",
            "Events appended since start",
            stats.get("appended_events", 0),
        )
        yield CounterMetricFamily(
            "eventor_commits",
            "Storage transactions that appended events (group commits) since start",
            stats.get("commits", 0),
        )
        yield CounterMetricFamily(
            "eventor_disk_flushes",
            "File system flushes (syncfs) that made rounds of commits durable, since start",
            stats.get("flushes", 0),
        )
        yield CounterMetricFamily(
            "eventor_disk_flush_seconds",
            "Time spent in those flushes, since start",
            stats.get("flush_microseconds", 0) / 1e6,
        )
        yield GaugeMetricFamily("eventor_streams", "Streams", stats.get("streams", 0))
        yield GaugeMetricFamily(
            "eventor_open_streams", "Stream databases open now", stats.get("open_streams", 0)
        )


class SubscriptionCollector(Collector):
    """Reads the delivery counters (SubscriptionService.stats) and each subscription's
    progress (SubscriptionService.progress) at scrape time."""

    def __init__(
        self,
        stats: Callable[[], dict[str, int]],
        progress: Callable[[], list[tuple[str, str, str, int, int, int, int]]],
        durations: Durations | None = None,
    ) -> None:
        self._stats = stats
        self._progress = progress
        self._durations = durations

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        stats = self._stats()
        if self._durations is not None:
            yield histogram(
                "eventor_delivery_duration_seconds",
                "Webhook delivery attempts: from sending the request to its answer (or failure),"
                " by outcome (success: a 2xx)",
                ["outcome"],
                self._durations,
            )
        yield CounterMetricFamily(
            "eventor_delivered_events",
            "Events delivered to subscriptions (2xx) since start",
            stats.get("delivered_events", 0),
        )
        yield CounterMetricFamily(
            "eventor_delivery_attempts",
            "Webhook delivery attempts since start",
            stats.get("attempts", 0),
        )
        yield CounterMetricFamily(
            "eventor_delivery_failed_attempts",
            "Webhook delivery attempts that failed since start",
            stats.get("failed_attempts", 0),
        )
        by_status = GaugeMetricFamily(
            "eventor_subscriptions", "Subscriptions by status", labels=["status"]
        )
        for status in ("active", "retrying", "paused"):
            by_status.add_metric([status], stats.get(status, 0))
        yield by_status
        yield GaugeMetricFamily(
            "eventor_parked_events", "Events parked now", stats.get("parked_events", 0)
        )
        yield GaugeMetricFamily(
            "eventor_subscription_progress_saved",
            "1 while delivered positions can be written; 0 (a full disk, say): deliveries wait",
            stats.get("progress_saved", 1),
        )
        labels = ["subscription", "stream"]
        position = GaugeMetricFamily(
            "eventor_subscription_position", "Last position delivered", labels=labels
        )
        lag = GaugeMetricFamily(
            "eventor_subscription_lag", "Events appended but not yet delivered", labels=labels
        )
        failing = GaugeMetricFamily(
            "eventor_subscription_failed_attempts",
            "Failed attempts on the next event (0 while deliveries succeed)",
            labels=labels,
        )
        paused = GaugeMetricFamily(
            "eventor_subscription_paused", "1 while the subscription is paused", labels=labels
        )
        parked = GaugeMetricFamily(
            "eventor_subscription_parked_events",
            "Events parked now (to replay: POST .../parked/replay)",
            labels=labels,
        )
        for name, stream, status, at, behind, attempts, held in self._progress():
            position.add_metric([name, stream], at)
            lag.add_metric([name, stream], behind)
            failing.add_metric([name, stream], attempts)
            paused.add_metric([name, stream], int(status == "paused"))
            parked.add_metric([name, stream], held)
        yield from (position, lag, failing, paused, parked)


class ErrorAnswers(Collector):
    """Counts the error answers the app renders, by status: a 5xx (a storage failure, say) is
    one to alert on, a run of 4xx a client to look at. Answers that succeed count nothing, so
    the hot path pays nothing."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()

    def count(self, status: int) -> None:
        self.counts[status] += 1

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "eventor_error_answers",
            "Answers with a 4xx or 5xx status since start, by status (also those given before"
            " any route: a request HTTP cannot frame, a head too large, one that stalled)",
            labels=["status"],
        )
        for status, count in sorted(self.counts.items()):
            family.add_metric([str(status)], count)
        yield family


class RequestDurations(Collector):
    """The time each request took, by method and route (its template, `none` when no route
    matched): from its head being read to its answer handed to the connection. Long polls and
    live streams count their waiting too."""

    def __init__(self, durations: Durations) -> None:
        self._durations = durations

    def collect(self) -> Iterator[HistogramMetricFamily]:
        yield histogram(
            "eventor_http_request_duration_seconds",
            "Requests, from their head read to their answer handed to the connection (long"
            " polls and live streams include their wait), by method and route",
            ["method", "route"],
            self._durations,
        )


def histogram(
    name: str, documentation: str, labels: list[str], durations: Durations
) -> HistogramMetricFamily:
    """A Prometheus histogram family of `durations`."""
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for values, buckets, total in durations.series():
        family.add_metric(list(values), buckets, total)
    return family


def _info() -> GaugeMetricFamily:
    family = GaugeMetricFamily("eventor_info", "Eventor version", labels=["version"])
    family.add_metric([__version__], 1)
    return family


class OpsRoutes:
    def __init__(self, storage: Storage, extra_collectors: list[Collector] | None = None) -> None:
        self._storage = storage
        self.registry = CollectorRegistry(auto_describe=True)
        # process_* (memory, CPU, open file descriptors against their limit) and python_info,
        # as every Python exporter has them.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.registry.register(_StorageCollector(storage))
        for collector in extra_collectors or []:
            self.registry.register(collector)

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/health", self.health, doc=HEALTH_DOC),
            Route("GET", "/ready", self.ready, doc=READY_DOC),
            Route("GET", "/metrics", self.metrics, doc=METRICS_DOC),
        ]

    async def health(self, request: Request) -> Response:
        return json_response({"status": "ok", "version": __version__})

    async def ready(self, request: Request) -> Response:
        if not self._storage.is_open:
            raise HTTPProblem(
                503,
                "the storage is not open, its disk failed, or its data directory is gone",
                code="not-ready",
            )
        unwritable = self._storage.unwritable
        if unwritable is not None:
            raise HTTPProblem(503, unwritable, code="not-ready")
        return json_response({"status": "ready"})

    async def metrics(self, request: Request) -> Response:
        # Collected here, on the event loop, whose state the collectors read; written out as
        # text on a thread: with 5,000 subscriptions (25,000 series) that takes 150 ms, which
        # held every other request.
        collected = CollectorRegistry(auto_describe=False)
        collected.register(_Collected(list(self.registry.collect())))
        body = await asyncio.to_thread(generate_latest, collected)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


class _Collected(Collector):
    """Metric families collected already."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


# -- the OpenAPI document --------------------------------------------------------------------

HEALTH_DOC = Doc(
    "Liveness",
    "`200` while the process serves requests.",
    tag="operations",
    responses={200: (HealthOut, "alive; `status` is `ok`")},
)
READY_DOC = Doc(
    "Readiness",
    "`200` once the storage is open and until shutdown begins; `503` otherwise.",
    tag="operations",
    responses={
        200: (ReadyOut, "ready; `status` is `ready`"),
        503: (
            Problem,
            "not ready: the storage is not open (stopping: a stop also closes the listening"
            " socket at once; while starting, the server answers nothing yet), its disk failed"
            " a flush (restart needed), its data directory was moved or removed, or it cannot"
            " be written (permissions changed, a read-only file system)",
        ),
    },
)
METRICS_DOC = Doc(
    "Prometheus metrics",
    "Counters, gauges and histograms in the Prometheus text exposition format.",
    tag="operations",
    responses={200: (Media("text/plain", str), "the metrics")},
)
