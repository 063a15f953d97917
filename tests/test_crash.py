"""Crash safety: SIGKILL the server mid-load, restart it, and find every acknowledged event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from helpers import metric, raw_data, read_all, unique, wait_until

from eventor.clock import utc_now
from eventor.storage.sqlite.files import stream_path
from eventor.storage.sqlite.streamdb import StreamDatabase

pytestmark = pytest.mark.slow

CLIENTS = 8


@dataclass(frozen=True)
class Acked:
    stream: str
    id: str
    position: int
    data: bytes


def test_sigkill_loses_no_acknowledged_event(make_server):
    server = make_server()  # durability full, the default
    streams = [unique("crash") for _ in range(3)]
    acked: list[Acked] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(index: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            n = 0
            while not stop.is_set():
                stream = streams[(index + n) % len(streams)]
                data = b'{"client": %d, "n": %d, "pad": "%s"}' % (index, n, b"x" * (n % 50))
                try:
                    if index % 4 == 3:  # the original route, too
                        r = c.post(
                            f"/streams/{stream}", content=data, headers={"x-event-type": "O"}
                        )
                        ok = r.status_code == 200
                        ack = (r.headers.get("x-event-uuid"), r.headers.get("x-event-position"))
                    else:
                        event_id = str(uuid.uuid4())
                        body = b'{"type": "V", "id": "%s", "data": %s}' % (event_id.encode(), data)
                        r = c.post(
                            f"/v1/streams/{stream}/events",
                            content=body,
                            headers={"content-type": "application/json"},
                        )
                        ok = r.status_code == 201
                        ack = (event_id, r.json()["first_position"] if ok else None)
                except httpx.TransportError:
                    return  # the server is gone: this request was never acknowledged
                with lock:
                    if not ok:
                        failures.append(f"{r.status_code} {r.text}")
                        return
                    acked.append(Acked(stream, str(ack[0]), int(str(ack[1])), data))
                n += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(acked) >= 400 or failures, timeout=60, what="400 acknowledged appends")
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    assert failures == []
    assert not any(t.is_alive() for t in threads)
    with lock:
        acknowledged = list(acked)

    server.restart()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        # The registry first, before any read opens a stream's file and refreshes it.
        listed = {
            s["name"]: s["head"]
            for s in c.get("/v1/streams", params={"prefix": "crash-"}).json()["streams"]
        }
        introspected = {s["name"]: s["total"] for s in c.get("/introspect").json()}
        for stream in streams:
            events = read_all(c, stream)
            head = len(events)
            assert [e["position"] for e in events] == list(range(1, head + 1))
            assert listed[stream] == head, "the stream list must show the real head at once"
            assert introspected[stream] == head
            exact: dict[int, bytes] = {}
            for start in range(1, head + 1, 1000):
                page = c.get(f"/v1/streams/{stream}/events", params={"from": start, "limit": 1000})
                exact |= raw_data(page)
            by_position = {e["position"]: e for e in events}
            mine = [a for a in acknowledged if a.stream == stream]
            assert mine, "every stream got appends"
            assert max(a.position for a in mine) <= head
            for a in mine:
                event = by_position[a.position]
                assert event["id"] == a.id
                assert exact[a.position] == a.data
        # The restarted server appends where the stream left off.
        r = c.post(f"/v1/streams/{streams[0]}/events", json={"type": "After"})
        assert r.json()["first_position"] == len(read_all(c, streams[0]))


def test_restart_after_sigkill_lists_streams_with_correct_heads(make_server):
    server = make_server("--durability", "normal")  # survives SIGKILL; fewer fsyncs, faster
    names = [f"heads-{n:03d}" for n in range(200)]
    # The last streams by name move on just before the crash: the catalog's lazy mirror of
    # their heads is behind, and a re-check in name order reaches them last.
    moved = {name: 1 + n % 3 for n, name in enumerate(names[-20:])}
    with (
        httpx.Client(base_url=server.url, timeout=30) as c,
        ThreadPoolExecutor(16) as pool,
    ):

        def append(name: str, count: int) -> None:
            r = c.post(f"/v1/streams/{name}/events", json=[{"type": "T"}] * count)
            assert r.status_code == 201, r.text

        list(pool.map(append, names, [1] * len(names)))
        time.sleep(0.5)  # not a wait for a result: lets the catalog mirror round one
        list(pool.map(append, moved, moved.values()))
    server.kill()
    server.restart()
    heads = {name: 1 + moved.get(name, 0) for name in names}
    with httpx.Client(base_url=server.url, timeout=30) as c:
        listed = c.get("/v1/streams", params={"prefix": "heads-", "limit": 1000}).json()
        assert {s["name"]: s["head"] for s in listed["streams"]} == heads
        introspected = {s["name"]: s["total"] for s in c.get("/introspect").json()}
        assert introspected == heads
        for name in names[-3:]:
            assert c.get(f"/v1/streams/{name}").json()["event_types"] == {"T": heads[name]}
    assert server.log().count("the last stop was not clean") == 1  # said at the restart only


def test_a_start_after_a_crash_flushes_before_serving(make_server):
    """A round cut short by the crash may have written commits it never flushed: the restart
    makes them durable before anyone can read them (one flush, before any request)."""
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.post("/v1/streams/crashed/events", json={"type": "T"}).status_code == 201
    server.kill()
    server.restart()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert metric(c.get("/metrics").text, "eventor_disk_flushes_total") == 1
        assert c.get("/v1/streams/crashed").json()["head"] == 1
    assert server.stop() == 0
    server.restart()  # after a clean stop there is nothing to flush
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert metric(c.get("/metrics").text, "eventor_disk_flushes_total") == 0


def test_a_second_server_on_the_same_data_dir_is_refused(make_server):
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.post("/v1/streams/lock/events", json={"type": "T"}).status_code == 201
    second = subprocess.run(
        [sys.executable, "-m", "eventor", "serve", "--port", "0", "--data", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode != 0
    output = (second.stdout + second.stderr).strip()
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    assert "in use" in output
    with httpx.Client(base_url=server.url, timeout=10) as c:  # the first one is unharmed
        assert c.post("/v1/streams/lock/events", json={"type": "T"}).json()["first_position"] == 2


def test_a_crash_before_a_new_streams_first_commit_leaves_no_stream(make_server):
    """The file of a new stream is made before its first events commit: a crash in between
    leaves a file without events, which is no stream (its append was never acknowledged)."""
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.post("/v1/streams/kept/events", json={"type": "T"}).status_code == 201
    server.kill()
    # what the crash left: the new stream's file, made but empty; and a stray directory
    path = stream_path(server.data_dir, "half-made")
    StreamDatabase.open(path, "half-made", "FULL", create=True, created=utc_now()).close()
    (path.parent / "stray-dir.db").mkdir()
    server.restart()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert [s["name"] for s in c.get("/v1/streams").json()["streams"]] == ["kept"]
        assert c.get("/v1/streams/half-made").status_code == 404
        assert c.get("/v1/streams/half-made/events").status_code == 404
        assert [s["name"] for s in c.get("/introspect").json()] == ["kept"]
        r = c.post("/v1/streams/half-made/events?expected_version=no_stream", json={"type": "T"})
        assert r.json()["first_position"] == 1
        assert c.get("/v1/streams/half-made").json()["head"] == 1
    # only "kept" can have been missed by the catalog: the empty file is not counted
    assert "registered 2 " not in server.log()


def test_a_crash_before_a_new_files_schema_commits_is_no_alarm(make_server):
    """A crash can also leave the new file without even its tables: said calmly, reused."""
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.post("/v1/streams/kept/events", json={"type": "T"}).status_code == 201
    server.kill()
    path = stream_path(server.data_dir, "unmade")
    blank = sqlite3.connect(path)
    blank.execute("PRAGMA journal_mode = WAL")  # set before the schema's transaction
    blank.close()
    server.restart()
    assert not path.exists()  # removed: met at every start otherwise
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/v1/streams/unmade").status_code == 404
        assert c.post("/v1/streams/unmade/events", json={"type": "T"}).status_code == 201
        assert c.get("/v1/streams/unmade").json()["head"] == 1
        assert [s["name"] for s in c.get("/v1/streams").json()["streams"]] == ["kept", "unmade"]
    log = server.log()
    assert log.count("its making was cut short before it held anything") == 1
    assert "not a stream database" not in log


def test_a_storage_failure_is_a_500_and_is_logged(make_server):
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for name in ("broken", "beta"):
            assert c.post(f"/v1/streams/{name}/events", json={"type": "T"}).status_code == 201
    assert server.stop() == 0
    for name in ("broken", "beta"):
        stream_path(server.data_dir, name).write_bytes(b"not a database " * 1000)
    server.restart()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for _ in range(10):
            for name in ("broken", "beta"):
                r = c.get(f"/v1/streams/{name}/events")
                assert r.status_code == 500
                assert r.headers["content-type"] == "application/problem+json"
        assert c.get("/health").status_code == 200  # one broken stream, the server serves on
    assert "ERROR" in server.log()
    # Each failure once, not ten times: while one lasts, every request meets it (a full disk,
    # say); and one stream's failure does not hide another's.
    assert server.log().count("GET /v1/streams/broken/events: 500") == 1, server.log()
    assert server.log().count("GET /v1/streams/beta/events: 500") == 1, server.log()


def test_a_stream_file_removed_while_stopped_is_dropped_and_said_so(make_server):
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for name in ("kept", "gone"):
            assert c.post(f"/v1/streams/{name}/events", json=[{"type": "T"}] * 3).status_code == 201
        sub = {"stream": "gone", "url": "http://127.0.0.1:9/", "start": "end"}
        assert c.put("/v1/subscriptions/on-gone", json=sub).status_code == 201
    assert server.stop() == 0
    path = stream_path(server.data_dir, "gone")
    aside = path.rename(path.parent.parent / path.name)
    server.restart()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert [s["name"] for s in c.get("/v1/streams").json()["streams"]] == ["kept"]
        assert [s["name"] for s in c.get("/introspect").json()] == ["kept"]
        assert c.get("/v1/streams/gone").status_code == 404
    log = server.log()
    assert "stream 'gone': its file is missing" in log
    assert "'on-gone' stands at position 3, past the head (0)" in log
    # put back, it is a stream again at the next start, clean or not
    assert server.stop() == 0
    aside.rename(path)
    server.restart()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/v1/streams/gone").json()["head"] == 3
        assert [s["name"] for s in c.get("/v1/streams").json()["streams"]] == ["gone", "kept"]


def _lagging_catalog(data_dir: Path, streams: list[str], head: int) -> None:
    """What a crash can leave: the catalog saw only `head` events of `streams`, no clean stop."""
    catalog = sqlite3.connect(data_dir / "catalog.db")
    with catalog:
        catalog.executemany(
            "UPDATE streams SET head = ? WHERE name = ?", [(head, name) for name in streams]
        )
        catalog.execute("DELETE FROM state WHERE key = 'clean_shutdown'")
    catalog.close()


def test_no_false_warning_when_the_catalog_lags_after_a_crash(make_server):
    """After a crash the catalog's heads may lag the stream files (they are re-checked in the
    background, in name order: the 40 fillers first, so the check at start cannot count on
    it): a subscription that delivered events the catalog had not counted is not 'past the
    head'."""
    server = make_server()
    lagging = [f"z-lag-{n}" for n in range(10)]
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for n in range(40):
            assert c.post(f"/v1/streams/a-fill-{n}/events", json={"type": "T"}).status_code == 201
        for stream in lagging:
            r = c.post(f"/v1/streams/{stream}/events", json=[{"type": "T"}] * 5)
            assert r.status_code == 201
            sub = {"stream": stream, "url": "http://127.0.0.1:9/", "start": "end"}
            assert c.put(f"/v1/subscriptions/on-{stream}", json=sub).status_code == 201
    assert server.stop() == 0
    _lagging_catalog(server.data_dir, lagging, 2)
    server.restart()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for stream in lagging:
            assert c.get(f"/v1/subscriptions/on-{stream}").json()["position"] == 5
            assert c.get(f"/v1/streams/{stream}").json()["head"] == 5
    assert "past the head" not in server.log()


