"""HTTP at its edges, over a real connection: HEAD on endless answers, encoded bodies, heads
past the size bound."""

from __future__ import annotations

import base64
import contextlib
import email.utils
import gzip
import http.client
import json
import math
import re
import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from helpers import assert_problem, read_all, wait_until

from eventor.protocol import MAX_HEAD_BYTES
from eventor.settings import Settings


def connection(url: str) -> http.client.HTTPConnection:
    parsed = httpx.URL(url)
    return http.client.HTTPConnection(parsed.host, parsed.port, timeout=5)


@pytest.mark.parametrize("path", ["/v1/streams/{stream}/live", "/v1/stats/live"])
def test_head_on_an_event_stream_answers_its_headers_and_ends(server, stream, path):
    conn = connection(server.url)
    try:
        conn.request("HEAD", path.format(stream=stream))
        head = conn.getresponse()
        assert head.status == 200
        assert head.getheader("content-type", "").startswith("text/event-stream")
        assert head.read() == b""
        # The answer ended: the connection serves the next request.
        conn.request("GET", "/health")
        after = conn.getresponse()
        assert after.status == 200
        after.read()
    finally:
        conn.close()


GZIPPED = {"content-type": "application/json", "content-encoding": "gzip"}


def test_an_encoded_body_is_refused_with_415_and_nothing_changes(client, stream):
    body = gzip.compress(b'{"type": "T", "data": 1}')
    r = client.post(f"/v1/streams/{stream}/events", content=body, headers=GZIPPED)
    assert "Content-Encoding" in assert_problem(r, 415)["detail"]
    assert r.headers["accept-encoding"] == "identity"
    twice = [("content-type", "application/json"), ("content-encoding", "identity")]
    twice.append(("content-encoding", "gzip"))  # the second header counts too
    assert_problem(client.post(f"/v1/streams/{stream}/events", content=body, headers=twice), 415)
    assert client.get(f"/v1/streams/{stream}").status_code == 404  # nothing was appended
    sub = gzip.compress(b'{"stream": "%s", "url": "http://127.0.0.1:9/"}' % stream.encode())
    assert_problem(client.put("/v1/subscriptions/gzipped", content=sub, headers=GZIPPED), 415)
    r = client.post("/subscriptions/gzipped", content=sub, headers=GZIPPED)
    assert r.status_code == 415
    assert client.get("/v1/subscriptions/gzipped").status_code == 404
    plain = {"content-type": "application/json", "content-encoding": "identity"}
    r = client.post(f"/v1/streams/{stream}/events", content=b'{"type": "T"}', headers=plain)
    assert r.status_code == 201


def test_the_original_append_keeps_an_encoded_body_as_sent(client, stream):
    """original-api.md: any bytes, stored as sent (the original did not decode them either)."""
    body = gzip.compress(b'{"a": 1}')
    r = client.post(f"/streams/{stream}", content=body, headers={**GZIPPED, "X-Event-Type": "T"})
    assert r.status_code == 200
    (event,) = client.get(f"/streams/{stream}/0/10").json()
    assert base64.b64decode(event["body"]) == body


def send_head_of(url: str, header_bytes: int, target: bytes = b"/health") -> bytes:
    """GET `target` with one header of `header_bytes`; the first bytes of the answer."""
    parsed = httpx.URL(url)
    with socket.create_connection((parsed.host, parsed.port), timeout=10) as sock:
        head = b"GET %s HTTP/1.1\r\nHost: x\r\nX-Big: " % target + b"a" * header_bytes
        # Refused before it was all sent: the answer is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + b"\r\n\r\n")
        return sock.recv(2000)


def test_a_request_head_past_the_bound_is_refused_with_431(server, client):
    # The bound counts the target ("/health"), the names and the values: exactly, each time.
    others = len("/health") + len("host") + len("x") + len("x-big")
    assert send_head_of(server.url, MAX_HEAD_BYTES - others).startswith(b"HTTP/1.1 200")
    for size in (MAX_HEAD_BYTES - others + 1, 2 * MAX_HEAD_BYTES):
        refused = send_head_of(server.url, size)
        assert refused.startswith(b"HTTP/1.1 431 Request Header Fields Too Large"), size
        assert re.search(rb"\r\ndate: \w{3}, \d\d \w{3} \d{4} [\d:]{8} GMT\r\n", refused), refused
        assert refused.endswith(b"\r\n\r\n431 Request Header Fields Too Large"), refused
    # On /v1, a problem document, as every v1 error.
    head, _, body = send_head_of(server.url, 2 * MAX_HEAD_BYTES, b"/v1/streams").partition(
        b"\r\n\r\n"
    )
    assert head.startswith(b"HTTP/1.1 431 ")
    assert b"content-type: application/problem+json" in head
    problem = json.loads(body)
    assert problem["type"] == "urn:eventor:problem:request-header-fields-too-large", problem
    assert (problem["status"], problem["title"]) == (431, "Request Header Fields Too Large")
    assert f"passed {MAX_HEAD_BYTES} bytes" in problem["detail"]
    assert client.get("/health").status_code == 200  # and the server serves on


