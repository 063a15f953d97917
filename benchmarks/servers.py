"""Server processes: Eventor and the ceiling, on free ports with their own dirs, always stopped.

Every server is started by a `ServerGroup`; leaving the group (normally, on an exception, on
Ctrl-C or on SIGTERM) stops them all. Each child also gets SIGKILL from the kernel if the
harness itself dies, so no server outlives a run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType, TracebackType

import httpx

ROOT = Path(__file__).resolve().parent.parent
READY_LINE = re.compile(rb"serving http://([^\s,]+):(\d+),")
PR_SET_PDEATHSIG = 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ServerError(RuntimeError):
    """A server did not start or died."""


def _cpu(stat_path: str) -> float:
    fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Server:
    """One server subprocess; `start()` waits until it answers `ready_path` with 200."""

    def __init__(self, name: str, cmd: list[str], workdir: Path, ready_path: str) -> None:
        self.name = name
        self.cmd = cmd
        self.workdir = workdir
        self.ready_path = ready_path
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> Server:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,  # Ctrl-C reaches the harness, which stops us in order
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while not self.url:
            match = READY_LINE.search(self.log_path.read_bytes())
            if match:
                self.url = f"http://127.0.0.1:{int(match[2])}"
            else:
                self._check_alive(deadline)
                time.sleep(0.02)
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + self.ready_path, timeout=1).status_code == 200:
                    return self
            self._check_alive(deadline)
            time.sleep(0.02)

    def _check_alive(self, deadline: float) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise ServerError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
        if time.monotonic() > deadline:
            raise ServerError(f"{self.name} did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def ensure_running(self) -> None:
        """Raise if the server has died (e.g. crashed under load)."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise ServerError(f"{self.name} died with {self.proc.returncode}:\n{self.log()}")

    def rss_bytes(self) -> int:
        """Resident memory, from /proc/<pid>/status (VmRSS)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise ServerError(f"no VmRSS for {self.name}")

    def open_fds(self) -> int:
        """Open file descriptors, counted in /proc/<pid>/fd."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU time (user + system) so far: of the whole process, and of its main thread alone.

        The main thread runs the event loop: near one core, it is the bottleneck.
        """
        return _cpu(f"/proc/{self.pid}/stat"), _cpu(f"/proc/{self.pid}/task/{self.pid}/stat")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a graceful stop), then SIGKILL if it is still running after `timeout`."""
        self.terminate()
        self.wait(timeout)

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def eventor_server(name: str, workdir: Path, *args: str) -> Server:
    """`eventor serve` on a free port, data in `workdir/data`, durability full unless overridden."""
    cmd = [sys.executable, "-m", "eventor", "serve", "--port", "0", "--data", str(workdir / "data")]
    cmd += ["--durability", "full", *args]  # a later --durability in args wins
    return Server(name, cmd, workdir, "/ready")


def ceiling_server(name: str, workdir: Path) -> Server:
    """The raw ASGI app of `benchmarks/ceiling.py` on a free port."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "ceiling.py"), "--port", "0"]
    return Server(name, cmd, workdir, "/")


class ServerGroup:
    """Starts servers and stops all of them on exit, including on Ctrl-C and SIGTERM."""

    def __init__(self) -> None:
        self.servers: list[Server] = []
        self._previous: dict[int, object] = {}

    def start(self, server: Server) -> Server:
        self.servers.append(server)
        return server.start()

    def __enter__(self) -> ServerGroup:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._previous[sig] = signal.signal(sig, _interrupt)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        # Ctrl-C again while stopping must not leave servers behind.
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for server in self.servers:
                server.terminate()
            deadline = time.monotonic() + 10
            for server in self.servers:
                server.wait(max(0.1, deadline - time.monotonic()))
        finally:
            signal.signal(signal.SIGINT, previous_int)
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
