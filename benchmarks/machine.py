"""The machine a run measured: CPU, memory, kernel, versions, file system, load, date."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from .servers import ROOT

PACKAGES = ("eventor", "uvicorn", "uvloop", "httptools", "starlette", "msgspec", "aiohttp")


def describe(data_root: Path) -> dict[str, str]:
    """Facts about this machine and software, as label -> text."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git_commit(),
        "cpus (nproc)": str(len(os.sched_getaffinity(0))),
        "cpu model": _cpu_model(),
        "ram": f"{_mem_total_kib() / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": ", ".join(f"{name} {_version(name)}" for name in PACKAGES),
        "wrk": _wrk_version(),
        "data dirs on": f"{data_root.parent} ({filesystem(data_root)})",
        "load average at start": load_average(),
    }


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def busy_warning() -> str:
    """A warning when the last minute's load says other work competes for the cores."""
    load, cores = os.getloadavg()[0], len(os.sched_getaffinity(0))
    if load < cores / 2:
        return ""
    return (
        f"Busy machine: load average {load:.1f} on {cores} cores when the run started; "
        "other work competed for the CPU, so these figures are low and noisy."
    )


def filesystem(path: Path) -> str:
    """The type of the file system holding `path` (e.g. ext4; tmpfs makes fsync free)."""
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        _, mount, fstype, *_ = line.split()
        inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > len(best):
            best, kind = mount, fstype
    return kind


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "missing"


def _wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).splitlines()
    return first[0].split(" [")[0].removeprefix("wrk ") if first else "unknown"


def _git_commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "eventor")
    return f"{commit} (eventor/ has uncommitted changes)" if dirty else commit