def test_a_target_past_64_kib_is_served_like_any_other(server, client, stream):
    """httptools splits targets of up to 65,535 bytes only; Go took any within the bound."""
    client.post(f"/streams/{stream}", content=b"{}", headers={"X-Event-Type": "T"})
    pad = "x" * 70_000
    for target, expected in [
        (f"/v1/streams?prefix={stream}&pad={pad}", [stream]),
        (f"/v1/streams?prefix={pad}", []),
        (f"http://x/v1/streams?prefix={stream}&pad={pad}", [stream]),  # absolute form
    ]:
        answer = raw_exchange(
            server.url,
            b"GET %s HTTP/1.1\r\nHost: x\r\n" % target.encode() + b"Connection: close\r\n\r\n",
        )
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), (target[:40], head)
        assert [s["name"] for s in json.loads(body)["streams"]] == expected
    original = f"/streams/{stream}/0/5?{pad}"
    answer = raw_exchange(
        server.url, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % original.encode()
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert [event["position"] for event in json.loads(body)] == [1]
    encoded = f"/v1/streams/{stream[:-1]}%{ord(stream[-1]):02X}?pad={pad}"
    r = raw_exchange(
        server.url, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % encoded.encode()
    )
    assert json.loads(r.partition(b"\r\n\r\n")[2])["name"] == stream  # decoded as uvicorn does


def test_trailers_past_the_bound_are_refused_too(server, client, stream):
    """Trailer fields go through the same slow joining of pieces as headers."""
    parsed = httpx.URL(server.url)
    with socket.create_connection((parsed.host, parsed.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/streams/%s/events HTTP/1.1\r\nHost: x\r\n" % stream.encode()
            + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b'd\r\n{"type": "T"}\r\n0\r\n'
        )
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"X-Big: " + b"a" * (2 * MAX_HEAD_BYTES) + b"\r\n\r\n")
        assert sock.recv(200).startswith(b"HTTP/1.1 431 ")
    assert client.get(f"/v1/streams/{stream}").status_code == 404  # nothing was appended


def raw_exchange(url: str, *request: bytes) -> bytes:
    """Send the request (in the pieces given, one write each) and read until the server
    closes the connection."""
    parsed = httpx.URL(url)
    with socket.create_connection((parsed.host, parsed.port), timeout=10) as sock:
        for piece in request:
            sock.sendall(piece)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


BAD_CHUNK = b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nZZ\r\n"


def test_a_request_http_cannot_frame_is_a_400_problem_on_v1_and_text_elsewhere(server, stream):
    v1 = raw_exchange(
        server.url,
        b"POST /v1/streams/%s/events HTTP/1.1\r\nHost: x\r\n" % stream.encode() + BAD_CHUNK,
    )
    head, _, body = v1.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/problem+json" in head.lower()
    problem = json.loads(body)
    assert (problem["status"], problem["title"]) == (400, "Bad Request")
    assert "Invalid HTTP request" in problem["detail"]
    original = raw_exchange(
        server.url, b"POST /streams/%s HTTP/1.1\r\nHost: x\r\n" % stream.encode() + BAD_CHUNK
    )
    head, _, body = original.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: text/plain" in head.lower()
    assert body == b"Invalid HTTP request received."


def test_a_flood_of_requests_http_cannot_frame_is_logged_once(make_server, stream):
    """Any client can send them at will: one warning (with the client and the parser's reason),
    then at most one a minute, so that they cannot flood the log."""
    server = make_server()
    for _ in range(20):
        answer = raw_exchange(
            server.url, b"POST /streams/%s HTTP/1.1\r\nHost: x\r\n" % stream.encode() + BAD_CHUNK
        )
        assert answer.startswith(b"HTTP/1.1 400 ")
    warnings = [line for line in server.log().splitlines() if "Invalid HTTP request" in line]
    assert len(warnings) == 1, warnings
    assert "from 127.0.0.1:" in warnings[0]
    assert "chunk" in warnings[0].lower()  # httptools' reason: "Invalid character in chunk size"


UPGRADE = b"Connection: Upgrade, close\r\nUpgrade: websocket\r\n"


def test_an_upgrade_request_is_answered_as_plain_http(server, client, stream):
    """No WebSocket routes: the request is served as Go's net/http serves it (RFC 9110 lets a
    server ignore Upgrade), its body read whole (llhttp ends it at its head, and the body was
    dropped: an empty event acknowledged), with nothing logged."""
    head, _, body = raw_exchange(
        server.url,
        b"POST /streams/%s HTTP/1.1\r\nHost: x\r\nX-Event-Type: T\r\n" % stream.encode()
        + UPGRADE
        + b"Content-Length: 16\r\n\r\n"
        + b'{"order_id": 99}',
    ).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == b"Created\n"
    [event] = client.get(f"/streams/{stream}/0/10").json()
    assert base64.b64decode(event["body"]) == b'{"order_id": 99}'
    # v1, the body in pieces after the head (as curl --http2 sends it, with Upgrade: h2c)
    v1 = b'{"type": "T", "data": {"a": 1}}'
    answer = raw_exchange(  # the connection closes after the answer
        server.url,
        b"POST /v1/streams/%s/events HTTP/1.1\r\nHost: x\r\n" % stream.encode()
        + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        + b"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n"
        + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(v1),
        v1[:5],
        v1[5:],
    )
    assert answer.startswith(b"HTTP/1.1 201 ")
    assert read_all(client, stream)[-1]["data"] == {"a": 1}
    # A chunked body cannot be framed after the upgrade's head: refused, nothing appended.
    chunked = raw_exchange(
        server.url,
        b"POST /v1/streams/%s/events HTTP/1.1\r\nHost: x\r\n" % stream.encode()
        + UPGRADE
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(v1), v1),
    )
    assert chunked.startswith(b"HTTP/1.1 400 ")
    assert b"Transfer-Encoding" in chunked
    assert client.get(f"/v1/streams/{stream}").json()["head"] == 2
    # Behind an answer still due (pipelined), the refusal waits for its turn.
    first = b"POST /streams/%s HTTP/1.1\r\nHost: x\r\nX-Event-Type: T\r\n" % stream.encode()
    both = raw_exchange(
        server.url,
        first
        + b"Content-Length: 5\r\n\r\nfirst"
        + first
        + UPGRADE
        + b"Transfer-Encoding: chunked\r\n\r\n6\r\nsecond\r\n0\r\n\r\n",
    )
    assert both.startswith(b"HTTP/1.1 200 ")
    assert b"Created\n" in both
    assert both.count(b"HTTP/1.1 400 ") == 1
    assert both.index(b"HTTP/1.1 400 ") > both.index(b"Created\n")
    bodies = [base64.b64decode(e["body"]) for e in client.get(f"/streams/{stream}/0/10").json()]
    assert bodies[-1] == b"first"
    # A GET has no body to read.
    listed = raw_exchange(
        server.url,
        b"GET /v1/streams?prefix=%s HTTP/1.1\r\nHost: x\r\n" % stream.encode() + UPGRADE + b"\r\n",
    )
    assert [s["name"] for s in json.loads(listed.partition(b"\r\n\r\n")[2])["streams"]] == [stream]
    log = server.log()
    assert "handshake" not in log
    assert "Unsupported upgrade" not in log
    assert "Traceback" not in log


