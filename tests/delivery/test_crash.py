"""Crash and shutdown: SIGKILL repeats at most the last flush window; SIGTERM repeats nothing."""

from __future__ import annotations

import signal
import threading
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from .helpers import status, subscribe, wait_status
from .receiver import Receiver, Reply

if TYPE_CHECKING:
    from conftest import ServerProcess

pytestmark = pytest.mark.slow


class Appender(threading.Thread):
    """Appends batches of 5 events until stopped; counts the acknowledged ones."""

    def __init__(self, url: str, stream: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stream = stream
        self.acknowledged = 0
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as c:
            while not self.halt.is_set():
                try:
                    r = c.post(
                        f"/v1/streams/{self.stream}/events",
                        json=[{"type": "T", "data": {"n": i}} for i in range(5)],
                    )
                except httpx.TransportError:
                    return  # the server died
                if r.status_code == 201:
                    self.acknowledged = r.json()["last_position"]


def run_until_stopped(make_server, receiver: Receiver, sig: int) -> tuple[list[int], float, int]:
    """Deliver under load, stop the server with `sig` mid-delivery, restart, catch up.

    Returns the receiver's positions, when the server was stopped, and the final head.
    """
    server = make_server()
    client = httpx.Client(base_url=server.url, timeout=10)
    subscribe(client, "crashy", "load", receiver.url)
    appender = Appender(server.url, "load")
    appender.start()
    # long enough that a broken group commit would repeat far more than the last window
    first = receiver.wait_count(1, timeout=20)[0].at
    receiver.wait_for(lambda rs: len(rs) >= 400 and rs[-1].at - first > 1.5, timeout=30)
    stopped_at = time.monotonic()
    server.stop(sig)
    appender.halt.set()
    appender.join(10)
    server.restart()
    head = status(client, "crashy")["head"]
    assert head >= appender.acknowledged  # acknowledged appends survive, even a SIGKILL
    wait_status(client, "crashy", lambda s: s["position"] == head, timeout=20)
    client.close()
    server.stop()
    return receiver.positions(), stopped_at, head


def test_sigkill_repeats_only_the_last_flush_window(make_server, receiver: Receiver):
    positions, killed_at, head = run_until_stopped(make_server, receiver, signal.SIGKILL)
    # every event, in order, no gaps: the receiver's first sight of each position is 1..head
    first_seen: list[int] = []
    seen: set[int] = set()
    for p in positions:
        if p not in seen:
            first_seen.append(p)
            seen.add(p)
    assert first_seen == list(range(1, head + 1))
    # one restart point: after it, delivery goes on from the last flushed position
    restart = next(
        (i for i in range(1, len(positions)) if positions[i] <= positions[i - 1]), len(positions)
    )
    assert positions[restart:] == list(range(positions[restart - 1] + 1, head + 1)) or (
        positions[restart:] == list(range(positions[restart], head + 1))
    )
    before = set(positions[:restart])
    duplicates = [p for p in positions[restart:] if p in before]
    print(f"{len(positions)} deliveries, head {head}, {len(duplicates)} repeated after the kill")
    # the repeated deliveries were all first made in the last moments before the kill
    first_time = {}
    for request in receiver.received():
        first_time.setdefault(request.position, request.at)
    window = [killed_at - first_time[p] for p in duplicates]
    print(f"repeated deliveries were up to {max(window, default=0):.3f}s old")
    assert max(window, default=0) < 0.6, f"{len(duplicates)} repeated, up to {max(window)}s old"


def test_sigterm_repeats_nothing(make_server, receiver: Receiver):
    positions, _, head = run_until_stopped(make_server, receiver, signal.SIGTERM)
    assert positions == list(range(1, head + 1))


def one_request_in_flight(
    make_server, receiver: Receiver, sub: str, *, delay: float, timeout: float
) -> tuple[ServerProcess, httpx.Client]:
    """A server with one event and subscription `sub` on stream "s", whose receiver takes
    `delay` seconds to answer; returns once the request is in flight."""
    receiver.script(Reply(delay=delay))
    server = make_server()
    client = httpx.Client(base_url=server.url, timeout=10)
    client.post("/v1/streams/s/events", json={"type": "T"})
    subscribe(client, sub, "s", receiver.url, timeout=timeout)
    receiver.wait_count(1)
    return server, client


def test_sigterm_waits_for_the_request_in_flight_and_repeats_nothing(
    make_server, receiver: Receiver
):
    """A clean stop lets a slow receiver answer (within the attempt's timeout): no repeat."""
    server, client = one_request_in_flight(make_server, receiver, "slow", delay=4, timeout=20)
    # a shorter timeout from now on: the request in flight keeps the one it was sent with
    body = {"stream": "s", "url": receiver.url, "timeout": 1}
    assert client.put("/v1/subscriptions/slow", json=body).status_code == 200
    t = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0
    assert 2 < time.monotonic() - t < 15  # waited for the answer, not for the whole timeout
    server.restart()
    assert status(client, "slow")["position"] == 1
    client.post("/v1/streams/s/events", json={"type": "T"})
    assert [r.position for r in receiver.wait_count(2)] == [1, 2]
    wait_status(client, "slow", lambda s: s["position"] == 2)
    client.close()


def test_sigterm_with_a_request_that_times_out_redelivers_it(make_server, receiver: Receiver):
    """An attempt that ends in its timeout during the stop failed: it is made again."""
    server, client = one_request_in_flight(make_server, receiver, "stuck", delay=30, timeout=1.5)
    t = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t < 10
    server.restart()
    assert [r.position for r in receiver.wait_count(2)] == [1, 1]
    wait_status(client, "stuck", lambda s: s["position"] == 1)
    client.close()


def test_a_second_sigterm_abandons_the_request_in_flight(make_server, receiver: Receiver):
    """Asked twice, the stop does not wait out a slow receiver: the event is made again."""
    server, client = one_request_in_flight(make_server, receiver, "slow", delay=30, timeout=60)
    t = time.monotonic()
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while "waiting up to" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t < 10
    assert "abandoning 1 webhook request" in server.log()
    server.restart()
    assert [r.position for r in receiver.wait_count(2)] == [1, 1]
    client.close()


def test_a_retry_after_outlives_a_restart(make_server, receiver: Receiver):
    """The retry a Retry-After scheduled waits out a clean restart too (it came at once)."""
    receiver.script(Reply(429, headers={"Retry-After": "3"}))
    server = make_server()
    client = httpx.Client(base_url=server.url, timeout=10)
    client.post("/v1/streams/s/events", json={"type": "T"})
    subscribe(client, "patient", "s", receiver.url, backoff={"initial": 0.01, "max": 60})
    [first] = receiver.wait_count(1)
    s = wait_status(client, "patient", lambda s: s["next_attempt_at"] is not None)
    assert s["status"] == "retrying"
    assert server.stop(signal.SIGTERM) == 0
    server.restart()
    assert status(client, "patient")["next_attempt_at"] == s["next_attempt_at"]
    _, second = receiver.wait_count(2, timeout=10)
    assert second.at - first.at >= 2.9
    s = wait_status(client, "patient", lambda s: s["position"] == 1)
    assert (s["status"], s["next_attempt_at"]) == ("active", None)
    client.close()


def test_a_retry_after_answered_during_a_stop_outlives_it(make_server, receiver: Receiver):
    """The stop waits for the request in flight; the Retry-After it then gets is kept too."""
    receiver.script(Reply(503, headers={"Retry-After": "3"}, delay=1.0))
    server = make_server()
    client = httpx.Client(base_url=server.url, timeout=10)
    client.post("/v1/streams/s/events", json={"type": "T"})
    subscribe(client, "deploy", "s", receiver.url, backoff={"initial": 0.01, "max": 60})
    receiver.wait_count(1)
    assert server.stop(signal.SIGTERM) == 0
    answered = time.monotonic()
    server.restart()
    assert status(client, "deploy")["next_attempt_at"] is not None
    _, second = receiver.wait_count(2, timeout=10)
    assert second.at - answered >= 1.5  # not at once: ~3 s after the answer
    wait_status(client, "deploy", lambda s: s["position"] == 1)
    client.close()


@pytest.mark.parametrize("change", ["pause", "update"])
def test_a_change_right_after_a_park_keeps_the_parked_event_through_a_crash(
    make_server, receiver: Receiver, change: str
):
    """A pause or an update wrote the subscription's position, already past an event parked
    since the last progress flush, without its parked row: a SIGKILL before the next flush
    lost the event, neither delivered nor listed (found by a review)."""
    receiver.decide(lambda r: Reply(500) if r.position == 2 else None)
    server = make_server("--position-flush-interval", "10")  # no flush but the change's
    client = httpx.Client(base_url=server.url, timeout=10)
    options = {"max_attempts": 1, "on_exhausted": "park"}
    subscribe(client, "parker", "s", receiver.url, **options)
    client.post("/v1/streams/s/events", json=[{"type": "T", "data": n} for n in range(3)])
    wait_status(client, "parker", lambda s: s["position"] == 3)
    if change == "pause":
        assert client.post("/v1/subscriptions/parker/pause").status_code == 200
    else:
        moved = {"stream": "s", "url": receiver.url + "?v=2", **options}
        assert client.put("/v1/subscriptions/parker", json=moved).status_code == 200
    server.stop(signal.SIGKILL)
    server.restart()
    s = status(client, "parker")
    parked = client.get("/v1/subscriptions/parker/parked").json()["parked"]
    assert s["position"] < 2 or [p["position"] for p in parked] == [2], (s, parked)
    assert s["position"] == 3  # the change's write carried the position, and the park with it
    client.close()
