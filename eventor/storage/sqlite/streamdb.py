"""One stream's SQLite database. Synchronous; used by one thread at a time (see `pool`).

The file holds the events and, updated in the same transaction, the stream's introspection
data: counts per event type and one example event per payload shape. It is the authority for
its stream; the catalog only mirrors head and counts so listing needs no open files.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import quote

from ...errors import (
    EventorError,
    IdempotencyConflict,
    StorageError,
    StreamNotFound,
    WrongExpectedVersion,
)
from ...ids import new_ids
from ...types import (
    ANY,
    EXISTS,
    JSON_CONTENT_TYPE,
    NO_STREAM,
    AppendResult,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
)

SCHEMA_VERSION = 2
#: Distinct payload shapes remembered per event type; past this, new shapes are not recorded.
MAX_VARIANTS_PER_TYPE = 100
#: Page cache per open stream (KiB). Many streams stay open, so keep each small.
CACHE_KIB = 1024
#: Counts per type are saved with a commit at least this often (in events); the events after
#: the last save are counted again when the file opens.
COUNTS_SAVED_EVERY = 1000

# Separate statements, run in one transaction when a stream's file is made: the schema and the
# stream's identity appear together or not at all.
_SCHEMA = (
    """CREATE TABLE events (
        position     INTEGER PRIMARY KEY,
        id           TEXT NOT NULL UNIQUE,
        type         TEXT NOT NULL,
        data         BLOB NOT NULL,
        content_type TEXT,              -- NULL means application/json
        is_json      INTEGER NOT NULL,
        metadata     BLOB,
        created      TEXT NOT NULL
    )""",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    # Counts per type of the events up to meta's `counted_up_to` (a cache: see COUNTS_SAVED_EVERY).
    "CREATE TABLE event_types (type TEXT PRIMARY KEY, count INTEGER NOT NULL) WITHOUT ROWID",
    """CREATE TABLE variants (
        type TEXT NOT NULL, shape TEXT NOT NULL, position INTEGER NOT NULL,
        PRIMARY KEY (type, shape)
    ) WITHOUT ROWID""",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)

_COLUMNS = (
    "id, ?, position, type, data, coalesce(content_type, 'application/json'), is_json,"
    " metadata, created"
)
#: What an event weighs in a page: its data and metadata.
_SIZE = "length(data) + coalesce(length(metadata), 0)"
_DATA, _METADATA = 4, 7  # the indexes of `data` and `metadata` in _COLUMNS
_READ_FORWARD = f"SELECT {_COLUMNS} FROM events WHERE position >= ? ORDER BY position LIMIT ?"
_READ_BACKWARD = f"SELECT {_COLUMNS} FROM events WHERE position <= ? ORDER BY position DESC LIMIT ?"
# OR ROLLBACK: a failing row ends the whole transaction (as `_write` does with any failure
# anyway), so SQLite needs no statement journal to undo the statement alone. With one, each
# stream that had a multi-statement transaction kept a temporary file open (a third descriptor
# per open stream, outside the open-file budget, in /var/tmp) for as long as it stayed open.
_INSERT = (
    "INSERT OR ROLLBACK INTO events"
    " (position, id, type, data, content_type, is_json, metadata, created) VALUES "
)
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?)"
#: Rows per INSERT statement. One statement per chunk rather than executemany, because
#: executemany hands the GIL back and forth for every row, and each hand-back can wait out the
#: interpreter's switch interval while the event loop is busy.
_INSERT_CHUNK = 512

#: A row as a RecordedEvent: tuple.__new__ called from C, not namedtuple's _make in Python.
_recorded = functools.partial(tuple.__new__, RecordedEvent)

AppendRequest = tuple[Sequence[NewEvent], ExpectedVersion]
Synchronous = Literal["FULL", "NORMAL", "OFF"]


@dataclass(frozen=True, slots=True)
class StreamState:
    """What the registry mirrors of a stream: read from its database, the authority."""

    name: str
    head: int
    created: str
    updated: str
    event_types: dict[str, int]


@dataclass(frozen=True, slots=True)
class StreamCommit:
    """What one commit changed of a stream's state: its new head and last event's time, and
    the events it added by type (not the whole counts: a stream may hold many types, and
    copying them all at every commit cost milliseconds with 50,000)."""

    name: str
    head: int
    created: str
    updated: str
    added: dict[str, int]


class StreamDatabase:
    """An open stream database file."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, name: str, synchronous: Synchronous
    ) -> None:
        self._conn = conn
        self._synchronous = synchronous
        self.path = path
        self.name = name
        #: Opened as it is, for reading only, while its directory could not be written (see
        #: `open`): an append must open it again.
        self.read_only = False
        self.head: int = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
        self.created: str = conn.execute("SELECT value FROM meta WHERE key = 'created'").fetchone()[
            0
        ]
        last = conn.execute("SELECT created FROM events ORDER BY position DESC LIMIT 1").fetchone()
        self.updated: str = last[0] if last else self.created
        self.event_types: dict[str, int] = dict(
            conn.execute("SELECT type, count FROM event_types ORDER BY type").fetchall()
        )
        #: The events the last commit added, by type.
        self.last_added: dict[str, int] = {}
        # Counts not saved yet: of the events after `counted_up_to`, counted again here.
        self._unsaved_counts: dict[str, int] = {}
        self._counted_up_to = _counted_up_to(conn, self.head)
        #: The largest event's data and metadata, in bytes (saved with the counts; see `read`).
        self.largest = _saved_largest(conn)
        for type_, count, largest in conn.execute(
            f"SELECT type, count(*), max({_SIZE}) FROM events WHERE position > ? GROUP BY type",
            (self._counted_up_to,),
        ):
            self.event_types[type_] = self.event_types.get(type_, 0) + count
            self._unsaved_counts[type_] = count
            self.largest = max(self.largest, largest)
        # The shapes kept per type, by their hash: a shape is the list of an object's keys,
        # up to the size of an event (100 of 200 KB each were 20 MB a type, held while the
        # stream is open). Two shapes of one type with one 64-bit hash would cost an example.
        self._shapes: dict[str, set[int]] = {}
        for type_, shape in conn.execute("SELECT type, shape FROM variants"):
            self._shapes.setdefault(type_, set()).add(hash(shape))

    @classmethod
    def open(
        cls, path: Path, name: str, synchronous: Synchronous, *, create: bool, created: str
    ) -> StreamDatabase:
        """Open the stream's file; with `create`, make it when missing (its meta says `name`).

        Raises StreamNotFound when the file is missing (or was left half-made by a crash while
        it was being created) and `create` is false.

        Without `create` (to read), a file that cannot be opened for writing because its
        directory cannot be written (a read-only file system: its WAL file cannot be made) is
        opened for reading only, as it is, when it was closed cleanly (no WAL file holds
        commits it lacks); `read_only` then says so.
        """
        try:
            return cls._open(path, name, synchronous, create=create, created=created)
        except sqlite3.Error:
            if create or not _readable_as_it_is(path):
                raise
        conn = _connect(path, "ro&immutable=1")
        try:
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            _check_name(conn, path, name)
            db = cls(conn, path, name, synchronous)
        except BaseException:
            conn.close()
            raise
        db.read_only = True
        return db

    @classmethod
    def _open(
        cls, path: Path, name: str, synchronous: Synchronous, *, create: bool, created: str
    ) -> StreamDatabase:
        existed = path.exists()
        if not existed and not create:
            raise StreamNotFound(name)
        conn = _connect(path, "rw" if existed else "rwc")
        try:
            configure(conn, synchronous)
            made = (
                existed
                and conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
                ).fetchone()
            )
            if made:
                _check_name(conn, path, name)
            elif not create:
                raise StreamNotFound(name)
            else:
                conn.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("name", name),
                        ("created", created),
                        ("counted_up_to", "0"),
                        ("largest", "0"),
                    ],
                )
                conn.execute("COMMIT")
                if synchronous == "FULL":
                    _fsync_dir(path.parent)
            return cls(conn, path, name, synchronous)
        except BaseException:
            conn.close()
            if not existed:  # made here and holding nothing (a full disk, say): not left behind
                remove_files(path)
            raise

    def close(self) -> None:
        self._conn.close()

    def set_synchronous(self, synchronous: Synchronous) -> None:
        """Make the next commits sync (FULL) or not (NORMAL: the caller flushes them)."""
        if synchronous != self._synchronous:
            self._conn.execute(f"PRAGMA synchronous = {synchronous}")
            self._synchronous = synchronous

    def append_batch(
        self, requests: Sequence[AppendRequest], now: str
    ) -> list[AppendResult | EventorError]:
        """Append several requests in one transaction (one fsync): group commit.

        Each request is checked on its own (expected version, idempotency) against the stream
        as the requests before it in the batch left it; a failed check fails only that request.
        An error from SQLite fails the whole batch and is raised, leaving nothing changed.
        """
        head = self.head
        results: list[AppendResult | EventorError] = []
        rows: list[tuple[object, ...]] = []
        batch_ids: dict[str, int] = {}
        new_variants: list[tuple[str, str, int]] = []
        pending_shapes: set[tuple[str, str]] = set()
        pending_per_type: dict[str, int] = {}
        added: dict[str, int] = {}
        largest = self.largest
        for events, expected in requests:
            outcome = self._check(events, expected, head, batch_ids)
            if outcome is not None:
                results.append(outcome)
                continue
            first = head + 1
            missing = sum(1 for event in events if event.id is None)
            made = iter(new_ids(missing, events[0].id_version) if missing else ())
            ids = []
            for event in events:
                head += 1
                event_id = event.id or next(made)
                ids.append(event_id)
                batch_ids[event_id] = head
                added[event.type] = added.get(event.type, 0) + 1
                largest = max(largest, len(event.data) + len(event.metadata or b""))
                content_type = event.content_type
                rows.append(
                    (
                        head,
                        event_id,
                        event.type,
                        event.data,
                        None if content_type == JSON_CONTENT_TYPE else content_type,
                        event.is_json,
                        event.metadata,
                        event.created or now,
                    )
                )
                shapes = self._shapes.get(event.type)
                if shapes is None or hash(event.shape) not in shapes:
                    key = (event.type, event.shape)
                    if key not in pending_shapes:
                        # Kept and pending together stay within the bound.
                        kept = (0 if shapes is None else len(shapes)) + pending_per_type.get(
                            event.type, 0
                        )
                        if kept < MAX_VARIANTS_PER_TYPE:
                            pending_shapes.add(key)
                            pending_per_type[event.type] = pending_per_type.get(event.type, 0) + 1
                            new_variants.append((event.type, event.shape, head))
            results.append(AppendResult(self.name, first, head, tuple(ids)))
        if rows:
            unsaved = self._unsaved_counts
            save_counts = (
                len(rows) > _INSERT_CHUNK
                or bool(new_variants)
                or head - self._counted_up_to >= COUNTS_SAVED_EVERY
            )
            counts = (_added_up(unsaved, added), head, largest) if save_counts else None
            self._write(rows, new_variants, counts)
            if save_counts:
                self._counted_up_to = head
                unsaved.clear()
            else:
                _add(unsaved, added)
            self.head = head
            self.updated = cast(str, rows[-1][-1])  # the last event's `created`
            self.largest = largest
            _add(self.event_types, added)
            self.last_added = added
            for event_type, shape, _ in new_variants:
                self._shapes.setdefault(event_type, set()).add(hash(shape))
        return results

    def _write(
        self,
        rows: list[tuple[object, ...]],
        new_variants: list[tuple[str, str, int]],
        counts: tuple[dict[str, int], int, int] | None,
    ) -> None:
        """Insert `rows` (and variants, and `counts`: counts per type to add, counted up to a
        position, and the largest event's size up to it) atomically.

        A single statement commits on its own: one call into SQLite, so the worker thread takes
        the GIL back once rather than once per statement (see `_INSERT_CHUNK`). That is why the
        counts per type are saved only now and then (a trigger kept them exact at every commit,
        at 4 µs an event: half the cost of a batch append).
        """
        conn = self._conn
        if len(rows) <= _INSERT_CHUNK and not new_variants and counts is None:
            _insert(conn, rows)
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            _insert(conn, rows)
            if new_variants:
                conn.executemany(
                    "INSERT OR IGNORE INTO variants (type, shape, position) VALUES (?, ?, ?)",
                    new_variants,
                )
            if counts is not None:
                added, up_to, largest = counts
                conn.executemany(
                    "INSERT INTO event_types (type, count) VALUES (?, ?)"
                    " ON CONFLICT (type) DO UPDATE SET count = count + excluded.count",
                    list(added.items()),
                )
                conn.executemany(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    [("counted_up_to", str(up_to)), ("largest", str(largest))],
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _check(
        self,
        events: Sequence[NewEvent],
        expected: ExpectedVersion,
        head: int,
        batch_ids: dict[str, int],
    ) -> AppendResult | EventorError | None:
        """None when the request may be appended; else its idempotent result or its error."""
        given = [event.id for event in events if event.id is not None]
        if given:
            found = {i: batch_ids[i] for i in given if i in batch_ids}
            rest = [i for i in given if i not in found]
            if rest:
                found.update(
                    self._conn.execute(
                        "SELECT id, position FROM events"
                        " WHERE id IN (SELECT value FROM json_each(?))",
                        (_json_list(rest),),
                    ).fetchall()
                )
            if found:
                positions = [found.get(event.id or "") for event in events]
                first = positions[0]
                if first is not None and positions == list(range(first, first + len(events))):
                    return AppendResult(
                        self.name, first, first + len(events) - 1, tuple(given), created=False
                    )
                return IdempotencyConflict(
                    f"{len(found)} of the {len(events)} events are already in stream"
                    f" {self.name!r} (ids {', '.join(sorted(found)[:3])}...), but not as this"
                    " same consecutive sequence: send all of them again, or only new ids"
                )
        if expected == ANY:
            return None
        if expected == NO_STREAM:
            ok = head == 0
        elif expected == EXISTS:
            ok = head > 0
        else:
            ok = head == expected
        return None if ok else WrongExpectedVersion(self.name, expected, head)

    def read(
        self, start: int, limit: int, backward: bool, max_bytes: int | None = None
    ) -> list[RecordedEvent]:
        """Up to `limit` events from `start`. With `max_bytes`, the page ends once their data
        (and metadata) pass it (see `_rows_up_to`; where every event is small, all rows come
        at once)."""
        sql = _READ_BACKWARD if backward else _READ_FORWARD
        cursor = self._conn.execute(sql, (self.name, start, limit))
        if max_bytes is None or max_bytes // max(self.largest, 1) >= limit:
            return list(map(_recorded, cursor.fetchall()))
        return list(map(_recorded, self._rows_up_to(cursor, max_bytes)))

    def _rows_up_to(self, cursor: sqlite3.Cursor, max_bytes: int) -> list[Any]:
        """Rows of events until their data and metadata pass `max_bytes`, fetched as many at a
        time as `max_bytes` holds of the stream's largest event: so it overshoots by
        `max_bytes` at most."""
        chunk = max(1, max_bytes // max(self.largest, 1))
        rows: list[Any] = []
        size = 0
        while size < max_bytes:
            more = cursor.fetchmany(chunk)
            if not more:
                break
            rows += more
            size += sum(len(row[_DATA]) + len(row[_METADATA] or b"") for row in more)
        cursor.close()
        return rows

    def state(self) -> StreamState:
        return StreamState(self.name, self.head, self.created, self.updated, dict(self.event_types))

    def last_commit(self) -> StreamCommit:
        """What the last `append_batch` that appended anything changed."""
        return StreamCommit(self.name, self.head, self.created, self.updated, self.last_added)

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total

    def variants(
        self, after: tuple[str, int] | None = None, max_bytes: int | None = None
    ) -> list[RecordedEvent]:
        """The example events of the payload shapes, by type and position, after `after`
        (a type and a position); with `max_bytes`, ending once their data (and metadata) pass
        it."""
        cursor = self._conn.execute(
            "SELECT e.id, ?, e.position, e.type, e.data,"
            " coalesce(e.content_type, 'application/json'), e.is_json, e.metadata, e.created"
            " FROM variants v JOIN events e ON e.position = v.position"
            " WHERE (v.type, v.position) > (?, ?) ORDER BY v.type, v.position",
            (self.name, *(after or ("", 0))),
        )
        if max_bytes is None:
            return list(map(_recorded, cursor.fetchall()))
        return list(map(_recorded, self._rows_up_to(cursor, max_bytes)))


def _add(counts: dict[str, int], more: dict[str, int]) -> None:
    for key, count in more.items():
        counts[key] = counts.get(key, 0) + count


def _added_up(counts: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    total = dict(counts)
    _add(total, more)
    return total


def _counted_up_to(conn: sqlite3.Connection, head: int) -> int:
    """The position up to which `event_types` holds exact counts.

    Files of schema 1 kept their counts with a trigger, exact at every commit: the trigger goes
    (its cost is why) and the counts stand as counted up to the head."""
    trigger = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'count_event_types'"
    ).fetchone()
    if trigger is not None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DROP TRIGGER count_event_types")
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('counted_up_to', ?)", (str(head),)
            )
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return head
    row = conn.execute("SELECT value FROM meta WHERE key = 'counted_up_to'").fetchone()
    return 0 if row is None else int(row[0])


def _saved_largest(conn: sqlite3.Connection) -> int:
    """The largest event's size as saved with the counts. Files from before it was saved
    measure it once, and save it at once (not every open should scan the whole file)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'largest'").fetchone()
    if row is not None:
        return int(row[0])
    largest = int(conn.execute(f"SELECT coalesce(max({_SIZE}), 0) FROM events").fetchone()[0])
    conn.execute("INSERT INTO meta (key, value) VALUES ('largest', ?)", (str(largest),))
    return largest


def configure(conn: sqlite3.Connection, synchronous: Synchronous) -> None:
    """WAL with the connection holding the lock: no -shm file, one process per data dir."""
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    return sqlite3.connect(
        f"file:{quote(str(path))}?mode={mode}",
        uri=True,
        isolation_level=None,
        check_same_thread=False,
        cached_statements=32,
    )


def _check_name(conn: sqlite3.Connection, path: Path, name: str) -> None:
    """StorageError unless the file's meta says it holds stream `name` (one copied over
    another's, say)."""
    stored = conn.execute("SELECT value FROM meta WHERE key = 'name'").fetchone()
    if stored is None or stored[0] != name:
        raise StorageError(f"{path} holds stream {stored!r}, expected {name!r}")


def _readable_as_it_is(path: Path) -> bool:
    """Whether the file at `path` exists, its directory cannot be written, and no WAL file
    beside it holds commits (closed cleanly, SQLite leaves none)."""
    if not path.is_file() or os.access(path.parent, os.W_OK):
        return False
    try:
        return os.stat(f"{path}-wal").st_size == 0
    except FileNotFoundError:
        return True
    except OSError:
        return False


def read_stream_name(path: Path) -> str | None:
    """The stream name recorded inside a stream file, None when it holds none."""
    if not path.is_file():
        return None  # a directory (or anything else) that happens to end in .db
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        row = conn.execute("SELECT value FROM meta WHERE key = 'name'").fetchone()
        return None if row is None else str(row[0])
    except sqlite3.DatabaseError:
        return None
    finally:
        conn.close()


def remove_files(path: Path) -> None:
    """Remove a database file and its WAL and shared-memory files, those that are there."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            os.unlink(f"{path}{suffix}")


def is_blank(path: Path) -> bool:
    """Whether `path` is a database without a single table: a stream file a crash cut short
    before its schema committed (it is made anew, in place, when its stream is appended to)."""
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")  # as read_stream_name: no -shm file
        return conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0  # type: ignore[no-any-return]
    except sqlite3.DatabaseError:
        return False
    finally:
        conn.close()


def _insert(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start : start + _INSERT_CHUNK]
        conn.execute(
            _INSERT + ", ".join([_ROW] * len(chunk)),
            [value for row in chunk for value in row],
        )


def _json_list(values: list[str]) -> str:
    # ids are canonical UUID texts: nothing in them needs escaping.
    return "[" + ",".join(f'"{value}"' for value in values) + "]"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
