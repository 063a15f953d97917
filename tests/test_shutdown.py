"""A graceful stop (SIGTERM) ends open live streams and long polls at once and exits cleanly."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ServerProcess
from helpers import wait_until


def test_sigterm_with_live_streams_and_long_polls_open_stops_promptly(make_server):
    server = make_server()
    results: dict[str, object] = {}

    def long_poll() -> None:
        r = httpx.get(f"{server.url}/v1/streams/quiet/events?wait=30", timeout=40)
        results["long_poll"] = (r.status_code, r.json()["events"])

    streaming = threading.Barrier(3)

    def live(path: str) -> None:
        with httpx.stream("GET", server.url + path, timeout=40) as r:
            chunks = r.iter_bytes()
            first = next(chunks)
            streaming.wait(10)
            results[path] = first + b"".join(chunks)

    threads = [
        threading.Thread(target=long_poll),
        threading.Thread(target=live, args=("/v1/streams/quiet/live",)),
        threading.Thread(target=live, args=("/v1/stats/live",)),
    ]
    for t in threads:
        t.start()
    streaming.wait(10)  # both live streams are open and have sent their first message
    started = time.monotonic()
    assert server.stop(signal.SIGTERM, timeout=10) == 0
    took = time.monotonic() - started
    for t in threads:
        t.join(5)
    # uvicorn would wait 5 s for open streams before cutting them; ours end when the stop begins.
    assert took < 3, took
    assert results["long_poll"] == (200, [])
    assert b"retry:" in results["/v1/streams/quiet/live"]  # type: ignore[operator]
    assert "Eventor stopped" in server.log()


def test_sighup_stops_cleanly(make_server):
    """A closed terminal (or a supervisor's SIGHUP) stops the server as SIGTERM does: its
    default action killed the process, and the next start ran a crash's recovery."""
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.post("/v1/streams/s/events", json={"type": "T"}).status_code == 201
    assert server.stop(signal.SIGHUP, timeout=10) == 0
    assert "Eventor stopped" in server.log()


def accepting(port: int) -> bool:
    """Whether the server still takes new connections (it stops as a stop begins)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def still_sending(sock: socket.socket) -> Iterator[None]:
    """A client that keeps sending (a few bytes every 0.3 s: in time to keep a staged close
    going) until the block ends, or until the connection is gone."""
    sending = threading.Event()
    sending.set()

    def send() -> None:
        with contextlib.suppress(OSError):
            while sending.is_set():
                sock.sendall(b"more bytes the client still sends")
                time.sleep(0.3)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        yield
    finally:
        sending.clear()
        sender.join()


def test_a_second_sigterm_stops_at_once_and_a_request_cut_short_logs_no_traceback(make_server):
    """README: a second SIGTERM stops without waiting (uvicorn forced its exit on a second
    SIGINT only), and a request whose body never came is no error of the server's."""
    server = make_server()
    assert server.proc is not None
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as stalled:
        stalled.sendall(
            b"POST /v1/streams/slow/events HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        # "100 Continue" comes once the route reads the body: the request is in the app.
        assert stalled.recv(100).startswith(b"HTTP/1.1 100 Continue")
        stalled.sendall(b'{"type":')  # and never the rest
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        # The second once the first is taken: two sent at once may reach the process as one
        # (the kernel keeps one pending signal of a kind).
        wait_until(lambda: not accepting(server.port), timeout=10, what="the first stop")
        server.proc.send_signal(signal.SIGTERM)
        assert server.stop(signal.SIGTERM, timeout=10) == 0
        answer = stalled.recv(1000)
    assert time.monotonic() - started < 3  # uvicorn alone waited 5 s for that request
    # Not done, so not a 500: a 503 the client may send again.
    assert answer.startswith(b"HTTP/1.1 503 "), answer
    log = server.log()
    assert "ERROR" not in log
    assert "Traceback" not in log


def test_a_stop_lets_a_long_original_read_finish_whole(make_server):
    """An original read sent page by page is read on through the stop's grace period: ended
    early, its array would still be well formed, and read as the whole answer."""
    server = make_server()
    bodies = [bytes([65 + n]) * 1_000_000 for n in range(20)]  # pages of ~8 events
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for body in bodies:
            client.post("/streams/big", content=body, headers={"x-event-type": "T"})
    reader = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        reader.request("GET", "/streams/big/0/100")
        answer = reader.getresponse()
        assert answer.getheader("transfer-encoding") == "chunked"
        first = answer.read(100)  # the rest waits for this client to read on
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: not accepting(server.port), timeout=10, what="the stop")
        events = json.loads(first + answer.read())
    finally:
        reader.close()
    assert [e["position"] for e in events] == list(range(1, 21))
    server.proc.wait(15)  # the stop asked for above (no second SIGTERM: that one hurries)
    assert server.stop() == 0


def fill_big(server: ServerProcess, events: int) -> None:
    """Stream `big`: `events` events of 1 MB each, appended through the original route."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for _ in range(events):
            r = client.post("/streams/big", content=b"x" * 1_000_000, headers={"x-event-type": "T"})
            assert r.status_code == 200


@pytest.mark.parametrize("target", ["/streams/big/0/100", "/v1/streams/big/events?limit=100"])
def test_an_answer_cut_short_by_the_stop_logs_no_traceback(make_server, target):
    """A reader that stopped reading a long answer: it is cut short once the stop has waited
    a second for it (the reader sees the connection end before the answer does), with a line
    saying so; not after uvicorn's 5 s grace period, with its errors logged."""
    server = make_server()
    fill_big(server, 20)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as reader:
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target.encode())
        assert reader.recv(100).startswith(b"HTTP/1.1 200 OK")  # then reads nothing more
        assert server.stop(signal.SIGTERM, timeout=20) == 0
    log = server.log()
    assert "was cut short by the stop" in log
    assert "graceful shutdown exceeded" not in log
    assert "ERROR" not in log
    assert "Traceback" not in log


