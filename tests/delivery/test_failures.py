"""Failure handling against real misbehaving receivers: errors, timeouts, resets, 410, 429..."""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from .helpers import FAST, append, name, status, subscribe, wait_status
from .receiver import Received, Receiver, Reply


def attempts_of(requests: list[Received]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for r in requests:
        out.setdefault(r.position, []).append(int(r.headers["x-eventor-attempt"]))
    return out


def first_request_in_flight(
    client: httpx.Client, stream: str, receiver: Receiver, events: int, **config: Any
) -> str:
    """`events` events and a new subscription whose first request takes the receiver 1 s to
    answer; returns the subscription's name once that request is in flight."""
    receiver.script(Reply(delay=1.0))
    append(client, stream, events)
    sub = name()
    subscribe(client, sub, stream, receiver.url, **config)
    receiver.wait_count(1)
    return sub


def test_random_500s_are_retried_in_order(client, stream, receiver: Receiver):
    rng = random.Random(7)
    receiver.decide(lambda r: Reply(500) if rng.random() < 0.3 else None)
    append(client, stream, 60)
    sub = name()
    subscribe(client, sub, stream, receiver.url, max_attempts=0, **FAST)
    wait_status(client, sub, lambda s: s["position"] == 60)
    requests = receiver.received()
    positions = [r.position for r in requests]
    assert positions == sorted(positions)  # never ahead of a failing event
    assert set(positions) == set(range(1, 61))
    attempts = attempts_of(requests)
    assert all(a == list(range(1, len(a) + 1)) for a in attempts.values())
    assert any(len(a) > 1 for a in attempts.values())


def test_timeouts_count_as_failed_attempts(client, stream, receiver: Receiver):
    receiver.script(Reply(delay=1.0))
    append(client, stream, 2)
    sub = name()
    subscribe(client, sub, stream, receiver.url, timeout=0.2, **FAST)
    wait_status(client, sub, lambda s: s["position"] == 2, timeout=5)
    assert attempts_of(receiver.received()) == {1: [1, 2], 2: [1]}
    log = client.get(f"/v1/subscriptions/{sub}/deliveries").json()["deliveries"]
    first = log[-1]
    assert (first["position"], first["attempt"], first["status_code"]) == (1, 1, None)
    assert "timeout" in first["error"]
    assert first["duration_ms"] >= 150


def test_connection_resets_count_as_failed_attempts(client, stream, receiver: Receiver):
    receiver.script(Reply(reset=True), Reply(reset=True))
    append(client, stream, 1)
    sub = name()
    subscribe(client, sub, stream, receiver.url, **FAST)
    wait_status(client, sub, lambda s: s["position"] == 1)
    assert attempts_of(receiver.received()) == {1: [1, 2, 3]}
    log = client.get(f"/v1/subscriptions/{sub}/deliveries").json()["deliveries"]
    assert [d["attempt"] for d in log] == [3, 2, 1]
    assert all("connection" in d["error"] for d in log[1:])
    assert log[0]["error"] is None
    assert log[0]["status_code"] == 200


def test_failure_excerpt_and_status_while_retrying(client, stream, receiver: Receiver):
    body = ("x" + "é" * 3000).encode()  # the 1,024th byte is half an "é"
    latin1 = b"a" * 1023 + b"\xe9"  # whole at 1 KiB: its last byte is no character cut
    receiver.decide(lambda r: Reply(503, body=body if r.position == 1 else latin1))
    append(client, stream, 1)
    sub = name()
    subscribe(
        client, sub, stream, receiver.url, max_attempts=0, backoff={"initial": 0.2, "max": 0.2}
    )
    s = wait_status(client, sub, lambda s: s["attempts"] >= 1)
    assert s["status"] == "retrying"
    assert s["last_error"] == "HTTP 503 Service Unavailable"
    entry = client.get(f"/v1/subscriptions/{sub}/deliveries?limit=1").json()["deliveries"][0]
    assert entry["response_excerpt"] == "x" + "é" * 511  # 1,023 bytes: no half character
    append(client, stream, 1)  # an answer in Latin-1
    client.post(f"/v1/subscriptions/{sub}/reset", json={"position": 1})
    wait_status(client, sub, lambda s: s["attempts"] >= 1 and s["position"] == 1)
    entry = client.get(f"/v1/subscriptions/{sub}/deliveries?limit=1").json()["deliveries"][0]
    assert (entry["position"], entry["response_excerpt"]) == (2, "a" * 1023 + "\ufffd")
    receiver.decide(None)
    s = wait_status(client, sub, lambda s: s["position"] == 2)
    assert s["status"] == "active"
    assert s["attempts"] == 0
    assert s["last_error"] is None


def test_a_slow_receiver_slows_neither_appends_nor_other_subscriptions(client, stream):
    other_stream = stream + "-other"
    with Receiver() as slow, Receiver() as fast:
        slow.decide(lambda r: Reply(delay=0.5))
        subscribe(client, name(), stream, slow.url)
        subscribe(client, name(), other_stream, fast.url)
        started = time.monotonic()
        for _ in range(20):
            t = time.monotonic()
            append(client, stream, 1)
            append(client, other_stream, 1)
            assert time.monotonic() - t < 0.4  # appends never wait for deliveries
        fast.wait_count(20, timeout=3)
        assert time.monotonic() - started < 3
        assert len(slow.received()) <= 8  # still working through its first events


def test_410_gone_pauses_at_once(client, stream, receiver: Receiver):
    receiver.script(Reply(410))
    append(client, stream, 3)
    sub = name()
    subscribe(client, sub, stream, receiver.url, **FAST)
    s = wait_status(client, sub, lambda s: s["status"] == "paused")
    assert s["paused_reason"] == "HTTP 410 Gone: the receiver asked to stop"
    assert (s["position"], s["attempts"]) == (0, 1)  # the attempt counts, as any failure's
    assert len(receiver.received()) == 1
    client.post(f"/v1/subscriptions/{sub}/resume")
    assert [r.position for r in receiver.wait_count(4)] == [1, 1, 2, 3]


def test_410_is_an_ordinary_failure_for_original_api_subscriptions(
    client, stream, receiver: Receiver
):
    """original-api.md retries any failure 5 times; only v1 pauses at a 410."""
    receiver.script(Reply(410))
    append(client, stream, 1)
    sub = name()
    r = client.post(f"/subscriptions/{sub}", json={"stream": stream, "url": receiver.url})
    assert r.status_code == 200
    s = wait_status(client, sub, lambda s: s["attempts"] == 1)
    assert s["status"] == "retrying", s
    assert "410" in s["last_error"]
    client.delete(f"/subscriptions/{sub}")


def test_429_retry_after_is_honoured_and_capped(client, stream):
    append(client, stream, 1)
    with Receiver() as honoured, Receiver() as capped:
        honoured.script(Reply(429, headers={"Retry-After": "1"}))
        capped.script(Reply(503, headers={"Retry-After": "120"}))
        subscribe(client, name(), stream, honoured.url, backoff={"initial": 0.01, "max": 5})
        subscribe(client, name(), stream, capped.url, backoff={"initial": 0.01, "max": 0.1})
        first, second = honoured.wait_count(2, timeout=5)
        assert second.at - first.at >= 0.95
        first, second = capped.wait_count(2, timeout=5)
        assert second.at - first.at < 0.9


def test_the_status_says_when_the_next_attempt_is(client, stream, receiver: Receiver):
    receiver.script(Reply(503, headers={"Retry-After": "30"}))
    append(client, stream, 1)
    sub = name()
    subscribe(client, sub, stream, receiver.url, backoff={"initial": 1, "max": 60})
    before = time.time()
    s = wait_status(client, sub, lambda s: s["next_attempt_at"] is not None)
    assert s["status"] == "retrying"
    at = datetime.fromisoformat(s["next_attempt_at"]).timestamp()
    assert before + 29 < at < time.time() + 30.5
    client.post(f"/v1/subscriptions/{sub}/pause")
    assert status(client, sub)["next_attempt_at"] is None
    s = client.post(f"/v1/subscriptions/{sub}/resume").json()
    assert s["next_attempt_at"] is None
    receiver.wait_count(2)  # resumed: tried again at once, and answered 200
    s = wait_status(client, sub, lambda s: s["position"] == 1)
    assert (s["status"], s["next_attempt_at"]) == ("active", None)


def test_redirects_and_3xx_are_failures_not_followed(client, stream, receiver: Receiver):
    receiver.script(
        Reply(302, headers={"Location": "/elsewhere"}), Reply(300, headers={"Location": "/x"})
    )
    append(client, stream, 1)
    sub = name()
    subscribe(client, sub, stream, receiver.url, **FAST)
    wait_status(client, sub, lambda s: s["position"] == 1)
    requests = receiver.received()
    assert [(r.method, r.path) for r in requests] == [("POST", "/hook")] * 3
    log = client.get(f"/v1/subscriptions/{sub}/deliveries").json()["deliveries"]
    assert [d["status_code"] for d in log] == [200, 300, 302]


def test_exhausted_attempts_pause_and_resume_retries_the_same_event(
    client, stream, receiver: Receiver
):
    failing = {2}
    receiver.decide(lambda r: Reply(500, body=b"down") if r.position in failing else None)
    append(client, stream, 3)
    sub = name()
    subscribe(client, sub, stream, receiver.url, max_attempts=3, **FAST)
    s = wait_status(client, sub, lambda s: s["status"] == "paused")
    assert s["position"] == 1
    assert s["paused_reason"] == "HTTP 500 Internal Server Error"
    assert s["attempts"] == 3
    original = {x["name"]: x for x in client.get("/subscriptions").json()}[sub]
    assert original["active"] is False
    assert original["pause_reason"] == "HTTP 500 Internal Server Error"
    assert original["position"] == 1
    assert attempts_of(receiver.received()) == {1: [1], 2: [1, 2, 3]}
    failing.clear()
    r = client.post(f"/v1/subscriptions/{sub}/resume")
    assert r.status_code == 200
    assert r.json()["paused_reason"] is None
    requests = receiver.wait_count(6)
    assert [(x.position, x.headers["x-eventor-attempt"]) for x in requests[4:]] == [
        (2, "1"),
        (3, "1"),
    ]
    wait_status(client, sub, lambda s: s["status"] == "active" and s["position"] == 3)


def test_park_moves_on_then_replay_redelivers(client, stream, receiver: Receiver):
    failing = {2, 4}
    receiver.decide(lambda r: Reply(500) if r.position in failing else None)
    append(client, stream, 5)
    sub = name()
    subscribe(client, sub, stream, receiver.url, max_attempts=2, on_exhausted="park", **FAST)
    s = wait_status(client, sub, lambda s: s["position"] == 5)
    assert s["status"] == "active"
    assert s["parked"] == 2
    parked = client.get(f"/v1/subscriptions/{sub}/parked").json()["parked"]
    assert [p["position"] for p in parked] == [2, 4]
    assert parked[0]["error"] == "HTTP 500 Internal Server Error"
    ok = [r.position for r in receiver.received() if r.position not in failing]
    assert ok == [1, 3, 5]
    failing.discard(2)  # 4 keeps failing: it stays parked
    r = client.post(f"/v1/subscriptions/{sub}/parked/replay")
    assert r.status_code == 202
    assert r.json() == {"replaying": 2}
    # 7 requests before the replay (1, 2, 2, 3, 4, 4, 5); in it, 2 once and 4 twice.
    replayed = [r.position for r in receiver.wait_count(10)[7:]]
    assert replayed == [2, 4, 4]
    wait_status(client, sub, lambda s: s["parked"] == 1)
    parked = client.get(f"/v1/subscriptions/{sub}/parked").json()["parked"]
    assert [p["position"] for p in parked] == [4]
    # new events keep flowing after the replay
    append(client, stream, 1)
    receiver.wait_for(lambda rs: rs[-1].position == 6)


def test_parked_events_page_by_after_and_limit(client, stream, receiver: Receiver):
    receiver.decide(lambda r: Reply(500) if r.position % 2 else None)
    append(client, stream, 8)
    sub = name()
    subscribe(client, sub, stream, receiver.url, max_attempts=1, on_exhausted="park", **FAST)
    wait_status(client, sub, lambda s: s["position"] == 8 and s["parked"] == 4)
    url = f"/v1/subscriptions/{sub}/parked"

    def page(query: str) -> tuple[list[int], int | str | None]:
        r = client.get(url + query)
        assert r.status_code == 200, r.text
        return [p["position"] for p in r.json()["parked"]], r.json().get("next", "absent")

    # Every one without a limit, in the spec's shape: no `next`.
    every = client.get(url).json()
    assert list(every) == ["parked"]
    assert [p["position"] for p in every["parked"]] == [1, 3, 5, 7]
    assert page("?limit=2") == ([1, 3], 3)
    assert page("?limit=2&after=3") == ([5, 7], None)  # the last page, though full
    assert page("?after=3&limit=1") == ([5], 5)
    assert page("?after=4") == ([5, 7], "absent")  # any position; no limit, no `next`
    assert page("?after=7&limit=10") == ([], None)
    for bad in ("limit=0", "limit=1001", "after=-1", "after=x", "limit=2.5"):
        r = client.get(f"{url}?{bad}")
        assert r.status_code == 400, bad
        assert r.headers["content-type"] == "application/problem+json"
        assert bad.split("=")[0] in r.json()["detail"]


def test_a_replay_asked_for_while_one_runs_is_made_after_it(client, stream, receiver):
    """The second request is not lost in the first: the events the first pass already tried
    are tried again."""
    gate = threading.Event()
    replaying = False

    def decide(r: Received) -> Reply | None:
        if r.position == 1:
            return Reply(500)
        if r.position == 2:
            return Reply(200, hold=gate) if replaying else Reply(500)
        return None

    receiver.decide(decide)
    append(client, stream, 3)
    sub = name()
    subscribe(client, sub, stream, receiver.url, max_attempts=1, on_exhausted="park", **FAST)
    wait_status(client, sub, lambda s: s["position"] == 3 and s["parked"] == 2)
    replaying = True
    assert client.post(f"/v1/subscriptions/{sub}/parked/replay").status_code == 202
    # 1 fails again (parked again); 2 is in flight, held
    receiver.wait_for(lambda rs: [r.position for r in rs][3:] == [1, 2])
    assert client.post(f"/v1/subscriptions/{sub}/parked/replay").json() == {"replaying": 2}
    gate.set()
    # the second replay: 1 once more (2 went through in the first)
    receiver.wait_for(lambda rs: [r.position for r in rs][3:] == [1, 2, 1], timeout=5)
    wait_status(client, sub, lambda s: s["parked"] == 1 and s["status"] == "active")


def test_a_parked_event_whose_replay_meets_410_keeps_that_error(client, stream, receiver):
    receiver.decide(lambda r: Reply(503))
    append(client, stream, 1)
    sub = name()
    subscribe(client, sub, stream, receiver.url, max_attempts=1, on_exhausted="park", **FAST)
    wait_status(client, sub, lambda s: s["parked"] == 1)
    receiver.decide(lambda r: Reply(410))
    assert client.post(f"/v1/subscriptions/{sub}/parked/replay").status_code == 202
    assert wait_status(client, sub, lambda s: s["status"] == "paused")["parked"] == 1
    (parked,) = client.get(f"/v1/subscriptions/{sub}/parked").json()["parked"]
    assert parked["error"] == "HTTP 410 Gone"


def test_delete_stops_deliveries_at_once(client, stream):
    with Receiver() as deleted, Receiver() as control:
        deleted.decide(lambda r: Reply(delay=5))
        sub = name()
        subscribe(client, sub, stream, deleted.url)
        append(client, stream, 1)
        deleted.wait_count(1)  # in flight, stuck
        t = time.monotonic()
        assert client.delete(f"/v1/subscriptions/{sub}").status_code == 204
        assert time.monotonic() - t < 1
        assert client.get(f"/v1/subscriptions/{sub}").status_code == 404
        append(client, stream, 2)
        subscribe(client, name(), stream, control.url)
        control.wait_count(3)
        assert len(deleted.received()) == 1


def test_pause_takes_effect_before_the_next_request(client, stream):
    with Receiver() as paused, Receiver() as control:
        sub = name()
        subscribe(client, sub, stream, paused.url)
        append(client, stream, 1)
        paused.wait_count(1)
        r = client.post(f"/v1/subscriptions/{sub}/pause")
        assert r.json()["status"] == "paused"
        assert r.json()["paused_reason"] == "API request"
        append(client, stream, 3)
        subscribe(client, name(), stream, control.url)
        control.wait_count(4)
        assert len(paused.received()) == 1
        assert status(client, sub)["lag"] == 3
        client.post(f"/v1/subscriptions/{sub}/resume")
        assert [r.position for r in paused.wait_count(4)] == [1, 2, 3, 4]


def test_deleting_during_backoff_and_recreating_starts_afresh(client, stream, receiver):
    receiver.decide(lambda r: Reply(500))
    append(client, stream, 1)
    sub = name()
    subscribe(client, sub, stream, receiver.url, max_attempts=0, backoff={"initial": 5, "max": 5})
    receiver.wait_count(1)
    client.delete(f"/v1/subscriptions/{sub}")
    receiver.decide(None)
    subscribe(client, sub, stream, receiver.url)
    requests = receiver.wait_count(2)
    assert requests[1].headers["x-eventor-attempt"] == "1"
    assert httpx.get(f"{client.base_url}/v1/subscriptions/{sub}").json()["attempts"] == 0


def test_resume_while_a_paused_request_is_in_flight_answers_at_once(
    client, stream, receiver: Receiver
):
    sub = first_request_in_flight(client, stream, receiver, 3)
    client.post(f"/v1/subscriptions/{sub}/pause")
    t = time.monotonic()
    assert client.post(f"/v1/subscriptions/{sub}/resume").json()["status"] == "active"
    assert time.monotonic() - t < 0.5
    assert [r.position for r in receiver.wait_count(3)] == [1, 2, 3]
    wait_status(client, sub, lambda s: s["position"] == 3)
    assert len(receiver.received()) == 3


def test_an_update_lets_the_request_in_flight_finish(client, stream, receiver: Receiver):
    sub = first_request_in_flight(client, stream, receiver, 2, headers={"X-Version": "1"})
    body = {"stream": stream, "url": receiver.url, "headers": {"X-Version": "1"}}
    assert client.put(f"/v1/subscriptions/{sub}", json=body).status_code == 200  # no change
    body["headers"] = {"X-Version": "2"}
    assert client.put(f"/v1/subscriptions/{sub}", json=body).status_code == 200
    wait_status(client, sub, lambda s: s["position"] == 2)
    first, second = receiver.received()
    assert (first.position, second.position) == (1, 2)  # nothing cut off and made again
    assert second.at >= first.at + 1.0  # one request at a time: after the first was answered
    assert (first.headers["x-version"], second.headers["x-version"]) == ("1", "2")


def test_a_reset_lets_the_request_in_flight_finish(client, stream, receiver: Receiver):
    sub = first_request_in_flight(client, stream, receiver, 3)
    r = client.post(f"/v1/subscriptions/{sub}/reset", json={"position": 0})
    assert r.status_code == 200
    assert r.json()["position"] == 0
    requests = receiver.wait_count(4)
    assert [x.position for x in requests] == [1, 1, 2, 3]
    # one request at a time: the replay of 1 waited for the answer to the first request
    assert requests[1].at >= requests[0].at + 1.0
    wait_status(client, sub, lambda s: s["position"] == 3)
    assert len(receiver.received()) == 4


def test_a_reset_ahead_is_not_undone_by_the_request_in_flight(client, stream, receiver: Receiver):
    sub = first_request_in_flight(client, stream, receiver, 5)
    assert client.post(f"/v1/subscriptions/{sub}/reset", json={"position": 3}).status_code == 200
    requests = receiver.wait_count(3)
    assert [x.position for x in requests] == [1, 4, 5]
    assert requests[1].at >= requests[0].at + 1.0
    s = wait_status(client, sub, lambda s: s["position"] == 5)
    assert s["status"] == "active"
    log = client.get(f"/v1/subscriptions/{sub}/deliveries").json()["deliveries"]
    assert [d["position"] for d in log] == [5, 4, 1]  # the cut-across attempt is logged


def test_a_pause_keeps_its_reason_when_the_request_in_flight_fails(
    client, stream, receiver: Receiver
):
    receiver.script(Reply(500, delay=0.5))
    append(client, stream, 1)
    sub = name()
    subscribe(client, sub, stream, receiver.url, max_attempts=1)
    receiver.wait_count(1)
    client.post(f"/v1/subscriptions/{sub}/pause")
    deadline = time.monotonic() + 10
    while not client.get(f"/v1/subscriptions/{sub}/deliveries").json()["deliveries"]:
        assert time.monotonic() < deadline, "the attempt in flight should be logged"
        time.sleep(0.01)
    s = status(client, sub)
    assert (s["status"], s["paused_reason"]) == ("paused", "API request")
    assert s["last_error"] == "HTTP 500 Internal Server Error"


def test_a_resume_during_the_last_attempt_starts_the_count_afresh(
    client, stream, receiver: Receiver
):
    """Resumed while its last allowed attempt is in flight, a subscription that was paused by
    hand retries that event afresh when the attempt fails (it paused again at once)."""
    seen: list[int] = []

    def decide(r: Received) -> Reply | None:
        seen.append(r.position)
        return Reply(500, delay=0.5) if len(seen) <= 2 else None  # the first two fail

    receiver.decide(decide)
    append(client, stream, 1)
    sub = name()
    subscribe(client, sub, stream, receiver.url, max_attempts=2, **FAST)
    receiver.wait_count(2)  # the second and last attempt is in flight
    client.post(f"/v1/subscriptions/{sub}/pause")
    assert client.post(f"/v1/subscriptions/{sub}/resume").json()["status"] == "active"
    requests = receiver.wait_count(3)
    assert [int(r.headers["x-eventor-attempt"]) for r in requests] == [1, 2, 2]
    s = wait_status(client, sub, lambda s: s["position"] == 1 or s["status"] == "paused")
    assert (s["status"], s["position"]) == ("active", 1)


def test_a_replay_cut_by_a_pause_goes_on_after_resume(client, stream, receiver: Receiver):
    failing = True
    receiver.decide(lambda r: Reply(500) if failing else None)
    append(client, stream, 1)
    sub = name()
    policy = {"max_attempts": 2, "on_exhausted": "park"}
    subscribe(client, sub, stream, receiver.url, backoff={"initial": 0.01, "max": 0.01}, **policy)
    wait_status(client, sub, lambda s: s["parked"] == 1)
    body = {"stream": stream, "url": receiver.url, "backoff": {"initial": 30, "max": 30}, **policy}
    assert client.put(f"/v1/subscriptions/{sub}", json=body).status_code == 200
    assert client.post(f"/v1/subscriptions/{sub}/parked/replay").status_code == 202
    receiver.wait_count(3)  # the replay's first attempt failed: 30 s to wait
    client.post(f"/v1/subscriptions/{sub}/pause")  # cuts that wait
    failing = False
    client.post(f"/v1/subscriptions/{sub}/resume")
    wait_status(client, sub, lambda s: s["parked"] == 0)
    assert [r.position for r in receiver.wait_count(4)] == [1, 1, 1, 1]


def test_a_410_pauses_even_when_a_reset_came_while_it_was_in_flight(
    client, stream, receiver: Receiver
):
    receiver.script(Reply(410, delay=1.0))
    append(client, stream, 3)
    sub = name()
    subscribe(client, sub, stream, receiver.url)
    receiver.wait_count(1)
    assert client.post(f"/v1/subscriptions/{sub}/reset", json={"position": 0}).status_code == 200
    s = wait_status(client, sub, lambda s: s["status"] == "paused")
    assert "410" in s["paused_reason"]
    assert (s["position"], s["attempts"]) == (0, 0)  # the reset started the count afresh
    assert len(receiver.received()) == 1


def test_an_update_keeps_the_attempt_count_and_the_retry_time(client, stream, receiver: Receiver):
    """A receiver's Retry-After stands through a PUT (it used to retry at once, afresh)."""
    receiver.script(Reply(429, headers={"Retry-After": "30"}))
    append(client, stream, 1)
    sub = name()
    subscribe(client, sub, stream, receiver.url, backoff={"initial": 1, "max": 60})
    before = wait_status(client, sub, lambda s: s["next_attempt_at"] is not None)
    body = {
        "stream": stream,
        "url": receiver.url,
        "timeout": 7,
        "backoff": {"initial": 1, "max": 60},
    }
    after = client.put(f"/v1/subscriptions/{sub}", json=body).json()
    assert (after["attempts"], after["next_attempt_at"]) == (1, before["next_attempt_at"])
    assert after["config"]["timeout"] == 7
    assert status(client, sub)["next_attempt_at"] == before["next_attempt_at"]
    assert len(receiver.received()) == 1


def test_an_update_that_lowers_backoff_max_says_when_the_retry_now_comes(
    client, stream, receiver: Receiver
):
    receiver.script(Reply(429, headers={"Retry-After": "30"}))
    append(client, stream, 1)
    sub = name()
    subscribe(client, sub, stream, receiver.url, backoff={"initial": 1, "max": 60})
    wait_status(client, sub, lambda s: s["next_attempt_at"] is not None)
    body = {"stream": stream, "url": receiver.url, "backoff": {"initial": 0.5, "max": 1}}
    put_at, put_clock = time.time(), time.monotonic()
    after = client.put(f"/v1/subscriptions/{sub}", json=body).json()
    retry_at = datetime.fromisoformat(after["next_attempt_at"]).timestamp()
    assert put_at <= retry_at <= time.time() + 1  # the capped time, not the Retry-After's
    assert status(client, sub)["next_attempt_at"] == after["next_attempt_at"]
    assert receiver.wait_count(2)[1].at <= put_clock + 5  # not 30 s on


def test_an_update_that_filters_out_the_failing_event_moves_on_afresh(
    client, stream, receiver: Receiver
):
    receiver.decide(
        lambda r: Reply(503, headers={"Retry-After": "30"}) if r.position == 1 else None
    )
    append(client, stream, 1, type_="Bad")
    append(client, stream, 1, type_="Good")
    sub = name()
    subscribe(client, sub, stream, receiver.url, backoff={"initial": 1, "max": 60})
    wait_status(client, sub, lambda s: s["next_attempt_at"] is not None)
    body = {"stream": stream, "url": receiver.url, "event_types": ["Good"]}
    body["backoff"] = {"initial": 1, "max": 60}
    client.put(f"/v1/subscriptions/{sub}", json=body)
    s = wait_status(client, sub, lambda s: s["position"] == 2)
    assert (s["attempts"], s["next_attempt_at"], s["status"]) == (0, None, "active")
    requests = receiver.received()
    assert [r.position for r in requests] == [1, 2]
    assert requests[1].headers["x-eventor-attempt"] == "1"


def parked_then_updated(
    client: httpx.Client, stream: str, receiver: Receiver, count: int, **policy: Any
) -> str:
    """`count` events parked after one attempt each, then the policy replaced by `policy`;
    returns the subscription's name."""
    append(client, stream, count)
    sub = name()
    subscribe(client, sub, stream, receiver.url, max_attempts=1, on_exhausted="park", **FAST)
    wait_status(client, sub, lambda s: s["parked"] == count)
    body = {"stream": stream, "url": receiver.url, **policy}
    assert client.put(f"/v1/subscriptions/{sub}", json=body).status_code == 200
    return sub


def test_a_replay_leaves_the_waiting_event_its_retry_time(client, stream, receiver: Receiver):
    replies = {1: Reply(500), 2: Reply(429, headers={"Retry-After": "30"})}
    receiver.decide(lambda r: replies.get(r.position))
    sub = parked_then_updated(
        client, stream, receiver, 1, max_attempts=10, backoff={"initial": 1, "max": 60}
    )
    append(client, stream, 1)
    waiting = wait_status(client, sub, lambda s: s["next_attempt_at"] is not None)
    del replies[1]
    assert client.post(f"/v1/subscriptions/{sub}/parked/replay").status_code == 202
    s = wait_status(client, sub, lambda s: s["parked"] == 0)
    assert s["next_attempt_at"] == waiting["next_attempt_at"]
    assert [r.position for r in receiver.received()] == [1, 2, 1]


def test_a_replay_asked_for_during_a_request_goes_before_its_retries(
    client, stream, receiver: Receiver
):
    replies = {1: Reply(500), 2: Reply(500), 3: Reply(500, delay=1.0)}
    receiver.decide(lambda r: replies.get(r.position))
    sub = parked_then_updated(
        client, stream, receiver, 2, max_attempts=0, backoff={"initial": 0.5, "max": 0.5}
    )
    del replies[1], replies[2]
    append(client, stream, 1)  # 3 fails, slowly, for ever
    receiver.wait_for(lambda rs: any(r.position == 3 for r in rs))
    assert client.post(f"/v1/subscriptions/{sub}/parked/replay").status_code == 202
    wait_status(client, sub, lambda s: s["parked"] == 0)


def test_a_replay_that_succeeds_clears_last_error(client, stream, receiver: Receiver):
    failing = {1}
    receiver.decide(lambda r: Reply(500) if r.position in failing else None)
    append(client, stream, 1)
    sub = name()
    subscribe(client, sub, stream, receiver.url, max_attempts=1, on_exhausted="park", **FAST)
    s = wait_status(client, sub, lambda s: s["parked"] == 1)
    assert s["last_error"] == "HTTP 500 Internal Server Error"
    failing.clear()
    assert client.post(f"/v1/subscriptions/{sub}/parked/replay").status_code == 202
    s = wait_status(client, sub, lambda s: s["parked"] == 0)
    assert s["last_error"] is None


def test_an_update_during_a_replay_applies_to_the_rest_of_it(client, stream, receiver: Receiver):
    old = {"X-Version": "1"}
    receiver.decide(lambda r: Reply(500, delay=0.5) if r.headers.get("x-version") == "1" else None)
    append(client, stream, 2)
    sub = name()
    policy = {"max_attempts": 1, "on_exhausted": "park", **FAST}
    subscribe(client, sub, stream, receiver.url, headers=old, **policy)
    wait_status(client, sub, lambda s: s["position"] == 2)
    assert len(client.get(f"/v1/subscriptions/{sub}/parked").json()["parked"]) == 2
    assert client.post(f"/v1/subscriptions/{sub}/parked/replay").status_code == 202
    receiver.wait_count(3)  # the replay of event 1 is in flight, and will fail
    body = {"stream": stream, "url": receiver.url, "headers": {"X-Version": "2"}, **policy}
    assert client.put(f"/v1/subscriptions/{sub}", json=body).status_code == 200
    requests = receiver.wait_for(
        lambda rs: {1, 2} <= {r.position for r in rs if r.headers.get("x-version") == "2"}
    )
    assert [r.headers["x-version"] for r in requests] == ["1", "1", "1", "2", "2"]
    deadline = time.monotonic() + 10
    while client.get(f"/v1/subscriptions/{sub}/parked").json()["parked"]:
        assert time.monotonic() < deadline, "the replay under the new headers should clear both"
        time.sleep(0.01)


def test_a_hand_pause_of_a_subscription_paused_by_failures_records_the_request(
    client, stream, receiver: Receiver
):
    receiver.decide(lambda r: Reply(500))
    append(client, stream, 1)
    sub = name()
    subscribe(client, sub, stream, receiver.url, max_attempts=1)
    exhausted = wait_status(client, sub, lambda s: s["status"] == "paused")
    assert exhausted["paused_reason"] == "HTTP 500 Internal Server Error"
    paused = client.post(f"/v1/subscriptions/{sub}/pause").json()
    assert paused["paused_reason"] == "API request"  # original-api.md's words for a pause
    assert paused["last_error"] == "HTTP 500 Internal Server Error"  # the error stays told
    assert status(client, sub)["paused_reason"] == "API request"


class RawReceiver:
    """A receiver that writes answers byte for byte (aiohttp's server would refuse to write
    these): `answer(request_number)` gives (head, body, seconds to wait before the body)."""

    def __init__(
        self, answer: Callable[[int], tuple[bytes, bytes, float]], requests_per_connection: int = 0
    ) -> None:
        """`requests_per_connection`: a connection's next request is read, then the connection
        closed unanswered, as by a server closing it idle just as the request came (0: never)."""
        self._answer = answer
        self._per_connection = requests_per_connection
        self.requests = 0
        self.dropped = 0
        #: Every request is read, then its connection closed unanswered.
        self.drop_all = False
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/hook"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            served = 0
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])  # type: ignore[index]
                while len(data) < length:
                    data += conn.recv(65536)
                data = data[length:]
                if self.drop_all or (self._per_connection and served == self._per_connection):
                    self.dropped += 1
                    return
                served += 1
                self.requests += 1
                answer_head, body, wait = self._answer(self.requests)
                conn.sendall(answer_head)
                time.sleep(wait)
                conn.sendall(body)

    def close(self) -> None:
        self._server.close()


