"""Order and gaps, checked by a real receiver: catch-up, live, start, filters, reset, batches."""

from __future__ import annotations

import json
import threading

import httpx

from .helpers import append, event_ids, name, status, subscribe, wait_status
from .receiver import Receiver, Reply


def test_catch_up_of_a_prefilled_stream_then_live(client, stream, receiver: Receiver):
    append(client, stream, 300)
    sub = name()
    subscribe(client, sub, stream, receiver.url)
    receiver.wait_count(300)
    append(client, stream, 5)
    requests = receiver.wait_count(305)
    assert [r.position for r in requests] == list(range(1, 306))
    ids = event_ids(client, stream)
    assert all(r.headers["x-event-uuid"] == ids[r.position] for r in requests)
    assert [json.loads(r.body)["i"] for r in requests[:3]] == [0, 1, 2]
    wait_status(client, sub, lambda s: s["position"] == 305 and s["lag"] == 0)


def test_live_appends_from_concurrent_writers_arrive_in_order(
    client, server, stream, receiver: Receiver
):
    subscribe(client, name(), stream, receiver.url)
    writers, per_writer = 4, 60

    def write(w: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            for i in range(per_writer):
                r = c.post(
                    f"/v1/streams/{stream}/events", json={"type": "T", "data": {"w": w, "i": i}}
                )
                assert r.status_code == 201

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = writers * per_writer
    requests = receiver.wait_count(total)
    assert [r.position for r in requests] == list(range(1, total + 1))
    ids = event_ids(client, stream)
    assert [r.headers["x-event-uuid"] for r in requests] == [ids[p] for p in range(1, total + 1)]
    # each writer's events in the order it wrote them
    for w in range(writers):
        mine = [json.loads(r.body)["i"] for r in requests if json.loads(r.body)["w"] == w]
        assert mine == list(range(per_writer))


def test_start_beginning_end_and_position(client, stream):
    append(client, stream, 3)
    with Receiver() as beginning, Receiver() as end, Receiver() as at:
        subscribe(client, name(), stream, beginning.url, start="beginning")
        subscribe(client, name(), stream, end.url, start="end")
        subscribe(client, name(), stream, at.url, start=2)
        append(client, stream, 2)
        assert [r.position for r in beginning.wait_count(5)] == [1, 2, 3, 4, 5]
        assert [r.position for r in at.wait_count(3)] == [3, 4, 5]
        assert [r.position for r in end.wait_count(2)] == [4, 5]


def test_start_on_a_stream_that_does_not_exist_yet(client, stream, receiver: Receiver):
    sub = name()
    subscribe(client, sub, stream, receiver.url)
    assert status(client, sub)["head"] == 0
    append(client, stream, 2)
    assert receiver.positions() == [] or receiver.wait_count(2)
    assert [r.position for r in receiver.wait_count(2)] == [1, 2]


def test_event_types_filter_passes_over_the_others(client, stream, receiver: Receiver):
    for type_ in ("A", "B", "A", "C", "B", "A", "C", "C"):
        append(client, stream, 1, type_=type_)
    sub = name()
    subscribe(client, sub, stream, receiver.url, event_types=["A", "B"])
    requests = receiver.wait_count(5)
    assert [(r.position, r.headers["x-event-type"]) for r in requests] == [
        (1, "A"),
        (2, "B"),
        (3, "A"),
        (5, "B"),
        (6, "A"),
    ]
    # the trailing C events are passed over: the position reaches the head
    wait_status(client, sub, lambda s: s["position"] == 8 and s["lag"] == 0)
    append(client, stream, 1, type_="A")
    assert receiver.wait_count(6)[-1].position == 9
    assert len(receiver.received()) == 6


def test_reset_replays_and_skips(client, stream, receiver: Receiver):
    append(client, stream, 5)
    sub = name()
    subscribe(client, sub, stream, receiver.url)
    receiver.wait_count(5)
    r = client.post(f"/v1/subscriptions/{sub}/reset", json={"position": 2})
    assert r.status_code == 200
    assert r.json()["position"] == 2
    assert [x.position for x in receiver.wait_count(8)] == [1, 2, 3, 4, 5, 3, 4, 5]
    r = client.post(f"/v1/subscriptions/{sub}/reset", json={"position": 7})
    assert r.json()["position"] == 7
    append(client, stream, 3)  # 6, 7, 8: only 8 is after the new position
    assert receiver.wait_count(9)[-1].position == 8
    wait_status(client, sub, lambda s: s["position"] == 8)
    assert len(receiver.received()) == 9


def test_batches_carry_waiting_events_in_order(client, stream, receiver: Receiver):
    append(client, stream, 25)
    sub = name()
    subscribe(client, sub, stream, receiver.url, batch_size=10)
    requests = receiver.wait_for(lambda rs: sum(len(json.loads(r.body)) for r in rs) >= 25)
    positions = [int(e["sequence"]) for r in requests for e in json.loads(r.body)]
    assert positions == list(range(1, 26))
    assert [len(json.loads(r.body)) for r in requests] == [10, 10, 5]
    for r in requests:
        assert r.headers["content-type"] == "application/cloudevents-batch+json"
        batch = json.loads(r.body)
        assert r.headers["x-eventor-first-position"] == str(int(batch[0]["sequence"]))
        assert r.headers["x-eventor-last-position"] == str(int(batch[-1]["sequence"]))
    # live: a single new event goes out at once, as a batch of one
    append(client, stream, 1)
    last = receiver.wait_count(4)[-1]
    assert [e["sequence"] for e in json.loads(last.body)] == ["00000000000000000026"]
    wait_status(client, sub, lambda s: s["position"] == 26)


def test_a_batch_takes_the_events_that_arrived_during_the_previous_request(
    client, stream, receiver: Receiver
):
    receiver.script(Reply(delay=0.5))
    append(client, stream, 7)
    sub = name()
    subscribe(client, sub, stream, receiver.url, batch_size=3)
    receiver.wait_count(1)
    append(client, stream, 10)  # 8-17, while 1-3 are in flight
    requests = receiver.wait_for(lambda rs: sum(len(json.loads(r.body)) for r in rs) >= 17)
    batches = [[int(e["sequence"]) for e in json.loads(r.body)] for r in requests]
    assert batches == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12], [13, 14, 15], [16, 17]]
    wait_status(client, sub, lambda s: s["position"] == 17)


def test_batches_with_a_filter(client, stream, receiver: Receiver):
    for type_ in ("A", "B") * 6:
        append(client, stream, 1, type_=type_)
    sub = name()
    subscribe(client, sub, stream, receiver.url, batch_size=4, event_types=["B"])
    requests = receiver.wait_for(lambda rs: sum(len(json.loads(r.body)) for r in rs) >= 6)
    batches = [[int(e["sequence"]) for e in json.loads(r.body)] for r in requests]
    assert batches == [[2, 4, 6, 8], [10, 12]]
    wait_status(client, sub, lambda s: s["position"] == 12)