def test_a_broken_stream_file_does_not_keep_the_server_from_starting(make_server):
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for stream in ("broken", "fine"):
            r = c.post(f"/v1/streams/{stream}/events", json=[{"type": "T"}] * 5)
            assert r.status_code == 201
        sub = {"stream": "broken", "url": "http://127.0.0.1:9/", "start": "end"}
        assert c.put("/v1/subscriptions/on-broken", json=sub).status_code == 201
    assert server.stop() == 0
    _lagging_catalog(server.data_dir, ["broken"], 2)
    stream_path(server.data_dir, "broken").write_bytes(b"not a database " * 1000)
    server.restart()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/v1/streams/fine").json()["head"] == 5
        assert c.get("/v1/subscriptions/on-broken").status_code == 200


def _stale_catalog_head(data_dir: Path, stream: str, head: int, *, clean: bool) -> None:
    """What a crash leaves: the catalog's lazy mirror of a stream's head behind its file."""
    with contextlib.closing(sqlite3.connect(data_dir / "catalog.db")) as catalog, catalog:
        catalog.execute("UPDATE streams SET head = ? WHERE name = ?", (head, stream))
        if clean:  # as a stop during the re-check used to leave it: trusted, never re-checked
            catalog.execute("INSERT OR REPLACE INTO state VALUES ('clean_shutdown', '1')")
        else:
            catalog.execute("DELETE FROM state WHERE key = 'clean_shutdown'")


