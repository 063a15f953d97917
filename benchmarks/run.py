"""Run Eventor's benchmarks: `python benchmarks/run.py [--write]` (see BENCHMARKS.md).

Starts one server per scenario (and the raw ASGI ceiling), warms each up, measures round by
round, prints the tables, and with --write records them in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(ROOT))

from benchmarks import footprint, machine, report  # noqa: E402
from benchmarks.fill import FillError  # noqa: E402
from benchmarks.profile import profile  # noqa: E402
from benchmarks.scenarios import SCENARIOS, Bench, Scenario, prepare  # noqa: E402
from benchmarks.servers import ServerError, ServerGroup  # noqa: E402
from benchmarks.wrk import WrkError, ensure_wrk  # noqa: E402

FOOTPRINT = "footprint"
NAMES = [s.name for s in SCENARIOS] + [FOOTPRINT]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog="scenarios: " + ", ".join(NAMES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=3, help="measured runs per scenario (3)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per run (5)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up seconds (1; 0: none)")
    parser.add_argument("--only", help="comma-separated scenario names (default: all)")
    parser.add_argument("--write", action="store_true", help="record the results in BENCHMARKS.md")
    parser.add_argument("--profile", metavar="SCENARIO", help="py-spy one scenario instead")
    parser.add_argument(
        "--data-root", type=Path, default=None, help="where the data dirs go (default: $TMPDIR)"
    )
    parser.add_argument("--keep", action="store_true", help="keep data dirs and server logs")
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else NAMES
    unknown = sorted(set(chosen) - set(NAMES))
    if args.profile and args.profile not in NAMES[:-1]:
        unknown.append(args.profile)
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    if args.write and (args.only or args.runs < 3):
        parser.error("--write records a complete run: drop --only, keep --runs >= 3")
    if args.runs < 1 or args.seconds <= 0 or args.warmup < 0:
        parser.error("--runs >= 1, --seconds >= 1, --warmup >= 0")
    args.chosen = chosen
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="eventor-bench-", dir=args.data_root))
    facts = machine.describe(workdir)
    busy = machine.busy_warning()
    if busy:
        print(f"warning: {busy}", file=sys.stderr)
    if machine.filesystem(workdir) == "tmpfs":
        print(f"warning: {workdir} is on tmpfs: fsync costs nothing there", file=sys.stderr)
    try:
        with ServerGroup() as group:
            if args.profile:
                return profile_one(args, group, workdir)
            benches, found = measure(args, group, workdir)
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped", file=sys.stderr)
        return 130
    except (ServerError, WrkError, FillError) as exc:
        hint = "" if args.keep else " (--keep keeps the servers' logs)"
        print(f"benchmark failed: {exc}{hint}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"data dirs and logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    info = report.RunInfo(args.runs, args.seconds, args.warmup, facts, machine.load_average(), busy)
    summaries = report.summarize(benches)
    print()
    for label, value in facts.items():
        print(f"{label}: {value}")
    print(f"load average at end: {info.load_at_end}\n")
    if busy:
        print(f"warning: {busy}\n")
    print(report.text_table(report.main_rows(summaries)) + "\n")
    print(report.text_table(report.detail_rows(summaries)) + "\n")
    if found is not None:
        print(report.text_table(report.footprint_rows(found)) + "\n")
    if args.write:
        target = ROOT / "BENCHMARKS.md"
        report.write_section(target, report.markdown_section(info, summaries, found))
        print(f"wrote {target}")
    return 0


def measure(
    args: argparse.Namespace, group: ServerGroup, workdir: Path
) -> tuple[list[Bench], footprint.Footprint | None]:
    chosen: list[Scenario] = [s for s in SCENARIOS if s.name in args.chosen]
    benches = []
    for scenario in chosen:
        print(f"starting {scenario.name} ...", flush=True)
        bench = prepare(scenario, group, workdir / scenario.name)
        if args.warmup:
            bench.run(args.warmup, record=False)
        benches.append(bench)
    for round_number in range(1, args.runs + 1):
        for bench in benches:
            run = bench.run(args.seconds)
            print(
                f"[{round_number}/{args.runs}] {bench.scenario.name:<14} "
                f"{run.events_per_second:>10,.0f}/s  p50 {run.wrk.p50_ms:5.1f} ms  "
                f"p99 {run.wrk.p99_ms:6.1f} ms  server CPU {run.server_cpu_share:4.0%} "
                f"(loop {run.loop_cpu_share:4.0%})  "
                f"wrk CPU {run.wrk_cpu_share:4.0%}"
                + ("  " + "; ".join(run.problems()) if run.problems() else ""),
                flush=True,
            )
    for bench in benches:  # free the cores and memory before the footprint scenario
        bench.server.stop()
    found = None
    if FOOTPRINT in args.chosen:
        print(f"{FOOTPRINT}: writing {footprint.STREAMS:,} streams ...", flush=True)
        found = footprint.measure(group, workdir / FOOTPRINT)
    return benches, found


def profile_one(args: argparse.Namespace, group: ServerGroup, workdir: Path) -> int:
    scenario = next(s for s in SCENARIOS if s.name == args.profile)
    bench = prepare(scenario, group, workdir / scenario.name)
    bench.run(args.warmup or 1, record=False)
    print(profile(bench, args.seconds, ROOT / "benchmarks" / "results"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
