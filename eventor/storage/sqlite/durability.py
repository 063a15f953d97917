"""Making commits durable together: one syncfs() for every stream committed before it began.

Each stream is its own SQLite file, so a transaction per stream means an fsync per stream. On
this kind of machine an fsync costs ~100-150 µs of CPU, so 10,000 appends a second spread over 100
streams would need more than a core for fsync alone. Instead, with durability `full` on Linux,
streams commit with `synchronous=NORMAL` (the WAL is written, not synced) and a barrier thread
calls syncfs() on the data directory's file system, flushing every commit made before the call
began; only then are those appends acknowledged. While one syncfs runs, later commits gather for
the next: group commit across streams. Linux waits for syncfs to complete, which gives the same
guarantee as fsync on every file of the file system. Elsewhere (or with `--sync-method fsync`),
SQLite syncs each commit itself (`synchronous=FULL`).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

Done = Callable[[BaseException | None], None]


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        syncfs: Callable[[int], int] = libc.syncfs  # ctypes releases the GIL during the call
    except (OSError, AttributeError):
        return None
    return syncfs


_syncfs = _load_syncfs()


def syncfs_available() -> bool:
    return _syncfs is not None


class SyncBarrier:
    """Calls `done(error)` for each commit once a syncfs() that began after it has returned."""

    def __init__(self, directory: Path) -> None:
        if _syncfs is None:
            raise OSError("syncfs() is not available on this system")
        self._directory = directory
        self._fd: int | None = None  # opened by the first sync: the directory may not exist yet
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="eventor-sync")
        self._waiting: list[Done] = []
        self._running: asyncio.Future[None] | None = None
        self.syncs = 0

    def after(self, done: Done) -> None:
        """Run `done` once everything committed so far is on disk (on the event loop)."""
        self._waiting.append(done)
        if self._running is None:
            self._start()

    @property
    def busy(self) -> bool:
        return self._running is not None

    async def drain(self) -> None:
        """Wait until every commit handed over so far is durable (or failed to be)."""
        while self._running is not None:
            await asyncio.wait({self._running})

    def close(self) -> None:
        self._executor.shutdown()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _start(self) -> None:
        batch, self._waiting = self._waiting, []
        loop = asyncio.get_running_loop()
        running = loop.run_in_executor(self._executor, self._sync)
        self._running = running
        running.add_done_callback(lambda f: self._finished(f, batch))

    def _sync(self) -> None:
        assert _syncfs is not None
        if self._fd is None:
            self._fd = os.open(self._directory, os.O_RDONLY)
        if _syncfs(self._fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"syncfs failed: {os.strerror(code)}")

    def _finished(self, future: asyncio.Future[None], batch: list[Done]) -> None:
        self._running = None
        self.syncs += 1
        error = future.exception()
        for done in batch:
            done(error)
        if self._waiting:
            self._start()
