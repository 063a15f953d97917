"""The flush barrier on its own: many waiters share flushes, none returns before a flush that
began after it arrived has finished, and a failed flush fails every wait from then on."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from eventor.storage.sqlite.barrier import SyncBarrier, SyncFailed, available

WAITERS = 32


class RecordingFlush:
    """A flush that takes a while and records when each one began and ended."""

    def __init__(self, seconds: float = 0.005, fail_at: int | None = None) -> None:
        self.seconds = seconds
        self.fail_at = fail_at
        self.spans: list[tuple[float, float]] = []
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()

    def __call__(self, fd: int) -> None:
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            number = len(self.spans) + 1
        began = time.monotonic()
        time.sleep(self.seconds)
        with self._lock:
            self.active -= 1
            self.spans.append((began, time.monotonic()))
        if number == self.fail_at:
            raise OSError(5, "Input/output error")


def wait_all(barrier: SyncBarrier, count: int) -> list[tuple[float, float, BaseException | None]]:
    """Start `count` threads that each wait once; (arrived, returned, error) for each."""
    out: list[tuple[float, float, BaseException | None]] = []
    lock = threading.Lock()

    def waiter() -> None:
        arrived = time.monotonic()
        error: BaseException | None = None
        try:
            barrier.wait()
        except BaseException as exc:
            error = exc
        with lock:
            out.append((arrived, time.monotonic(), error))

    threads = [threading.Thread(target=waiter) for _ in range(count)]
    for thread in threads:
        thread.start()
        time.sleep(0.0005)  # arrivals spread over several flushes
    for thread in threads:
        thread.join(timeout=30)
    assert len(out) == count
    return out


def test_waiters_share_flushes_and_each_is_covered(tmp_path: Path) -> None:
    flush = RecordingFlush()
    barrier = SyncBarrier(tmp_path, flush)
    results = wait_all(barrier, WAITERS)
    barrier.close()

    assert all(error is None for _, _, error in results)
    assert flush.most_active == 1, "flushes must not overlap"
    assert 1 <= len(flush.spans) < WAITERS, f"{len(flush.spans)} flushes for {WAITERS} waits"
    assert barrier.flushes == len(flush.spans)
    for arrived, returned, _ in results:
        # Some flush began after this waiter arrived and ended before it returned.
        assert any(arrived <= began and ended <= returned for began, ended in flush.spans)


def test_a_failed_flush_fails_every_wait_after_it(tmp_path: Path) -> None:
    flush = RecordingFlush(seconds=0.001, fail_at=1)
    barrier = SyncBarrier(tmp_path, flush)
    with pytest.raises(SyncFailed, match="Input/output error"):
        barrier.wait()
    results = wait_all(barrier, 4)
    assert all(isinstance(error, SyncFailed) for _, _, error in results)
    assert len(flush.spans) == 1, "no flush after a failed one can promise anything"
    barrier.close()


@pytest.mark.skipif(not available(), reason="syncfs is Linux only")
def test_real_syncfs(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x" * 4096)
    barrier = SyncBarrier(tmp_path)
    barrier.wait()
    barrier.wait()
    assert barrier.flushes == 2
    assert barrier.flush_seconds > 0
    barrier.close()
