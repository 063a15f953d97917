"""The in-memory "appended" signal: wakes whoever waits for a stream to grow.

It carries no events, only the news that a stream's head moved: a waiter re-reads storage after
its own position. So nothing queues up in memory, however slow a waiter is, and a waiter that
checks and then waits can never miss an append (both happen on the event loop).
"""

from __future__ import annotations

import asyncio


class AppendedSignal:
    def __init__(self) -> None:
        self._heads: dict[str, int] = {}
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        #: Counts `wake_all` calls: a waiter woken while it changed was interrupted, not notified.
        self._interruptions = 0

    def notify(self, stream: str, head: int) -> None:
        """Record that `stream` now ends at `head` and wake its waiters."""
        self._heads[stream] = head
        waiters = self._waiters.pop(stream, None)
        if waiters:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def wake_all(self) -> None:
        """Wake every waiter now (e.g. at shutdown); those whose stream did not grow get False."""
        self._interruptions += 1
        waiters, self._waiters = self._waiters, {}
        for stream_waiters in waiters.values():
            for waiter in stream_waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def wait(self, stream: str, after: int, timeout: float | None = None) -> bool:
        """Wait until `stream`'s head passes `after`.

        False when `timeout` seconds pass first, or when `wake_all` interrupts the wait. An
        append that leaves the head at or before `after` does not end the wait.
        """
        if self._heads.get(stream, 0) > after:
            return True
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        interruptions = self._interruptions
        while True:
            waiter: asyncio.Future[None] = loop.create_future()
            waiters = self._waiters.setdefault(stream, set())
            waiters.add(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except TimeoutError:
                return False
            finally:
                waiters.discard(waiter)
                if not waiters and self._waiters.get(stream) is waiters:
                    del self._waiters[stream]
            if self._heads.get(stream, 0) > after:
                return True
            if self._interruptions != interruptions:
                return False  # woken by wake_all, not by an append
