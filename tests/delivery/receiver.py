"""A real webhook receiver for tests: an aiohttp server on loopback, in a background thread.

It records every request (headers, body, time) and answers as scripted: status sequences,
delays, connection resets, Retry-After, 410. Tests wait on conditions, never on sleeps.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it. Header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()
    peer: tuple[str, int] = ("", 0)  # the client's address: one per connection
    target: str = ""  # the request target as sent: path and query, escapes kept

    @property
    def position(self) -> int:
        return int(self.headers["x-event-position"])


@dataclass(frozen=True)
class Reply:
    """How to answer one request. `reset` drops the connection without an answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False
    #: Held until this is set (at most 10 s): a request in flight for as long as a test needs.
    hold: threading.Event | None = None


OK = Reply()
Decider = Callable[[Received], Reply | None]


class Receiver:
    """Start with `with Receiver() as r:`; deliver to `r.url`."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._script: deque[Reply] = deque()
        self._decider: Decider | None = None
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Receiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.2
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    # -- scripting -----------------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with `replies`, in order (then as decided, or 200)."""
        with self._lock:
            self._script.extend(replies)

    def decide(self, decider: Decider | None) -> None:
        """Answer with `decider(request)` (None: 200) once the script is used up."""
        self._decider = decider

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        received = Received(
            request.method,
            request.path,
            {k.lower(): v for k, v in request.headers.items()},
            body,
            time.monotonic(),
            tuple((request.transport and request.transport.get_extra_info("peername")) or ("", 0)),
            request.raw_path,
        )
        with self._lock:
            self.requests.append(received)
            reply = self._script.popleft() if self._script else None
        if reply is None and self._decider is not None:
            reply = self._decider(received)
        reply = reply or OK
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.hold is not None:
            await asyncio.get_running_loop().run_in_executor(None, reply.hold.wait, 10)
        if reply.reset:
            transport = request.transport
            assert transport is not None
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
            raise asyncio.CancelledError  # nothing more to send on a dead connection
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    # -- reading -------------------------------------------------------------------------------

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def positions(self) -> list[int]:
        """X-Event-Position of every request, in arrival order."""
        return [r.position for r in self.received()]

    def wait_for(
        self, condition: Callable[[list[Received]], bool], timeout: float = 10.0
    ) -> list[Received]:
        """Wait until `condition(requests)` holds; the requests then. Fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            requests = self.received()
            if condition(requests):
                return requests
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"receiver: condition not met in {timeout}s; got {len(requests)} requests,"
                    f" last positions {[r.headers.get('x-event-position') for r in requests[-5:]]}"
                )
            time.sleep(0.005)

    def wait_count(self, count: int, timeout: float = 10.0) -> list[Received]:
        return self.wait_for(lambda rs: len(rs) >= count, timeout)
