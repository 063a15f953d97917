"""The original Eventor's data files (the 2017 Go server), read without changing them.

Its data dir holds one SQLite file per stream, `<stream>.db` with `events (uuid, body, type,
created)` whose rowid is the position, and `_meta.db` with the subscriptions. Other `.db` files
(its introspection's) are not streams. Files are opened read-only: `immutable=1` when there is
no `-wal` file (a read-only open of a WAL database would otherwise leave empty `-wal` and `-shm`
files behind), plain `mode=ro` when there is one, so that the events still in it are read.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

META_FILE = "_meta.db"
#: Eventor's own catalog, beside the original's files after an upgrade in place. Probed only
#: as immutable: a read-only open of its WAL would leave a -shm file that Eventor never uses.
EVENTOR_CATALOG = "catalog.db"
STREAM_SUFFIX = ".db"
_EVENT_COLUMNS = ["uuid", "body", "type", "created"]

#: Go's `time.Time.String()` ("2006-01-02 15:04:05.999999999 -0700 MST", and " m=+1.5" when
#: the time carries a monotonic reading), and RFC 3339 as some drivers wrote times.
_GO_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r" ?(Z|[+-]\d{2}:?\d{2})(?: [A-Za-z0-9+_-]+)?(?: m=[+-]\d+(?:\.\d+)?)?"
)


class LegacyFileError(Exception):
    """A legacy file cannot be read as what it should be."""


@dataclass(frozen=True, slots=True)
class LegacyEvent:
    """One row of a legacy stream, as stored (texts decoded from UTF-8 where they can be)."""

    position: int
    uuid: str | None
    body: bytes
    type: str | None
    created: str | None


@dataclass(frozen=True, slots=True)
class LegacySubscription:
    """One row of `_meta.db`'s subscriptions, as stored."""

    name: str | None
    stream: str | None
    url: str | None
    headers: str | None
    last_read_position: object
    is_active: object
    created_at: str | None
    updated_at: str | None
    pause_reason: str | None


def connect(path: Path, timeout: float = 5.0, *, immutable: bool = False) -> sqlite3.Connection:
    """Open a legacy database read-only (texts come back as bytes: see `_text`)."""
    immutable = immutable or not path.with_name(path.name + "-wal").exists()
    uri = f"file:{quote(str(path))}?mode=ro" + ("&immutable=1" if immutable else "")
    conn = sqlite3.connect(
        uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
    )
    conn.text_factory = bytes
    return conn


def stream_files(data_dir: Path) -> list[tuple[str, Path]]:
    """(stream name, file) of every legacy stream file directly in `data_dir`, by name, and of
    every `.db` file there that cannot be read as a database (no permission, a `-wal` without
    its `-shm` in a read-only dir, truncated, a damaged header): the import refuses those with
    the reason, never skips them. A database without the events table is no stream."""
    found = []
    for path in sorted(data_dir.glob("*" + STREAM_SUFFIX)):
        if path.name == META_FILE or not path.is_file():
            continue
        probed = _probe(path)
        if probed or (probed is None and path.name != EVENTOR_CATALOG):
            found.append((path.name.removesuffix(STREAM_SUFFIX), path))
    return found


def is_stream_file(path: Path) -> bool:
    """True when `path` is a database with the original's events table. A database locked
    for good (Eventor locks its own files; the original never did) is not waited for."""
    return _probe(path) is True


def _probe(path: Path) -> bool | None:
    """Whether `path` holds the original's events table; None when it cannot be opened or
    read as a database (so it may be a stream: it cannot say). A stream file cut short or
    with a damaged header reads as "malformed" or "not a database", like any other file."""
    try:
        conn = connect(path, timeout=0, immutable=path.name == EVENTOR_CATALOG)
        try:
            return _is_stream(conn)
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def _is_stream(conn: sqlite3.Connection) -> bool:
    columns = [row[1] for row in conn.execute("PRAGMA table_info(events)")]
    return [_text(c) for c in columns] == _EVENT_COLUMNS


class LegacyStream:
    """One legacy stream file, read in one read transaction (a consistent view)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path)
        self._conn.execute("BEGIN")

    def close(self) -> None:
        self._conn.close()

    def last_position(self) -> int:
        """The largest rowid (0 when empty): a lookup, not a scan."""
        row = self._conn.execute("SELECT max(rowid) FROM events").fetchone()
        return int(row[0] or 0)

    def positions(self) -> tuple[int, int, int]:
        """(count, first, last) of the rowids; a gap-free stream has count == last, first 1."""
        count, first, last = self._conn.execute(
            "SELECT count(*), coalesce(min(rowid), 0), coalesce(max(rowid), 0) FROM events"
        ).fetchone()
        return int(count), int(first), int(last)

    def repeated_uuids(self, limit: int) -> list[tuple[str | None, list[int]]]:
        """Up to `limit` uuids (lowercased) that more than one event holds in any case, each
        with their positions (one scan and sort of the uuids: about 2 s for 1,000,000 events)."""
        rows = self._conn.execute(
            "SELECT lower(uuid) AS id, group_concat(rowid) FROM events"
            " GROUP BY id HAVING count(*) > 1 LIMIT ?",
            (limit,),
        ).fetchall()
        return [(_text(id_), sorted(map(int, rowids.split(b",")))) for id_, rowids in rows]

    def events(
        self, after: int = 0, *, with_body: bool = True, chunk: int = 1000
    ) -> Iterator[LegacyEvent]:
        """The events after position `after`, in position order (bodies empty unless
        `with_body`). A body is read as the bytes stored, whether a BLOB or TEXT."""
        body = "CAST(body AS BLOB)" if with_body else "NULL"
        cursor = self._conn.execute(
            f"SELECT rowid, uuid, {body}, type, created FROM events WHERE rowid > ? ORDER BY rowid",
            (after,),
        )
        while rows := cursor.fetchmany(chunk):
            for position, uuid, body, type_, created in rows:
                yield LegacyEvent(position, _text(uuid), body or b"", _text(type_), _text(created))


def subscriptions(data_dir: Path) -> list[LegacySubscription]:
    """The subscriptions of `_meta.db` in `data_dir` ([] when there is no such file)."""
    path = data_dir / META_FILE
    if not path.is_file():
        return []
    try:
        conn = connect(path)
        try:
            rows = conn.execute(
                "SELECT name, stream, url, httpHeaders, lastReadPosition, isActive, createdAt,"
                " updatedAt, pauseReason FROM subscriptions ORDER BY rowid"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise LegacyFileError(f"{path}: cannot read its subscriptions: {exc}") from None
    return [
        LegacySubscription(
            _text(name),
            _text(stream),
            _text(url),
            _text(headers),
            _text(position) if isinstance(position, bytes) else position,
            _text(active) if isinstance(active, bytes) else active,
            _text(created),
            _text(updated),
            _text(reason),
        )
        for name, stream, url, headers, position, active, created, updated, reason in rows
    ]


def parse_go_time(text: str | None) -> str | None:
    """A time as the Go server wrote it, as RFC 3339 UTC with microseconds; None when it
    is not one. Nanoseconds are cut to microseconds (never rounded up past the next second)."""
    match = _GO_TIME.fullmatch(text.strip()) if text else None
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if zone == "Z":
        offset = timedelta(0)
    else:
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if zone[0] == "-":
            offset = -offset
    try:
        local = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0").ljust(9, "0")[:6]),
            tzinfo=timezone(offset),
        )
        utc = local.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond:06d}Z"
    )


def _text(value: object) -> str | None:
    """A stored text (or blob) as a string; None for NULL or bytes that are not UTF-8."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return None
    return None if value is None else str(value)
