"""The footprint scenario: many small streams, then the server's memory and file descriptors."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from .fill import post_all
from .scenarios import v1_batch
from .servers import ServerGroup, eventor_server

STREAMS = 10_000
EVENTS_PER_STREAM = 10
MAX_OPEN_FILES = 256  # eventor's default, passed explicitly so the target's cap is known
MAX_RSS_MB = 200.0
FD_SLACK = 50
MB = 1024 * 1024


@dataclass(frozen=True)
class Footprint:
    """What the server held after the streams were written."""

    streams: int
    events_per_stream: int
    fill_seconds: float
    rss_start_mb: float
    rss_mb: float
    fds_start: int
    fds: int
    max_open_files: int
    streams_seen: int  # the server's own count (eventor_streams)

    @property
    def max_fds(self) -> int:
        return self.max_open_files + FD_SLACK

    def problems(self) -> list[str]:
        if self.streams_seen != self.streams:
            return [f"the server counts {self.streams_seen} streams, not {self.streams}"]
        return []


def measure(group: ServerGroup, workdir: Path, streams: int = STREAMS) -> Footprint:
    """Write `streams` streams of 10 events (one batch append each) and measure the server."""
    server = group.start(
        eventor_server("footprint", workdir, "--max-open-files", str(MAX_OPEN_FILES))
    )
    rss_start, fds_start = server.rss_bytes(), server.open_fds()
    body = v1_batch(EVENTS_PER_STREAM)
    started = time.monotonic()
    post_all(server.url, ((f"/v1/streams/many-{i:05d}/events", body) for i in range(streams)), 64)
    fill_seconds = time.monotonic() - started
    rss, fds = server.rss_bytes(), server.open_fds()
    seen = _streams_gauge(server.url)
    server.stop()
    return Footprint(
        streams=streams,
        events_per_stream=EVENTS_PER_STREAM,
        fill_seconds=fill_seconds,
        rss_start_mb=rss_start / MB,
        rss_mb=rss / MB,
        fds_start=fds_start,
        fds=fds,
        max_open_files=MAX_OPEN_FILES,
        streams_seen=seen,
    )


def _streams_gauge(url: str) -> int:
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("eventor_streams "):
            return int(float(line.split()[1]))
    raise RuntimeError("/metrics has no eventor_streams gauge")
