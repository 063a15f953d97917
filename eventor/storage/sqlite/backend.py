"""SQLiteStorage: streams in their own files, the registry in the catalog, recovery on open."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ...errors import (
    StorageError,
    StorageFull,
    StorageUnavailable,
    StreamNotFound,
    WrongExpectedVersion,
)
from ...failures import RepeatedFailure
from ...types import (
    ANY,
    EXISTS,
    AppendResult,
    ExpectedVersion,
    NewEvent,
    ReadResult,
    RecordedEvent,
    StreamInfo,
    StreamSummary,
    Subscription,
    SubscriptionProgress,
    SubscriptionRecord,
)
from ..base import Storage
from . import flush, subscriptions
from .catalog import Catalog
from .files import (
    CATALOG_FILE,
    LOCK_FILE,
    NOT_WRITABLE,
    STREAM_FILE,
    STREAM_SUFFIX,
    STREAMS_DIR,
    disk_full,
    stream_file_name,
)
from .flush import FileSystemFlush
from .pool import StreamPool
from .registry import Registry
from .streamdb import (
    StreamCommit,
    StreamDatabase,
    StreamState,
    Synchronous,
    is_blank,
    read_stream_name,
    remove_files,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ...settings import Settings

T = TypeVar("T")
log = logging.getLogger("eventor.storage")

#: Seconds between catalog writes of the registry under load (it is a cache; see catalog.py).
CATALOG_FLUSH_INTERVAL = 0.2
WORKER_THREADS = 8
_SYNCHRONOUS: dict[str, Synchronous] = {"full": "FULL", "normal": "NORMAL", "off": "OFF"}


class DataDirInUse(OSError):
    """Another process holds the data directory."""


class SQLiteStorage(Storage):
    """The default backend. See `storage.base.Storage` for the contract."""

    def __init__(self, data_dir: Path, settings: Settings) -> None:
        self.data_dir = data_dir
        self._settings = settings
        self._registry = Registry()
        self._dirty: set[str] = set()
        self._registry_failure = RepeatedFailure(log, "writing the stream registry to the catalog")
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Future[None] | None = None
        self._lock_fd: int | None = None
        self._open = False
        self._streams_dir_id = (-1, -1)
        self._reconcile_task: asyncio.Task[bool] | None = None
        self._executor = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="eventor-stream")
        self._catalog_executor = ThreadPoolExecutor(1, thread_name_prefix="eventor-catalog")
        self._catalog: Catalog | None = None
        synchronous = _SYNCHRONOUS[settings.durability]
        method = settings.flush or ("syncfs" if flush.available() else "fsync")
        if method == "syncfs" and not flush.available():
            raise StorageUnavailable("--flush syncfs: this platform has no syncfs; use fsync")
        self._flush: FileSystemFlush | None = None
        parallel_rounds, streams_per_round = 1, None
        if synchronous == "FULL" and method == "syncfs":
            # Commits write without syncing; one flush of the file system makes each round of
            # them durable before any is acknowledged (see flush.py).
            self._flush = FileSystemFlush(data_dir / STREAMS_DIR)
            synchronous = "NORMAL"
        elif synchronous == "FULL":
            # Each commit syncs its own file: sync many streams in parallel.
            parallel_rounds, streams_per_round = WORKER_THREADS, 1
        self._pool = StreamPool(
            data_dir,
            synchronous,
            settings.max_open_files,
            self._executor,
            on_commit=self._committed,
            on_open=self._opened,
            flush=self._flush,
            parallel_rounds=parallel_rounds,
            streams_per_round=streams_per_round,
            guard=self._appends_refused,
        )
        self._moved_logged = False

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Open, its disk has not failed a flush (after one, only a restart helps), and its
        streams directory is still where it was (not moved or removed under the server)."""
        return self._open and self._pool.failed is None and self._same_streams_dir()

    @property
    def unwritable(self) -> str | None:
        streams_dir = self.data_dir / STREAMS_DIR
        if self._open and not os.access(streams_dir, os.W_OK):
            return f"the data directory {streams_dir} is not writable: {NOT_WRITABLE}"
        return None

    def _appends_refused(self) -> str | None:
        """Why writes must fail now (appends: on a worker thread, once a round): the data
        directory was moved or removed under the server, and what went into its files would
        be lost."""
        if self._same_streams_dir():
            self._moved_logged = False  # a later move is logged again
            return None
        if not self._moved_logged:
            self._moved_logged = True
            log.error("the data directory %s was moved or removed: appends fail", self.data_dir)
        return f"the data directory {self.data_dir} was moved or removed: restart Eventor on it"

    def _same_streams_dir(self) -> bool:
        try:
            found = os.stat(self.data_dir / STREAMS_DIR)
        except OSError:
            return False
        return (found.st_dev, found.st_ino) == self._streams_dir_id

    async def open(self) -> None:
        streams_dir = self.data_dir / STREAMS_DIR
        streams_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(self.data_dir / LOCK_FILE)
        opened = os.stat(streams_dir)
        self._streams_dir_id = (opened.st_dev, opened.st_ino)
        if self._flush is not None:
            self._flush.open()
        loop = asyncio.get_running_loop()
        await _start_threads(self._executor, WORKER_THREADS)
        await _start_threads(self._catalog_executor, 1)
        self._catalog = await loop.run_in_executor(
            self._catalog_executor, Catalog, self.data_dir / CATALOG_FILE, self._settings.durability
        )
        catalog = self._catalog
        states = await loop.run_in_executor(self._catalog_executor, catalog.streams)
        self._registry.load(states)
        clean = await self._catalog_call(catalog.get_state, "clean_shutdown")
        await self._catalog_call(catalog.set_state, "clean_shutdown", None)
        if clean != "1" and self._flush is not None:
            # Commits of a round cut short by the crash may sit unflushed in the page cache:
            # make them durable before anyone reads them.
            await loop.run_in_executor(self._executor, self._flush)
        await self._match_files(streams_dir)
        if clean != "1":
            if len(self._registry):
                log.info(
                    "the last stop was not clean (a crash, say): re-checking the heads of %d"
                    " streams in the background",
                    len(self._registry),
                )
            # The mirrored heads and counts may lag the files: re-check them all, in the
            # background (a stream used meanwhile is refreshed as its file opens).
            self._reconcile_task = asyncio.create_task(self._reconcile(self._registry_names()))
        self._open = True
        log.debug("storage open: %d streams, clean=%s", len(self._registry), clean == "1")

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        task = self._reconcile_task
        # A re-check after a crash cut short by this stop leaves heads unchecked: the next
        # start must re-check them, so the stop does not count as clean.
        rechecked = task is None or (task.done() and not task.cancelled() and task.result())
        if task is not None:
            task.cancel()
        await self._pool.close()
        if self._flush is not None:
            self._flush.close()
        await self._flush_catalog()
        # Unless the catalog holds every head, the stop is left unclean, so that the next start
        # re-checks every stream (after a failed flush, say, the files may hold what it does
        # not). Said now, or that start would read as after a crash.
        unclean = (
            "a flush to disk failed"
            if self._pool.failed is not None
            else "the re-check after the last crash was cut short"
            if not rechecked
            else "the catalog could not be brought up to date"
            if self._dirty
            else None
        )
        if self._catalog is not None and unclean is None:
            try:
                await self._catalog_call(self._catalog.set_state, "clean_shutdown", "1")
            except StorageError as exc:
                unclean = f"the clean stop could not be recorded ({exc})"
        if unclean is not None:
            log.warning("%s: the next start re-checks every stream's head", unclean)
        if self._catalog is not None:
            await self._catalog_call(self._catalog.close)
            self._catalog = None
        self._executor.shutdown()
        self._catalog_executor.shutdown()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def _match_files(self, streams_dir: Path) -> None:
        """Make the registry agree with the stream files, at every start (one listing).

        A registered stream whose file is gone (removed by hand while Eventor was stopped) is
        dropped, as is one without events (nothing in it was acknowledged). A stream file the
        catalog does not know (its last writes before a crash, or a file put back) is registered
        before serving: its events may have been acknowledged.
        """
        loop = asyncio.get_running_loop()
        files = set(await loop.run_in_executor(self._executor, os.listdir, streams_dir))
        dropped = []
        for name in self._registry_names():
            entry = self._registry.get(name)
            if stream_file_name(name) not in files:
                log.error("stream %r: its file is missing from %s; dropping it", name, streams_dir)
            elif entry is not None and entry.head == 0:
                log.info("stream %r holds no events: it is no stream", name)
            else:
                continue
            self._registry.remove(name)
            dropped.append(name)
        if dropped:
            assert self._catalog is not None
            await self._catalog_call(self._catalog.forget_streams, dropped)
        known = {stream_file_name(name) for name in self._registry_names()}
        registered = 0
        for file in sorted(files):
            if not file.endswith(STREAM_SUFFIX) or file in known:
                continue
            path = streams_dir / file
            found = await loop.run_in_executor(self._executor, read_stream_name, path)
            made_here = STREAM_FILE.fullmatch(file) is not None
            if (
                found is None
                and made_here
                and await loop.run_in_executor(self._executor, is_blank, path)
            ):
                # Cut short before it held anything (by a crash, or a write that failed):
                # nothing to keep, and it would be met again at every start.
                await loop.run_in_executor(self._executor, remove_files, path)
                log.info("removed %s: its making was cut short before it held anything", path)
                continue
            if found is None or path.name != _safe_file_name(found):
                log.warning("ignoring %s: not a stream database of this data directory", path)
                continue
            state = await self._pool.call(found, StreamDatabase.state)
            self._opened(state)
            registered += found in self._registry  # not when empty: see _opened
        if registered:
            log.info("registered %d stream files the catalog did not list", registered)

    async def _reconcile(self, names: list[str]) -> bool:
        """Re-check every stream's head against its file; False when some could not be."""
        rechecked = True
        for name in names:
            try:
                await self._pool.call(name, StreamDatabase.state)
            except StreamNotFound:
                log.warning("stream %r is in the catalog but its file is missing", name)
            except Exception:
                log.exception("could not re-check stream %r", name)
                rechecked = False
        return rechecked

    def _registry_names(self) -> list[str]:
        return [s.name for s in self._registry.page("", "", None)]

    # -- streams -------------------------------------------------------------------------------

    async def append(
        self, stream: str, events: Sequence[NewEvent], expected: ExpectedVersion = ANY
    ) -> AppendResult:
        self._check_open()
        if stream not in self._registry and (
            expected == EXISTS or (isinstance(expected, int) and expected > 0)
        ):
            # Refused before any file is made for the stream.
            raise WrongExpectedVersion(stream, expected, 0)
        return await self._pool.append(stream, events, expected)

    async def read(
        self,
        stream: str,
        start: int,
        limit: int,
        *,
        backward: bool = False,
        max_bytes: int | None = None,
    ) -> ReadResult:
        self._check_open()
        if stream not in self._registry:
            raise StreamNotFound(stream)

        def read(db: StreamDatabase) -> ReadResult:
            return ReadResult(db.head, db.read(start, limit, backward, max_bytes))

        return await self._pool.call(stream, read)

    def head(self, stream: str) -> int | None:
        entry = self._registry.get(stream)
        return None if entry is None else entry.head

    @property
    def heads_exact(self) -> bool:
        """False until the re-check after an unclean stop has read every stream's file (and
        for good if it could not read some)."""
        task = self._reconcile_task
        if task is None:
            return True
        return task.done() and not task.cancelled() and task.exception() is None and task.result()

    async def list_streams(
        self, *, prefix: str = "", after: str = "", limit: int | None = None
    ) -> list[StreamSummary]:
        self._check_open()
        task = self._reconcile_task
        if task is not None and not task.done():
            # After an unclean stop the mirrored heads may lag the files until re-checked.
            await asyncio.wait({task})
        return self._registry.page(prefix, after, limit)

    async def stream_info(self, stream: str) -> StreamInfo:
        self._check_open()
        if stream not in self._registry:
            raise StreamNotFound(stream)

        def info(db: StreamDatabase) -> StreamInfo:
            return StreamInfo(
                db.name,
                db.head,
                db.created,
                db.updated,
                db.size_bytes(),
                dict(db.event_types),
            )

        return await self._pool.call(stream, info)

    async def variants(
        self,
        stream: str,
        *,
        after: tuple[str, int] | None = None,
        max_bytes: int | None = None,
    ) -> list[RecordedEvent]:
        self._check_open()
        if stream not in self._registry:
            raise StreamNotFound(stream)
        return await self._pool.call(stream, lambda db: db.variants(after, max_bytes))

    # -- subscriptions -------------------------------------------------------------------------

    async def load_subscriptions(self, attempt_log_size: int) -> list[SubscriptionRecord]:
        return await self._catalog_call(subscriptions.load, self._conn(), attempt_log_size)

    async def save_subscription(
        self,
        subscription: Subscription,
        pending: SubscriptionProgress | None = None,
        attempt_log_size: int = 0,
    ) -> None:
        await self._catalog_call(
            subscriptions.save, self._conn(), subscription, pending, attempt_log_size
        )

    async def delete_subscription(self, name: str) -> None:
        await self._catalog_call(subscriptions.delete, self._conn(), name)

    async def save_progress(
        self, progress: Sequence[SubscriptionProgress], attempt_log_size: int
    ) -> None:
        await self._catalog_call(
            subscriptions.save_progress, self._conn(), progress, attempt_log_size
        )

    def _conn(self) -> sqlite3.Connection:
        self._check_open()
        refused = self._appends_refused()  # a subscription written there would be lost too
        if refused is not None:
            raise StorageUnavailable(refused)
        assert self._catalog is not None
        return self._catalog.connection

    def stats(self) -> dict[str, int]:
        return {
            "streams": len(self._registry),
            "events": self._registry.events,
            "commits": self._pool.commits,
            "flushes": self._flush.flushes if self._flush is not None else 0,
            "flush_microseconds": (
                int(self._flush.flush_seconds * 1e6) if self._flush is not None else 0
            ),
            "appended_events": self._pool.appended_events,
            "open_streams": self._pool.open_streams,
        }

    # -- registry upkeep -----------------------------------------------------------------------

    def _committed(self, commit: StreamCommit, appended: int) -> None:
        self._registry.committed(commit)
        self._mark_dirty(commit.name)
        self._appended(commit.name, commit.head)

    def _opened(self, state: StreamState) -> None:
        if state.head == 0 and state.name not in self._registry:
            # A file without events: its first append failed, or a crash cut it short. Nothing
            # in it was acknowledged, so the stream does not exist (reads stay 404).
            return
        known = self._registry.get(state.name)
        before = 0 if known is None else known.head
        if self._registry.update(state):
            self._mark_dirty(state.name)
            if state.head > before:
                # The file held more than the memory knew (after a crash, say): whoever waits
                # on the head in memory (a subscription, a long poll) learns it now.
                self._appended(state.name, state.head)

    def _mark_dirty(self, name: str) -> None:
        self._dirty.add(name)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_handle is None and self._flushing is None and self._dirty:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(CATALOG_FLUSH_INTERVAL, self._start_flush)

    def _start_flush(self) -> None:
        self._flush_handle = None
        self._flushing = asyncio.ensure_future(self._write_dirty())
        self._flushing.add_done_callback(self._flush_done)

    def _flush_done(self, _: asyncio.Future[None]) -> None:
        self._flushing = None
        if self._open:
            self._schedule_flush()

    async def _write_dirty(self) -> None:
        """Write the registry entries changed since the last write to the catalog."""
        if not self._dirty or self._catalog is None:
            return
        names, self._dirty = self._dirty, set()
        states = [self._registry.state(n) for n in names if n in self._registry]
        try:
            await self._catalog_call(self._catalog.save_streams, states)
        except Exception as exc:
            self._registry_failure.failed(exc)
            self._dirty |= names
        else:
            self._registry_failure.succeeded()

    async def _flush_catalog(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._flushing is not None:
            await self._flushing
        await self._write_dirty()

    async def _catalog_call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._catalog_executor, fn, *args)
        except sqlite3.Error as exc:
            if disk_full(exc):
                raise StorageFull(f"the catalog failed, the disk is full: {exc}") from exc
            raise StorageError(f"the catalog failed: {exc}") from exc

    def _check_open(self) -> None:
        if not self._open:
            raise StorageUnavailable("the storage is not open")
        if self._pool.failed is not None:
            raise StorageUnavailable(str(self._pool.failed))


def _safe_file_name(name: str) -> str | None:
    try:
        return stream_file_name(name)
    except Exception:
        return None


async def _start_threads(executor: ThreadPoolExecutor, count: int) -> None:
    """Start every thread of `executor` now. It starts them as work comes, and a thread that
    cannot start then (out of memory) fails a job it has already queued: the job runs later
    anyway, after its caller was told it failed. Started now, they never fail that way."""
    loop = asyncio.get_running_loop()
    barrier = threading.Barrier(count)  # each holds its thread until all are there
    started: list[asyncio.Future[int]] = []
    try:
        for _ in range(count):
            started.append(loop.run_in_executor(executor, barrier.wait, 10))
    except BaseException:
        barrier.abort()  # the threads already there stop waiting for the others
        await asyncio.gather(*started, return_exceptions=True)
        raise
    await asyncio.gather(*started)


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirInUse(f"{path.parent} is in use by another Eventor process") from None
    return fd
