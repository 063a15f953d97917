"""uvicorn's HTTP protocol (httptools), hardened: a bound on the size of a request's head, a
timeout for requests that stall, v1's error format for requests HTTP cannot frame, transfer
codings refused, refusals answered in their turn behind pipelined requests and closed in stages,
requests with an Upgrade header served as plain HTTP, and answers to clients that stopped
reading cut at a stop."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import urllib.parse
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import httptools
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from .failures import Throttled

#: The most bytes the target and the header names and values of one request may take together,
#: as Go's net/http (the original Eventor's server) allows: more, and the answer is 431.
MAX_HEAD_BYTES = 1 << 20
#: What a request may send besides its head and body before it is cut off unparsed: room for
#: the bytes of the request line and the headers' separators, and for chunked framing.
_LOOK_FROM = MAX_HEAD_BYTES + 64 * 1024

#: The longest target httptools.parse_url can split (its offsets are 16-bit).
_LONGEST_PARSED_TARGET = 0xFFFF

_REFUSAL = b"431 Request Header Fields Too Large"

#: Warnings any client can cause at will, each kind at most once a minute: requests HTTP
#: cannot frame, heads too large, requests that stall. (uvicorn's protocol logs there.)
_BAD_REQUESTS = Throttled(logging.getLogger("uvicorn.error"))
_TOO_LARGE = Throttled(logging.getLogger("uvicorn.error"))
_STALLED = Throttled(logging.getLogger("uvicorn.error"))
_CUT = logging.getLogger("eventor")


#: A request line, as RFC 9112 3 has it: the method is any token.
_REQUEST_LINE = re.compile(rb"([-!#$%&'*+.^_`|~0-9A-Za-z]+) ([!-~]+) HTTP/[0-9]\.[0-9]\r?\n")
#: The methods llhttp parses as HTTP (llhttp's HTTP_METHOD_MAP); its RTSP ones (PLAY, ...)
#: it refuses in HTTP requests.
_LLHTTP_METHODS = frozenset(
    b"DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND PROPPATCH"
    b" SEARCH UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE M-SEARCH NOTIFY"
    b" SUBSCRIBE UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK SOURCE QUERY".split()
)


def _unknown_method(exc: httptools.HttpParserError, data: bytes) -> bytes | None:
    """The target of the request llhttp stopped at, when `data` begins with it and its line is
    a well-formed request line whose method llhttp does not know (RFC 9110 15.6.2: a 501);
    else None (a 400: a line that is no request line at all, or one that did not come first
    in this read, since llhttp does not say where in the read it stopped)."""
    if not isinstance(exc, httptools.HttpParserInvalidMethodError) and not str(exc).startswith(
        "Invalid method"
    ):
        return None
    line = _REQUEST_LINE.match(data)
    if line is None or line.group(1) in _LLHTTP_METHODS:
        return None
    return line.group(2)


def _answer(status_line: bytes, content_type: bytes, body: bytes) -> bytes:
    """A whole answer the protocol writes itself (refusals): Date as on every answer (RFC
    9110 6.6.1), and the connection closes after it."""
    return b"".join(
        [
            b"HTTP/1.1 %s\r\n" % status_line,
            b"date: %s\r\n" % formatdate(usegmt=True).encode(),
            b"content-type: %s\r\n" % content_type,
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
            b"x-content-type-options: nosniff\r\n",
            b"\r\n",
            body,
        ]
    )


class _HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing: uvicorn then calls send_400_response."""


class _Refused(Exception):
    """Raised in a parser callback for a head whose framing is refused (see `_refusal`)."""


#: How long a request may go without a byte while its head or body is incomplete (and a new
#: connection before its first byte): then it is answered 408 and closed. Without it, clients
#: that open connections and never finish a request hold file descriptors (and body bytes)
#: for ever, and so shut everyone else out.
REQUEST_TIMEOUT = 30.0
#: How long a request's head may take in all, however slowly its bytes trickle in.
HEAD_TIMEOUT_FACTOR = 2
#: What a request must bring in each REQUEST_TIMEOUT (unless it ends first) to be given
#: another: 1 KiB in 30 s is 34 bytes a second, far below any real client's pace.
MIN_PROGRESS = 1024

