"""One flush to disk for the commits of many streams: `syncfs` of the data directory.

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


class FileSystemFlush:
    """Flushes the file system holding `path` (see `syncfs`), one caller at a time.

    After a failed flush every later call raises SyncFailed without trying again: the kernel
    may have dropped the dirty pages, so nothing written since the last good flush can be
    promised, now or later.
    """

    def __init__(self, path: Path, flush: Callable[[int], None] = syncfs) -> None:
        self._path = path
        self._fd = -1  # see `open`
        self._flush = flush
        self._lock = threading.Lock()
        self._error: OSError | None = None
        self.flushes = 0
        self.flush_seconds = 0.0

    def open(self) -> None:
        """Open the directory now, while the storage opens: opened at the first flush instead,
        a moment short of file descriptors there would count as a failed flush, for good."""
        with self._lock:
            if self._fd < 0:
                self._fd = os.open(self._path, os.O_RDONLY)

    def __call__(self) -> None:
        with self._lock:
            if self._error is None:
                began = time.perf_counter()
                try:
                    if self._fd < 0:
                        self._fd = os.open(self._path, os.O_RDONLY)
                    self._flush(self._fd)
                except OSError as exc:
                    self._error = exc
                self.flushes += 1
                self.flush_seconds += time.perf_counter() - began
            if self._error is not None:
                raise SyncFailed(f"flushing the data directory to disk failed: {self._error}")

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
