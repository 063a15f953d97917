"""`eventor import-original`: the Go server's data dir, built here as its code wrote it, is
imported by the real CLI and served by a real server on the same data dir."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ServerProcess
from delivery.receiver import Receiver
from helpers import wait_until

from eventor import legacy_files
from eventor.api import create_app
from eventor.errors import StorageFull
from eventor.legacy_files import parse_go_time
from eventor.legacy_import import ImportReport, import_original
from eventor.payloads import describe
from eventor.settings import Settings
from eventor.storage.base import Storage, open_storage
from eventor.types import ANY, NewEvent, Subscription, SubscriptionConfig

Row = tuple[str, Any, str, str]

ORDERS: list[Row] = [
    (
        "0b8e6c1e-1f4a-4c55-9d36-000000000001",
        b'{"order": 1}',
        "OrderPlaced",
        "2017-06-01 10:00:00.123456789 +0200 CEST",
    ),
    (
        "0b8e6c1e-1f4a-4c55-9d36-000000000002",
        '{"order": 1, "text": true}',  # a Go string bound as TEXT
        "OrderPaid",
        "2017-06-01 08:00:01.5 +0000 UTC m=+12.345678901",
    ),
    (
        "0b8e6c1e-1f4a-4c55-9d36-000000000003",
        b"\x00\xffnot json",
        "Attachment",
        "2017-12-24 18:30:00 -0500 EST",
    ),
    ("0b8e6c1e-1f4a-4c55-9d36-000000000004", b"[1, 2]", "OrderPlaced", "not a time"),
]
#: Written to the -wal file by a server that died before any checkpoint.
ORDERS_IN_WAL: list[Row] = [
    (
        "0b8e6c1e-1f4a-4c55-9d36-000000000005",
        b'{"order": 2}',
        "OrderPlaced",
        "2017-06-02 00:00:00.000001999 +0530 IST m=+86400.000000001",
    ),
    (
        "0b8e6c1e-1f4a-4c55-9d36-000000000006",
        b'{"order": 2, "paid": 1}',
        "OrderPaid",
        "2017-06-02 00:00:01 +0000 UTC",
    ),
]
ACTIVITY: list[Row] = [
    (
        "7d1f3c22-9a0e-4a43-8f6e-000000000001",
        b'{"stream": "orders"}',
        "stream_created",
        "2017-06-01 10:00:00.1 +0200 CEST",
    )
]
CREATED = {  # what the times above become; None: unreadable, the import time stands
    1: "2017-06-01T08:00:00.123456Z",
    2: "2017-06-01T08:00:01.500000Z",
    3: "2017-12-24T23:30:00.000000Z",
    4: None,
    5: "2017-06-01T18:30:00.000001Z",
    6: "2017-06-02T00:00:01.000000Z",
}


def go_stream(path: Path, rows: list[Row], *, rowids: list[int] | None = None) -> None:
    """A stream file as persistence/sqlite.go made one."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("create table if not exists events (uuid, body text, type text, created)")
    for n, row in enumerate(rows):
        rowid = rowids[n] if rowids else None
        conn.execute(
            "insert into events (rowid, uuid, body, type, created) values (?,?,?,?,?)",
            (rowid, *row),
        )
    conn.close()


def go_stream_crashed(path: Path, rows: list[Row]) -> None:
    """Append `rows` and die without closing: they stay in the -wal file, not checkpointed."""
    script = textwrap.dedent(
        """
        import os, sqlite3, sys, ast
        conn = sqlite3.connect(sys.argv[1], isolation_level=None)
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        for row in ast.literal_eval(sys.argv[2]):
            conn.execute("insert into events (uuid, body, type, created) values (?,?,?,?)", row)
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", script, str(path), repr(rows)], check=True)


def go_meta(path: Path, subscriptions: list[tuple[Any, ...]]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(
        "create table subscriptions (name, stream, url, httpHeaders, lastReadPosition,"
        " isActive, createdAt, updatedAt, pauseReason)"
    )
    conn.execute("create table mirrored_streams (name, position, createdAt, UNIQUE(name))")
    conn.execute("insert into mirrored_streams values ('x', 3, '2017-06-01 10:00:00 +0000 UTC')")
    conn.executemany("insert into subscriptions values (?,?,?,?,?,?,?,?,?)", subscriptions)
    conn.close()


def run_import(source: Path, data: Path) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "eventor", "import-original", str(source), "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.returncode, done.stdout, done.stderr


def digests(directory: Path) -> dict[str, str]:
    """The original's files (not Eventor's, nor SQLite's index of a -wal) by their digests."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in directory.iterdir()
        if p.is_file() and p.name.endswith((".db", ".db-wal")) and p.name != "catalog.db"
    }