_TIMED_OUT = b"408 Request Timeout"
_UNKNOWN_METHOD = b"501 Not Implemented"
_UNKNOWN_METHOD_DETAIL = (
    "Unknown request method: Eventor's routes take GET, HEAD, POST, PUT, DELETE and OPTIONS."
)
#: Set in a request's scope by an app whose answer never ends (Server-Sent Events).
ENDLESS_ANSWER = "eventor.endless"
#: How long a stop lets an endless answer's last bytes reach its client before cutting it.
ENDLESS_GRACE = 1.0
#: A refusal that ends a connection while its client may still be sending (a head too large,
#: a body whose framing broke) closes in stages (RFC 9112 9.6): the answer and a FIN go out,
#: what still comes is read and dropped until the client closes, or for LINGER_SECONDS after
#: its last bytes (LINGER_MAX in all), then the connection closes. Closed at once with bytes
#: unread, Linux resets it, and the client loses the answer to a connection reset.
LINGER_SECONDS = 2.0
LINGER_MAX = 10.0


class BoundedHeadProtocol(HttpToolsProtocol):
    """uvicorn's protocol for one connection, with what a server open to any client needs.

    - A request whose head passes MAX_HEAD_BYTES is refused (431). httptools sets no bound of
      its own, and joins the pieces of a long header (trailers too) in quadratic time: a
      header of 48 MiB held the event loop, and so every other client, for seconds. Two
      checks: the head parsed (target, names, values) against the bound, exactly; and, to stop
      the slow parse early, the bytes of a request that are not its body (head, chunked
      framing, trailers) against the bound with some slack.
    - A request that stalls is answered 408 and the connection closed (`request_timeout`,
      MIN_PROGRESS, HEAD_TIMEOUT_FACTOR): else clients that never finish a request hold file
      descriptors and body bytes for ever. Waiting on the server is not stalling.
    - Refusals (400, 408, 431, 501) are answered in their turn, after the answers owed to
      requests pipelined before them, then the connection closes in stages (LINGER_SECONDS);
      and a client gone marks the request being answered as gone, not only the last one
      parsed (uvicorn's own bookkeeping follows the last one).
    - At a stop, an answer no byte of which reaches its client for ENDLESS_GRACE is cut
      (`shutdown`), rather than holding the stop for uvicorn's whole grace period.
    """

    request_timeout = REQUEST_TIMEOUT
    #: The request whose app runs (with pipelining, not always the last one parsed).
    _running: RequestResponseCycle | None = None
    #: Fires when the request being read (or the first, on a new connection) stalls.
    _stall: asyncio.TimerHandle | None = None
    #: Within a request's bytes: its head or body is still to come.
    _reading = False
    #: When the head of the request being read must be whole (loop time); 0 once it is.
    _head_deadline = 0.0
    #: Bytes received since the request's time last began (see MIN_PROGRESS).
    _progress = 0
    #: The answer to a request that cannot be served, waiting for the answers owed before it.
    _last_word: bytes | None = None
    _received = 0  # bytes of the request being parsed (from a read's start: a bound)
    _body = 0  # of them, its body's
    _too_large = False
    #: Why the head just parsed is refused: (status line, detail); see `_framing_refusal`.
    _refusal: tuple[bytes, str] | None = None
    #: Closing in stages: until when (loop time) what comes is dropped; 0.0: not closing so.
    _linger_until = 0.0
    _linger: asyncio.TimerHandle | None = None
    #: The server stops (see `shutdown`).
    _stopping = False
    #: After a request with an Upgrade header: the bytes of its body still to come (llhttp
    #: ends such a request at its head and parses nothing after it); None: not such a request.
    _body_after_upgrade: int | None = None
    _lost = False

    @staticmethod
    def on_refusal(status: int) -> None:
        """Told the status of every answer given here rather than by the app (400, 408, 431,
        501), for the error answers' metric."""

    @classmethod
    def configured(
        cls, request_timeout: float, on_refusal: Callable[[int], None] | None = None
    ) -> type[BoundedHeadProtocol]:
        """This protocol with its own `request_timeout` and `on_refusal` (uvicorn makes one
        per connection)."""
        attributes: dict[str, object] = {"request_timeout": request_timeout}
        if on_refusal is not None:
            attributes["on_refusal"] = staticmethod(on_refusal)
        return type(cls.__name__, (cls,), attributes)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends its first request is closed in time too, and its
        # first head has the same time in all as any other, from now.
        self._head_deadline = self.loop.time() + self.request_timeout * HEAD_TIMEOUT_FACTOR
        self._stall = self.loop.call_later(self.request_timeout, self._stalled)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        # uvicorn marks only the last request parsed as disconnected; with pipelining, the one
        # being answered may be an earlier one, which then wrote into the closed transport (a
        # traceback each time a client pipelined big reads and went away).
        running = self._running
        if running is not None and not running.response_complete:
            running.disconnected = True
            running.message_event.set()
        for queued, _ in self.pipeline:
            queued.disconnected = True
        super().connection_lost(exc)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)
        if self._stall is not None and self._reading:
            # A request queued behind another starts now: its client's time starts now too
            # (it may have waited for the answers before it, or for a "100 Continue").
            self._stall.cancel()
            self._progress = 0
            self._stall = self.loop.call_later(self.request_timeout, self._stalled)

    def data_received(self, data: bytes) -> None:
        if self._linger_until:
            self._linger_on()  # dropped: the connection is closing
            return
        self._receive(data)
        # Most requests arrive whole in one read: then no timer is touched.
        if self._reading or self._stall is not None:
            self._watch(len(data))

    def _watch(self, received: int) -> None:
        """After a read: give the request being read more time if it made progress (at least
        MIN_PROGRESS bytes since its time last began: a byte now and then does not hold a
        connection, and a body, for ever), or none if it is whole."""
        if not self._reading or self.transport.is_closing():
            if self._stall is not None:
                self._stall.cancel()
                self._stall = None
            return
        self._progress += received
        if self._stall is not None:
            if self._progress < MIN_PROGRESS:
                return
            self._stall.cancel()
        self._progress = 0
        wait = self.request_timeout
        if self._head_deadline:
            wait = min(wait, self._head_deadline - self.loop.time())
        self._stall = self.loop.call_later(max(wait, 0.0), self._stalled)

    def _stalled(self) -> None:
        """The request (or a new connection's first) stopped coming: 408 (nothing when not a
        byte came), and the connection closes. An app waiting for the body sees the client
        gone, so a partial body changes nothing."""
        self._stall = None
        if self.transport.is_closing():
            return
        if self._waiting_on_server():
            # Not the client's doing: its time starts again when the server is ready for it.
            self._progress = 0
            self._stall = self.loop.call_later(self.request_timeout, self._stalled)
            return
        if not self._reading:
            _STALLED.warning(
                "Closed a connection from %s that sent no request in %s s",
                _peer(self.client),
                f"{self.request_timeout:g}",
            )
            self.transport.close()
            return
        running = self._running
        if self._head_deadline or running is None or not running.response_started:
            _STALLED.warning(
                "A request from %s stalled for %s s (answered 408)",
                _peer(self.client),
                f"{self.request_timeout:g}",
            )
            detail = (
                "The request stalled: its head or body did not come in time"
                f" (the request timeout is {self.request_timeout:g} s)."
            )
            self._close_with(self._error(_TIMED_OUT, detail, text=_TIMED_OUT))
        else:  # answered without its body: nothing more to say
            self.transport.close()

    def _waiting_on_server(self) -> bool:
        """Whether the request being read waits for the server rather than the client: reading
        is paused (flow control), or an earlier request is still being answered (pipelining:
        a long poll, a live stream), which the client may well wait for before going on (a
        body after `Expect: 100-continue`, say)."""
        return self.flow.read_paused or self._owed_before()

    def on_message_begin(self) -> None:
        self._reading = True
        if not self._head_deadline:
            self._head_deadline = self.loop.time() + self.request_timeout * HEAD_TIMEOUT_FACTOR
        super().on_message_begin()

    def _receive(self, data: bytes) -> None:
        if self._last_word is not None:
            # A request was refused and waits for its turn: nothing after it is served (nor
            # parsed: a head too large would grow, slowly, for as long as the client sends).
            return
        if self._body_after_upgrade is not None:
            self._take_body_after_upgrade(data)
            return
        self._received += len(data)
        # uvicorn's data_received, but for what follows an upgrade request's head.
        self._unset_keepalive_if_required()
        begins = not self._reading  # this read begins a request
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            target = _unknown_method(exc, data) if begins else None
            if target is not None and not self._too_large and self._refusal is None:
                self.url = target  # llhttp stopped before it: what is here is the last one's
                self._refusal = (_UNKNOWN_METHOD, _UNKNOWN_METHOD_DETAIL)
            msg = "Invalid HTTP request received."
            # Else our own stop (a head too large, a framing refused): logged as such.
            if not self._too_large and self._refusal is None:
                _BAD_REQUESTS.warning(
                    "Invalid HTTP request from %s (answered 400): %s", _peer(self.client), exc
                )
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade as upgrade:
            self._after_upgrade_head(data[upgrade.args[0] :])
            return
        if self._received > _LOOK_FROM and not self._too_large:  # one comparison, as a rule
            overhead = self._received - self._body
            if overhead > _LOOK_FROM + self._body // 8:
                self._refuse()

    def _after_upgrade_head(self, rest: bytes) -> None:
        """A request asked for a protocol upgrade. Eventor has none to give (no WebSocket
        routes: uvicorn runs with ws="none"), so the request is served as plain HTTP, as RFC
        9110 7.8 lets a server and as Go's net/http did. llhttp took it as ended at its head:
        its body is read here (whole, by its Content-Length), and the connection closes after
        the answer, since the parser cannot go on after an upgrade."""
        cycle = self.cycle
        self._reading = False  # unless a body follows, below
        if cycle is None or cycle.response_complete:
            return
        cycle.keep_alive = False
        length = _content_length(self.headers)
        if length is None:  # chunked, or a length that is no number: cannot be framed here
            self._refuse_upgrade_body(cycle)
            return
        if length:
            cycle.more_body = True  # the app task has not run yet: it sees the whole body
            self._body_after_upgrade = length
            self._reading = True
            self._take_body_after_upgrade(rest)

    def _take_body_after_upgrade(self, data: bytes) -> None:
        left = self._body_after_upgrade
        cycle = self.cycle
        if not left or cycle is None or cycle.response_complete:
            return  # the body is whole, or answered: what follows is not read (it closes)
        part = data[:left]
        self._body_after_upgrade = left - len(part)
        if part:
            cycle.body += part
            if len(cycle.body) > HIGH_WATER_LIMIT:
                self.flow.pause_reading()
        if not self._body_after_upgrade:
            cycle.more_body = False
            self._reading = False
        cycle.message_event.set()

    def _refuse_upgrade_body(self, cycle: RequestResponseCycle) -> None:
        """400 for a chunked body after an upgrade request's head, in the request's turn."""
        self._body_after_upgrade = 0  # nothing more is read from this connection
        detail = (
            "a body with Transfer-Encoding cannot come with an Upgrade header here:"
            " send it with Content-Length, or without Upgrade"
        )
        if _target_path(self.url).startswith(b"/v1/"):
            problem = {
                "type": "urn:eventor:problem:bad-request",
                "title": "Bad Request",
                "status": 400,
                "detail": detail,
            }
            content_type, body = b"application/problem+json", json.dumps(problem).encode()
        else:
            content_type, body = b"text/plain; charset=utf-8", detail.encode()
        # In its turn, as any refusal: behind answers still owed, it replaces its app; its app
        # started already (nothing else is being answered), it reads no body and appends
        # nothing, and the refusal goes out now.
        self._close_with(_answer(b"400 Bad Request", content_type, body))

    def on_headers_complete(self) -> None:
        # Refused with the head still counted as being read (`_head_deadline`): the request
        # has no cycle, and its refusal waits for the answers owed before it.
        # Counted only when it may be over: the head is within the bytes received so far.
        if self._received > MAX_HEAD_BYTES:
            size = len(self.url) + sum(len(name) + len(value) for name, value in self.headers)
            if size > MAX_HEAD_BYTES:
                self._too_large = True
                raise _HeadTooLarge
        for name, _ in self.headers:
            if name == b"transfer-encoding":
                self._refusal = _framing_refusal(self.headers, self.parser.get_http_version())
                if self._refusal is not None:
                    raise _Refused
                break
        # Cleared once the request has its cycle: a target uvicorn cannot split fails in
        # there, and its 400 must then wait its turn, not take the previous request's place.
        if len(self.url) <= _LONGEST_PARSED_TARGET:
            super().on_headers_complete()
        else:
            self._long_target_headers_complete()
        self._head_deadline = 0.0
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope and self.scope["http_version"] in _OLD:
            cycle.__class__ = _HTTP10Cycle  # the same object, with its own way to send
            cycle.waiting_for_100_continue = False  # RFC 9110 15.2: not to an HTTP/1.0 client

    def _long_target_headers_complete(self) -> None:
        """httptools.parse_url keeps offsets in 16 bits and fails on a longer target, so
        uvicorn answered 400; Go takes any target within the head's bound. So the target is
        split here, as parse_url splits it, and written into the scope uvicorn made."""
        target = self.url
        path, _, query = _target_path(target).partition(b"#")[0].partition(b"?")
        text = path.decode("ascii")  # as uvicorn's: non-ASCII bytes fail the request (400)
        if "%" in text:
            text = urllib.parse.unquote(text)
        self.url = b"/"
        try:
            super().on_headers_complete()
        finally:
            self.url = target
        # The ASGI task is made but has not run: it reads the scope as set here.
        scope = self.scope
        scope["path"] = self.root_path + text
        scope["raw_path"] = self.root_path.encode("ascii") + path
        scope["query_string"] = query

    def on_body(self, body: bytes) -> None:
        self._body += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._reading = False
        super().on_message_complete()
        self._received = self._body = 0

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request HTTP cannot frame (a bad chunk size, two lengths, a
        control character in a header), in its turn; as a problem document on /v1, like every
        v1 error."""
        if self._too_large:
            self._refuse()
        elif self._refusal is not None:
            status_line, detail = self._refusal
            _BAD_REQUESTS.warning(
                "A request from %s was refused (answered %s): %s",
                _peer(self.client),
                status_line.decode(),
                detail,
            )
            self._close_with(self._error(status_line, detail))
        elif not _target_path(getattr(self, "url", b"")).startswith(b"/v1/"):
            body = msg.encode("ascii", "replace")
            self._close_with(_answer(b"400 Bad Request", b"text/plain; charset=utf-8", body))
        else:
            detail = f"{msg} The request breaks HTTP/1.1's framing (RFC 9112)."
            self._close_with(self._error(b"400 Bad Request", detail))

    def _error(self, status_line: bytes, detail: str, *, text: bytes | None = None) -> bytes:
        """An error answer to the request being read: a problem document on /v1, else text
        (`text`, or the detail)."""
        if not _target_path(getattr(self, "url", b"")).startswith(b"/v1/"):
            body = detail.encode() if text is None else text
            return _answer(status_line, b"text/plain; charset=utf-8", body)
        status, _, title = status_line.decode().partition(" ")
        problem = {
            "type": "urn:eventor:problem:" + title.lower().replace(" ", "-"),
            "title": title,
            "status": int(status),
            "detail": detail,
        }
        return _answer(status_line, b"application/problem+json", json.dumps(problem).encode())

    def _refuse(self) -> None:
        self._too_large = True
        if self._last_word is not None or self.transport.is_closing():
            return  # refused already
        _TOO_LARGE.warning(
            "A request's head from %s passed %d bytes (answered 431)",
            _peer(self.client),
            MAX_HEAD_BYTES,
        )
        detail = (
            f"The request's head (target and header fields) passed {MAX_HEAD_BYTES} bytes:"
            " send fewer or shorter header fields."
        )
        self._close_with(self._error(_REFUSAL, detail, text=_REFUSAL))

    def _close_with(self, answer: bytes) -> None:
        """Answer a request that cannot be served, and close: in its turn, once the earlier
        requests on the connection (pipelined) are answered, never written into one of their
        answers nor taken for one."""
        if self.transport.is_closing() or self._last_word is not None or self._linger_until:
            return
        broken = self.cycle
        if broken is not None and not self._head_deadline:
            # Its head was whole (its body broke): answered by these words, not by its app.
            for queued in list(self.pipeline):
                if queued[0] is broken:
                    self.pipeline.remove(queued)
        if self._owed_before():
            self._last_word = answer  # see on_response_complete
            return
        running = self._running
        if running is not None and running.response_started and not running.response_complete:
            # Being answered (before its body broke): the words would garble that answer.
            self.transport.close()
        elif broken is not None and not self._head_deadline and broken.response_started:
            # Answered already, before its body broke: a second answer would be taken for
            # the answer to the client's next request.
            self._end_with(b"")
        else:
            self._end_with(answer)

    def _end_with(self, answer: bytes) -> None:
        """Write the connection's last answer and close it in stages (see LINGER_SECONDS)."""
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        self._unset_keepalive_if_required()  # its timer would cut the staged close short
        running = self._running
        if running is not None and not running.response_complete:
            # Its app (reading the body that broke) ends as if the client had gone: nothing
            # of it is appended, and nothing more may be written after the FIN (not even the
            # "100 Continue" its first read of the body would send).
            running.disconnected = True
            running.waiting_for_100_continue = False
            running.message_event.set()
        if answer:
            self.on_refusal(int(answer[9:12]))  # b"HTTP/1.1 431 ..."
            self.transport.write(answer)
        try:
            self.transport.write_eof()
        except (NotImplementedError, OSError, RuntimeError):
            self.transport.close()
            return
        # A stop waits for no staged close longer than for a stalled answer.
        self._linger_until = self.loop.time() + (ENDLESS_GRACE if self._stopping else LINGER_MAX)
        self.flow.resume_reading()
        self._linger_on()

    def _linger_on(self) -> None:
        """Bytes came while closing in stages: the connection stays until they stop coming."""
        if self._linger is not None:
            self._linger.cancel()
        wait = min(LINGER_SECONDS, self._linger_until - self.loop.time())
        self._linger = self.loop.call_later(max(wait, 0.0), self._linger_over)

    def _linger_over(self) -> None:
        """The client sent nothing for LINGER_SECONDS: close, once the answer is out (a close
        waits for that); a client that reads none of it is cut at LINGER_MAX."""
        self._linger = None
        if not self.transport.get_write_buffer_size():
            self.transport.close()
        elif self.loop.time() >= self._linger_until:
            self.transport.abort()
        else:
            self._linger = self.loop.call_later(LINGER_SECONDS, self._linger_over)

    def _owed_before(self) -> bool:
        """Whether requests before the one being read are still to be answered."""
        if self.pipeline:
            return True
        running = self._running
        if running is None or running.response_complete:
            return False
        # Reading a new request's head, or the body of one queued behind the running one.
        return bool(self._head_deadline) or running is not self.cycle

    def shutdown(self) -> None:
        """The server stops. An endless answer (a live stream) ends by itself once the app
        stops, unless its client stopped reading: its writes, or the close after its end,
        would then wait for the client for the whole grace period (and be cancelled with an
        error logged). Such a connection is cut: at once when its writes wait already, else
        after ENDLESS_GRACE; its client reconnects with Last-Event-ID. A long answer whose
        client stopped reading (a big page to a stalled consumer) is cut the same way, once
        ENDLESS_GRACE has passed with its writes waiting; one still flowing may finish."""
        self._stopping = True
        if self._linger_until:  # closing in stages: for ENDLESS_GRACE more at most
            self._linger_until = min(self._linger_until, self.loop.time() + ENDLESS_GRACE)
            self._linger_on()
            return
        running = self._running
        # (Its answer may have ended already: the app stops first, which ends live streams.)
        endless = running is not None and bool(running.scope.get(ENDLESS_ANSWER))
        if endless and self.flow.write_paused:
            self.transport.abort()
            return
        super().shutdown()
        if endless:
            self.loop.call_later(ENDLESS_GRACE, self._cut, None, 0)
        elif running is not None and (
            not running.response_complete or self.transport.get_write_buffer_size()
        ):
            # What goes to the client from now on is counted, to tell a slow reader from one
            # that stopped (the hot path pays nothing for it: only answers a stop finds).
            counted = _CountedWrites(self.transport)
            running.transport = counted  # type: ignore[assignment]
            for queued, _ in self.pipeline:  # answered after it, on the same connection
                queued.transport = counted  # type: ignore[assignment]
            self.loop.call_later(ENDLESS_GRACE, self._cut, counted, self._sent(counted))

    def _sent(self, counted: _CountedWrites) -> int:
        """Bytes handed to the kernel since the stop began (give or take a constant)."""
        return counted.written - self.transport.get_write_buffer_size()

    def _cut(self, counted: _CountedWrites | None, sent_before: int) -> None:
        """ENDLESS_GRACE into a stop, or later: an endless answer is cut; another is cut when
        bytes wait for its client and none went in the last ENDLESS_GRACE (it stopped
        reading), else looked at again (uvicorn's grace period bounds it)."""
        if self._lost:
            return
        if counted is None:
            self.transport.abort()
            return
        sent = self._sent(counted)
        if sent <= sent_before and self.transport.get_write_buffer_size():
            _CUT.info(
                "An answer to %s was cut short by the stop: its client was not reading",
                _peer(self.client),
            )
            self.transport.abort()
        else:
            self.loop.call_later(ENDLESS_GRACE, self._cut, counted, sent)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._last_word is not None and not self.transport.is_closing():
            running = self._running
            if not self.pipeline and (running is None or running.response_complete):
                self._end_with(self._last_word)


