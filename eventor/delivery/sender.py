"""Sends webhook requests with aiohttp: keep-alive per endpoint."""

from __future__ import annotations

import asyncio
import codecs
import re
import time
from dataclasses import dataclass

import aiohttp
import yarl

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
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Content-Type", "Accept-Encoding"),
            cookie_jar=aiohttp.DummyCookieJar(),
            # send() bounds each attempt itself; aiohttp's own timers would only add work
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=None, sock_read=None),
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
                response = await self._session.post(
                    _target(url), data=body, headers=headers, allow_redirects=False
                )
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

    async def _judge(
        self, response: aiohttp.ClientResponse, deadline: float, started: float
    ) -> Outcome:
        """The Outcome of an answer whose status has come. A 2xx is a success however slowly
        its body follows; a failure's body is read for the log while the attempt's time lasts."""
        status = response.status
        if 200 <= status < 300:
            try:  # so that the connection can be reused; not part of the verdict
                async with asyncio.timeout(_DRAIN_SECONDS):
                    await _read_up_to(response, _DRAIN_BYTES)
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass
            if not response.content.at_eof():
                response.close()  # too much, or too slow, to read just to keep the connection
            return Outcome(True, status, None, None, None, _ms(started))
        excerpt = b""
        try:
            async with asyncio.timeout_at(deadline):
                excerpt = await _read_up_to(response, EXCERPT_BYTES + 1)  # cut, or whole?
        except (TimeoutError, aiohttp.ClientError, OSError):
            response.close()
        retry_after = response.headers.get("Retry-After") if status in (429, 503) else None
        if not response.content.at_eof():
            response.close()
        return Outcome(
            False,
            status,
            _text(f"HTTP {status} {response.reason or ''}".rstrip()),
            _excerpt_text(excerpt),
            retry_after,
            _ms(started),
        )


def _excerpt_text(body: bytes) -> str:
    """The first EXCERPT_BYTES of `body` (read one byte further, to know whether they are
    all of it) as text: a character cut at the excerpt's end is left out (not a U+FFFD);
    bytes that are not UTF-8 are U+FFFD."""
    cut = len(body) > EXCERPT_BYTES
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    return decoder.decode(body[:EXCERPT_BYTES], final=not cut)


async def _read_up_to(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body's first `limit` bytes, however many pieces they come in (one `read` returns
    whatever has arrived: a body sent in two parts was cut, and its connection closed)."""
    parts: list[bytes] = []
    size = 0
    while size < limit and (part := await response.content.read(limit - size)):
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _text(text: str) -> str:
    """`text` as valid Unicode: aiohttp keeps undecodable bytes of a reason phrase or an error
    as lone surrogates, which no UTF-8 encoder takes (the progress write, the JSON status).
    Control characters escaped: the receiver chose them, and the error is logged."""
    try:
        raw = text.encode("utf-8", "surrogateescape")  # the bytes the receiver sent
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        raw = text.encode("utf-8", "surrogatepass")
    return printable(raw.decode("utf-8", "replace"))


def _target(url: str) -> yarl.URL:
    """The URL as given, its escapes kept: yarl would decode escapes such as %2F in a query,
    which breaks presigned and HMAC-signed webhook URLs. Characters a request line may not
    carry (`|`, `{`, a `%` that starts no escape, non-ASCII ones as UTF-8, ...) are escaped;
    a non-ASCII host is written in IDNA (by yarl)."""
    if not url.isascii():
        scheme, _, rest = url.partition("://")
        end = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
        url = str(yarl.URL(f"{scheme}://{rest[:end]}")) + rest[end:]
    return yarl.URL(_NOT_URI.sub(_escape, url), encoded=True)


#: What RFC 3986 does not allow in a URI: escaped when sent.
_NOT_URI = re.compile(r"%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]")


def _escape(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8"))


def _describe(exc: aiohttp.ClientError) -> str:
    text = str(exc) or type(exc).__name__
    return text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