def test_a_204_or_304_that_comes_with_a_body_is_judged_by_its_status(client, stream):
    """Those answers have no body; a receiver that sends one all the same (a bug, common in
    hand-written ones) was taken by aiohttp as a broken answer ("Bad status line"): a 204's
    event was delivered again and again, then the subscription paused. Go's client, the
    original's, took the status: so does Eventor now (a 304 is a failure, as any non-2xx)."""
    answers = [
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n", b"ok", 0),  # one write
        (b"HTTP/1.1 204 No Content\r\n\r\n", b'{"ok": true}', 0.05),  # a write of its own
        (b"HTTP/1.1 204\r\n\r\n", b"no reason phrase", 0),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", b"ok", 0),
        (b"HTTP/1.1 304 Not Modified\r\n\r\n", b"not modified", 0),
    ]
    raw = RawReceiver(lambda n: answers[min(n, len(answers)) - 1])
    try:
        sub = name()
        subscribe(client, sub, stream, raw.url, max_attempts=1, **FAST)
        for position in (1, 2, 3, 4):
            append(client, stream, 1)
            done = wait_status(client, sub, lambda s, p=position: s["position"] == p)
            assert (done["status"], done["last_error"]) == ("active", None)
        assert raw.requests == 4  # each once
        append(client, stream, 1)
        paused = wait_status(client, sub, lambda s: s["status"] == "paused")
        assert paused["last_error"] == "HTTP 304 Not Modified"
        log = client.get(f"/v1/subscriptions/{sub}/deliveries").json()["deliveries"]
        assert [entry["status_code"] for entry in log] == [304, 200, 204, 204, 204]
    finally:
        raw.close()


