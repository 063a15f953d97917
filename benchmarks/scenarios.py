"""The scenarios: what each one sends, to which server, and what it must reach.

A `Bench` is a scenario made ready: its own server (and data dir), its load written for wrk, its
data filled in. `Bench.run()` measures once; the harness calls it round by round.
"""

from __future__ import annotations

import json
import random
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from .fill import post_all
from .servers import Server, ServerGroup, ceiling_server, eventor_server
from .wrk import Load, WrkResult, run_wrk

Kind = Literal["ceiling", "append", "read"]
Route = Literal["v1", "original"]

EVENT_TYPE = "OrderPlaced"
#: The event's data: a plausible order, ~170 bytes of JSON.
DATA = {
    "order_id": "ord-2026-000123",
    "customer_id": "cus-4711",
    "currency": "EUR",
    "total_cents": 12999,
    "lines": [{"sku": "SKU-1001", "qty": 2}, {"sku": "SKU-2002", "qty": 1}],
    "channel": "web",
}
JSON_TYPE = "application/json"
READ_STREAM_EVENTS = 100_000
READ_PAGE = 1000
READ_PAGES = 2000  # distinct random pages wrk picks from


def compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


#: Body of the original route: the data itself (~170 bytes).
ORIGINAL_BODY = compact(DATA)
#: Body of a one-event v1 append (~200 bytes); the ceiling is sent the same bytes.
V1_BODY = compact({"type": EVENT_TYPE, "data": DATA})


def v1_batch(count: int) -> bytes:
    return compact([{"type": EVENT_TYPE, "data": DATA}] * count)


@dataclass(frozen=True)
class Scenario:
    """One line of the results table, with its targets (None: no target)."""

    name: str
    title: str
    kind: Kind
    connections: int
    route: Route = "v1"
    streams: int = 1
    batch: int = 1  # events per request
    min_rate: float | None = None  # events/s
    min_ceiling_ratio: float | None = None
    max_p99_ms: float | None = None

    @property
    def events_per_request(self) -> int:
        return READ_PAGE if self.kind == "read" else self.batch


def _append(name: str, title: str, connections: int, **kw: object) -> Scenario:
    return Scenario(name, title, "append", connections, **kw)  # type: ignore[arg-type]


SCENARIOS: list[Scenario] = [
    Scenario("ceiling", "raw ASGI ceiling (reads body, 200), c=64", "ceiling", 64),
    _append("v1-c64", "v1 append, 1 stream, c=64", 64, min_rate=15_000, min_ceiling_ratio=0.5),
    _append(
        "orig-c64",
        "original append, 1 stream, c=64",
        64,
        route="original",
        min_rate=15_000,
        min_ceiling_ratio=0.5,
    ),
    _append("v1-100s-c64", "v1 append, 100 streams, c=64", 64, streams=100, min_rate=10_000),
    _append(
        "orig-100s-c64",
        "original append, 100 streams, c=64",
        64,
        route="original",
        streams=100,
        min_rate=10_000,
    ),
    _append("v1-c1", "v1 append, 1 stream, c=1", 1),
    _append("orig-c1", "original append, 1 stream, c=1", 1, route="original"),
    _append("v1-c16", "v1 append, 1 stream, c=16", 16, max_p99_ms=10),
    _append("orig-c16", "original append, 1 stream, c=16", 16, route="original", max_p99_ms=10),
    _append(
        "v1-batch100", "v1 append, batches of 100, 1 stream, c=64", 64, batch=100, min_rate=100_000
    ),
    Scenario(
        "v1-read1000",
        "v1 read forward, pages of 1000, c=64",
        "read",
        64,
        min_rate=300_000,
    ),
]


