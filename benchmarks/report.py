"""Results: medians and verdicts, the table for the terminal, the section of BENCHMARKS.md."""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .footprint import MAX_RSS_MB, Footprint
from .scenarios import ORIGINAL_BODY, READ_STREAM_EVENTS, V1_BODY, Bench, Scenario, v1_batch

BEGIN = "<!-- BEGIN streams: written by `python benchmarks/run.py --write`; edits here are lost -->"
END = "<!-- END streams -->"
TITLE = (
    "# Eventor benchmarks\n\nMeasured by hand with the harnesses in `benchmarks/`, not in CI. "
    "Each section belongs to\none harness; `benchmarks/run.py --write` rewrites only the part "
    "between its markers.\n"
)


@dataclass(frozen=True)
class Summary:
    """One scenario over all its runs."""

    scenario: Scenario
    rates: list[float]  # events/s per run (requests/s for the ceiling)
    p50_ms: float  # median over the runs of each run's percentile
    p99_ms: float
    ratio: float | None  # median rate / median ceiling
    events_per_commit: float | None
    server_cpu: float  # median share of one core
    loop_cpu: float
    wrk_cpu: float
    problems: list[str]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    @property
    def verdict(self) -> str:
        if self.problems:
            return "INVALID: " + "; ".join(self.problems)
        s = self.scenario
        misses = []
        if s.min_rate is not None and self.median < s.min_rate:
            misses.append(f"{self.median:,.0f}/s < {s.min_rate:,.0f}/s")
        if s.min_ceiling_ratio is not None and (
            self.ratio is None or self.ratio < s.min_ceiling_ratio
        ):
            misses.append("no ceiling" if self.ratio is None else f"{self.ratio:.0%} of ceiling")
        if s.max_p99_ms is not None and self.p99_ms > s.max_p99_ms:
            misses.append(f"p99 {self.p99_ms:.1f} ms")
        if s.min_rate is None and s.min_ceiling_ratio is None and s.max_p99_ms is None:
            return "-"
        return "FAIL (" + ", ".join(misses) + ")" if misses else "pass"


def summarize(benches: Sequence[Bench]) -> list[Summary]:
    ceilings = [b for b in benches if b.scenario.kind == "ceiling" and b.runs]
    ceiling = ceilings[0].median_rate() if ceilings else None
    ceiling_connections = ceilings[0].scenario.connections if ceilings else None
    summaries = []
    for bench in benches:
        runs = bench.runs
        if not runs:
            continue
        s = bench.scenario
        # Compared with the ceiling: one event per request, at the ceiling's concurrency.
        comparable = s.kind == "ceiling" or (s.kind == "append" and s.batch == 1)
        comparable = comparable and s.connections == ceiling_connections
        appended = sum(r.appended or 0 for r in runs)
        commits = sum(r.commits or 0 for r in runs)
        summaries.append(
            Summary(
                scenario=s,
                rates=[r.events_per_second for r in runs],
                p50_ms=statistics.median(r.wrk.p50_ms for r in runs),
                p99_ms=statistics.median(r.wrk.p99_ms for r in runs),
                ratio=bench.median_rate() / ceiling if ceiling and comparable else None,
                events_per_commit=appended / commits if commits else None,
                server_cpu=statistics.median(r.server_cpu_share for r in runs),
                loop_cpu=statistics.median(r.loop_cpu_share for r in runs),
                wrk_cpu=statistics.median(r.wrk_cpu_share for r in runs),
                problems=sorted({p for r in runs for p in r.problems()}),
            )
        )
    return summaries


def _target(s: Scenario) -> str:
    parts = []
    if s.min_rate is not None:
        parts.append(f">= {s.min_rate:,.0f}/s")
    if s.min_ceiling_ratio is not None:
        parts.append(f">= {s.min_ceiling_ratio:.0%} of ceiling")
    if s.max_p99_ms is not None:
        parts.append(f"p99 <= {s.max_p99_ms:g} ms")
    return ", ".join(parts) or "-"


def main_rows(summaries: Sequence[Summary]) -> list[list[str]]:
    rows = [["scenario", "median", "min-max", "p50 / p99 ms", "target", "verdict", "vs ceiling"]]
    for s in summaries:
        unit = "req/s" if s.scenario.kind == "ceiling" else "events/s"
        rows.append(
            [
                s.scenario.title,
                f"{s.median:,.0f} {unit}",
                f"{min(s.rates):,.0f}-{max(s.rates):,.0f}",
                f"{s.p50_ms:.1f} / {s.p99_ms:.1f}",
                _target(s.scenario),
                s.verdict,
                "-" if s.ratio is None else f"{s.ratio:.0%}",
            ]
        )
    return rows


def detail_rows(summaries: Sequence[Summary]) -> list[list[str]]:
    rows = [["scenario", "runs", "events/commit", "server CPU", "event loop CPU", "wrk CPU"]]
    for s in summaries:
        rows.append(
            [
                s.scenario.name,
                ", ".join(f"{rate:,.0f}" for rate in s.rates),
                "-" if s.events_per_commit is None else f"{s.events_per_commit:.1f}",
                f"{s.server_cpu:.0%}",
                f"{s.loop_cpu:.0%}",
                f"{s.wrk_cpu:.0%}",
            ]
        )
    return rows


