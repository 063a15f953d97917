"""Open stream databases: an LRU of them, each with a queue of work run one job at a time.

Every operation on a stream goes through its slot. While a job runs on a worker thread, new
appends wait in the slot; the next job takes all of them in one transaction (group commit).
Reads queue the same way and run at the start of the next job. Appends to different streams run
in parallel on the worker threads.

Open files are budgeted: a stream's database and WAL count from the moment its first job is
about to open them. A stream that needs its file while the budget is spent waits until the least
recently used idle stream has been closed.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ...clock import utc_now
from ...errors import EventorError, StorageError
from ...types import AppendResult, ExpectedVersion, NewEvent
from .files import stream_path
from .streamdb import AppendRequest, StreamDatabase, StreamState, Synchronous

T = TypeVar("T")
#: Each open stream holds its database file and its WAL file.
FILES_PER_STREAM = 2

Call = Callable[[StreamDatabase], Any]
Appends = list[tuple[AppendRequest, asyncio.Future[AppendResult]]]
Calls = list[tuple[Call, asyncio.Future[Any]]]
#: Told, on the event loop, of every commit: (stream state after it, events appended).
CommitListener = Callable[[StreamState, int], None]
#: Told, on the event loop, of a stream's state as its file says when the file is opened.
OpenListener = Callable[[StreamState], None]


@dataclass(slots=True)
class _Slot:
    name: str
    path: Path
    db: StreamDatabase | None = None
    appends: Appends = field(default_factory=list)
    calls: Calls = field(default_factory=list)
    closing: bool = False
    running: bool = False
    #: Counted in the file budget: its database is open, or a job is about to open it.
    holds_files: bool = False
    #: The running job closes the database.
    closing_job: bool = False


@dataclass(slots=True)
class _JobResult:
    opened: StreamState | None = None
    call_results: list[tuple[bool, Any]] = field(default_factory=list)
    append_results: list[AppendResult | EventorError] = field(default_factory=list)
    committed: StreamState | None = None
    appended: int = 0
    failure: BaseException | None = None


class StreamPool:
    """Runs work on stream databases, at most one job per stream at a time."""

    def __init__(
        self,
        data_dir: Path,
        synchronous: Synchronous,
        max_open_files: int,
        executor: ThreadPoolExecutor,
        on_commit: CommitListener,
        on_open: OpenListener,
    ) -> None:
        self._data_dir = data_dir
        self._synchronous = synchronous
        self._max_open = max(1, max_open_files // FILES_PER_STREAM)
        self._executor = executor
        self._on_commit = on_commit
        self._on_open = on_open
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self._waiting_for_files: OrderedDict[str, _Slot] = OrderedDict()
        self._holding = 0
        self._jobs: set[asyncio.Future[_JobResult]] = set()
        self.commits = 0
        self.appended_events = 0

    @property
    def open_streams(self) -> int:
        return sum(1 for slot in self._slots.values() if slot.db is not None)

    def append(
        self, stream: str, events: Sequence[NewEvent], expected: ExpectedVersion
    ) -> asyncio.Future[AppendResult]:
        slot = self._slot(stream)
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        slot.appends.append(((events, expected), future))
        slot.closing = False
        self._kick(slot)
        return future

    def call(self, stream: str, fn: Callable[[StreamDatabase], T]) -> asyncio.Future[T]:
        """Run `fn(db)` on a worker thread with the stream's open database (never creating it)."""
        slot = self._slot(stream)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        slot.calls.append((fn, future))
        slot.closing = False
        self._kick(slot)
        return future

    async def close(self) -> None:
        """Wait for running work, then close every open database."""
        while self._jobs:
            await asyncio.wait(set(self._jobs))
        loop = asyncio.get_running_loop()
        for slot in list(self._slots.values()):
            if slot.db is not None:
                await loop.run_in_executor(self._executor, slot.db.close)
                slot.db = None
        self._slots.clear()
        self._waiting_for_files.clear()
        self._holding = 0

    def _slot(self, stream: str) -> _Slot:
        slot = self._slots.get(stream)
        if slot is None:
            slot = _Slot(stream, stream_path(self._data_dir, stream))
            self._slots[stream] = slot
        else:
            self._slots.move_to_end(stream)
        return slot

    def _kick(self, slot: _Slot) -> None:
        if slot.running or not (slot.appends or slot.calls or slot.closing):
            return
        work = bool(slot.appends or slot.calls)
        if work and not slot.holds_files:
            if self._holding >= self._max_open:
                self._waiting_for_files[slot.name] = slot
                self._evict()
                return
            slot.holds_files = True
            self._holding += 1
        slot.running = True
        appends, slot.appends = slot.appends, []
        calls, slot.calls = slot.calls, []
        closing = slot.closing and not work
        slot.closing = False
        slot.closing_job = closing
        loop = asyncio.get_running_loop()
        early = None
        if appends and calls:
            # Reads answer before the appends' commit and fsync, not after (delivery latency).
            def early(results: list[tuple[bool, Any]]) -> None:
                loop.call_soon_threadsafe(_resolve, calls, results)

        job = loop.run_in_executor(
            self._executor,
            self._run,
            slot,
            [request for request, _ in appends],
            [fn for fn, _ in calls],
            closing,
            early,
        )
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        job.add_done_callback(lambda done: self._complete(slot, done.result(), appends, calls))

    def _run(
        self,
        slot: _Slot,
        appends: list[AppendRequest],
        calls: list[Call],
        closing: bool,
        early: Callable[[list[tuple[bool, Any]]], None] | None = None,
    ) -> _JobResult:
        """On a worker thread: the slot's database is ours alone until this returns."""
        result = _JobResult()
        try:
            if closing:
                if slot.db is not None:
                    slot.db.close()
                    slot.db = None
                return result
            now = utc_now()
            if slot.db is None:
                slot.db = StreamDatabase.open(
                    slot.path, slot.name, self._synchronous, create=bool(appends), created=now
                )
                result.opened = slot.db.state()
            db = slot.db
            for fn in calls:
                try:
                    result.call_results.append((True, fn(db)))
                except BaseException as exc:  # handed to the caller's future
                    result.call_results.append((False, exc))
            if early is not None:
                early(list(result.call_results))
            if appends:
                before = db.head
                result.append_results = db.append_batch(appends, now)
                result.appended = db.head - before
                if result.appended:
                    result.committed = db.state()
        except BaseException as exc:
            result.failure = exc
        return result

    def _complete(self, slot: _Slot, result: _JobResult, appends: Appends, calls: Calls) -> None:
        slot.running = False
        slot.closing_job = False
        if slot.db is None and slot.holds_files:
            slot.holds_files = False
            self._holding -= 1
        if result.opened is not None:
            self._on_open(result.opened)
        if result.failure is not None:
            error = _storage_error(result.failure)
            for _, future in appends:
                _fail(future, error)
            for _, future in calls:
                _fail(future, error)
        else:
            if result.committed is not None:
                self.commits += 1
                self.appended_events += result.appended
                self._on_commit(result.committed, result.appended)
            for (_, future), outcome in zip(appends, result.append_results, strict=True):
                if isinstance(outcome, EventorError):
                    _fail(future, outcome)
                elif not future.done():
                    future.set_result(outcome)
            _resolve(calls, result.call_results)
        if slot.appends or slot.calls or slot.closing:
            self._kick(slot)
        elif not slot.holds_files and self._slots.get(slot.name) is slot:
            del self._slots[slot.name]
        while self._waiting_for_files and self._holding < self._max_open:
            _, waiting = self._waiting_for_files.popitem(last=False)
            self._kick(waiting)
        self._evict()

    def _evict(self) -> None:
        """Close least recently used idle streams until the budget has room for the waiting."""
        if self._holding + len(self._waiting_for_files) <= self._max_open:
            return
        closing = sum(1 for slot in self._slots.values() if slot.closing or slot.closing_job)
        excess = self._holding + len(self._waiting_for_files) - self._max_open - closing
        if excess <= 0:
            return
        for slot in list(self._slots.values()):
            if excess <= 0:
                break
            idle = not (slot.running or slot.closing or slot.appends or slot.calls)
            if slot.db is not None and idle:
                slot.closing = True
                self._kick(slot)
                excess -= 1


def _resolve(calls: Calls, results: list[tuple[bool, Any]]) -> None:
    for (_, future), (ok, value) in zip(calls, results, strict=True):
        if ok:
            if not future.done():
                future.set_result(value)
        else:
            _fail(future, value)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def _storage_error(exc: BaseException) -> BaseException:
    if isinstance(exc, EventorError):
        return exc
    if isinstance(exc, Exception):
        error = StorageError(f"storage failed: {exc}")
        error.__cause__ = exc
        return error
    return exc