def test_from_the_end_means_the_file_s_head_even_where_the_catalog_lags(make_server):
    """A live stream without `from`, and a subscription with `start: "end"`, begin after the
    head as the stream's file says, not as a lagging catalog does (old events would go out as
    new)."""
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        c.post("/v1/streams/lagging/events", json=[{"type": "T"}] * 10).raise_for_status()
    assert server.stop() == 0
    _stale_catalog_head(server.data_dir, "lagging", 5, clean=True)
    server.restart()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        body = {"stream": "lagging", "url": "http://127.0.0.1:9/", "start": "end"}
        r = c.put("/v1/subscriptions/from-end", json=body)
        assert (r.status_code, r.json()["position"]) == (201, 10)
        c.delete("/v1/subscriptions/from-end")
    assert server.stop() == 0
    _stale_catalog_head(server.data_dir, "lagging", 5, clean=True)  # the PUT read the file
    server.restart()
    seen: list[str] = []
    with (
        httpx.Client(base_url=server.url, timeout=10) as c,
        c.stream("GET", "/v1/streams/lagging/live") as live,
    ):
        c.post("/v1/streams/lagging/events", json={"type": "New"}).raise_for_status()
        for line in live.iter_lines():
            if line.startswith("id: "):
                seen.append(line[4:])
                break
    assert seen == ["11"]


