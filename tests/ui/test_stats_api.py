"""GET /v1/stats and GET /v1/stats/live: counts, monotonic counters, per-second rates."""

from __future__ import annotations

import json
from typing import Any

import httpx
from conftest import ServerProcess
from delivery.receiver import Receiver
from helpers import SSE, TIMESTAMP, unique, wait_until


def stats(client: httpx.Client) -> dict[str, Any]:
    r = client.get("/v1/stats")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body: dict[str, Any] = r.json()
    return body


def test_stats_count_streams_events_and_subscriptions(make_server: Any) -> None:
    server: ServerProcess = make_server("--durability", "off")
    with httpx.Client(base_url=server.url, timeout=10) as client, Receiver() as receiver:
        before = stats(client)
        assert before["streams"] == {"total": 0, "events": 0, "open": 0}
        assert before["subscriptions"] == {
            "total": 0,
            "active": 0,
            "retrying": 0,
            "paused": 0,
            "parked_events": 0,
        }
        assert TIMESTAMP.fullmatch(before["time"])
        assert TIMESTAMP.fullmatch(before["started"])
        for stream, count in (("a", 3), ("b", 4)):
            events = [{"type": "T", "data": i} for i in range(count)]
            assert client.post(f"/v1/streams/{stream}/events", json=events).status_code == 201
        put = client.put("/v1/subscriptions/s1", json={"stream": "a", "url": receiver.url})
        assert put.status_code == 201
        receiver.wait_for(lambda requests: len(requests) == 3)
        client.put("/v1/subscriptions/s2", json={"stream": "b", "url": receiver.url})
        client.post("/v1/subscriptions/s2/pause")

        after = wait_until(
            lambda: (s := stats(client))["counters"]["delivered_events"] >= 3 and s,
            what="3 deliveries counted",
        )
        assert after["streams"]["total"] == 2
        assert after["streams"]["events"] == 7
        assert after["counters"]["appended_events"] == 7
        assert after["counters"]["commits"] >= 2
        assert after["subscriptions"]["total"] == 2
        assert after["subscriptions"]["paused"] == 1
        assert after["counters"]["attempts"] >= 3
        # Two creates and a pause; a reset of a paused subscription moves no other counter.
        assert after["counters"]["subscription_changes"] == 3
        client.post("/v1/subscriptions/s2/reset", json={"position": 2})
        assert stats(client)["counters"]["subscription_changes"] == 4


def test_rates_show_appends_and_deliveries_per_second(make_server: Any) -> None:
    server: ServerProcess = make_server("--durability", "off")
    with httpx.Client(base_url=server.url, timeout=10) as client, Receiver() as receiver:
        client.put("/v1/subscriptions/r", json={"stream": "r", "url": receiver.url})
        events = [{"type": "T", "data": i} for i in range(50)]
        client.post("/v1/streams/r/events", json=events)
        receiver.wait_for(lambda requests: len(requests) == 50)

        def rates() -> dict[str, Any] | None:
            r = stats(client)["rates"]
            return r if sum(r["deliveries_per_second"]) > 0 else None

        rate = wait_until(rates, timeout=5, what="a sample with the deliveries")
        assert rate["interval"] == 1.0
        assert TIMESTAMP.fullmatch(rate["end"])
        assert len(rate["appends_per_second"]) == len(rate["deliveries_per_second"])
        # The samples add up to what happened (each is a count over about one second).
        assert 40 <= sum(rate["appends_per_second"]) <= 60
        assert 40 <= sum(rate["deliveries_per_second"]) <= 60


def test_live_stats_push_the_history_then_one_sample_a_second(
    ui_server: ServerProcess,
) -> None:
    with httpx.Client(base_url=ui_server.url, timeout=10) as client:
        wait_until(lambda: len(stats(client)["rates"]["appends_per_second"]) >= 2)
        with client.stream("GET", "/v1/stats/live") as response:
            assert response.headers["cache-control"] == "no-cache"
            sse = SSE(response)
            first = sse.next()
            assert first["event"] == "stats"
            history = json.loads(first["data"])["rates"]["appends_per_second"]
            assert len(history) >= 2
            stream = unique("live-stats")
            client.post(f"/v1/streams/{stream}/events", json={"type": "T"})
            later = [json.loads(m["data"]) for m in sse.take(2)]
        for message in later:
            assert len(message["rates"]["appends_per_second"]) == 1
            assert message["streams"]["total"] >= 1
        ends = [m["rates"]["end"] for m in later]
        assert ends == sorted(ends)
        assert len(set(ends)) == 2
        assert any(m["counters"]["appended_events"] >= 1 for m in later)
