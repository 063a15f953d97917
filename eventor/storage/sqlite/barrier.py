"""One flush to disk for the commits of many streams: `syncfs` shared by all who wait.

With one file per stream, an fsync per commit costs an fsync per stream: under load spread
over many streams that is one fsync per event, and each costs the kernel tens of microseconds
of CPU besides the wait. Instead, stream databases commit without syncing (SQLite's
`synchronous=NORMAL`, which still syncs around checkpoints), and before any of those commits
is acknowledged a `syncfs` of the data directory's file system makes them all durable at once.
Measured here: 16 dirty files take one 0.6 ms `syncfs` against 1.1 ms for 16 `fdatasync`
calls in parallel, at a sixth of the CPU.

`syncfs` exists on Linux only; elsewhere (`available()` false) each stream commit syncs its
own file (`synchronous=FULL`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_syncfs = _load_syncfs()


def available() -> bool:
    """Whether this platform has `syncfs`."""
    return _syncfs is not None


def syncfs(fd: int) -> None:
    """Flush the whole file system holding `fd` to stable storage; OSError on failure."""
    if _syncfs is None:
        raise OSError("syncfs is not available on this platform")
    if _syncfs(fd) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"syncfs failed: {os.strerror(errno)}")


class SyncFailed(OSError):
    """A flush to disk failed: what was written since the last good one may be lost."""


class SyncBarrier:
    """`wait()` returns once a flush that started after the call has finished.

    Callers arriving while a flush runs share the next one: however many threads wait, at
    most one flush runs and one more is pending. After a failed flush every wait raises
    SyncFailed: the kernel may have dropped the dirty pages, so nothing written since the
    last good flush can be promised, now or later.
    """

    def __init__(self, path: Path, flush: Callable[[int], None] = syncfs) -> None:
        self._path = path
        self._fd = -1  # opened at the first flush: the directory may not exist yet
        self._flush = flush
        self._cond = threading.Condition()
        self._started = 0
        self._finished = 0
        self._running = False
        self._error: OSError | None = None
        self.flushes = 0
        self.flush_seconds = 0.0

    def wait(self) -> None:
        with self._cond:
            target = self._started + 1
            while self._finished < target and self._error is None:
                if self._running:
                    self._cond.wait()
                    continue
                self._started += 1
                number = self._started
                self._running = True
                self._cond.release()
                began = time.perf_counter()
                try:
                    if self._fd < 0:
                        self._fd = os.open(self._path, os.O_RDONLY)
                    self._flush(self._fd)
                except OSError as exc:
                    error: OSError | None = exc
                else:
                    error = None
                finally:
                    self._cond.acquire()
                    self._running = False
                    self._finished = number
                    self.flushes += 1
                    self.flush_seconds += time.perf_counter() - began
                    self._cond.notify_all()
                if error is not None:
                    self._error = error
            if self._error is not None:
                raise SyncFailed(f"flushing the data directory to disk failed: {self._error}")

    def close(self) -> None:
        with self._cond:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