def test_a_stop_before_the_recheck_ends_is_not_a_clean_one(make_server, caplog):
    """Heads left unchecked by a stop right after a crash are re-checked at the next start;
    the stop says so (else that start would read as after a crash)."""
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        c.post("/v1/streams/unchecked/events", json=[{"type": "T"}] * 10).raise_for_status()
    assert server.stop() == 0
    _stale_catalog_head(server.data_dir, "unchecked", 5, clean=False)

    async def open_and_close_at_once() -> None:
        from eventor.settings import Settings
        from eventor.storage.base import open_storage

        storage = open_storage(server.data_dir, Settings(data_dir=server.data_dir))
        await storage.open()
        await storage.close()  # before the background re-check ran

    with caplog.at_level(logging.WARNING, logger="eventor"):
        asyncio.run(open_and_close_at_once())
    assert (
        "the re-check after the last crash was cut short: the next start re-checks every"
        " stream's head" in caplog.text
    )
    with contextlib.closing(sqlite3.connect(server.data_dir / "catalog.db")) as catalog:
        state = catalog.execute("SELECT value FROM state WHERE key = 'clean_shutdown'").fetchall()
    assert state == []  # not marked clean: the next start re-checks every stream
    server.restart()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        listed = c.get("/v1/streams", params={"prefix": "unchecked"}).json()["streams"]
        assert [s["head"] for s in listed] == [10]
        assert [s["total"] for s in c.get("/introspect").json() if s["name"] == "unchecked"] == [10]