@dataclass(frozen=True)
class Run:
    """One measured run of a scenario."""

    wrk: WrkResult
    events_per_request: int
    server_cpu_seconds: float
    loop_cpu_seconds: float  # the server's main thread: its event loop
    appended: int | None = None  # the server's own count of events appended during the run
    commits: int | None = None

    @property
    def events_per_second(self) -> float:
        return self.wrk.rate * self.events_per_request

    @property
    def server_cpu_share(self) -> float:
        """Server CPU time over wall time (1.0 = one core busy)."""
        return self.server_cpu_seconds / self.wrk.seconds

    @property
    def loop_cpu_share(self) -> float:
        return self.loop_cpu_seconds / self.wrk.seconds

    @property
    def wrk_cpu_share(self) -> float:
        return self.wrk.cpu_seconds / self.wrk.seconds

    def problems(self) -> list[str]:
        found = []
        failed = {kind: n for kind, n in self.wrk.errors.items() if n}
        if failed:
            found.append(f"failed requests {failed}")
        acknowledged = self.wrk.answered * self.events_per_request
        if self.appended is not None and self.appended < acknowledged:
            found.append(f"server appended {self.appended} < {acknowledged} acknowledged events")
        return found


@dataclass
class Bench:
    """A scenario with its server started and its load ready."""

    scenario: Scenario
    server: Server
    spec: Path
    log: Path
    runs: list[Run] = field(default_factory=list)

    def run(self, seconds: int, *, record: bool = True) -> Run:
        """Run wrk once against the server; keep the result unless `record` is false."""
        counting = self.scenario.kind == "append"
        before = _counters(self.server.url) if counting else {}
        cpu_before = self.server.cpu_seconds()
        result = run_wrk(
            self.server.url,
            self.spec,
            connections=self.scenario.connections,
            seconds=seconds,
            threads=2,
            log=self.log,
        )
        cpu_after = self.server.cpu_seconds()
        self.server.ensure_running()
        after = _counters(self.server.url) if counting else {}
        run = Run(
            result,
            self.scenario.events_per_request,
            server_cpu_seconds=cpu_after[0] - cpu_before[0],
            loop_cpu_seconds=cpu_after[1] - cpu_before[1],
            appended=_delta(before, after, "eventor_appended_events_total"),
            commits=_delta(before, after, "eventor_commits_total"),
        )
        if record:
            self.runs.append(run)
        return run

    def median_rate(self) -> float:
        return statistics.median(run.events_per_second for run in self.runs)


def prepare(scenario: Scenario, group: ServerGroup, workdir: Path) -> Bench:
    """Start the scenario's own server (fresh data dir), fill its data, write its load."""
    if scenario.kind == "ceiling":
        server = group.start(ceiling_server(scenario.name, workdir))
        load = Load("POST", ["/"], {"Content-Type": JSON_TYPE}, V1_BODY)
    else:
        server = group.start(eventor_server(scenario.name, workdir))
        load = _read_load(server) if scenario.kind == "read" else _append_load(scenario)
    spec = load.write_spec(workdir, "load")
    return Bench(scenario, server, spec, workdir / "wrk.log")


def _append_load(scenario: Scenario) -> Load:
    names = ["bench"]
    if scenario.streams > 1:
        names = [f"bench-{i:03d}" for i in range(scenario.streams)]
    if scenario.route == "original":
        headers = {"Content-Type": JSON_TYPE, "X-Event-Type": EVENT_TYPE}
        return Load("POST", [f"/streams/{name}" for name in names], headers, ORIGINAL_BODY)
    body = V1_BODY if scenario.batch == 1 else v1_batch(scenario.batch)
    paths = [f"/v1/streams/{name}/events" for name in names]
    return Load("POST", paths, {"Content-Type": JSON_TYPE}, body)


def _read_load(server: Server) -> Load:
    batch = v1_batch(READ_PAGE)
    pages = READ_STREAM_EVENTS // READ_PAGE
    post_all(server.url, [("/v1/streams/reads/events", batch)] * pages, concurrency=4)
    rng = random.Random(2017)
    last_full_page = READ_STREAM_EVENTS - READ_PAGE + 1
    paths = [
        f"/v1/streams/reads/events?from={rng.randint(1, last_full_page)}&limit={READ_PAGE}"
        for _ in range(READ_PAGES)
    ]
    page = httpx.get(server.url + paths[0], timeout=30).json()
    if len(page["events"]) != READ_PAGE:
        raise RuntimeError(f"a read page holds {len(page['events'])} events, not {READ_PAGE}")
    return Load("GET", paths)


def _counters(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    values = {}
    for line in text.splitlines():
        if line.startswith("eventor_") and " " in line:
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def _delta(before: dict[str, float], after: dict[str, float], name: str) -> int | None:
    if name not in before or name not in after:
        return None
    return int(after[name] - before[name])