def in_storage(data: Path, body: Any) -> Any:
    """Run `body(storage)` on the data dir's storage, opened as the server opens it."""

    async def main() -> Any:
        storage = open_storage(data, Settings(data_dir=data))
        await storage.open()
        try:
            return await body(storage)
        finally:
            await storage.close()

    return asyncio.run(main())


def new_event(row: Row) -> NewEvent:
    data = row[1] if isinstance(row[1], bytes) else row[1].encode()
    is_json, shape = describe(data, "application/json")
    return NewEvent(row[2], data, "application/json", is_json, None, row[0], shape)


def test_go_times_become_rfc_3339_utc():
    assert parse_go_time("2017-06-01 10:00:00.123456789 +0200 CEST") == CREATED[1]
    assert parse_go_time("2017-06-01 08:00:01.5 +0000 UTC m=+12.345678901") == CREATED[2]
    assert parse_go_time("2017-06-01 08:00:01.5 +0000 UTC m=-0.000000100") == CREATED[2]
    assert parse_go_time("2017-06-01 12:00:00 +0400 +04") == "2017-06-01T08:00:00.000000Z"
    assert parse_go_time("2017-06-01T10:00:00.25+02:00") == "2017-06-01T08:00:00.250000Z"
    assert parse_go_time("2017-06-01 23:59:59.999999999 +0000 UTC") == (
        "2017-06-01T23:59:59.999999Z"  # cut, never rounded into the next day
    )
    for text in ("", "yesterday", "2017-13-01 10:00:00 +0000 UTC", None):
        assert parse_go_time(text) is None


def test_import_then_serve_on_the_same_data_dir(make_server, tmp_path):
    data = tmp_path / "data"  # the Go server's data dir, upgraded in place
    data.mkdir()
    with Receiver() as receiver:
        go_stream(data / "orders.db", ORDERS)
        go_stream_crashed(data / "orders.db", ORDERS_IN_WAL)
        go_stream(data / "_activity.db", ACTIVITY)
        introspect = sqlite3.connect(data / "_introspect.db")
        introspect.execute("create table shapes (stream, shape)")
        introspect.close()
        go_meta(
            data / "_meta.db",
            [
                (
                    "audit",
                    "orders",
                    receiver.url,
                    '{"Authorization": "Bearer abc"}',
                    "2",  # as text, as it may be stored
                    1,
                    "2017-06-01 10:00:00.5 +0200 CEST m=+0.01",
                    None,
                    None,
                ),
                (
                    "billing",
                    "orders",
                    receiver.url.replace("/hook", "/paused"),
                    "",
                    1,
                    0,
                    "2017-06-01 10:00:00 +0000 UTC",
                    "2017-06-03 10:00:00 +0000 UTC m=+3600.5",
                    "Post http://x: connection refused",
                ),
            ],
        )
        assert (data / "orders.db-wal").stat().st_size > 0  # the last two events live there
        legacy = digests(data)

        # Before the import: nothing is served, and the server says so once.
        server: ServerProcess = make_server(data_dir=data)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/streams/orders/0/10").json() == []
        assert server.log().count("import-original") == 1, server.log()
        code, out, err = run_import(data, data)  # refused while a server holds the data dir
        assert code != 0
        assert "in use" in err
        assert len(err.strip().splitlines()) == 1, err
        server.stop()

        code, out, err = run_import(data, data)
        assert code == 0, out + err
        assert "streams imported: 2 (7 events)" in out
        assert "subscriptions imported: 2" in out
        assert "could not be read (the import time stands instead): 1" in out
        assert digests(data) == legacy  # the original's files are only read
        assert not (data / "_activity.db-wal").exists()  # immutable: no side files either

        offset = len(server.log())
        server.restart()
        assert "import-original" not in server.log()[offset:]
        with httpx.Client(base_url=server.url, timeout=10) as client:
            _check_streams(client)
            _check_subscriptions(client)
            # Delivery goes on after the position (2), in order, nothing before it.
            appended = client.post(
                "/streams/orders", content=b'{"order": 3}', headers={"X-Event-Type": "OrderPlaced"}
            )
            assert appended.headers["x-event-position"] == "7"
            requests = receiver.wait_for(lambda rs: any(r.position == 7 for r in rs))
            assert [r.position for r in requests] == [3, 4, 5, 6, 7]
            assert {r.path for r in requests} == {"/hook"}  # the paused one sent nothing
            assert requests[0].headers["x-event-uuid"] == ORDERS[2][0]
            assert requests[0].headers["authorization"] == "Bearer abc"
            assert requests[0].body == ORDERS[2][1]
            assert requests[2].headers["x-event-created"] == CREATED[5]
            wait_position(client, "audit", 7)
        server.stop()

        # A second import changes nothing: not the events, not the positions delivered since.
        code, out, err = run_import(data, data)
        assert code == 0, out + err
        assert "streams imported: 0 (0 events)" in out
        assert "streams already in Eventor, unchanged: 2" in out
        assert "subscriptions already in Eventor, left alone: 2" in out
        assert "warning" not in err
        server.restart()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert [e["position"] for e in client.get("/streams/orders/0/100").json()] == [
                *range(1, 8)
            ]
            positions = {s["name"]: s["position"] for s in client.get("/subscriptions").json()}
            assert positions == {"audit": 7, "billing": 1}
        assert len(receiver.received()) == 5


