"""Open stream databases: an LRU of them, each with a queue of work run one job at a time.

Every operation on a stream goes through its slot. While a job runs on a worker thread, new
appends wait in the slot; the next job takes all of them in one transaction and one fsync
(group commit). Reads queue the same way and run at the start of the next job. Appends to
different streams run in parallel on the worker threads. Idle streams past the file budget are
closed, least recently used first.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from ...errors import EventorError, StorageError
from ...settings import Durability
from ...types import AppendResult, ExpectedVersion, NewEvent
from .files import stream_path
from .streamdb import AppendRequest, StreamDatabase, StreamState

T = TypeVar("T")
#: Each open stream holds its database file and its WAL file.
FILES_PER_STREAM = 2

Call = Callable[[StreamDatabase], Any]
#: Told, on the event loop, of every commit: (stream state after it, number of events appended).
CommitListener = Callable[[StreamState, int], None]
#: Told, on the event loop, of a stream's state as its file says when the file is opened.
OpenListener = Callable[[StreamState], None]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class _Slot:
    name: str
    path: Path
    db: StreamDatabase | None = None
    appends: list[tuple[AppendRequest, asyncio.Future[AppendResult]]] = field(default_factory=list)
    calls: list[tuple[Call, bool, asyncio.Future[Any]]] = field(default_factory=list)
    closing: bool = False
    running: bool = False


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
        durability: Durability,
        max_open_files: int,
        executor: ThreadPoolExecutor,
        on_commit: CommitListener,
        on_open: OpenListener,
    ) -> None:
        self._data_dir = data_dir
        self._durability = durability
        self._max_open = max(1, max_open_files // FILES_PER_STREAM)
        self._executor = executor
        self._on_commit = on_commit
        self._on_open = on_open
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self._open_count = 0
        self._jobs: set[asyncio.Future[_JobResult]] = set()
        self.commits = 0
        self.appended_events = 0

    @property
    def open_streams(self) -> int:
        return self._open_count

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
        slot.calls.append((fn, False, future))
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
        self._open_count = 0

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
        slot.running = True
        appends, slot.appends = slot.appends, []
        calls, slot.calls = slot.calls, []
        closing = slot.closing and not appends and not calls
        if closing:
            slot.closing = False
        was_open = slot.db is not None
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
            [a[0] for a in appends],
            [c[0] for c in calls],
            closing,
            early,
        )
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        job.add_done_callback(lambda done: self._finish(slot, done, appends, calls, was_open))

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
                    slot.path, slot.name, self._durability, create=bool(appends), created=now
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

    def _finish(
        self,
        slot: _Slot,
        done: asyncio.Future[_JobResult],
        appends: list[tuple[AppendRequest, asyncio.Future[AppendResult]]],
        calls: list[tuple[Call, bool, asyncio.Future[Any]]],
        was_open: bool,
    ) -> None:
        slot.running = False
        result = done.result()
        now_open = slot.db is not None
        if now_open != was_open:
            self._open_count += 1 if now_open else -1
        if result.opened is not None:
            self._on_open(result.opened)
        if result.failure is not None:
            error = _storage_error(result.failure)
            for _, future in appends:
                _fail(future, error)
            for _, _, future in calls:
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
            for (_, _, future), (ok, value) in zip(calls, result.call_results, strict=True):
                if ok:
                    if not future.done():
                        future.set_result(value)
                else:
                    _fail(future, value)
        if slot.appends or slot.calls or slot.closing:
            self._kick(slot)
        elif slot.db is None and self._slots.get(slot.name) is slot:
            del self._slots[slot.name]
        self._evict()

    def _evict(self) -> None:
        excess = self._open_count - self._max_open
        if excess <= 0:
            return
        for slot in list(self._slots.values()):
            if excess <= 0:
                break
            if slot.db is not None and not slot.running and not slot.closing:
                slot.closing = True
                self._kick(slot)
                excess -= 1


def _resolve(
    calls: list[tuple[Call, bool, asyncio.Future[Any]]], results: list[tuple[bool, Any]]
) -> None:
    for (_, _, future), (ok, value) in zip(calls, results, strict=True):
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
