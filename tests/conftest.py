"""Shared fixtures: real Eventor servers (subprocesses on loopback) and HTTP clients."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

READY_LINE = re.compile(r"serving http://([^\s,]+):(\d+),")


class ServerProcess:
    """An `eventor serve` subprocess on a free port. Restartable on the same data dir."""

    def __init__(
        self, data_dir: Path, log_path: Path, *args: str, env: dict[str, str] | None = None
    ):
        self.data_dir = data_dir
        self.log_path = log_path
        self.args = list(args)
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.port = 0

    def start(self, timeout: float = 20.0) -> ServerProcess:
        port = self.port or 0
        cmd = [
            sys.executable,
            "-m",
            "eventor",
            "serve",
            "--port",
            str(port),
            "--data",
            str(self.data_dir),
            *self.args,
        ]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        offset = self._log.tell()
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[offset:].decode(errors="replace")
            match = READY_LINE.search(text)
            if match:
                self.port = int(match[2])
                self.url = f"http://127.0.0.1:{self.port}"
                self._wait_ready(deadline)
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"eventor serve exited {self.proc.returncode}:\n{text}")
            time.sleep(0.02)
        raise RuntimeError(f"eventor serve did not start in {timeout}s:\n{self.log()}")

    def _wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        raise RuntimeError("eventor serve never became ready")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send `sig` (SIGTERM: graceful, SIGKILL: crash) and wait for the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    def restart(self) -> ServerProcess:
        """Start again on the same port and data dir (after stop or kill)."""
        return self.start()


@pytest.fixture
def make_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Factory: make_server(*args, env=None, data_dir=None) -> a started ServerProcess."""
    servers: list[ServerProcess] = []

    def make(
        *args: str, env: dict[str, str] | None = None, data_dir: Path | None = None
    ) -> ServerProcess:
        base = tmp_path_factory.mktemp("eventor")
        server = ServerProcess(data_dir or base / "data", base / "server.log", *args, env=env)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        if server.proc is not None and server.proc.poll() is None:
            server.stop(signal.SIGKILL)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server shared by the session; tests use their own stream names (see `stream`)."""
    base = tmp_path_factory.mktemp("shared")
    proc = ServerProcess(base / "data", base / "server.log").start()
    yield proc
    proc.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


@pytest.fixture
def stream() -> str:
    """A stream name no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"
