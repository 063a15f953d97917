"""When the flush that makes a round durable fails, none of the round's appends is
acknowledged, and appends are refused from then on (the kernel may have dropped the pages it
could not write, so nothing written since can be promised). Reads of what was flushed before
still work.

A real disk error cannot be produced here, so the pool runs with real SQLite files and a flush
that fails from its second call on.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from eventor.errors import StorageError, StorageUnavailable
from eventor.settings import Settings
from eventor.storage.base import open_storage
from eventor.storage.sqlite.backend import SQLiteStorage
from eventor.storage.sqlite.files import STREAMS_DIR
from eventor.storage.sqlite.flush import FileSystemFlush, available
from eventor.storage.sqlite.pool import StreamPool
from eventor.types import ANY, NewEvent


def event(n: int) -> NewEvent:
    return NewEvent("T", b'{"n": %d}' % n, "application/json", True, None, None, '["n"]')


def flushed_pool(data: Path, executor: ThreadPoolExecutor, flush: FileSystemFlush) -> StreamPool:
    """A pool as durability full on Linux runs it: NORMAL commits, rounds flushed by `flush`."""
    return StreamPool(
        data,
        "NORMAL",
        64,
        executor,
        on_commit=lambda state, count: None,
        on_open=lambda state: None,
        flush=flush,
    )


def test_a_failed_flush_fails_its_round_and_every_later_append(tmp_path: Path) -> None:
    (tmp_path / STREAMS_DIR).mkdir()
    flushes: list[int] = []
    release_first = threading.Event()
    first_entered = threading.Event()

    def flush(fd: int) -> None:
        flushes.append(fd)
        if len(flushes) == 1:
            first_entered.set()
            assert release_first.wait(10)  # holds round 1 while round 2 gathers
        else:
            raise OSError(5, "Input/output error")

    async def main() -> None:
        with ThreadPoolExecutor(2) as executor:
            flusher = FileSystemFlush(tmp_path / STREAMS_DIR, flush)
            pool = flushed_pool(tmp_path, executor, flusher)
            first = pool.append("a", [event(1)], ANY)  # round 1, flushed (held for now)
            second = [pool.append("b", [event(1)], ANY), pool.append("c", [event(1)], ANY)]
            entered = await asyncio.to_thread(first_entered.wait, 10)
            assert entered
            assert not first.done()  # acknowledged only once flushed
            assert not any(f.done() for f in second)  # one round at a time
            release_first.set()
            assert (await first).last_position == 1
            # Round 2 (b and c) is flushed after round 1, and that flush fails.
            outcomes = await asyncio.gather(*second, return_exceptions=True)
            assert all(isinstance(o, StorageError) for o in outcomes), outcomes
            assert "the disk failed" in str(outcomes[0])
            # From now on appends are refused at once, without touching the disk.
            with pytest.raises(StorageError, match="until Eventor restarts"):
                await pool.append("a", [event(2)], ANY)
            with pytest.raises(StorageError, match="until Eventor restarts"):
                await pool.call("a", lambda db: db.read(1, 10, False))
            assert len(flushes) == 2
            await pool.close()
            flusher.close()

    asyncio.run(main())


def test_work_queued_behind_a_failed_round_is_refused_not_run(tmp_path: Path) -> None:
    """An append waiting for the failed round must not commit on its own (a lone stream's
    round syncs its file without the flush), nor may a waiting read see unflushed events."""
    (tmp_path / STREAMS_DIR).mkdir()
    flushes: list[int] = []
    release_second = threading.Event()
    second_entered = threading.Event()

    def flush(fd: int) -> None:
        flushes.append(fd)
        if len(flushes) == 2:
            second_entered.set()
            assert release_second.wait(10)
            raise OSError(5, "Input/output error")

    async def main() -> None:
        with ThreadPoolExecutor(2) as executor:
            flusher = FileSystemFlush(tmp_path / STREAMS_DIR, flush)
            pool = flushed_pool(tmp_path, executor, flusher)
            assert (await pool.append("a", [event(1)], ANY)).last_position == 1  # a is open
            failing = pool.append("b", [event(1)], ANY)  # a new file: flushed, and that fails
            entered = await asyncio.to_thread(second_entered.wait, 10)
            assert entered
            waiting_append = pool.append("a", [event(2)], ANY)  # would be a lone-stream round
            waiting_read = pool.call("b", lambda db: db.read(1, 10, False))
            release_second.set()
            outcomes = await asyncio.gather(
                failing, waiting_append, waiting_read, return_exceptions=True
            )
            assert all(isinstance(o, StorageError) for o in outcomes), outcomes
            await pool.close()
            flusher.close()

    asyncio.run(main())


@pytest.mark.skipif(not available(), reason="syncfs is Linux only")
def test_after_a_failed_flush_the_storage_is_not_ready(tmp_path: Path) -> None:
    """/ready is `storage.is_open`: false once the disk failed, so traffic goes elsewhere."""

    def flush(fd: int) -> None:
        raise OSError(28, "No space left on device")

    async def main() -> None:
        storage = open_storage(tmp_path / "data", Settings(data_dir=tmp_path / "data"))
        assert isinstance(storage, SQLiteStorage)
        await storage.open()
        assert storage.is_open
        assert storage._flush is not None  # syncfs is used on Linux
        storage._flush._flush = flush  # a disk error cannot be made here
        with pytest.raises(StorageError, match="No space left"):
            await storage.append("s", [event(1)])
        assert not storage.is_open
        with pytest.raises(StorageUnavailable, match="the disk failed"):
            await storage.list_streams()
        await storage.close()

    asyncio.run(main())