def _send_queue(local_port: int, remote_port: int) -> int:
    """Bytes the kernel holds unsent on the TCP connection local_port -> remote_port."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == (
            remote_port
        ):
            return int(fields[4].split(":")[0], 16)
    return 0


def test_a_live_stream_whose_client_stopped_reading_does_not_hold_the_stop(make_server):
    """Its answer would wait for the client for the whole grace period (5 s), then be cancelled
    with errors logged: the connection is cut at once instead."""
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for _ in range(30):
            event = {"type": "T", "data": "x" * 900_000}
            assert client.post("/v1/streams/big/events", json=event).status_code == 201
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as reader:
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.sendall(b"GET /v1/streams/big/live?from=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.recv(100).startswith(b"HTTP/1.1 200 OK")  # then reads nothing more
        client_port = reader.getsockname()[1]
        sizes: list[int] = []

        def stuck() -> bool:  # the server's writes are backed up: its queue full and still
            sizes.append(_send_queue(server.port, client_port))
            return len(sizes) > 5 and sizes[-1] > 100_000 and len(set(sizes[-5:])) == 1

        wait_until(stuck, timeout=10, interval=0.1)
        assert server.stop(signal.SIGTERM, timeout=20) == 0
    log = server.log()
    assert "timeout graceful shutdown exceeded" not in log
    assert "without completing response" not in log
    assert "Traceback" not in log


def test_a_stop_lets_a_client_that_reads_slowly_have_its_whole_answer(make_server):
    """A reader that keeps reading, however slowly, is not one that stopped: the first cut
    of stalled readers also cut answers whose bytes waited above the buffer's mark while
    going out steadily (a 27 MB page: 9.7 MB of it)."""
    server = make_server()
    fill_big(server, 10)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as reader:
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        reader.sendall(b"GET /v1/streams/big/events?limit=100 HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = reader.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])  # type: ignore[index]
        assert length > 10_000_000
        server.proc.send_signal(signal.SIGTERM)
        while len(body) < length:  # ~6 MB/s: well within the stop's grace period
            chunk = reader.recv(65536)
            if not chunk:
                break
            body += chunk
            time.sleep(0.01)
    assert len(body) == length
    assert server.stop(timeout=20) == 0
    assert "cut short" not in server.log()


def test_a_stop_during_a_staged_close_is_not_held_by_it(make_server):
    """A connection closing in stages after a refusal, its client still sending: the stop
    closes it at once rather than waiting out uvicorn's grace period."""
    server = make_server()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/streams/s/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\nZZ\r\n'
        )
        assert sock.recv(12).startswith(b"HTTP/1.1 400")
        with still_sending(sock):
            assert server.stop(signal.SIGTERM, timeout=20) == 0
    log = server.log()
    assert "graceful shutdown exceeded" not in log
    assert "ERROR" not in log


def test_a_stop_lets_a_steady_reader_have_every_pipelined_answer(make_server):
    """Only the running answer's bytes were counted: the next pipelined one, written on the
    connection's own transport, looked like bytes that never went, and was cut."""
    server = make_server()
    fill_big(server, 12)
    pages = b"".join(
        b"GET /v1/streams/big/events?from=%d&limit=4 HTTP/1.1\r\nHost: x\r\n\r\n" % start
        for start in (1, 5, 9)
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as reader:
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        reader.sendall(pages)
        received = reader.recv(65536)
        server.proc.send_signal(signal.SIGTERM)
        while received.count(b"HTTP/1.1 200 OK") < 3 or not received.endswith(b"]}"):
            chunk = reader.recv(65536)  # ~6 MB/s: well within the stop's grace period
            if not chunk:
                break
            received += chunk
            time.sleep(0.01)
    assert received.count(b"HTTP/1.1 200 OK") == 3
    assert server.stop(timeout=20) == 0
    assert "cut short" not in server.log()


def test_a_refusal_made_during_a_stop_holds_it_a_second_at_most(make_server):
    """A body that breaks once the stop has begun, its client still sending: its staged close
    lasted its full 10 s, so the stop waited out uvicorn's grace period (5 s) and logged an
    ERROR. A stop gives a staged close a second at most."""
    server = make_server()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/streams/s/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n5\r\n[{"ty\r\n'
        )
        # Answered once the server has turned to it: by then it had read the bytes sent above.
        assert httpx.get(f"{server.url}/health").status_code == 200
        server.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: not accepting(server.port), what="the stop begun")
        sock.sendall(b"zz\r\n")  # a bad chunk size: a 400, and a staged close, now
        with still_sending(sock):
            server.proc.wait(20)  # by itself: a second SIGTERM would stop it at once
    assert server.stop() == 0
    log = server.log()
    assert "graceful shutdown exceeded" not in log
    assert "ERROR" not in log
