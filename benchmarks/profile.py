"""Profiling one scenario's server under load with py-spy: where does the time go?"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from .scenarios import Bench

TOP = 25


def profile(bench: Bench, seconds: int, out_dir: Path) -> str:
    """Sample the server with py-spy during one run; write the stacks, return a summary."""
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if py_spy is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy into the venv)")
    out_dir.mkdir(parents=True, exist_ok=True)
    stacks = out_dir / f"profile-{bench.scenario.name}.txt"
    sampler = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(bench.server.pid),
            "--duration",
            str(seconds + 1),
            "--rate",
            "200",
            "--nonblocking",
            "--threads",
            "--format",
            "raw",
            "--output",
            str(stacks),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        run = bench.run(seconds, record=False)
        _, errors = sampler.communicate(timeout=seconds + 30)
    finally:
        if sampler.poll() is None:
            sampler.kill()
            sampler.wait()
    if sampler.returncode != 0 or not stacks.exists():
        raise RuntimeError(f"py-spy failed: {errors.decode(errors='replace')}")
    head = (
        f"{bench.scenario.title}: {run.events_per_second:,.0f} events/s while sampled "
        f"(server CPU {run.server_cpu_share:.0%})\nstacks (collapsed, for speedscope): {stacks}"
    )
    return head + "\n\n" + summarize_stacks(stacks)


def summarize_stacks(path: Path) -> str:
    """Samples per thread; the frames most often on top of the stack (self); Eventor's frames
    most often anywhere on it (total: what the time under them costs)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        threads[frames[0]] += count
        own[frames[-1]] += count
        for frame in set(frames[1:]):
            if "(eventor/" in frame:
                total[frame] += count

    def table(counter: Counter[str]) -> str:
        return "\n".join(
            f"{count / samples:6.1%}  {frame}" for frame, count in counter.most_common(TOP)
        )

    return (
        f"{samples} samples\n\nby thread:\n{table(threads)}\n\n"
        f"self (on top of the stack):\n{table(own)}\n\n"
        f"total, Eventor's own frames (anywhere on the stack):\n{table(total)}"
    )
