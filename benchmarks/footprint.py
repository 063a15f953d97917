"""The footprint scenario: many small streams, then the server's memory and file descriptors."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from .fill import post_all
from .scenarios import v1_batch
from .servers import Server, ServerGroup, eventor_server

STREAMS = 10_000
EVENTS_PER_STREAM = 10
CONCURRENCY = 64
MAX_OPEN_FILES = 256  # eventor's default, passed explicitly so the target's cap is known
MAX_RSS_MB = 200.0
FD_SLACK = 50
MB = 1024 * 1024


@dataclass(frozen=True)
class Footprint:
    """What the server held after the streams were written (and at most while writing them)."""

    streams: int
    events_per_stream: int
    fill_seconds: float
    rss_start_mb: float
    rss_mb: float
    fds_start: int
    fds: int
    peak_fds: int  # while creating, including the client's connections
    peak_stream_fds: int  # while creating: files under data/streams/, what the cap bounds
    max_open_files: int
    streams_seen: int  # the server's own count (eventor_streams)

    @property
    def max_fds(self) -> int:
        return self.max_open_files + FD_SLACK

    def problems(self) -> list[str]:
        if self.streams_seen != self.streams:
            return [f"the server counts {self.streams_seen} streams, not {self.streams}"]
        return []


class _FdSampler(threading.Thread):
    """Samples the server's open files every 50 ms, keeping the peaks."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.peak = 0
        self.peak_streams = 0
        self.done = threading.Event()

    def run(self) -> None:
        fd_dir = f"/proc/{self.server.pid}/fd"
        while not self.done.wait(0.05):
            targets = []
            for fd in os.listdir(fd_dir):
                with contextlib.suppress(OSError):  # closed meanwhile
                    targets.append(os.readlink(f"{fd_dir}/{fd}"))
            self.peak = max(self.peak, len(targets))
            streams = sum(1 for target in targets if "/streams/" in target)
            self.peak_streams = max(self.peak_streams, streams)


def measure(group: ServerGroup, workdir: Path, streams: int = STREAMS) -> Footprint:
    """Write `streams` streams of 10 events (one batch append each) and measure the server."""
    server = group.start(
        eventor_server("footprint", workdir, "--max-open-files", str(MAX_OPEN_FILES))
    )
    rss_start, fds_start = server.rss_bytes(), server.open_fds()
    body = v1_batch(EVENTS_PER_STREAM)
    sampler = _FdSampler(server)
    sampler.start()
    started = time.monotonic()
    requests = ((f"/v1/streams/many-{i:05d}/events", body) for i in range(streams))
    try:
        post_all(server.url, requests, CONCURRENCY)
    finally:
        sampler.done.set()
        sampler.join()
    fill_seconds = time.monotonic() - started
    fds = _settled_fds(server)
    rss = server.rss_bytes()
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
        peak_fds=sampler.peak,
        peak_stream_fds=sampler.peak_streams,
        max_open_files=MAX_OPEN_FILES,
        streams_seen=seen,
    )


def _settled_fds(server: Server, timeout: float = 10.0) -> int:
    """Open fds once the count holds still for 0.5 s (the client's sockets and evicted
    streams close asynchronously after the last answer)."""
    deadline = time.monotonic() + timeout
    count, since = server.open_fds(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = server.open_fds()
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= 0.5:
            break
    return count


def _streams_gauge(url: str) -> int:
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("eventor_streams "):
            return int(float(line.split()[1]))
    raise RuntimeError("/metrics has no eventor_streams gauge")
