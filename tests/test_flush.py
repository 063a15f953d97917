"""The file system flush on its own: it flushes, counts, and after one failure refuses for
good (nothing written since the last good flush can be promised)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventor.storage.sqlite.flush import FileSystemFlush, SyncFailed, available


def test_a_failed_flush_fails_every_later_one_without_trying_again(tmp_path: Path) -> None:
    calls: list[int] = []

    def flush(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")

    flusher = FileSystemFlush(tmp_path, flush)
    flusher()
    with pytest.raises(SyncFailed, match="Input/output error"):
        flusher()
    for _ in range(3):
        with pytest.raises(SyncFailed, match="Input/output error"):
            flusher()
    assert len(calls) == 2, "no flush after a failed one can promise anything"
    assert flusher.flushes == 2
    flusher.close()


@pytest.mark.skipif(not available(), reason="syncfs is Linux only")
def test_real_syncfs(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x" * 4096)
    flusher = FileSystemFlush(tmp_path)
    flusher()
    flusher()
    assert flusher.flushes == 2
    assert flusher.flush_seconds > 0
    flusher.close()
