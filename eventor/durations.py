"""Durations: fixed-bucket histograms of how long things took, cheap to add to.

Requests and webhook attempts are timed on the event loop, one thread, so adding to a
histogram needs no lock: a `bisect` and three increments (well under a microsecond). The
metrics route turns them into Prometheus histograms at scrape time.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

#: Upper bounds in seconds: from a durable append (about a millisecond) to a long poll (60 s).
BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class _Series:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        # One count per bucket, then those past the last bound (+Inf).
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0


class Durations:
    """Histograms of durations in seconds, one per tuple of label values.

    The label values must come from a bounded set (route templates, methods, outcomes): each
    distinct tuple keeps a series for good.
    """

    def __init__(self) -> None:
        self._series: dict[tuple[str, ...], _Series] = {}

    def observe(self, labels: tuple[str, ...], seconds: float) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = _Series()
        series.counts[bisect_left(BUCKETS, seconds)] += 1
        series.total += seconds

    def series(self) -> Iterator[tuple[tuple[str, ...], list[tuple[str, int]], float]]:
        """Each series: its labels, its cumulative buckets (`le`, count; `+Inf` last) and the
        sum of its durations, as Prometheus histograms expose them."""
        for labels, series in sorted(self._series.items()):
            buckets = []
            running = 0
            for bound, count in zip((*BUCKETS, None), series.counts, strict=True):
                running += count
                buckets.append(("+Inf" if bound is None else repr(bound), running))
            yield labels, buckets, series.total
