"""Counts per event type: kept in memory, saved with a commit now and then, recounted on open.

Real SQLite files, no server: what a crash leaves is a file whose saved counts lag its events.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path

from eventor.clock import utc_now
from eventor.storage.sqlite.streamdb import COUNTS_SAVED_EVERY, StreamDatabase
from eventor.types import NewEvent


def open_db(path: Path) -> StreamDatabase:
    return StreamDatabase.open(path, "s", "NORMAL", create=True, created=utc_now())


def append(db: StreamDatabase, types: list[str]) -> None:
    results = db.append_batch([([NewEvent(t, b"{}", shape="[]")], "any") for t in types], utc_now())
    assert all(not isinstance(r, Exception) for r in results)


def saved_counts(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as conn:
        return dict(conn.execute("SELECT type, count FROM event_types"))


def test_counts_are_exact_whenever_the_file_is_opened_again(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    db = open_db(path)
    expected: Counter[str] = Counter()
    # one event a commit (the single-statement commits that do not save counts), past the
    # point where a commit saves them, then some more left unsaved
    for n in range(COUNTS_SAVED_EVERY + 250):
        kind = "A" if n % 3 else "B"
        append(db, [kind])
        expected[kind] += 1
    assert db.event_types == expected
    db.close()  # like a crash: nothing saved on the way out
    # saved on the way (with each new shape, then after COUNTS_SAVED_EVERY), not since
    assert COUNTS_SAVED_EVERY <= sum(saved_counts(path).values()) < sum(expected.values())
    again = StreamDatabase.open(path, "s", "NORMAL", create=False, created=utc_now())
    assert again.event_types == expected
    append(again, ["C"] * 600)  # a big batch saves the counts with its commit
    expected["C"] += 600
    assert again.event_types == expected
    again.close()
    assert saved_counts(path) == expected


def test_a_file_counted_by_the_old_trigger_keeps_its_counts(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    open_db(path).close()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:  # as schema 1 made it
        conn.execute("DELETE FROM meta WHERE key = 'counted_up_to'")
        conn.execute(
            """CREATE TRIGGER count_event_types AFTER INSERT ON events BEGIN
            INSERT INTO event_types (type, count) VALUES (new.type, 1)
            ON CONFLICT (type) DO UPDATE SET count = count + 1; END"""
        )
        conn.executemany(
            "INSERT INTO events (position, id, type, data, is_json, created)"
            " VALUES (?, ?, ?, '{}', 1, '2026-11-28T00:00:00.000000Z')",
            [(n, f"id-{n}", "Old") for n in range(1, 6)],
        )
    db = StreamDatabase.open(path, "s", "NORMAL", create=False, created=utc_now())
    assert db.event_types == {"Old": 5}
    append(db, ["New"])
    db.close()
    db = StreamDatabase.open(path, "s", "NORMAL", create=False, created=utc_now())
    assert db.event_types == {"Old": 5, "New": 1}  # the trigger is gone: nothing counted twice
    db.close()


def test_the_largest_event_is_known_after_reopening(tmp_path: Path) -> None:
    """Reads bound a page's bytes by the stream's largest event: it is saved with the counts,
    measured again past them on open, and measured once in files from before it was saved."""
    path = tmp_path / "s.db"
    db = open_db(path)
    db.append_batch([([NewEvent("A", b"x" * 5000, shape="(x)")], "any")], utc_now())  # saved
    append(db, ["A"] * 3)
    db.append_batch([([NewEvent("A", b'"%s"' % (b"y" * 7000))], "any")], utc_now())  # not yet
    assert db.largest == 7002
    db.close()
    again = open_db(path)
    assert again.largest == 7002
    # one row per fetch (8000 bytes hold one event of 7002): the page ends past 8000 bytes
    assert [e.position for e in again.read(1, 100, False, max_bytes=8000)] == [1, 2, 3, 4, 5]
    assert [e.position for e in again.read(1, 100, False, max_bytes=4000)] == [1]
    assert len(again.read(1, 100, False, max_bytes=8000 * 100)) == 5  # all at once
    again.close()
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("DELETE FROM meta WHERE key = 'largest'")
    measured = open_db(path)
    assert measured.largest == 7002
    measured.close()
    with closing(sqlite3.connect(path)) as conn:  # saved at once: the next open reads it
        assert conn.execute("SELECT value FROM meta WHERE key = 'largest'").fetchone() == ("7002",)


def test_metadata_weighs_in_a_page_too(tmp_path: Path) -> None:
    db = open_db(tmp_path / "s.db")
    heavy = NewEvent("A", b"{}", metadata=b'{"m": "%s"}' % (b"z" * 9000))
    db.append_batch([([heavy] * 3, "any")], utc_now())
    assert db.largest == 2 + 9009
    assert [e.position for e in db.read(1, 100, False, max_bytes=9000)] == [1]
