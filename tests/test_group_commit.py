"""50 concurrent appenders on one stream: every acknowledged event is there exactly once, with
unique gap-free positions, and concurrent appends share commits (group commit)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable

import httpx
from helpers import metric, read_all, unique

APPENDERS = 50
APPENDS_EACH = 6


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """Run work(0..count-1) on threads released together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]


def test_fifty_concurrent_appenders_on_one_stream(make_server):
    server = make_server()
    stream = unique("group")
    acked: dict[str, tuple[int, bytes]] = {}  # id -> (position, data)
    refused: list[int] = []
    lock = threading.Lock()

    def appender(index: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            for n in range(APPENDS_EACH):
                if index % 10 == 9 and n == 0:
                    # A wrong expected version fails this request only, not its commit group.
                    r = c.post(
                        f"/v1/streams/{stream}/events",
                        json={"type": "Never"},
                        params={"expected_version": 10**9},
                    )
                    assert r.status_code == 409, r.text
                    with lock:
                        refused.append(r.json()["current_version"])
                    continue
                event_id = str(uuid.uuid4())
                data = b'{"appender": %d, "n": %d}' % (index, n)
                body = b'{"type": "T", "id": "%s", "data": %s}' % (event_id.encode(), data)
                r = c.post(
                    f"/v1/streams/{stream}/events",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                assert r.status_code == 201, r.text
                [event] = r.json()["events"]
                assert event["id"] == event_id
                with lock:
                    acked[event_id] = (event["position"], data)

    run_threads(APPENDERS, appender)

    expected = APPENDERS * APPENDS_EACH - len(refused)
    assert len(refused) == APPENDERS // 10
    assert len(acked) == expected
    with httpx.Client(base_url=server.url, timeout=30) as c:
        events = read_all(c, stream)
        assert [e["position"] for e in events] == list(range(1, expected + 1))
        assert len({e["id"] for e in events}) == expected
        for event in events:
            position, data = acked.pop(event["id"])
            assert event["position"] == position
            assert event["type"] == "T"
            assert event["data"] == json.loads(data)
        assert acked == {}
        text = c.get("/metrics").text

    appended = metric(text, "eventor_appended_events_total")
    commits = metric(text, "eventor_commits_total")
    assert appended == expected
    assert commits < appended, f"{commits} commits for {appended} events: no group commit"


def test_appends_to_many_streams_share_flushes(make_server):
    """With durability full, appends to different streams are made durable together: one
    flush of the file system for many commits, each still acknowledged only after it."""
    server = make_server()
    streams = [unique("spread") for _ in range(APPENDERS)]
    acked: dict[str, int] = {}
    lock = threading.Lock()

    def appender(index: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            for n in range(APPENDS_EACH):
                r = c.post(f"/v1/streams/{streams[index]}/events", json={"type": "T", "data": n})
                assert r.status_code in (200, 201), r.text
                with lock:
                    acked[streams[index]] = r.json()["last_position"]

    run_threads(APPENDERS, appender)

    with httpx.Client(base_url=server.url, timeout=30) as c:
        for stream in streams:
            events = read_all(c, stream)
            assert [e["data"] for e in events] == list(range(APPENDS_EACH))
            assert acked[stream] == APPENDS_EACH
        text = c.get("/metrics").text
    appended = metric(text, "eventor_appended_events_total")
    commits = metric(text, "eventor_commits_total")
    flushes = metric(text, "eventor_disk_flushes_total")
    assert appended == APPENDERS * APPENDS_EACH
    assert commits >= APPENDERS  # at least one per stream
    assert 0 < flushes < commits, f"{flushes} flushes for {commits} commits: none shared"