class _HTTP10Cycle(RequestResponseCycle):
    """uvicorn's cycle for an HTTP/1.0 (or 0.9) request. An answer with no length (a live
    stream, an answer sent page by page) was sent chunked, which HTTP/1.0 does not have (RFC
    9112 6.1: a server must not send Transfer-Encoding to it): the client read the chunk sizes
    as data. It is sent as it comes instead, and ends when the connection closes."""

    _unframed = False

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start" and not self.response_started:
            headers = list(message.get("headers", ()))  # an iterator is read once
            message = {**message, "headers": headers}
            if (
                self.scope["method"] != "HEAD"
                and message["status"] not in (204, 304)
                and not any(name.lower() in _FRAMING for name, _ in headers)
            ):
                self._unframed = True
                self.keep_alive = False  # the close is the answer's end
                self.chunked_encoding = False
                self.expected_content_length = sys.maxsize
        elif (
            self._unframed
            and message["type"] == "http.response.body"
            and not message.get("more_body", False)
        ):
            self.expected_content_length = len(message.get("body", b""))  # uvicorn checks it
        await super().send(message)


_FRAMING = (b"content-length", b"transfer-encoding")
#: Versions without chunked coding (llhttp parses HTTP/0.9 request lines too).
_OLD = ("0.9", "1.0")