def send_slowly(sock: socket.socket, pieces: list[bytes], every: float) -> bytes:
    """Send `pieces` one by one, `every` seconds apart, until the server answers (or closes):
    the start of its answer, or b"" if none came."""
    for piece in pieces:
        try:
            sock.sendall(piece)
        except OSError:
            break
        ready, _, _ = select.select([sock], [], [], every)
        if ready:
            return sock.recv(100)
    return b""


def test_requests_that_stall_are_answered_408_and_closed(make_server, stream):
    """A client that opens connections and never finishes a request would hold file
    descriptors (and body bytes) for ever: a silent new connection is closed, a stalled head
    or body is a 408, and a partial body appends nothing."""
    server = make_server("--request-timeout", "0.5")
    parsed = httpx.URL(server.url)

    def connect() -> socket.socket:
        return socket.create_connection((parsed.host, parsed.port), timeout=10)

    with connect() as silent:
        began = time.monotonic()
        assert silent.recv(100) == b""  # closed, without a word
        assert time.monotonic() - began < 5
    head = b"POST /v1/streams/%s/events HTTP/1.1\r\nHost: x\r\n" % stream.encode()
    answer, _, body = raw_exchange(server.url, head).partition(b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"application/problem+json" in answer
    problem = json.loads(body)
    assert (problem["type"], problem["status"]) == ("urn:eventor:problem:request-timeout", 408)
    assert "the request timeout is 0.5 s" in problem["detail"]
    original = raw_exchange(
        server.url, b"POST /streams/%s HTTP/1.1\r\nHost: x\r\n" % stream.encode()
    )
    assert original.startswith(b"HTTP/1.1 408 ")
    assert original.endswith(b"\r\n\r\n408 Request Timeout"), original
    body = b'{"type": "T", "data": "' + b"x" * 100 + b'"}'
    stalled = head + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    assert raw_exchange(server.url, stalled + body[:20]).startswith(b"HTTP/1.1 408 ")
    # A body trickled (a few bytes now and then, each in time) must still come at some pace:
    # each timeout's worth of time must bring 1 KiB (or the end).
    with connect() as trickle:
        long_body = b'{"type": "T", "data": "' + b"x" * 5000 + b'"}'
        trickle.sendall(
            head + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(long_body)
        )
        began = time.monotonic()
        pieces = [long_body[start : start + 10] for start in range(0, len(long_body), 10)]
        answer = send_slowly(trickle, pieces, every=0.1)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert time.monotonic() - began < 5
    # Answered without its body (a bad name): the connection closes with no 408 after it.
    refused = raw_exchange(server.url, stalled.replace(stream.encode(), b"bad!name"))
    assert refused.startswith(b"HTTP/1.1 400 ")
    assert refused.count(b"HTTP/1.1 ") == 1, refused
    # A head trickled a byte at a time, each in time, still has twice the timeout in all.
    with connect() as trickle:
        began = time.monotonic()
        pieces = [bytes([byte]) for byte in head + b"X-Long: " + b"y" * 100]
        answer = send_slowly(trickle, pieces, every=0.2)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert time.monotonic() - began < 5
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get(f"/v1/streams/{stream}").status_code == 404  # nothing was appended
        # Waiting for the answer is not stalling: a long poll outlives the timeout.
        began = time.monotonic()
        polled = client.get(f"/v1/streams/{stream}/events", params={"wait": "1.5"})
        assert polled.status_code == 200
        assert time.monotonic() - began >= 1.4
        # A big body sent in pieces, each in time, is taken whole.
        events = [{"type": "T", "data": "z" * 1000}] * 300
        whole = json.dumps(events).encode()
        pieces = [whole[i : i + 50_000] for i in range(0, len(whole), 50_000)]

        def slowly() -> Iterator[bytes]:
            for piece in pieces:
                time.sleep(0.2)
                yield piece

        appended = client.post(
            f"/v1/streams/{stream}/events",
            content=slowly(),
            headers={"content-type": "application/json"},
        )
        assert appended.status_code == 201, appended.text
        assert appended.json()["last_position"] == 300


def test_a_client_that_pipelines_big_reads_and_leaves_logs_no_traceback(make_server, stream):
    """uvicorn marked only the last request parsed as disconnected: the earlier one being
    answered wrote into the closed connection, and its error was logged as the app's."""
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(3):
            client.post(f"/v1/streams/{stream}/events", json={"type": "T", "data": "x" * 5000})
    parsed = httpx.URL(server.url)
    request = b"GET /v1/streams/%s/events HTTP/1.1\r\nHost: x\r\n\r\n" % stream.encode()
    for _ in range(3):
        with socket.create_connection((parsed.host, parsed.port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(1)
            with contextlib.suppress(TimeoutError):
                sock.sendall(request * 2000)  # never reads an answer: the server stops reading
            assert sock.recv(5) == b"HTTP/"  # being answered when it goes away
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get(f"/v1/streams/{stream}").json()["head"] == 3
    assert server.stop() == 0
    assert "Exception in ASGI application" not in server.log(), server.log()


def test_a_request_pipelined_behind_a_long_poll_waits_for_it_not_for_the_timeout(
    make_server, stream
):
    """A client that sends its next request (with `Expect: 100-continue`, so the body waits
    for the server's word) while a long poll is answered is waiting on the server, not
    stalling: both are served, in order."""
    server = make_server("--request-timeout", "0.5")
    parsed = httpx.URL(server.url)
    body = b'{"type": "T"}'
    poll = b"GET /v1/streams/%s/events?wait=1.5 HTTP/1.1\r\nHost: x\r\n\r\n" % stream.encode()
    post = (
        b"POST /v1/streams/%s/events HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    ) % (stream.encode(), len(body))
    with socket.create_connection((parsed.host, parsed.port), timeout=10) as sock:
        sock.sendall(poll + post)
        answer = b""
        while b"100 Continue" not in answer:
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
        sock.sendall(body)
        while b"201 Created" not in answer or not answer.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer  # the long poll's own answer
    assert b"HTTP/1.1 408 " not in answer  # (not "408": the ids' hex may hold it)
    assert answer.index(b"200 OK") < answer.index(b"100 Continue") < answer.index(b"201 Created")


def test_a_broken_request_pipelined_behind_others_is_refused_in_its_turn(server, client, stream):
    """Its 400 was written at once: taken for the answer to the append before it (which was
    stored all the same), or written into a long poll's answer."""
    append = (
        b"POST /streams/%s HTTP/1.1\r\nHost: x\r\nX-Event-Type: T\r\nContent-Length: 2\r\n\r\n{}"
        % stream.encode()
    )
    broken = b"NOT HTTP AT ALL\r\n\r\n"
    answer = raw_exchange(server.url, append + broken)
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer
    assert answer.count(b"HTTP/1.1 ") == 2
    assert answer.index(b"Created\n") < answer.index(b"HTTP/1.1 400 ")
    assert client.get(f"/v1/streams/{stream}").json()["head"] == 1
    poll = b"GET /v1/streams/%s/events?from=2&wait=1 HTTP/1.1\r\nHost: x\r\n\r\n" % stream.encode()
    answer = raw_exchange(server.url, poll + broken)
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK"), answer
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
    assert json.loads(rest[:length])["events"] == []
    assert rest[length:].startswith(b"HTTP/1.1 400 "), answer


def test_nothing_after_a_refused_request_is_served(server, client, stream):
    """A refusal waiting for its turn (behind a long poll) stops the reading: the requests
    after it are not served, and a head too large does not go on growing meanwhile."""
    poll = b"GET /v1/streams/%s/events?from=1&wait=1 HTTP/1.1\r\nHost: x\r\n\r\n" % stream.encode()
    trailers = b"".join(b"X-T%d: %s\r\n" % (n, b"a" * 1000) for n in range(1600))  # 1.6 MB
    too_large = (
        b"POST /streams/%s HTTP/1.1\r\nHost: x\r\nX-Event-Type: T\r\n"
        b"Transfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\n{}\r\n0\r\n"
        % stream.encode()
        + trailers
        + b"\r\n"
    )
    after = b"POST /streams/%s-after HTTP/1.1\r\nHost: x\r\nX-Event-Type: T\r\n" % stream.encode()
    after += b"Content-Length: 2\r\n\r\n{}"
    answer = raw_exchange(server.url, poll + too_large + after)
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:300]
    statuses = re.findall(rb"HTTP/1.1 (\d{3}) ", answer)
    assert statuses == [b"200", b"431"], statuses
    assert client.get(f"/v1/streams/{stream}").status_code == 404  # the chunked POST: refused
    assert client.get(f"/v1/streams/{stream}-after").status_code == 404  # not served


@pytest.mark.parametrize("size", [MAX_HEAD_BYTES + 1, 2 * MAX_HEAD_BYTES], ids=["at", "past"])
def test_a_431_is_logged_once_and_leaves_bad_requests_their_own_line(make_server, size):
    """It was logged twice, and once more as an "Invalid HTTP request (answered 400)", which
    took the once-a-minute line of the framing errors: the next real one went unsaid."""
    server = make_server()
    assert send_head_of(server.url, size).startswith(b"HTTP/1.1 431 ")
    two_lengths = b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = raw_exchange(
        server.url, b"POST /v1/streams/s/events HTTP/1.1\r\nHost: x\r\n" + two_lengths
    )
    assert answer.startswith(b"HTTP/1.1 400 ")
    wait_until(lambda: "Invalid HTTP request" in server.log(), what="the framing error logged")
    lines = server.log().splitlines()
    assert len([line for line in lines if "(answered 431)" in line]) == 1, lines
    (bad,) = [line for line in lines if "Invalid HTTP request" in line]
    assert "Transfer-Encoding" in bad


def test_a_refusal_reaches_a_client_that_is_still_sending(server, client):
    """Closed at once with the client's bytes unread, the connection was reset and the client
    saw ECONNRESET instead of the 431 (or 400): the answer and a FIN go out, the rest is read
    and dropped until the client closes (RFC 9112 9.6)."""
    r = client.get("/health", headers={"X-Big": "a" * (3 * MAX_HEAD_BYTES)})
    assert r.status_code == 431
    parsed = httpx.URL(server.url)
    with socket.create_connection((parsed.host, parsed.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/streams/s/events HTTP/1.1\r\nHost: x\r\n" + BAD_CHUNK)
        sock.sendall(b"x" * 200_000)  # the rest of what the client meant to send
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
    assert client.get("/health").status_code == 200


def test_a_request_answered_before_its_body_broke_gets_no_second_answer(server, client, stream):
    """The 400 for the broken chunk went out after the 415: a keep-alive client took it for
    the answer to its next request, which never ran."""
    parsed = httpx.URL(server.url)
    with socket.create_connection((parsed.host, parsed.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/streams/%s/events HTTP/1.1\r\nHost: x\r\n" % stream.encode()
            + b"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
        )
        first = sock.recv(65536)
        while b"\r\n\r\n" not in first:
            first += sock.recv(65536)
        length = int(re.search(rb"(?i)content-length: *(\d+)", first)[1])  # type: ignore[index]
        while len(first.partition(b"\r\n\r\n")[2]) < length:
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 415 ")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"ZZ\r\n" + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        rest = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                rest += chunk
    assert rest == b"", rest[:200]  # no second answer, nothing taken for /health's
    assert client.get(f"/v1/streams/{stream}").status_code == 404


def test_transfer_codings_other_than_chunked_alone_are_refused(server, client, stream):
    """llhttp de-chunked `gzip, chunked` and passed the body on still gzipped: the original
    route stored it so. Go answered 501; so does Eventor now, and appends nothing."""
    body = gzip.compress(b'{"a": 1}')
    original = raw_exchange(
        server.url,
        b"POST /streams/%s HTTP/1.1\r\nHost: x\r\nX-Event-Type: T\r\n" % stream.encode()
        + b"Transfer-Encoding: gzip, chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body),
    )
    assert original.startswith(b"HTTP/1.1 501 "), original[:100]
    assert b"'gzip, chunked' is not supported" in original
    v1 = raw_exchange(
        server.url,
        b"POST /v1/streams/%s/events HTTP/1.1\r\nHost: x\r\n" % stream.encode()
        + b"Content-Type: application/json\r\nTransfer-Encoding: x-unknown\r\n"
        + b'Transfer-Encoding: chunked\r\n\r\nd\r\n{"type": "T"}\r\n0\r\n\r\n',
    )
    head, _, problem = v1.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 501 ")
    assert json.loads(problem)["status"] == 501
    assert json.loads(problem)["type"] == "urn:eventor:problem:not-implemented"
    # HTTP/1.0 has no Transfer-Encoding: a proxy before Eventor would frame by the length.
    old = raw_exchange(
        server.url,
        b"POST /v1/streams/%s/events HTTP/1.0\r\nHost: x\r\n" % stream.encode()
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b'd\r\n{"type": "T"}\r\n0\r\n\r\n',
    )
    assert old.startswith(b"HTTP/1.1 400 ")
    assert b"Transfer-Encoding is not HTTP/1.0" in old
    assert client.get(f"/v1/streams/{stream}").status_code == 404  # nothing appended
    chunked = raw_exchange(
        server.url,
        b"POST /v1/streams/%s/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % stream.encode()
        + b"Content-Type: application/json\r\nTransfer-Encoding: Chunked\r\n\r\n"
        + b'd\r\n{"type": "T"}\r\n0\r\n\r\n',
    )
    assert chunked.startswith(b"HTTP/1.1 201 ")  # chunked alone, in any case, as ever


def test_an_unknown_method_is_answered_501_in_its_turn(server, stream):
    """RFC 9110 15.6.2: a method the server does not know is a 501, not a framing error
    (it was a 400 "Invalid HTTP request"); a problem document on /v1, as every v1 error. Behind
    a long poll on the same connection it is answered after it."""
    alone = raw_exchange(server.url, b"FROB /v1/streams HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, problem = alone.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 501 Not Implemented\r\n"), alone[:100]
    assert b"content-type: application/problem+json" in head
    assert json.loads(problem)["status"] == 501
    assert "Unknown request method" in json.loads(problem)["detail"]
    # RTSP's methods (llhttp knows them, but not in HTTP), a lower-case one, a request after
    # it in the same read, a body with a request line in it: 501 all the same.
    for request in (
        b"PLAY /health HTTP/1.1\r\nHost: x\r\n\r\n",
        b"get /health HTTP/1.1\r\nHost: x\r\n\r\n",
        b"FROB /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        b"FROB /health HTTP/1.1\r\nContent-Length: 16\r\n\r\nGET / HTTP/1.1\r\n",
    ):
        answer = raw_exchange(server.url, request)
        assert re.findall(rb"HTTP/1.1 (\d{3}) ", answer) == [b"501"], (request, answer)
        assert b"Unknown request method" in answer, answer
    poll = b"GET /v1/streams/%s/events?wait=1 HTTP/1.1\r\nHost: x\r\n\r\n" % stream.encode()
    parsed = httpx.URL(server.url)
    with socket.create_connection((parsed.host, parsed.port), timeout=10) as sock:
        sock.sendall(poll)
        time.sleep(0.2)  # the poll is read and waiting: the next request comes in a read of its own
        sock.sendall(b"FROB /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert re.findall(rb"HTTP/1.1 (\d{3}) ", answer) == [b"200", b"501"], answer
    # A line that is no request line at all stays a 400, also behind a known method's request,
    # and so does garbage behind a body that holds an unknown method's request line.
    for garbage in (b"NOT HTTP AT ALL\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00"):
        for before in (
            b"",
            b"PROPFIND /v1/streams HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\nFROB /x HTTP/1.1\r\n",
        ):
            answer = raw_exchange(server.url, before + garbage)
            assert re.findall(rb"HTTP/1.1 (\d{3}) ", answer)[-1] == b"400", answer


def test_a_body_that_breaks_before_expect_100_continue_is_answered_logs_no_error(make_server):
    """The app's first read of the body would send "100 Continue" after the connection's
    FIN: a RuntimeError, a traceback and a 500 counted that no one was sent."""
    server = make_server()
    parsed = httpx.URL(server.url)
    with socket.create_connection((parsed.host, parsed.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/streams/s/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n"
        )
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
    assert b"100 Continue" not in answer
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'eventor_error_answers_total{status="500"}' not in metrics
    log = server.log()
    assert "Traceback" not in log
    assert "ERROR" not in log


def test_a_bad_target_pipelined_behind_requests_waits_for_their_answers(server, client, stream):
    """A target llhttp takes but uvicorn cannot split (`http://a:b/`) failed while the request
    before it still counted as the one being read: an append or a long poll before it was cut
    off (never done) and the 400 given in its place."""
    bad = b"GET http://a:b/ HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b'{"type": "T"}'
    append = (
        b"POST /v1/streams/%s/events HTTP/1.1\r\nHost: x\r\n" % stream.encode()
        + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    poll = (
        b"GET /v1/streams/%s/events?from=5&wait=0.5 HTTP/1.1\r\nHost: x\r\n\r\n" % stream.encode()
    )
    answers = raw_exchange(server.url, append + poll + bad)
    assert re.findall(rb"HTTP/1.1 (\d+)", answers) == [b"201", b"200", b"400"]
    assert client.get(f"/v1/streams/{stream}").json()["head"] == 1


def test_an_upgrade_body_refused_reaches_a_client_still_sending_it(server):
    """Its 400 closed the connection at once: a client still sending its chunked body saw
    ECONNRESET instead of the answer."""
    parsed = httpx.URL(server.url)
    conn = http.client.HTTPConnection(parsed.host, parsed.port, timeout=10)
    try:
        conn.putrequest("POST", "/v1/streams/u/events")
        for name, value in [
            ("Content-Type", "application/json"),
            ("Connection", "upgrade"),
            ("Upgrade", "h2c"),
            ("Transfer-Encoding", "chunked"),
        ]:
            conn.putheader(name, value)
        conn.endheaders()
        for _ in range(64):
            conn.send(b"%x\r\n%s\r\n" % (65536, b"a" * 65536))
            time.sleep(0.005)
        conn.send(b"0\r\n\r\n")
        assert conn.getresponse().status == 400
    finally:
        conn.close()


def test_an_upgrade_body_refused_behind_another_answer_reaches_its_client(server):
    """Pipelined behind another request, the refusal went out in its turn but the connection
    closed at once after it: the client, still sending its body, met a reset."""
    parsed = httpx.URL(server.url)
    with socket.create_connection((parsed.host, parsed.port), timeout=10) as sock:
        sock.sendall(
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
            + b"POST /v1/streams/x/events HTTP/1.1\r\nHost: x\r\nUpgrade: foo\r\n"
            + b"Connection: upgrade\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(300):
            sock.sendall(b"%x\r\n%s\r\n" % (4096, b"a" * 4096))
            time.sleep(0.002)
        sock.sendall(b"0\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        answers = b""
        while chunk := sock.recv(65536):
            answers += chunk
    assert re.findall(rb"HTTP/1.1 (\d+)", answers) == [b"200", b"400"]


@pytest.mark.parametrize(
    ("path", "version"),
    [
        ("/v1/streams/{stream}/live?from=1", b"1.0"),
        ("/v1/stats/live", b"1.0"),
        ("/v1/stats/live", b"0.9"),  # llhttp parses it: no chunked coding there either
    ],
)
def test_a_live_stream_to_an_http_10_client_is_not_chunked(server, client, stream, path, version):
    """HTTP/1.0 has no chunked coding (RFC 9112 6.1: a server must not send it
    Transfer-Encoding): the client read the chunk sizes as events. The stream is sent as it
    comes and ends with the connection."""
    client.post(f"/v1/streams/{stream}/events", json={"type": "T", "data": {"n": 1}})
    parsed = httpx.URL(server.url)
    with socket.create_connection((parsed.host, parsed.port), timeout=10) as sock:
        target = path.format(stream=stream).encode()
        sock.sendall(b"GET %s HTTP/%s\r\nConnection: keep-alive\r\n\r\n" % (target, version))
        answer = b""
        while b"\n\n" not in answer.partition(b"\r\n\r\n")[2].partition(b"retry: 1000\n\n")[2]:
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert b"transfer-encoding" not in head.lower()
    assert b"connection: close" in head.lower()  # its end is the close
    assert body.startswith(b"retry: 1000\n\n"), body[:100]  # no chunk size before it
    first = body.partition(b"retry: 1000\n\n")[2].partition(b"\n\n")[0]
    assert json.loads(first.partition(b"data: ")[2])  # a whole event, unbroken


def test_an_http_10_client_is_sent_no_100_continue(server, stream):
    """RFC 9110 15.2: no 1xx answer to an HTTP/1.0 client (uvicorn sent `100 Continue` to an
    `Expect: 100-continue` of any version)."""
    body = b'{"type": "T"}'
    answer = raw_exchange(
        server.url,
        b"POST /v1/streams/%s/events HTTP/1.0\r\n" % stream.encode()
        + b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
        + b"Content-Length: %d\r\n\r\n%s" % (len(body), body),
    )
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:100]
    assert b"100 Continue" not in answer


def test_an_idle_connection_is_kept_for_the_keep_alive_timeout(make_server):
    """uvicorn's default closed an idle connection after 5 s, which clients (Go's keeps its
    own 90 s) still held: a POST sent just then got no answer, and was it appended? The
    original's Go server closed none. Kept for --keep-alive-timeout (120 s by default)."""
    assert Settings().keep_alive_timeout > 90
    server = make_server("--keep-alive-timeout", "2", "--request-timeout", "0.5")
    parsed = httpx.URL(server.url)
    with socket.create_connection((parsed.host, parsed.port), timeout=10) as sock:
        request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"

        def answer() -> bytes:
            """One whole answer (its head and body may come in two reads)."""
            got = b""
            while b"\r\n\r\n" not in got or not got.endswith(b"}"):
                chunk = sock.recv(4096)
                assert chunk, got
                got += chunk
            return got

        sock.sendall(request)
        assert answer().startswith(b"HTTP/1.1 200 ")
        time.sleep(1.2)  # idle past --request-timeout (a request's time, not an idle one's)
        sock.sendall(request)
        assert answer().startswith(b"HTTP/1.1 200 ")
        began = time.monotonic()
        assert sock.recv(4096) == b""  # closed once idle for the keep-alive timeout
        assert 1.5 < time.monotonic() - began < 4  # not uvicorn's own 5 s


def test_the_date_header_keeps_up_with_the_clock(server):
    """uvicorn wrote Date anew once a second: an answer could say a time up to two seconds
    past (an append created at 09:22:08.23 answered "Date: 09:22:07")."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            sent = time.time()
            date = client.get("/health").headers["date"]
            said = email.utils.parsedate_to_datetime(date).timestamp()
            assert said >= math.floor(sent - 0.25), (date, sent)  # a tick (0.1 s) behind at most
            time.sleep(0.05)