def _check_streams(client: httpx.Client) -> None:
    events = client.get("/streams/orders/0/100").json()
    rows = ORDERS + ORDERS_IN_WAL
    assert [e["position"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e["uuid"] for e in events] == [r[0] for r in rows]
    assert [e["type"] for e in events] == [r[2] for r in rows]
    bodies = [r[1] if isinstance(r[1], bytes) else r[1].encode() for r in rows]
    assert [base64.b64decode(e["body"]) for e in events] == bodies
    assert events[1]["body_json"] == '{"order": 1, "text": true}'
    for event in events:
        expected = CREATED[event["position"]]
        if expected is not None:
            assert event["created"] == expected
        else:
            assert event["created"] > "2020"  # the import's own time
    info = client.get("/v1/streams/orders").json()
    assert info["head"] == 6
    assert info["event_types"] == {"OrderPlaced": 3, "OrderPaid": 2, "Attachment": 1}
    assert info["created"] == CREATED[1]
    assert sorted(info["subscriptions"]) == ["audit", "billing"]
    v1 = client.get("/v1/streams/orders/events").json()["events"]
    assert v1[0]["data"] == {"order": 1}
    assert v1[0]["content_type"] == "application/json"
    assert base64.b64decode(v1[2]["data_base64"]) == b"\x00\xffnot json"
    activity = client.get("/streams/_activity/0/10").json()
    assert [(e["uuid"], e["type"]) for e in activity] == [(ACTIVITY[0][0], "stream_created")]
    introspect = {s["name"]: s for s in client.get("/introspect").json()}
    assert sorted(introspect) == ["_activity", "orders"]  # _introspect.db is no stream
    assert introspect["orders"]["total"] == 6
    assert {t["name"]: t["total"] for t in introspect["orders"]["event_types"]} == {
        "OrderPlaced": 3,
        "OrderPaid": 2,
        "Attachment": 1,
    }


def _check_subscriptions(client: httpx.Client) -> None:
    subscriptions = {s["name"]: s for s in client.get("/subscriptions").json()}
    audit, billing = subscriptions["audit"], subscriptions["billing"]
    assert audit["stream"] == "orders"
    assert audit["headers"] == {"Authorization": "Bearer abc"}
    assert audit["created"] == audit["updated"] == "2017-06-01T08:00:00.500000Z"
    assert (billing["position"], billing["active"]) == (1, False)
    assert billing["pause_reason"] == "Post http://x: connection refused"
    assert billing["updated"] == "2017-06-03T10:00:00.000000Z"
    config = client.get("/v1/subscriptions/audit").json()["config"]
    assert config["created_by"] == "original"
    assert (config["max_attempts"], config["backoff"]) == (5, {"initial": 4, "max": 32})


def wait_position(client: httpx.Client, name: str, position: int) -> None:
    def there() -> bool:
        found = {s["name"]: s["position"] for s in client.get("/subscriptions").json()}
        return bool(found[name] == position)

    wait_until(there, what=f"{name} at position {position}")


def test_what_cannot_be_imported_is_refused_and_the_rest_imported(tmp_path):
    source, data = tmp_path / "go", tmp_path / "data"
    source.mkdir()
    rows = [
        (f"5c1d0000-0000-4000-8000-00000000000{n}", b'{"n": %d}' % n, "T", "bad")
        for n in range(1, 6)
    ]
    go_stream(source / "ok.db", rows[:2])
    go_stream(source / "resumed.db", rows)  # Eventor has its first two: an interrupted import
    go_stream(source / "used.db", rows[:3])  # Eventor has other events in it
    go_stream(source / "gaps.db", rows[:3], rowids=[1, 2, 4])
    go_stream(source / "bad name.db", rows[:1])
    go_stream(source / "no_uuid.db", [rows[0], ('"]' + "x" * 20_000, *rows[1][1:])])
    hyphens = "-" * 20_000 + "5c1d0000000040008000000000000009"  # uuid.UUID() takes it
    go_stream(source / "odd_uuid.db", [rows[0], (hyphens, *rows[1][1:])])
    go_meta(
        source / "_meta.db",
        [
            ("taken", "ok", "http://127.0.0.1:9739/x", "{}", 0, 1, "x", None, None),
            ("odd", "ok", "http://127.0.0.1:9739/x", "[1]", 0, 1, "x", None, None),
            ("fine", "ok", "http://127.0.0.1:9739/x", None, 0, 1, "x", "y", None),
            ("fine", "ok", "http://127.0.0.1:9739/twice", None, 0, 1, "x", "y", None),
        ],
    )
    legacy = digests(source)

    async def prepare(storage: Storage) -> None:
        await storage.append("resumed", [new_event(r) for r in rows[:2]])
        await storage.append(
            "used", [new_event(("9f9f9f9f-0000-4000-8000-000000000001", *rows[0][1:]))]
        )
        config = SubscriptionConfig("used", "http://127.0.0.1:9739/other")
        await storage.save_subscription(Subscription("taken", config, created="c", updated="c"))

    in_storage(data, prepare)
    code, out, err = run_import(source, data)
    assert code == 1, out + err
    assert (
        "stream 'gaps' not imported: its positions have gaps (3 events at positions 1 to 4)" in err
    )
    assert "stream 'bad name' not imported: invalid stream name" in err
    assert (
        "stream 'no_uuid' not imported: the event at position 2 has a uuid that is no UUID:"
        """ '"]xxxxxxxx""" in err
    )
    assert "stream 'used' not imported: Eventor holds other events in it" in err
    assert "subscription 'taken' not imported: Eventor has a subscription of that name" in err
    assert "subscription 'odd' not imported: httpHeaders is not a JSON object of strings" in err
    assert "stream 'resumed': 3 events imported" in out
    assert (
        "subscription 'fine' not imported: an earlier row of _meta.db has that name (the original"
        " did not keep names unique): only the first row of a name is taken"
    ) in err
    assert "subscriptions imported: 1" in out
    assert "could not be read (the import time stands instead): 7" in out  # 5 events, 2 of "fine"
    assert digests(source) == legacy

    async def check(storage: Storage) -> None:
        resumed = (await storage.read("resumed", 1, 10)).events
        assert [(e.position, e.id) for e in resumed] == [(n, rows[n - 1][0]) for n in range(1, 6)]
        assert storage.head("ok") == 2
        assert storage.head("used") == 1
        assert storage.head("gaps") is None
        assert storage.head("no_uuid") is None
        assert storage.head("odd_uuid") is None
        subscriptions = {
            r.subscription.name: r.subscription for r in await storage.load_subscriptions(1)
        }
        assert subscriptions["taken"].config.url == "http://127.0.0.1:9739/other"
        assert sorted(subscriptions) == ["fine", "taken"]
        assert subscriptions["fine"].config.original
        assert subscriptions["fine"].config.url == "http://127.0.0.1:9739/x"

    in_storage(data, check)
    code, out, err = run_import(source, data)  # again: the same refusals, nothing new
    assert code == 1
    assert "streams imported: 0 (0 events)" in out
    assert "streams already in Eventor, unchanged: 2" in out


def test_a_dir_without_the_originals_data_is_refused(tmp_path):
    (tmp_path / "go").mkdir()
    code, _, err = run_import(tmp_path / "go", tmp_path / "data")
    assert code == 1
    assert "holds no data of the original Eventor" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("events", [ACTIVITY, []], ids=["with events", "empty"])
def test_a_stream_named_catalog_is_never_written_into(tmp_path, events):
    data = tmp_path / "data"
    data.mkdir()
    go_stream(data / "catalog.db", events)
    legacy = digests(data)
    code, _, err = run_import(data, data)
    assert code == 1
    assert "is the original's stream 'catalog'" in err
    assert len(err.strip().splitlines()) == 1
    done = subprocess.run(
        [sys.executable, "-m", "eventor", "serve", "--port", "0", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert "the original Eventor's stream 'catalog'" in done.stderr
    assert digests(data) == legacy
    code, out, err = run_import(data, tmp_path / "elsewhere")  # into another dir it goes
    assert code == 0, out + err
    if events:
        assert "streams imported: 1 (1 events)" in out


def test_eventors_own_catalog_is_probed_without_leaving_files(tmp_path):
    catalog = tmp_path / "catalog.db"  # as a crash leaves Eventor's: a -wal, and no -shm
    go_stream(catalog, [])
    go_stream_crashed(catalog, ACTIVITY)
    (tmp_path / "catalog.db-shm").unlink()
    assert legacy_files.is_stream_file(catalog)  # as far as its main file tells
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog.db", "catalog.db-wal"]


def test_a_run_again_after_a_crash_goes_by_the_stream_files(tmp_path):
    """An import killed midway leaves the catalog's mirror of a head behind the stream file:
    the next run must go on from the file's head (else it sees its own events as strangers)."""
    source, data = tmp_path / "go", tmp_path / "data"
    source.mkdir()
    when = "2017-06-01 10:00:00 +0000 UTC"
    rows = [(f"0b8e6c1e-1f4a-4c55-9d36-{n:012d}", b"{}", "T", when) for n in range(1, 11)]
    go_stream(source / "orders.db", rows)
    code, out, err = run_import(source, data)
    assert code == 0, out + err
    with contextlib.closing(sqlite3.connect(data / "catalog.db")) as catalog, catalog:
        catalog.execute("UPDATE streams SET head = 4 WHERE name = 'orders'")  # as a crash left it
        catalog.execute("DELETE FROM state WHERE key = 'clean_shutdown'")
    code, out, err = run_import(source, data)
    assert code == 0, out + err
    assert "NOT imported" not in out


def test_a_stream_file_that_cannot_be_read_is_refused_not_skipped(tmp_path):
    """A file SQLite cannot open (here its -wal is a directory; for others, no permission or
    a -wal without its -shm in a read-only copy) is a refusal with the reason, and exit 1."""
    source, data = tmp_path / "go", tmp_path / "data"
    source.mkdir()
    go_stream(source / "orders.db", ORDERS)
    go_stream(source / "stuck.db", ACTIVITY)
    (source / "stuck.db-wal").mkdir()
    when = "2017-06-01 10:00:00 +0000 UTC"
    go_meta(
        source / "_meta.db",
        [("on_stuck", "stuck", "http://127.0.0.1:9/", "", 1, 1, when, None, None)],
    )
    code, out, err = run_import(source, data)
    assert code == 1, out + err
    assert "stream 'stuck' not imported: stuck.db cannot be read" in err
    assert "streams NOT imported: 1 (stuck)" in out
    # Its subscription waits for it: from its position, new events would be other events.
    assert "subscription 'on_stuck' not imported: its stream 'stuck' was not imported" in err


@pytest.mark.parametrize(
    ("damage", "error"),
    [("truncated", "database disk image is malformed"), ("header", "file is not a database")],
)
def test_a_damaged_stream_file_is_refused_not_skipped(tmp_path, damage, error):
    """A stream file cut short or with a damaged header reads as no database at all: it is a
    refusal with the reason, and its subscription waits for it (imported, it stood past the
    head, and would have skipped the events appended after the import)."""
    source, data = tmp_path / "go", tmp_path / "data"
    source.mkdir()
    when = "2017-06-01 10:00:00 +0000 UTC"
    rows = [(f"0b8e6c1e-1f4a-4c55-9d36-{n:012d}", b"{}", "T", when) for n in range(1, 3001)]
    go_stream(source / "orders.db", rows)
    go_stream(source / "ok.db", ACTIVITY)
    go_meta(
        source / "_meta.db",
        [("audit", "orders", "http://127.0.0.1:9/", "", 2000, 1, when, None, None)],
    )
    if damage == "truncated":
        os.truncate(source / "orders.db", (source / "orders.db").stat().st_size // 3)
    else:
        with open(source / "orders.db", "r+b") as file:
            file.write(bytes(16))
    code, out, err = run_import(source, data)
    assert code == 1, out + err
    assert f"stream 'orders' not imported: orders.db cannot be read: {error}" in err
    assert "subscription 'audit' not imported: its stream 'orders' was not imported" in err
    assert "streams imported: 1 (1 events)" in out
    assert "streams NOT imported: 1 (orders)" in out
    assert "subscriptions imported: 0" in out

    async def check(storage: Storage) -> None:
        assert storage.head("orders") is None
        assert await storage.load_subscriptions(1) == []

    in_storage(data, check)


def test_a_stream_that_repeats_a_uuid_is_refused_before_anything_is_appended(tmp_path):
    """The original's mirror could replay events: a uuid twice in one stream. Eventor keeps a
    uuid once in a stream, so the stream is refused whole (batches appended before the repeat
    was met left it half imported, for good), and counted once, as not imported."""
    source, data = tmp_path / "go", tmp_path / "data"
    source.mkdir()
    when = "2017-06-01 10:00:00 +0000 UTC"
    rows = [(f"0b8e6c1e-1f4a-4c55-9d36-{n:012d}", b"{}", "T", when) for n in range(1, 2501)]
    rows[2199] = rows[4]  # replayed past the first two batches
    go_stream(source / "orders.db", rows)
    go_stream(source / "ok.db", ACTIVITY)
    go_meta(
        source / "_meta.db",
        [("audit", "orders", "http://127.0.0.1:9/", "", 3, 1, when, None, None)],
    )
    for _ in range(2):  # and again: the same refusal, nothing of it appended
        code, out, err = run_import(source, data)
        assert code == 1, out + err
        assert (
            "stream 'orders' not imported: events repeat uuids"
            " (0b8e6c1e-1f4a-4c55-9d36-000000000005 at positions 5, 2200): Eventor keeps a uuid"
            " once in a stream, so nothing of it is imported"
        ) in err
        assert "UNIQUE" not in err
        assert "subscription 'audit' not imported: its stream 'orders' was not imported" in err
        assert "streams NOT imported: 1 (orders)" in out
        assert "streams imported: 1 (1 events)" in out or "streams imported: 0 (0 events)" in out

    async def check(storage: Storage) -> None:
        assert storage.head("orders") is None
        assert storage.head("ok") == 1

    in_storage(data, check)


def test_a_refusal_names_a_few_repeated_uuids_and_positions(tmp_path):
    source = tmp_path / "go"
    source.mkdir()
    when = "2017-06-01 10:00:00 +0000 UTC"
    rows = [(f"0b8e6c1e-1f4a-4c55-9d36-{n % 5:012d}", b"{}", "T", when) for n in range(1, 31)]
    go_stream(source / "orders.db", rows)
    code, out, err = run_import(source, tmp_path / "data")
    assert code == 1, out + err
    uuid = "0b8e6c1e-1f4a-4c55-9d36-00000000000"
    assert (
        f"events repeat uuids ({uuid}0 at positions 5, 10, 15 and 3 more; {uuid}1 at positions"
        f" 1, 6, 11 and 3 more; {uuid}2 at positions 2, 7, 12 and 3 more; and more)"
    ) in err


def test_a_stream_cut_short_counts_once_as_not_imported(tmp_path, monkeypatch):
    """The disk fills after the first batch: the stream is not imported (the warning says how
    far it went), and the summary does not count it as imported too."""
    source = tmp_path / "go"
    source.mkdir()
    when = "2017-06-01 10:00:00 +0000 UTC"
    rows = [(f"0b8e6c1e-1f4a-4c55-9d36-{n:012d}", b"{}", "T", when) for n in range(1, 1501)]
    go_stream(source / "orders.db", rows)
    warnings: list[str] = []

    async def body(storage: Storage) -> ImportReport:
        append = storage.append

        async def append_until_full(stream: str, events: Any, expected: Any = ANY) -> Any:
            if expected:
                raise StorageFull("disk full")
            return await append(stream, events, expected)

        monkeypatch.setattr(storage, "append", append_until_full)
        streams = legacy_files.stream_files(source)
        return await import_original(source, streams, storage, lambda _: None, warnings.append)

    report = in_storage(tmp_path / "data", body)
    assert warnings == [
        "warning: stream 'orders' not imported: imported up to position 1000 (1000 events this"
        " run): disk full"
    ]
    summary = report.summary()
    assert summary[:2] == ["streams imported: 0 (0 events)", "streams NOT imported: 1 (orders)"]


def test_uuids_are_imported_in_lowercase(tmp_path):
    """/v1 takes an id in any case and keeps it in lowercase: an event imported with its uuid
    in uppercase must be the one an append of its id finds (else that appends it again)."""
    source, data = tmp_path / "go", tmp_path / "data"
    source.mkdir()
    upper = ORDERS[0][0].upper()
    go_stream(source / "orders.db", [(upper, *ORDERS[0][1:]), ORDERS[1]])
    code, out, err = run_import(source, data)
    assert code == 0, out + err

    async def main() -> tuple[list[str], httpx.Response]:
        app = create_app(data_dir=data)
        await app.startup()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://eventor") as c:
                again = {"type": "OrderPlaced", "id": ORDERS[0][0], "data": {"order": 1}}
                answer = await c.post("/v1/streams/orders/events", json=again)
                events = (await c.get("/v1/streams/orders/events")).json()["events"]
            return [e["id"] for e in events], answer
        finally:
            await app.shutdown()

    ids, answer = asyncio.run(main())
    assert ids == [ORDERS[0][0], ORDERS[1][0]]
    assert answer.status_code == 200, answer.text  # found: nothing appended
    assert answer.json()["first_position"] == 1
    code, out, err = run_import(source, data)  # and again: Eventor holds it already
    assert code == 0, out + err
    assert "streams already in Eventor, unchanged: 1" in out


def test_a_uuid_repeated_in_another_case_is_a_repeat(tmp_path):
    source = tmp_path / "go"
    source.mkdir()
    go_stream(source / "orders.db", [ORDERS[0], (ORDERS[0][0].upper(), *ORDERS[1][1:])])
    code, out, err = run_import(source, tmp_path / "data")
    assert code == 1, out + err
    assert f"events repeat uuids ({ORDERS[0][0]} at positions 1, 2)" in err


def test_a_name_on_two_rows_of_the_originals_subscriptions_is_taken_by_the_first(tmp_path):
    """The original's table did not keep names unique: a second row of a name is refused as
    such, not as a name Eventor had already, on every run."""
    source, data = tmp_path / "go", tmp_path / "data"
    source.mkdir()
    go_stream(source / "orders.db", ORDERS)
    row = ("audit", "orders", "http://127.0.0.1:9/a", "", 1, 1, "x", None, None)
    go_meta(source / "_meta.db", [row, row, (*row[:2], "http://127.0.0.1:9/b", *row[3:])])
    for run in range(2):
        code, out, err = run_import(source, data)
        assert code == 1, out + err
        assert err.count("subscription 'audit' not imported: an earlier row of _meta.db") == 2
        assert "Eventor has a subscription of that name" not in err
        if run == 0:
            assert "subscriptions imported: 1" in out
        else:
            assert "subscriptions already in Eventor, left alone: 1" in out
