"""The catalog database: the stream registry and subscription state (subscriptions.py).

Synchronous; used from the catalog's own single thread. Stream rows mirror what each stream's
own database says (head, times, counts per type) so that listing and introspection read one
small table. The mirror is written lazily; after an unclean stop it is rebuilt from the streams.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from ...settings import Durability
from . import subscriptions
from .streamdb import StreamState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    name        TEXT PRIMARY KEY,
    head        INTEGER NOT NULL,
    created     TEXT NOT NULL,
    updated     TEXT NOT NULL,
    event_types TEXT NOT NULL          -- JSON object: type -> count
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""


class Catalog:
    """The open catalog database."""

    def __init__(self, path: Path, durability: Durability) -> None:
        self._conn = sqlite3.connect(
            f"file:{quote(str(path))}?mode=rwc",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
        )
        conn = self._conn
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {durability.upper()}")
        conn.executescript(_SCHEMA)
        subscriptions.create_tables(conn)
        self.connection = conn

    def close(self) -> None:
        self._conn.close()

    def streams(self) -> list[StreamState]:
        rows = self._conn.execute(
            "SELECT name, head, created, updated, event_types FROM streams ORDER BY name"
        ).fetchall()
        return [
            StreamState(name, head, created, updated, json.loads(types))
            for name, head, created, updated, types in rows
        ]

    def save_streams(self, states: Iterable[StreamState]) -> None:
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany(
                "INSERT OR REPLACE INTO streams (name, head, created, updated, event_types)"
                " VALUES (?, ?, ?, ?, ?)",
                [(s.name, s.head, s.created, s.updated, json.dumps(s.event_types)) for s in states],
            )

    def forget_streams(self, names: Iterable[str]) -> None:
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany("DELETE FROM streams WHERE name = ?", [(n,) for n in names])

    def get_state(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_state(self, key: str, value: str | None) -> None:
        with self._conn:
            self._conn.execute("BEGIN")
            if value is None:
                self._conn.execute("DELETE FROM state WHERE key = ?", (key,))
            else:
                self._conn.execute(
                    "INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value)
                )
