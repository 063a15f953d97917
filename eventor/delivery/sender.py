"""Sends webhook requests with aiohttp: keep-alive per endpoint."""

from __future__ import annotations

import asyncio
import codecs
import functools
import re
import time
from dataclasses import dataclass
from types import SimpleNamespace

import aiohttp
import yarl
from aiohttp.client_proto import ResponseHandler

from ..failures import printable

#: No cap on connections over all endpoints: each subscription has at most one request in
#: flight, so they are bounded by the subscriptions delivering. (A shared cap let slow
#: receivers hold every connection while the others' attempts timed out waiting for one.)
POOL_SIZE = 0
#: How much of a failed response's body the attempt log keeps.
EXCERPT_BYTES = 1024
#: A successful response's body is read (so the connection can be reused) up to this much,
#: for at most this long: then the connection is closed instead.
_DRAIN_BYTES = 64 * 1024
_DRAIN_SECONDS = 0.5  # under the engine's STOP_MARGIN: a clean stop waits for it
#: How big an answer's head may be. aiohttp's defaults (lines of 8 KiB, 128 fields) made a 200
#: with a big cookie or CSP header a failure (the event sent again, then the subscription
#: paused); the original's Go client took 10 MiB of head. Bounded still: a receiver's answer
#: is held whole while parsed.
MAX_HEADER_LINE = 64 * 1024
MAX_HEADERS = 500


@dataclass(slots=True)
class Outcome:
    """How one attempt went. `ok` is any 2xx."""

    ok: bool
    status: int | None
    error: str | None
    excerpt: str | None
    retry_after: str | None
    duration_ms: float


class Sender:
    """One aiohttp session shared by every subscription."""

    def __init__(self, pool_size: int = POOL_SIZE) -> None:
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0, ttl_dns_cache=60)
        if isinstance(getattr(connector, "_factory", None), functools.partial):
            loop = asyncio.get_running_loop()
            connector._factory = functools.partial(_BodilessAnswers, loop=loop)  # type: ignore[assignment]
        tracing = aiohttp.TraceConfig()
        tracing.on_connection_reuseconn.append(_on_reuse)
        self._session = aiohttp.ClientSession(
            trace_configs=[tracing],
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Content-Type", "Accept-Encoding"),
            cookie_jar=aiohttp.DummyCookieJar(),
            # send() bounds each attempt itself; aiohttp's own timers would only add work
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=None, sock_read=None),
            max_line_size=MAX_HEADER_LINE,
            max_field_size=MAX_HEADER_LINE,
            max_headers=MAX_HEADERS,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, url: str, body: bytes, headers: dict[str, str], seconds: float) -> Outcome:
        """POST once, waiting at most `seconds` for the answer's status. Receiver failures
        become the Outcome."""
        assert self._session is not None, "the sender is not started"
        started = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + seconds
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._post(_target(url, headers), body, headers)
        except TimeoutError:
            error = f"timeout: no answer within {seconds:g}s"
        except aiohttp.ClientError as exc:
            error = f"connection failed: {_describe(exc)}"
        except OSError as exc:
            error = f"connection failed: {exc.strerror or exc}"
        except ValueError as exc:  # e.g. an invalid header value
            error = f"request failed: {exc}"
        else:
            try:
                return await self._judge(response, deadline, started)
            finally:
                response.release()
        return Outcome(False, None, _text(error), None, None, _ms(started))

    async def _post(
        self, target: yarl.URL, body: bytes, headers: dict[str, str]
    ) -> aiohttp.ClientResponse:
        """POST; again, at once, while it breaks before any answer on a kept-alive connection.
        The receiver closed that connection, idle, just as it was taken (servers close idle
        connections after a few seconds, Node's and uvicorn's after 5): no failure of the
        receiver's. A request that had reached it is sent twice, as a failed attempt's retry
        would be (at least once), only sooner."""
        assert self._session is not None, "the sender is not started"
        while True:
            reuse = _Reuse()
            try:
                return await self._session.post(
                    target,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    trace_request_ctx=reuse,
                )
            except (aiohttp.ClientConnectionError, OSError) as exc:
                # Each pass drops one stale connection from the pool (several subscriptions
                # to one receiver leave several); the attempt's deadline bounds them all.
                if not reuse.reused or isinstance(exc, aiohttp.ClientConnectorError):
                    raise

    async def _judge(
        self, response: aiohttp.ClientResponse, deadline: float, started: float
    ) -> Outcome:
        """The Outcome of an answer whose status has come. A 2xx is a success however slowly
        its body follows; a failure's body is read for the log while the attempt's time lasts."""
        status = response.status
        if 200 <= status < 300:
            try:  # so that the connection can be reused; not part of the verdict
                async with asyncio.timeout(_DRAIN_SECONDS):
                    await _read_up_to(response, _DRAIN_BYTES, bytearray())
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass
            if not response.content.at_eof():
                response.close()  # too much, or too slow, to read just to keep the connection
            return Outcome(True, status, None, None, None, _ms(started))
        excerpt = bytearray()  # what came is kept, should the rest stall or be cut off
        try:
            async with asyncio.timeout_at(deadline):
                await _read_up_to(response, EXCERPT_BYTES + 1, excerpt)  # cut, or whole?
        except (TimeoutError, aiohttp.ClientError, OSError):
            response.close()
        retry_after = response.headers.get("Retry-After") if status in (429, 503) else None
        if not response.content.at_eof():
            response.close()
        return Outcome(
            False,
            status,
            _text(f"HTTP {status} {response.reason or ''}".rstrip()),
            _excerpt_text(bytes(excerpt)),
            retry_after,
            _ms(started),
        )


