"""Subscription state in the catalog database: tables and queries.

Synchronous; run on the catalog's own thread. Configuration is one JSON column (it only changes
by request); progress has its own columns, rewritten by the delivery engine's group commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec

from ...types import (
    DeliveryAttempt,
    ParkedEvent,
    Subscription,
    SubscriptionConfig,
    SubscriptionProgress,
    SubscriptionRecord,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    name              TEXT PRIMARY KEY,
    config            TEXT NOT NULL,        -- JSON: SubscriptionConfig
    position          INTEGER NOT NULL,
    status            TEXT NOT NULL,
    paused_reason     TEXT,
    attempts          INTEGER NOT NULL,
    last_error        TEXT,
    last_delivered_at TEXT,
    created           TEXT NOT NULL,
    updated           TEXT NOT NULL,
    next_attempt_at   TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subscription_attempts (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL,
    position         INTEGER NOT NULL,
    event_id         TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    status_code      INTEGER,
    error            TEXT,
    response_excerpt TEXT,
    duration_ms      REAL NOT NULL,
    at               TEXT NOT NULL,
    last_position    INTEGER NOT NULL DEFAULT 0,
    events           INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS subscription_attempts_by_name ON subscription_attempts (name, id);
CREATE TABLE IF NOT EXISTS subscription_parked (
    name     TEXT NOT NULL,
    position INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    error    TEXT NOT NULL,
    at       TEXT NOT NULL,
    PRIMARY KEY (name, position)
) WITHOUT ROWID;
"""

_encode = msgspec.json.Encoder().encode
_config = msgspec.json.Decoder(SubscriptionConfig)

_STATE_COLUMNS = (
    "position, status, paused_reason, attempts, last_error, last_delivered_at, updated,"
    " next_attempt_at"
)


def create_tables(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(subscriptions)")}
    if "next_attempt_at" not in columns:  # a catalog made before the column was
        conn.execute("ALTER TABLE subscriptions ADD COLUMN next_attempt_at TEXT")
    logged = {row[1] for row in conn.execute("PRAGMA table_info(subscription_attempts)")}
    if "events" not in logged:  # made before batches' attempts said their range
        for column, default in (("last_position", 0), ("events", 1)):
            conn.execute(
                f"ALTER TABLE subscription_attempts ADD COLUMN {column}"
                f" INTEGER NOT NULL DEFAULT {default}"
            )


def load(conn: sqlite3.Connection, attempt_log_size: int) -> list[SubscriptionRecord]:
    records: dict[str, SubscriptionRecord] = {}
    # The columns in the order of Subscription's fields.
    for name, config, *state in conn.execute(
        "SELECT name, config, position, status, paused_reason, attempts, last_error,"
        " last_delivered_at, created, updated, next_attempt_at FROM subscriptions ORDER BY name"
    ):
        subscription = Subscription(name, _config.decode(config), *state)
        records[name] = SubscriptionRecord(subscription)
    for name, *fields in conn.execute(
        "SELECT name, position, event_id, attempt, status_code, error, response_excerpt,"
        " duration_ms, at, last_position, events FROM ("
        "  SELECT *, row_number() OVER (PARTITION BY name ORDER BY id DESC) AS age"
        "  FROM subscription_attempts"
        ") WHERE age <= ? ORDER BY name, id",
        (attempt_log_size,),
    ):
        record = records.get(name)
        if record is not None:
            record.attempts.append(DeliveryAttempt(*fields))
    for name, *fields in conn.execute(
        "SELECT name, position, event_id, error, at FROM subscription_parked"
        " ORDER BY name, position"
    ):
        record = records.get(name)
        if record is not None:
            record.parked.append(ParkedEvent(*fields))
    return list(records.values())


def save(
    conn: sqlite3.Connection,
    s: Subscription,
    pending: SubscriptionProgress | None = None,
    attempt_log_size: int = 0,
) -> None:
    with conn:
        conn.execute("BEGIN")
        conn.execute(
            f"INSERT OR REPLACE INTO subscriptions (name, config, {_STATE_COLUMNS}, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (s.name, _encode(s.config).decode(), *_state(s), s.created),
        )
        if pending is not None:
            _write_logs(conn, s.name, pending, attempt_log_size)


def delete(conn: sqlite3.Connection, name: str) -> None:
    with conn:
        conn.execute("BEGIN")
        conn.execute("DELETE FROM subscriptions WHERE name = ?", (name,))
        conn.execute("DELETE FROM subscription_attempts WHERE name = ?", (name,))
        conn.execute("DELETE FROM subscription_parked WHERE name = ?", (name,))


def save_progress(
    conn: sqlite3.Connection, progress: Sequence[SubscriptionProgress], attempt_log_size: int
) -> None:
    with conn:
        conn.execute("BEGIN")
        for p in progress:
            s = p.subscription
            updated = conn.execute(
                "UPDATE subscriptions SET position = ?, status = ?, paused_reason = ?,"
                " attempts = ?, last_error = ?, last_delivered_at = ?, updated = ?,"
                " next_attempt_at = ? WHERE name = ?",
                (*_state(s), s.name),
            )
            if updated.rowcount == 0:
                continue  # deleted meanwhile
            _write_logs(conn, s.name, p, attempt_log_size)


def _write_logs(
    conn: sqlite3.Connection, name: str, p: SubscriptionProgress, attempt_log_size: int
) -> None:
    """Append `p`'s attempts (keeping the newest `attempt_log_size`), park and unpark."""
    if p.attempts:
        conn.executemany(
            "INSERT INTO subscription_attempts (name, position, event_id, attempt,"
            " status_code, error, response_excerpt, duration_ms, at, last_position, events)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    name,
                    a.position,
                    a.event_id,
                    a.attempt,
                    a.status_code,
                    a.error,
                    a.response_excerpt,
                    a.duration_ms,
                    a.at,
                    a.last_position,
                    a.events,
                )
                for a in p.attempts[-attempt_log_size:]
            ],
        )
        conn.execute(
            "DELETE FROM subscription_attempts WHERE name = ? AND id < ("
            " SELECT id FROM subscription_attempts WHERE name = ?"
            " ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (name, name, attempt_log_size - 1),
        )
    if p.parked:
        conn.executemany(
            "INSERT OR REPLACE INTO subscription_parked (name, position, event_id, error,"
            " at) VALUES (?, ?, ?, ?, ?)",
            [(name, e.position, e.event_id, e.error, e.at) for e in p.parked],
        )
    if p.unparked:
        conn.executemany(
            "DELETE FROM subscription_parked WHERE name = ? AND position = ?",
            [(name, position) for position in p.unparked],
        )


def _state(s: Subscription) -> tuple[object, ...]:
    return (
        s.position,
        s.status,
        s.paused_reason,
        s.attempts,
        s.last_error,
        s.last_delivered_at,
        s.updated,
        s.next_attempt_at,
    )
