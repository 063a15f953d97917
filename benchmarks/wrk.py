"""Driving `wrk`: install it when missing, describe a load, run it, parse what it measured."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

LUA_SCRIPT = Path(__file__).resolve().parent / "lua" / "requests.lua"
RESULT_PREFIX = "EVENTOR_BENCH "


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed no result."""


def ensure_wrk() -> str:
    """The path of `wrk`, installing the Debian package first when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("wrk is missing: installing it with apt-get (Debian package `wrk`)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    found = shutil.which("wrk")
    if not found:
        raise WrkError("apt-get installed wrk, but it is not on PATH")
    return found


@dataclass(frozen=True)
class Load:
    """The requests of one benchmark: one of `paths` at random per request (or the only one)."""

    method: str
    paths: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None

    def write_spec(self, directory: Path, name: str) -> Path:
        """Write the spec that lua/requests.lua reads (and the body beside it)."""
        directory.mkdir(parents=True, exist_ok=True)
        lines = [f"method {self.method}"]
        lines += [f"header {key}: {value}" for key, value in self.headers.items()]
        if self.body is not None:
            body_path = directory / f"{name}.body"
            body_path.write_bytes(self.body)
            lines.append(f"body {body_path}")
        lines += [f"path {path}" for path in self.paths]
        spec = directory / f"{name}.spec"
        spec.write_text("\n".join(lines) + "\n")
        return spec


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured. Latencies in milliseconds."""

    requests: int
    seconds: float
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_seconds: float  # wrk's own CPU time (user + system)

    @property
    def answered(self) -> int:
        """Requests answered with a 2xx or 3xx (wrk counts the others as status errors)."""
        return self.requests - self.errors["status"]

    @property
    def rate(self) -> float:
        """Requests answered with a 2xx or 3xx, per second."""
        return self.answered / self.seconds

    @property
    def failures(self) -> int:
        return sum(self.errors.values())


def run_wrk(
    url: str,
    spec: Path,
    *,
    connections: int,
    seconds: int,
    threads: int = 2,
    log: Path | None = None,
) -> WrkResult:
    """Run wrk against `url` with the load in `spec` and return its measurements."""
    cmd = [
        ensure_wrk(),
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA_SCRIPT),
        url,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env={**os.environ, "EVENTOR_BENCH_SPEC": str(spec)},
        timeout=seconds + 60,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if log is not None:
        with log.open("a") as out:
            out.write(f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}\n")
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise WrkError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return WrkResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        errors={key: raw[key] for key in ("connect", "read", "write", "status", "timeout")},
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        cpu_seconds=cpu,
    )