def test_a_kept_alive_connection_closed_as_it_is_reused_is_no_failed_attempt(client, stream):
    """A receiver that closes an idle connection just as a delivery takes it (Node and uvicorn
    close them after 5 s idle) never saw the request: it is sent again at once on a new
    connection, not counted as the receiver's failure (max_attempts 1 paused on it)."""
    raw = RawReceiver(
        lambda _: (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", b"ok", 0),
        requests_per_connection=1,
    )
    try:
        sub = name()
        subscribe(client, sub, stream, raw.url, max_attempts=1, **FAST)
        for position in (1, 2, 3):  # one at a time, each on the connection the last one left
            append(client, stream, 1)
            done = wait_status(client, sub, lambda s, p=position: s["position"] == p)
            assert (done["status"], done["last_error"]) == ("active", None)
        assert (raw.requests, raw.dropped, raw.connections) == (3, 2, 3)
        log = client.get(f"/v1/subscriptions/{sub}/deliveries").json()["deliveries"]
        assert [entry["status_code"] for entry in log] == [200, 200, 200]
    finally:
        raw.close()


def test_every_stale_kept_alive_connection_is_passed_over(client, stream):
    """Subscriptions to one receiver leave several idle connections: when it has closed them
    all, the request goes on to the next, and the next, until a new one answers (only the
    first was passed over: the attempt failed on the second)."""
    raw = RawReceiver(
        lambda _: (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", b"ok", 0),
        requests_per_connection=1,
    )
    try:
        subs = [name() for _ in range(3)]
        for sub, kind in zip(subs, "abc", strict=True):
            subscribe(client, sub, stream, raw.url, event_types=[kind], max_attempts=1, **FAST)
        # One append wakes the three at once: three connections, each left idle after one.
        client.post(f"/v1/streams/{stream}/events", json=[{"type": k} for k in "abc"])
        for sub in subs:
            wait_status(client, sub, lambda s: s["position"] == 3)
        assert (raw.connections, raw.requests) == (3, 3)
        append(client, stream, 1, type_="a")
        done = wait_status(client, subs[0], lambda s: s["position"] == 4 or s["attempts"])
        assert (done["status"], done["position"], done["last_error"]) == ("active", 4, None)
        assert (raw.connections, raw.requests, raw.dropped) == (4, 4, 3)
    finally:
        raw.close()


def test_a_receiver_that_drops_every_request_fails_each_attempt_once(client, stream):
    """The new connection's request is not sent a third time: a receiver that closes every
    connection unanswered fails the attempt (two requests at most, one per connection)."""
    raw = RawReceiver(lambda _: (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", b"ok", 0))
    try:
        sub = name()
        subscribe(client, sub, stream, raw.url, max_attempts=1, **FAST)
        append(client, stream, 1)
        wait_status(client, sub, lambda s: s["position"] == 1)
        raw.drop_all = True
        append(client, stream, 1)
        paused = wait_status(client, sub, lambda s: s["status"] == "paused")
        assert paused["position"] == 1
        assert "disconnected" in paused["last_error"].lower(), paused
        assert (raw.requests, raw.dropped) == (1, 2)
    finally:
        raw.close()


def test_a_reason_phrase_that_is_not_utf8_stops_nothing(client, stream, receiver: Receiver):
    """aiohttp keeps its bytes as lone surrogates, which no UTF-8 encoder takes: it made every
    subscription's progress unwritable (all deliveries stopped) and the status a 500."""
    raw = RawReceiver(lambda _: (b"HTTP/1.1 500 \xff\xfe\r\nContent-Length: 2\r\n\r\n", b"no", 0))
    try:
        append(client, stream, 1)
        odd, healthy = name(), name()
        subscribe(client, odd, stream, raw.url, max_attempts=1, **FAST)
        subscribe(client, healthy, stream, receiver.url, **FAST)
        paused = wait_status(client, odd, lambda s: s["status"] == "paused")
        assert paused["last_error"] == "HTTP 500 \ufffd\ufffd"
        append(client, stream, 2)
        wait_status(client, healthy, lambda s: s["position"] == 3)  # the others deliver on
        assert receiver.positions() == [1, 2, 3]
        assert client.get("/v1/subscriptions").status_code == 200
    finally:
        raw.close()


def test_control_characters_of_a_reason_phrase_are_escaped(make_server):
    """A receiver chose them, and the error is logged: raw, an escape sequence erased the line
    on a terminal and wrote another."""
    forged = b"HTTP/1.1 500 ok\x1b[2K\x1b[1GEventor stopped\x07\r\nContent-Length: 0\r\n\r\n"
    raw = RawReceiver(lambda _: (forged, b"", 0))
    server = make_server()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            append(c, "forged", 1)
            subscribe(c, "forged", "forged", raw.url, max_attempts=1, **FAST)
            paused = wait_status(c, "forged", lambda s: s["status"] == "paused")
        assert paused["last_error"] == "HTTP 500 ok\\x1b[2K\\x1b[1GEventor stopped\\x07"
        logged = server.log_path.read_bytes()
        assert b"Eventor stopped" in logged  # the pause is logged, with its reason...
        assert b"\x1b" not in logged  # ...escaped
    finally:
        raw.close()


def test_a_2xx_whose_body_comes_late_is_a_success(client, stream):
    """The verdict is the status; a body slower than the attempt's timeout changes nothing."""
    late = RawReceiver(lambda _: (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", b"ok", 0.6))
    try:
        append(client, stream, 2)
        sub = name()
        subscribe(client, sub, stream, late.url, timeout=0.3, **FAST)
        done = wait_status(client, sub, lambda s: s["position"] == 2)
        assert (done["status"], done["last_error"]) == ("active", None)
        assert late.requests == 2  # each event once
    finally:
        late.close()


def test_a_2xx_body_in_pieces_is_read_whole_and_the_connection_kept(client, stream):
    """One read returns what has arrived: a body in two pieces was cut, and the connection
    closed after every delivery."""
    pieces = RawReceiver(
        lambda _: (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n",
            b"0\r\n\r\n",
            0.05,
        )
    )
    try:
        append(client, stream, 3)
        sub = name()
        subscribe(client, sub, stream, pieces.url, **FAST)
        wait_status(client, sub, lambda s: s["position"] == 3)
        assert (pieces.requests, pieces.connections) == (3, 1)
    finally:
        pieces.close()


def test_a_2xx_with_a_big_head_is_a_success(client, stream):
    """A 16 KiB cookie and 200 header fields (aiohttp's defaults: 8 KiB, 128) made a 200 a
    failure: the event was sent again and the subscription paused."""
    big = (
        b"Set-Cookie: s="
        + b"c" * 16_000
        + b"\r\n"
        + b"".join(b"X-Field-%d: v\r\n" % n for n in range(200))
    )
    raw = RawReceiver(
        lambda _: (b"HTTP/1.1 200 OK\r\n" + big + b"Content-Length: 0\r\n\r\n", b"", 0)
    )
    try:
        append(client, stream, 2)
        sub = name()
        subscribe(client, sub, stream, raw.url, max_attempts=1, **FAST)
        done = wait_status(client, sub, lambda s: s["position"] == 2 or s["status"] == "paused")
        assert (done["status"], done["position"], done["last_error"]) == ("active", 2, None)
        assert raw.requests == 2  # each event once
    finally:
        raw.close()


def test_a_failures_body_that_stalls_keeps_what_came_in_the_excerpt(client, stream):
    """The attempt log's excerpt was empty when the rest of the body never came."""
    head = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100\r\n\r\nboom: db down"
    raw = RawReceiver(lambda _: (head, b"", 0))
    try:
        append(client, stream, 1)
        sub = name()
        subscribe(client, sub, stream, raw.url, timeout=0.3, max_attempts=1, **FAST)
        wait_status(client, sub, lambda s: s["status"] == "paused")
        entry = client.get(f"/v1/subscriptions/{sub}/deliveries").json()["deliveries"][0]
        assert (entry["status_code"], entry["response_excerpt"]) == (500, "boom: db down")
    finally:
        raw.close()


def test_lowering_max_attempts_below_the_failures_made_gives_up_at_once(
    client, stream, receiver: Receiver
):
    receiver.decide(lambda r: Reply(500) if r.position == 1 else None)
    append(client, stream, 2)
    sub = name()
    body = {"stream": stream, "url": receiver.url, "max_attempts": 0}
    body["backoff"] = {"initial": 30, "max": 30}
    assert client.put(f"/v1/subscriptions/{sub}", json=body).status_code == 201
    receiver.wait_count(1)
    wait_status(client, sub, lambda s: s["status"] == "retrying")  # 30 s to the next attempt
    body["max_attempts"] = 1
    assert client.put(f"/v1/subscriptions/{sub}", json=body).status_code == 200
    paused = wait_status(client, sub, lambda s: s["status"] == "paused")
    assert (paused["position"], paused["attempts"]) == (0, 1)
    assert paused["paused_reason"].startswith("HTTP 500")
    assert len(receiver.received()) == 1  # no attempt more
    # Under the park policy the event is parked at once and the next one goes out.
    body.update(max_attempts=0, on_exhausted="park")
    assert client.put(f"/v1/subscriptions/{sub}", json=body).status_code == 200
    assert client.post(f"/v1/subscriptions/{sub}/resume").status_code == 200
    receiver.wait_count(2)
    wait_status(client, sub, lambda s: s["status"] == "retrying")
    body["max_attempts"] = 1
    assert client.put(f"/v1/subscriptions/{sub}", json=body).status_code == 200
    wait_status(client, sub, lambda s: s["parked"] == 1 and s["position"] == 2)
    requests = receiver.wait_count(3)
    assert [(r.position, r.headers["x-eventor-attempt"]) for r in requests] == [
        (1, "1"),
        (1, "1"),
        (2, "1"),
    ]


def test_lowering_max_attempts_parks_only_the_event_that_failed_not_a_batch_read_since(
    client, stream, receiver: Receiver
):
    def first(r: Received) -> int:
        return int(r.headers["x-eventor-first-position"])

    receiver.decide(lambda r: Reply(500) if first(r) == 1 else None)
    append(client, stream, 1)
    sub = name()
    body = {"stream": stream, "url": receiver.url, "batch_size": 5, "on_exhausted": "park"}
    body.update(max_attempts=0, backoff={"initial": 30, "max": 30})
    assert client.put(f"/v1/subscriptions/{sub}", json=body).status_code == 201
    receiver.wait_count(1)
    wait_status(client, sub, lambda s: s["status"] == "retrying")
    append(client, stream, 9)  # never sent yet: the retry of [1] waits 30 s
    body["max_attempts"] = 1
    assert client.put(f"/v1/subscriptions/{sub}", json=body).status_code == 200
    wait_status(client, sub, lambda s: s["position"] == 10)
    parked = client.get(f"/v1/subscriptions/{sub}/parked").json()["parked"]
    assert [p["position"] for p in parked] == [1]
    batches = [json.loads(r.body) for r in receiver.received()]
    assert [[int(e["sequence"]) for e in b] for b in batches] == [
        [1],
        [2, 3, 4, 5, 6],
        [7, 8, 9, 10],
    ]


def test_an_event_retried_across_an_update_goes_alone_not_with_the_events_come_since(
    client, stream, receiver: Receiver
):
    """Events appended while the first one is being retried have not failed with it: after
    an update, they are not sent in its batch (to be parked with it when it runs out of
    attempts) but after it, with attempts of their own."""
    receiver.decide(lambda r: Reply(500) if r.headers["x-eventor-first-position"] == "1" else None)
    append(client, stream, 1)
    sub = name()
    body = {"stream": stream, "url": receiver.url, "batch_size": 5, "on_exhausted": "park"}
    body.update(max_attempts=2, backoff={"initial": 0.5, "max": 0.5})
    assert client.put(f"/v1/subscriptions/{sub}", json=body).status_code == 201
    receiver.wait_count(1)
    wait_status(client, sub, lambda s: s["status"] == "retrying")
    append(client, stream, 4)
    body["headers"] = {"X-Version": "2"}  # any update: the loop starts again
    assert client.put(f"/v1/subscriptions/{sub}", json=body).status_code == 200
    wait_status(client, sub, lambda s: s["position"] == 5)
    parked = client.get(f"/v1/subscriptions/{sub}/parked").json()["parked"]
    assert [p["position"] for p in parked] == [1]
    batches = [json.loads(r.body) for r in receiver.received()]
    assert [[int(e["sequence"]) for e in b] for b in batches] == [[1], [1], [2, 3, 4, 5]]


def test_an_update_during_a_failing_batch_parks_only_the_events_it_still_wants(
    client, stream, receiver: Receiver
):
    """The batch in flight fails after an update that filters some of its events out and
    gives up on it: those events are passed over, not parked (a replay would send them)."""
    held = threading.Event()
    receiver.decide(lambda r: Reply(500, hold=held))
    events = [{"type": t} for t in ("A", "B", "A")]
    assert client.post(f"/v1/streams/{stream}/events", json=events).status_code == 201
    sub = name()
    body = {"stream": stream, "url": receiver.url, "batch_size": 3, "on_exhausted": "park"}
    assert client.put(f"/v1/subscriptions/{sub}", json=body).status_code == 201
    receiver.wait_count(1)  # the batch 1-3 in flight, held
    body.update(event_types=["A"], max_attempts=1)
    assert client.put(f"/v1/subscriptions/{sub}", json=body).status_code == 200
    held.set()
    s = wait_status(client, sub, lambda s: s["position"] == 3)
    parked = client.get(f"/v1/subscriptions/{sub}/parked").json()["parked"]
    assert [p["position"] for p in parked] == [1, 3]
    assert s["parked"] == 2
