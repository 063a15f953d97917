"""The delivery engine: runs one loop per active subscription and group-commits their progress.

Progress (positions, attempt counters, the attempt log, parked events) is written by one
flusher for all subscriptions at once: at most every `position_flush_interval` seconds, one
transaction for everything that changed. A crash repeats at most that window's deliveries; a
graceful stop flushes after the loops end, so nothing is delivered twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..failures import RepeatedFailure
from ..types import ACTIVE, Subscription, SubscriptionRecord
from .loop import Counters, SubscriptionLoop
from .sender import Sender

if TYPE_CHECKING:
    from ..settings import Settings
    from ..storage.base import Storage
    from ..store import EventStore

log = logging.getLogger("eventor.delivery")

#: On a graceful stop, an in-flight attempt gets its own timeout and this much more to finish.
STOP_MARGIN = 1.0


class DeliveryEngine:
    def __init__(
        self, store: EventStore, storage: Storage, settings: Settings, sender: Sender | None = None
    ) -> None:
        self._store = store
        self._storage = storage
        self._flush_interval = settings.position_flush_interval
        self.log_size = settings.attempt_log_size
        self.sender = sender or Sender()
        self.counters = Counters()
        self.loops: dict[str, SubscriptionLoop] = {}
        self._dirty: set[str] = set()
        self._dirty_event = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._running = False
        #: Set while progress is stored; loops start no request while it is not.
        self.progress_saved = asyncio.Event()
        self.progress_saved.set()
        self._save_failure = RepeatedFailure(log, "saving the subscriptions' progress")

    async def start(self, records: Iterable[SubscriptionRecord]) -> None:
        """Take the stored subscriptions and start delivering for every active one."""
        await self.sender.start()
        self._running = True
        self._flusher = asyncio.create_task(self._flush_forever(), name="eventor-flusher")
        for record in records:
            loop = self.add(record)
            if loop.subscription.status == ACTIVE:
                self.run(loop)

    async def stop(self, grace: float | None = None) -> None:
        """Stop every loop, then flush the progress.

        A request in flight is waited for (up to its timeout, or `grace` seconds when given):
        abandoned, its event would be delivered again after the restart, and a clean stop
        promises nothing twice (api-v1.md).
        """
        self._running = False
        tasks = [loop.task for loop in self.loops.values() if loop.task is not None]
        in_flight = [loop for loop in self.loops.values() if self.in_request(loop)]
        for loop in self.loops.values():
            self._halt(loop, cancel_in_flight=False)
        if grace is None:
            now = time.monotonic()
            grace = max((loop.request_deadline - now for loop in in_flight), default=0.0)
            grace = max(grace, 0.0) + STOP_MARGIN
        if in_flight:
            log.info(
                "waiting up to %.3gs for %d webhook request(s) in flight", grace, len(in_flight)
            )
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.wait([self._flusher])
        await self.flush()
        if self._save_failure.failing:
            log.error(
                "stopping with the progress of %d subscriptions unsaved: their latest"
                " deliveries will be made again after the restart",
                len(self._dirty),
            )
        await self.sender.close()

    def hurry(self) -> None:
        """Abandon the requests in flight (a second stop signal): they will be made again."""
        self._running = False  # the stop may not have begun: nothing may start meanwhile
        late = [loop for loop in self.loops.values() if loop.task and not loop.task.done()]
        if late:
            log.warning("abandoning %d webhook request(s) in flight", len(late))
        for loop in late:
            self._halt(loop, cancel_in_flight=True)

    # -- loops ---------------------------------------------------------------------------------

    def add(self, record: SubscriptionRecord) -> SubscriptionLoop:
        assert record.subscription.name not in self.loops, "one loop per subscription"
        loop = SubscriptionLoop(
            record.subscription,
            record.attempts,
            record.parked,
            self.log_size,
            self.mark_dirty,
            self.progress_saved,
        )
        self.loops[loop.name] = loop
        return loop

    def run(self, loop: SubscriptionLoop) -> None:
        """Start `loop`'s task (its previous task must have ended)."""
        if not self._running:
            return
        assert loop.task is None or loop.task.done(), "one task per subscription"
        loop.halted = False
        loop.task = asyncio.create_task(
            loop.run(self._store, self.sender, self.counters), name=f"subscription:{loop.name}"
        )

    def halt(self, loop: SubscriptionLoop, *, cancel_in_flight: bool) -> None:
        """Make `loop` send no further request; cancel its in-flight one only when asked."""
        self._halt(loop, cancel_in_flight=cancel_in_flight)

    def carry_on(self, loop: SubscriptionLoop) -> bool:
        """Undo `halt` while the loop's request is still in flight; False if its task ends."""
        task = loop.task
        if task is None or task.done() or task.cancelling() or not loop.in_request:
            return False
        loop.halted = False
        return True

    def in_request(self, loop: SubscriptionLoop) -> bool:
        """Whether `loop`'s task is running and has a request in flight."""
        task = loop.task
        return task is not None and not task.done() and not task.cancelling() and loop.in_request

    async def stopped(self, loop: SubscriptionLoop) -> None:
        """Wait until `loop`'s task has ended (after `halt`)."""
        task = loop.task
        if task is not None:
            await asyncio.wait([task])

    async def remove(self, loop: SubscriptionLoop) -> None:
        """Stop `loop` at once (cancelling any in-flight request) and forget it."""
        self._halt(loop, cancel_in_flight=True)
        await self.stopped(loop)
        if self.loops.get(loop.name) is loop:
            del self.loops[loop.name]
        self._dirty.discard(loop.name)

    def _halt(self, loop: SubscriptionLoop, *, cancel_in_flight: bool) -> None:
        loop.halted = True
        task = loop.task
        if task is not None and not task.done() and (cancel_in_flight or not loop.in_request):
            task.cancel()

    # -- group commit of progress ------------------------------------------------------------

    async def store(self, loop: SubscriptionLoop, **changes: Any) -> Subscription:
        """Write the loop's subscription as it stands with `changes` (not applied to it), and
        what its loop has not yet saved (attempts, parked events), in one transaction; the
        snapshot written is returned. Taken between two flushes, never during one: a state
        stored on its own could pass an event parked since the last flush, and a crash before
        the next one lost it unlisted."""
        async with self._flush_lock:
            saved = dataclasses.replace(loop.subscription, **changes)
            pending = loop.take_progress()
            write = asyncio.ensure_future(
                self._storage.save_subscription(saved, pending, self.log_size)
            )

            def put_back_unless_written(write: asyncio.Future[None]) -> None:
                if write.cancelled() or write.exception() is not None:
                    loop.restore_progress(pending)

            # Shielded: cancelling the change (uvicorn does, late in a stop) does not stop the
            # write on the catalog's thread, and what it wrote must not be put back to be
            # written twice.
            write.add_done_callback(put_back_unless_written)
            await asyncio.shield(write)
            return saved

    async def unsaved(self, loop: SubscriptionLoop) -> bool:
        """Whether some change to `loop`'s subscription is not on disk yet: it waits for the
        next flush, or its write failed (a full disk) and waits to be tried again."""
        async with self._flush_lock:  # a flush being written decides it first
            return loop.name in self._dirty

    def mark_dirty(self, name: str) -> None:
        self._dirty.add(name)
        self._dirty_event.set()

    async def _flush_forever(self) -> None:
        while True:
            await self._dirty_event.wait()
            self._dirty_event.clear()
            # shielded: a stop must not cut a write in half (the final flush waits for it)
            await asyncio.shield(self.flush())
            await asyncio.sleep(self._flush_interval)

    async def flush(self) -> None:
        """Write every subscription's progress changed since the last flush, in one transaction."""
        async with self._flush_lock:
            names, self._dirty = self._dirty, set()
            loops = [self.loops[n] for n in names if n in self.loops]
            if not loops:  # nothing unsaved (what failed was deleted since): deliver again
                self._save_failure.forget()
                self.progress_saved.set()
                return
            progress = [loop.take_progress() for loop in loops]
            try:
                await self._storage.save_progress(progress, self.log_size)
            except Exception as exc:
                # Deliveries wait (progress_saved) until it works: a crash meanwhile would
                # repeat everything delivered since the last write.
                self._save_failure.failed(exc)
                self.progress_saved.clear()
                for loop, snapshot in zip(loops, progress, strict=True):
                    loop.restore_progress(snapshot)
                    self._dirty.add(loop.name)
                self._dirty_event.set()  # try again after the interval
            else:
                self._save_failure.succeeded()
                self.progress_saved.set()

    def stats(self) -> dict[str, int]:
        return {
            "delivered_events": self.counters.delivered_events,
            "attempts": self.counters.attempts,
            "failed_attempts": self.counters.failed_attempts,
        }
