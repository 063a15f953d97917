"""A watch on the process's open files: when they near the limit, say so.

Past the limit, new connections are refused (the server's accept fails before any request
exists to log) and new streams cannot open their files: clients see dropped connections while
the server's log says nothing. This looks every second or so and warns, at most once a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os

from .failures import Throttled

log = logging.getLogger("eventor")

#: Seconds between looks (one listing of /proc/self/fd each): one a second, and less often
#: as the files grow many (a listing of 100,000 takes ~50 ms: then one in 5 s).
INTERVAL = 1.0
MAX_INTERVAL = 5.0
_FILES_LISTED_A_SECOND = 20_000
#: The share of the limit at which to warn.
NEAR = 0.9
_FDS = "/proc/self/fd"


def open_files() -> tuple[int, int] | None:
    """(files open, the soft limit), or None where this cannot be told (not Linux, no limit)."""
    try:
        import resource
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        return len(os.listdir(_FDS)), soft
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            return soft, soft  # the listing needs a file of its own: none is left
        return None


class OpenFilesWatch:
    """Warns (once a minute at most) while open files pass NEAR of the limit."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self._wait = interval
        self._throttled = Throttled(log)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and open_files() is not None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="open-files")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a watch, no more
                await self._task
            self._task = None

    def check(self) -> None:
        counted = open_files()
        if counted is None:
            return
        count, limit = counted
        self._wait = min(max(self.interval, count / _FILES_LISTED_A_SECOND), MAX_INTERVAL)
        if count >= NEAR * limit:
            self._throttled.warning(
                "%d files open of the limit of %d: new connections and streams will fail past"
                " it (raise ulimit -n, LimitNOFILE=, or lower --max-open-files)",
                count,
                limit,
            )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._wait)
            self.check()
