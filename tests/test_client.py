"""The Python client (eventor.client) against a real server over loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable

import httpx
import pytest
from delivery.receiver import Receiver, Reply
from helpers import unique, wait_until

from eventor._client_calls import LIVE_READ_TIMEOUT, SSE, live_timeout
from eventor.api import create_app
from eventor.client import AsyncClient, Client, ClientError, ServerUnreachable
from eventor.errors import (
    IdempotencyConflict,
    InvalidName,
    InvalidRequest,
    StreamNotFound,
    SubscriptionExists,
    SubscriptionNotFound,
    WrongExpectedVersion,
)
from eventor.types import NO_STREAM


@pytest.fixture
def eventor(server):
    with Client(server.url) as client:
        yield client


def test_append_and_read_back_bytes_as_sent(eventor, stream):
    one = eventor.append(stream, {"type": "Opened", "data": {"n": 1}})
    assert (one.first_position, one.last_position, one.created) == (1, 1, True)
    binary = base64.b64encode(b"\x00\xffPNG").decode()
    many = eventor.append(
        stream,
        [
            {"type": "Noted", "data": [1, 2.50, "x"], "metadata": {"by": "test"}},
            {"type": "Pictured", "data_base64": binary, "content_type": "image/png"},
        ],
    )
    assert (many.first_position, many.last_position, len(many.ids)) == (2, 3, 2)
    page = eventor.read(stream)
    assert (page.head, page.next) == (3, 4)
    first, second, third = page.events
    assert (first.type, json.loads(first.data), first.is_json) == ("Opened", {"n": 1}, True)
    assert second.data == b'[1,2.5,"x"]'  # the bytes as httpx sent them
    assert json.loads(second.metadata or b"") == {"by": "test"}
    assert first.metadata is None
    assert (third.data, third.is_json, third.content_type) == (b"\x00\xffPNG", False, "image/png")
    assert [e.id for e in page.events[1:]] == list(many.ids)
    backward = eventor.read(stream, backward=True, limit=2)
    assert ([e.position for e in backward.events], backward.next) == ([3, 2], 1)


def test_iter_events_pages_through_the_whole_stream(eventor, stream):
    eventor.append(stream, [{"type": "T", "data": n} for n in range(25)])
    events = list(eventor.iter_events(stream, page_size=7))
    assert [e.position for e in events] == list(range(1, 26))
    assert [json.loads(e.data) for e in events] == list(range(25))
    assert [e.position for e in eventor.iter_events(stream, 20, page_size=3)] == list(range(20, 26))


def test_errors_are_eventors_own_with_the_servers_words(eventor, stream):
    with pytest.raises(StreamNotFound) as missing:
        eventor.read(stream)
    assert missing.value.stream == stream
    assert missing.value.problem["status"] == 404
    eventor.append(stream, {"type": "T"}, expected_version=NO_STREAM)
    with pytest.raises(WrongExpectedVersion) as conflict:
        eventor.append(stream, {"type": "T"}, expected_version=0)
    assert (conflict.value.stream, conflict.value.current) == (stream, 1)
    with pytest.raises(InvalidName):
        eventor.append("no spaces", {"type": "T"})
    with pytest.raises(InvalidRequest, match="type"):
        eventor.append(stream, {"data": 1})
    with pytest.raises(InvalidRequest, match="UUID"):
        eventor.append(stream, {"type": "T", "id": "not-a-uuid"})


def test_an_idempotent_retry_says_so_and_a_partial_one_conflicts(eventor, stream):
    events = [
        {"type": "T", "id": "0193b0c2-1111-7abc-8def-0123456789a1"},
        {"type": "T", "id": "0193b0c2-1111-7abc-8def-0123456789a2"},
    ]
    first = eventor.append(stream, events)
    again = eventor.append(stream, events)
    assert (again.first_position, again.last_position, again.created) == (1, 2, False)
    assert again.ids == first.ids
    with pytest.raises(IdempotencyConflict):
        eventor.append(stream, [events[1], {"type": "T"}])


def test_a_long_poll_and_the_live_stream_see_new_events(eventor, stream):
    eventor.append(stream, [{"type": "T", "data": 1}, {"type": "T", "data": 2}])
    later = threading.Timer(0.2, eventor.append, (stream, {"type": "Late", "data": 3}))
    later.start()
    page = eventor.read(stream, 3, wait=10)
    assert [e.type for e in page.events] == ["Late"]
    seen = []
    with Client(eventor._http.base_url) as other:
        for event in other.live(stream, start=2):
            seen.append(event.position)
            if event.position == 2:
                eventor.append(stream, {"type": "T", "data": 4})
            if len(seen) == 3:
                break
    assert seen == [2, 3, 4]


def test_live_events_may_hold_any_line_separator_in_their_json(eventor, stream):
    odd = {"s": "a\u2028b\u2029c\x85d"}  # str.splitlines() breaks at each of these
    eventor.append(stream, [{"type": "T", "data": odd}, {"type": "T", "data": 2}])
    live = eventor.live(stream, start=1)
    first, second = next(live), next(live)
    live.close()
    assert (json.loads(first.data), json.loads(second.data)) == (odd, 2)


@pytest.mark.parametrize("timeout", [0.5, httpx.Timeout(0.5)], ids=["seconds", "Timeout"])
def test_a_long_poll_may_outlast_the_clients_timeout(server, stream, timeout):
    with Client(server.url, timeout=timeout) as impatient:
        later = threading.Timer(1.0, impatient.append, (stream, {"type": "Late"}))
        later.start()
        page = impatient.read(stream, 1, wait=5)
        later.join()
    assert [e.type for e in page.events] == ["Late"]


def test_json_data_reads_back_with_the_whitespace_around_it(eventor, stream):
    """`data` is the bytes appended, also where JSON's own parser would drop the whitespace
    around a value (a file sent with curl --data-binary ends in a newline)."""
    bodies = [b'{"a": 1}\n', b"  [1,\r\n 2]  ", b'{"data": "x"}', b"7"]
    base = str(eventor._http.base_url)
    for body in bodies[:2]:
        sent = httpx.post(f"{base}/streams/{stream}", content=body, headers={"X-Event-Type": "T"})
        assert sent.status_code == 200
    as_base64 = base64.b64encode(bodies[2]).decode()
    metadata = {"data": 1}  # a "data" member of its own: not the event's
    json_type = {"content_type": "application/json"}
    eventor.append(
        stream, {"type": "T", "data_base64": as_base64, "metadata": metadata, **json_type}
    )
    eventor.append(stream, {"type": "T", "data": 7})
    page = eventor.read(stream)
    assert [e.data for e in page.events] == bodies
    assert all(e.is_json for e in page.events)
    live = eventor.live(stream, start=1)
    lf = [body.replace(b"\r\n", b"\n") for body in bodies]  # SSE's framing: see live()
    assert [next(live).data for _ in bodies] == lf
    live.close()


def test_event_ids_may_be_uuids_and_bytes_say_how_to_send_them(eventor, stream):
    event_id = uuid.uuid4()
    result = eventor.append(stream, {"type": "T", "id": event_id})
    assert result.ids == (str(event_id),)
    with pytest.raises(TypeError, match="data_base64"):
        eventor.append(stream, {"type": "T", "data": b"raw"})
    with pytest.raises(ValueError, match="not JSON compliant"):
        eventor.append(stream, {"type": "T", "data": float("nan")})
    assert eventor.head(stream) == 1


def test_a_long_live_event_comes_whole_whatever_the_chunks():
    data = json.dumps({"k": "x" * 1_000_000})
    message = f'data: {{"id":"i","stream":"s","position":1,"type":"T","data":{data},'
    message += '"metadata":null,"content_type":"application/json","created":"c"}\r\n\r\n'
    sse = SSE()
    events = []
    for start in range(0, len(message), 65_536):
        events += sse.feed(message[start : start + 65_536])
    assert [json.loads(e.data) for e in events] == [{"k": "x" * 1_000_000}]
    # Line ends split between chunks, in every form.
    lines = 'data: {"id":"i","stream":"s","position":2,"type":"T","data":2,'
    lines += '"metadata":null,"content_type":"application/json","created":"c"}'
    assert [e.position for e in sse.feed(lines + "\r") + sse.feed("\n\r") + sse.feed("\n")] == [2]


def test_bad_parameters_are_invalid_requests_and_no_server_unreachable(eventor, stream):
    eventor.append(stream, {"type": "T"})
    with pytest.raises(InvalidRequest, match="limit"):
        eventor.read(stream, limit=5000)
    with Client("http://127.0.0.1:9", timeout=2) as nobody, pytest.raises(ServerUnreachable):
        nobody.read(stream)
    with Client("127.0.0.1:9400") as mistaken, pytest.raises(ClientError) as failed:
        mistaken.read(stream)  # no http://: a retry would fail the same way
    assert not isinstance(failed.value, ServerUnreachable)


def test_head_and_iter_events_take_a_stream_that_does_not_exist_yet(eventor, stream):
    assert eventor.head(stream) == 0  # as expected_version counts it
    assert list(eventor.iter_events(stream)) == []
    eventor.append(stream, [{"type": "T"}, {"type": "T"}], expected_version=eventor.head(stream))
    assert eventor.head(stream) == 2
    assert [e.position for e in eventor.iter_events(stream)] == [1, 2]


def test_a_live_stream_that_cannot_start_or_breaks_off_is_a_client_error(server, stream):
    with Client("http://127.0.0.1:9", timeout=2) as nobody, pytest.raises(ServerUnreachable):
        next(nobody.live(stream))
    with Receiver() as odd:
        sse = {"Content-Type": "text/event-stream"}
        bad_base64 = json.dumps(
            {"id": "x", "stream": "s", "position": 1, "type": "T", "data_base64": "abc",
             "content_type": "a/b", "created": "2026-11-28T02:54:41.123456Z"}
        ).encode()  # fmt: skip
        odd.script(
            Reply(reset=True),
            Reply(200, b"data: {\n\n", sse),
            Reply(200, b"data: " + bad_base64 + b"\n\n", sse),
        )
        with Client(odd.url) as client:
            with pytest.raises(ServerUnreachable, match="live"):
                list(client.live(stream))
            for _ in range(2):
                with pytest.raises(ClientError, match="not an event"):
                    list(client.live(stream))


def test_a_success_that_is_not_the_apis_answer_is_a_client_error(server, stream):
    """A base URL that points past the API (here, at the dashboard) answers 200 with HTML."""
    with Client(f"{server.url}/dashboard") as wrong, pytest.raises(ClientError, match="not what"):
        wrong.read(stream)


def test_dot_names_reach_the_server_as_names(eventor, stream):
    """Unescaped, "." and ".." would be dot segments, dropped from the path: another route."""
    for name in (".", ".."):
        with pytest.raises(InvalidName):  # not a stream name
            eventor.read(name)
        with pytest.raises(SubscriptionNotFound):  # a subscription name, of none yet
            eventor.subscription(name)
    eventor.put_subscription("..", stream, "http://127.0.0.1:9/", start="end")
    assert eventor.subscription("..")["name"] == ".."
    eventor.delete_subscription("..")


def test_live_waits_past_the_servers_keep_alives_whatever_the_clients_timeout():
    assert live_timeout(httpx.Timeout(5.0)).read == LIVE_READ_TIMEOUT > 15
    assert live_timeout(httpx.Timeout(5.0)).connect == 5.0
    assert live_timeout(httpx.Timeout(120.0)).read == 120.0
    assert live_timeout(httpx.Timeout(None)).read is None


def test_live_outwaits_a_quiet_stream_longer_than_the_clients_timeout():
    """A server that says nothing for 1.5 s, to a client whose timeout is 0.5 s."""
    event = {"id": "0190c8e2-0000-7000-8000-000000000001", "stream": "s", "position": 1,
             "type": "T", "data": 1, "metadata": None, "content_type": "application/json",
             "created": "2026-11-28T02:54:41.123456Z"}  # fmt: skip
    listener = socket.create_server(("127.0.0.1", 0))

    def quiet_server() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
            time.sleep(1.5)
            conn.sendall(b"data: " + json.dumps(event).encode() + b"\n\n")
            time.sleep(0.5)

    thread = threading.Thread(target=quiet_server, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", timeout=0.5) as impatient:
        live = impatient.live("s")
        assert next(live).position == 1
        live.close()
    thread.join(5)
    listener.close()


def test_streams_and_stream_info(eventor):
    prefix = unique("client-list")
    for n in range(3):
        eventor.append(f"{prefix}-{n}", [{"type": "A"}, {"type": "B"}, {"type": "B"}])
    listed = list(eventor.streams(prefix))
    assert [s["name"] for s in listed] == [f"{prefix}-{n}" for n in range(3)]
    info = eventor.stream(f"{prefix}-0")
    assert (info["head"], info["event_types"]) == (3, {"A": 1, "B": 2})


def test_a_subscription_from_put_to_delete(eventor, stream):
    with Receiver() as receiver:
        receiver.script(Reply(500))
        eventor.append(stream, [{"type": "T", "data": n} for n in range(3)])
        sub = unique("client-sub")
        created = eventor.put_subscription(
            sub, stream, receiver.url, max_attempts=1, on_exhausted="park"
        )
        assert created["name"] == sub
        receiver.wait_count(3)  # 1 failed (parked), 2, 3
        wait_until(lambda: eventor.subscription(sub)["position"] == 3)
        assert [p["position"] for p in eventor.parked(sub)] == [1]
        assert eventor.deliveries(sub, limit=1)[0]["position"] == 3
        assert eventor.replay_parked(sub) == 1
        assert receiver.wait_count(4)[-1].position == 1
        wait_until(lambda: eventor.parked(sub) == [])
        assert eventor.pause(sub)["status"] == "paused"
        assert eventor.resume(sub)["status"] == "active"
        assert eventor.reset(sub, 1)["position"] == 1
        assert sub in {s["name"] for s in eventor.subscriptions()}
        assert [s["name"] for s in eventor.subscriptions(stream=stream)] == [sub]
        assert eventor.subscriptions(stream=f"{stream}-none") == []
        with pytest.raises(SubscriptionExists):
            eventor.put_subscription(sub, stream, receiver.url, exists=False)
        eventor.delete_subscription(sub)
        with pytest.raises(SubscriptionNotFound):
            eventor.put_subscription(sub, stream, receiver.url, exists=True)
        with pytest.raises(SubscriptionNotFound) as gone:
            eventor.subscription(sub)
        assert gone.value.name == sub


def test_an_answer_that_is_not_a_problem_is_a_client_error():
    with Receiver() as not_eventor:  # say, a proxy in front of a stopped server
        not_eventor.script(Reply(502))
        with Client(not_eventor.url) as client, pytest.raises(ClientError, match="502") as failed:
            client.read("orders")
    assert failed.value.status == 502


def test_every_success_that_is_not_the_apis_answer_is_a_client_error():
    """Not a KeyError, not a dict returned as is: README promises ClientError."""
    json_type = {"Content-Type": "application/json"}
    with Receiver() as odd, Client(odd.url) as client:
        odd.decide(lambda _: Reply(200, b'{"foo": 1}', json_type))
        calls: list[Callable[[], object]] = [
            lambda: client.head("s"),
            lambda: list(client.streams()),
            lambda: client.stream("s"),
            client.subscriptions,
            lambda: client.subscription("n"),
            lambda: client.pause("n"),
            lambda: client.deliveries("n"),
            lambda: client.parked("n"),
            lambda: client.replay_parked("n"),
            lambda: client.delete_subscription("n"),
        ]
        for call in calls:
            with pytest.raises(ClientError, match="not what the API sends"):
                call()
        # A login page in front of the server: a live stream that "ended" would be called
        # again and again by a reconnect loop.
        odd.decide(lambda _: Reply(200, b"<html>log in</html>", {"Content-Type": "text/html"}))
        with pytest.raises(ClientError, match="not an event stream"):
            list(client.live("s", start=1))
        conflict = {"type": "urn:eventor:problem:wrong-expected-version", "current_version": "x"}
        problem_type = {"Content-Type": "application/problem+json"}
        odd.decide(lambda _: Reply(409, json.dumps(conflict).encode(), problem_type))
        with pytest.raises(ClientError, match="current_version"):
            client.append("s", {"type": "T"}, expected_version=3)


def test_the_async_client_in_process(tmp_path):
    """`transport=` drives the real app in-process, storage and all."""
    app = create_app(data_dir=tmp_path / "data")

    async def scenario() -> None:
        await app.startup()
        try:
            transport = httpx.ASGITransport(app=app)
            async with AsyncClient("http://eventor", transport=transport) as eventor:
                result = await eventor.append(
                    "orders", [{"type": "T", "data": n} for n in range(5)]
                )
                assert (result.first_position, result.last_position) == (1, 5)
                events = [e async for e in eventor.iter_events("orders", page_size=2)]
                assert [json.loads(e.data) for e in events] == list(range(5))
                assert (await eventor.stream("orders"))["head"] == 5
                assert (await eventor.head("orders"), await eventor.head("none")) == (5, 0)
                assert [e async for e in eventor.iter_events("none")] == []
                assert [s["name"] async for s in eventor.streams()] == ["orders"]
                with pytest.raises(WrongExpectedVersion):
                    await eventor.append("orders", {"type": "T"}, expected_version=4)
                await eventor.put_subscription("hook", "orders", "http://127.0.0.1:9/", start="end")
                assert (await eventor.pause("hook"))["status"] == "paused"
                assert (await eventor.reset("hook", 2))["position"] == 2
                assert [s["name"] for s in await eventor.subscriptions()] == ["hook"]
                assert [s["name"] for s in await eventor.subscriptions("orders")] == ["hook"]
                assert await eventor.subscriptions("none") == []
                await eventor.delete_subscription("hook")
                with pytest.raises(SubscriptionNotFound):
                    await eventor.subscription("hook")
        finally:
            await app.shutdown()

    asyncio.run(scenario())


def test_the_async_client_follows_a_stream_live(server, stream):
    """Over loopback: httpx's in-process transport answers only once a response is complete,
    which a live stream never is."""

    async def scenario() -> list[tuple[int, object]]:
        async with AsyncClient(server.url) as eventor:
            await eventor.append(stream, [{"type": "T", "data": n} for n in range(3)])
            live = eventor.live(stream, start=2)
            seen = [await anext(live), await anext(live)]
            await eventor.append(stream, {"type": "T", "data": "new"})
            seen.append(await anext(live))
            await live.aclose()
            return [(e.position, json.loads(e.data)) for e in seen]

    assert asyncio.run(scenario()) == [(2, 1), (3, 2), (4, "new")]