class _BodilessAnswers(ResponseHandler):
    """aiohttp's protocol, taking a 204 or 304 that comes with a body (a receiver's bug: those
    answers have none) as the answer it is, as Go's client did, the original's: aiohttp failed
    it (the body read as the next answer's status line: "Bad status line"), so the delivery was
    made again and again, then paused. The bytes after its head are dropped, with the
    connection. (One request at a time on a connection: an answer's head begins a read.)"""

    _after_bodiless = False  # the last answer was a 204 or 304, its head whole

    def data_received(self, data: bytes) -> None:
        if data.startswith(b"HTTP/1."):
            bodiless = data[9:12] in (b"204", b"304") and data[12:13] in (b" ", b"\r")
            end = data.find(b"\r\n\r\n") if bodiless else -1
            self._after_bodiless = end > 0
            if self._after_bodiless and end + 4 < len(data):
                data = data[: end + 4]
                self._should_close = True
        elif self._after_bodiless and data:
            self._should_close = True
            return  # more of the body such an answer may not have, in a read of its own
        super().data_received(data)


class _Reuse:
    """Whether a request went out on a kept-alive connection (told by aiohttp's tracing)."""

    __slots__ = ("reused",)

    def __init__(self) -> None:
        self.reused = False


async def _on_reuse(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceConnectionReuseconnParams,
) -> None:
    context.trace_request_ctx.reused = True


def _excerpt_text(body: bytes) -> str:
    """The first EXCERPT_BYTES of `body` (read one byte further, to know whether they are
    all of it) as text: a character cut at the excerpt's end is left out (not a U+FFFD);
    bytes that are not UTF-8 are U+FFFD."""
    cut = len(body) > EXCERPT_BYTES
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    return decoder.decode(body[:EXCERPT_BYTES], final=not cut)


async def _read_up_to(response: aiohttp.ClientResponse, limit: int, into: bytearray) -> None:
    """Read the body's first `limit` bytes `into` the buffer, however many pieces they come in
    (one `read` returns whatever has arrived: a body sent in two parts was cut, and its
    connection closed). Interrupted, the buffer keeps what had come."""
    while len(into) < limit and (part := await response.content.read(limit - len(into))):
        into += part


def _text(text: str) -> str:
    """`text` as valid Unicode: aiohttp keeps undecodable bytes of a reason phrase or an error
    as lone surrogates, which no UTF-8 encoder takes (the progress write, the JSON status).
    Control characters escaped: the receiver chose them, and the error is logged."""
    try:
        raw = text.encode("utf-8", "surrogateescape")  # the bytes the receiver sent
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        raw = text.encode("utf-8", "surrogatepass")
    return printable(raw.decode("utf-8", "replace"))


def _target(url: str, headers: dict[str, str]) -> yarl.URL:
    """The URL as given, its escapes kept: yarl would decode escapes such as %2F in a query,
    which breaks presigned and HMAC-signed webhook URLs. Characters a request line may not
    carry (`|`, `{`, a `%` that starts no escape, non-ASCII ones as UTF-8, ...) are escaped;
    a non-ASCII host is written in IDNA (by yarl).

    A URL's `user:password@` becomes Basic credentials, unless the subscription's own headers
    hold an `Authorization`: that one is sent, as the original's Go client did (aiohttp refuses
    the two together, so every attempt failed and the subscription paused)."""
    if not url.isascii():
        scheme, _, rest = url.partition("://")
        end = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
        url = str(yarl.URL(f"{scheme}://{rest[:end]}")) + rest[end:]
    target = yarl.URL(_NOT_URI.sub(_escape, url), encoded=True)
    credentials = target.raw_user is not None or target.raw_password is not None
    if credentials and any(name.lower() == "authorization" for name in headers):
        target = target.with_user(None)
    return target


#: What RFC 3986 does not allow in a URI: escaped when sent.
_NOT_URI = re.compile(r"%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]")


def _escape(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8"))


def _describe(exc: aiohttp.ClientError) -> str:
    text = str(exc) or type(exc).__name__
    return text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