def footprint_rows(f: Footprint) -> list[list[str]]:
    misses = []
    if f.rss_mb > MAX_RSS_MB:
        misses.append(f"RSS {f.rss_mb:.0f} MB")
    if f.fds > f.max_fds:
        misses.append(f"{f.fds} fds")
    if f.peak_stream_fds > f.max_fds:
        misses.append(f"peak of {f.peak_stream_fds} stream files")
    problems = f.problems()
    verdict = "FAIL (" + ", ".join(misses) + ")" if misses else "pass"
    if problems:
        verdict = "INVALID: " + "; ".join(problems)
    return [
        [
            "scenario",
            "RSS MB (start -> after)",
            "open fds (start -> after)",
            "peak while creating: fds / stream files",
            "target",
            "verdict",
        ],
        [
            f"{f.streams:,} streams x {f.events_per_stream} events (created in "
            f"{f.fill_seconds:.0f} s, {f.streams / f.fill_seconds:,.0f} streams/s)",
            f"{f.rss_start_mb:.0f} -> {f.rss_mb:.0f}",
            f"{f.fds_start} -> {f.fds}",
            f"{f.peak_fds} / {f.peak_stream_fds}",
            f"RSS <= {MAX_RSS_MB:.0f} MB; fds, peak stream files <= {f.max_open_files} + 50",
            verdict,
        ],
    ]


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows[1:]]
    return "\n".join(lines)


@dataclass(frozen=True)
class RunInfo:
    """How the run was made: the settings the notes quote."""

    runs: int
    seconds: int
    warmup: int
    machine: dict[str, str]
    load_at_end: str
    busy: str = ""  # a warning when other work shared the machine


def markdown_section(
    info: RunInfo, summaries: Sequence[Summary], footprint: Footprint | None
) -> str:
    machine = "\n".join(f"- {label}: {value}" for label, value in info.machine.items())
    parts = [
        BEGIN,
        "## Streams: appends and reads",
        "### How to run",
        HOW_TO_RUN,
        "### Results of the last run",
        f"{machine}\n- load average at end: {info.load_at_end}",
        *([f"**{info.busy}**"] if info.busy else []),
        markdown_table(main_rows(summaries)),
        "Per run, and where the time went:",
        markdown_table(detail_rows(summaries)),
    ]
    if footprint is not None:
        parts.append(markdown_table(footprint_rows(footprint)))
    parts += ["### What the numbers mean", meaning(info), END]
    return "\n\n".join(parts)


def write_section(path: Path, section: str) -> None:
    """Put `section` between the markers in `path`, leaving the rest of the file as it is."""
    text = path.read_text() if path.exists() else TITLE
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text if text.endswith("\n") else text + "\n")


HOW_TO_RUN = """\
On a quiet machine (nothing else running: the load generator shares the cores with the server),
from the repository root, with the project's venv:

```sh
.venv/bin/python benchmarks/run.py            # every scenario; prints the tables (~5 minutes)
.venv/bin/python benchmarks/run.py --write    # ... and rewrites this section of BENCHMARKS.md
.venv/bin/python benchmarks/run.py --only ceiling,v1-c64 --runs 5 --seconds 10
.venv/bin/python benchmarks/run.py --profile v1-c64   # py-spy profile of the server under load
```

The harness installs `wrk` with apt-get when it is missing. Every server it starts gets a free
port and its own data dir under a temporary directory, and is stopped at the end, also on Ctrl-C.
`--help` lists the scenarios and options."""


def meaning(info: RunInfo) -> str:
    return f"""\
- **events/s** = requests wrk saw answered 2xx per second x events per request. Each figure is
  the median of {info.runs} runs of {info.seconds} s (after a {info.warmup} s warm-up); min-max
  shows the spread. The runs go round by round through all scenarios, so a burst of background
  load hits every scenario alike instead of one.
- Every scenario has its own fresh server and data dir (one per scenario, kept for its runs), with
  `--durability full`: every 2xx was fsynced first. A run is INVALID if any request failed or if
  the server's own count of appended events (`/metrics`) is below what wrk saw acknowledged.
- **Ceiling**: the same stack as `eventor serve` (uvicorn, uvloop, httptools, no access log) with
  a raw ASGI app that reads the body and answers 200, sent the same body as a v1 append.
  No Python server beats it here; "vs ceiling" is the share of it Eventor keeps (at c=64).
- Bodies: a v1 append is `{{"type": ..., "data": ...}}` ({len(V1_BODY)} bytes); the original
  route gets the data alone ({len(ORIGINAL_BODY)} bytes) with `X-Event-Type`; a batch of 100
  is {len(v1_batch(100)):,} bytes. 100 streams: each request picks a stream at random (wrk
  Lua). Reads: pages of 1000 from random positions of a {READ_STREAM_EVENTS:,}-event stream.
- **Latency** (p50 / p99): wrk's time from sending a request to its whole answer, percentiles of
  all requests of a run, median over the runs. At c=1 it is the floor of a durable append: one
  HTTP round trip plus one fsync.
- **events/commit**: appended events / storage commits (group commit: one transaction and one
  fsync for every append waiting on a stream). **server CPU**, **event loop CPU** (the server's
  main thread, which runs the event loop: all HTTP parsing, validation and rendering) and **wrk
  CPU**: CPU time over wall time, 100 % = one core. wrk runs on the same two cores (`-t2`), so
  it takes CPU the server would otherwise have. An event loop near 100 % is the bottleneck (the
  server is bound by Python, not by the disk); well below it, the server is waiting (on fsync,
  or for CPU the machine does not give it).
- **Footprint**: streams are created with one batch append each (64 at a time); once the
  server's fd count holds still, VmRSS (/proc/<pid>/status) and open file descriptors
  (/proc/<pid>/fd) of the server process are read. The fd cap is `--max-open-files`. The peak
  is sampled every 50 ms while creating: all fds (including the 64 client connections, so no
  target) and the stream files alone (the files the cap bounds, so the fd target applies)."""