class _CountedWrites:
    """A connection's transport that counts the bytes written through it (for a stop)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)
        self._transport.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


def _peer(client: tuple[str, int] | None) -> str:
    return "an unknown address" if client is None else f"{client[0]}:{client[1]}"


def _target_path(target: bytes) -> bytes:
    """The path of a request target, also in absolute form (`http://host/v1/...`)."""
    if target.startswith(b"/"):
        return target
    rest = target.partition(b"://")[2]
    return b"/" + rest.partition(b"/")[2] if rest else target


def _framing_refusal(headers: list[tuple[bytes, bytes]], version: str) -> tuple[bytes, str] | None:
    """Why a request with a Transfer-Encoding cannot be framed as its client meant; None when
    it can (chunked alone, on HTTP/1.1). llhttp would take the chunks and pass the body on
    still gzipped (stored so by the original route), or de-chunk an HTTP/1.0 request, where a
    proxy before Eventor would frame it by its length (RFC 9112 6.1)."""
    if version == "1.0":
        return (
            b"400 Bad Request",
            "Transfer-Encoding is not HTTP/1.0: send the body with a Content-Length",
        )
    codings = [
        coding.strip().lower()
        for name, value in headers
        if name == b"transfer-encoding"
        for coding in value.split(b",")
    ]
    if codings == [b"chunked"]:
        return None
    shown = b", ".join(codings).decode("latin-1")[:100]
    return (
        b"501 Not Implemented",
        f"transfer coding {shown!r} is not supported: send the body with Content-Length or"
        " with Transfer-Encoding: chunked alone",
    )


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The body's length as the head declares it: 0 without one; None when it cannot be
    framed by a length (chunked, or a value that is no number)."""
    length = 0
    for name, value in headers:
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            if not value.strip().isdigit():
                return None
            length = int(value)
    return length
