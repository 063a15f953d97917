"""The Python client for Eventor's v1 API, on httpx: `Client` and `AsyncClient`.

    from eventor.client import Client

    with Client("http://127.0.0.1:9400") as eventor:
        eventor.append("orders", {"type": "OrderPlaced", "data": {"order_id": 42}})
        for event in eventor.iter_events("orders"):
            print(event.position, event.type, json.loads(event.data))

Events come back as `RecordedEvent`s whose `data` holds the bytes exactly as appended. Errors the
server answers with are raised as Eventor's own exceptions (`WrongExpectedVersion`,
`StreamNotFound`, ...), each with the problem document in `.problem`; any other failure is a
`ClientError`. Pass `transport=` to talk to an app in-process (e.g. `httpx.ASGITransport`).
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from .errors import (
    EventorError,
    IdempotencyConflict,
    InvalidName,
    InvalidRequest,
    LimitExceeded,
    StorageError,
    StorageUnavailable,
    StreamNotFound,
    SubscriptionExists,
    SubscriptionNotFound,
    WrongExpectedVersion,
)
from .types import ANY, AppendResult, ExpectedVersion, RecordedEvent

__all__ = ["AsyncClient", "Client", "ClientError", "Page"]

DEFAULT_URL = "http://127.0.0.1:9400"
#: Seconds a long poll's request may take beyond its `wait`.
_LONG_POLL_MARGIN = 10.0
T = TypeVar("T")
#: An event to append, as the API takes it: {"type": ..., "data": ..., "id": ..., "metadata": ...}.
EventIn = Mapping[str, Any]
#: A subscription's status, as `GET /v1/subscriptions/{name}` answers it.
Status = dict[str, Any]


class ClientError(EventorError):
    """The server answered with an error Eventor has no exception of its own for, or not at all
    as the API says."""

    code = "client-error"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a read: its events, the stream's head, and where the next page starts
    (None: the start of the stream was reached, reading backward)."""

    events: list[RecordedEvent]
    head: int
    next: int | None


# -- the wire format ---------------------------------------------------------------------------


class _EventOut(msgspec.Struct):
    id: str
    stream: str
    position: int
    type: str
    content_type: str
    created: str
    data: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    data_base64: str | None = None
    metadata: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET  # a Raw takes null too

    def recorded(self) -> RecordedEvent:
        if self.data_base64 is not None:
            data, is_json = base64.b64decode(self.data_base64), False
        else:
            data, is_json = bytes(self.data or b"null"), True
        metadata = None if self.metadata is msgspec.UNSET else bytes(self.metadata)
        if metadata == b"null":
            metadata = None
        return RecordedEvent(
            self.id,
            self.stream,
            self.position,
            self.type,
            data,
            self.content_type,
            is_json,
            metadata,
            self.created,
        )


class _ReadOut(msgspec.Struct):
    head: int
    events: list[_EventOut]
    next: int | None


class _Appended(msgspec.Struct):
    id: str
    position: int


class _AppendOut(msgspec.Struct):
    stream: str
    first_position: int
    last_position: int
    events: list[_Appended]


_read = msgspec.json.Decoder(_ReadOut)
_appended = msgspec.json.Decoder(_AppendOut)
_event = msgspec.json.Decoder(_EventOut)


@dataclass(frozen=True, slots=True)
class _Call:
    """One request and how its answer becomes a result: shared by both clients."""

    method: str
    path: str
    parse: Callable[[httpx.Response], Any]
    params: Mapping[str, str | int | float] | None = None
    json: Any = None
    #: The stream or subscription the call is about (named by its errors).
    subject: str = ""
    headers: Mapping[str, str] | None = None
    #: A conditional PUT: a 412 means the subscription does (False) or does not (True) exist.
    precondition: bool | None = None
    #: Seconds for this request, when not the client's (a long poll waits longer).
    timeout: float | None = None


def _segment(name: str) -> str:
    return quote(name, safe="")


def _json(response: httpx.Response) -> Any:
    return response.json()


def _nothing(response: httpx.Response) -> None:
    return None


def _append(stream: str, events: EventIn | Sequence[EventIn], expected: ExpectedVersion) -> _Call:
    params = {} if expected == ANY else {"expected_version": str(expected)}
    body = dict(events) if isinstance(events, Mapping) else [dict(e) for e in events]

    def parse(response: httpx.Response) -> AppendResult:
        out = _appended.decode(response.content)
        ids = tuple(e.id for e in out.events)
        created = response.status_code == 201
        return AppendResult(out.stream, out.first_position, out.last_position, ids, created)

    return _Call("POST", f"/v1/streams/{_segment(stream)}/events", parse, params, body, stream)


def _read_page(
    stream: str, start: int | None, limit: int, backward: bool, wait: float | None
) -> _Call:
    params: dict[str, str | int | float] = {"limit": limit}
    if start is not None:
        params["from"] = start
    if backward:
        params["direction"] = "backward"
    if wait:
        params["wait"] = wait

    def parse(response: httpx.Response) -> Page:
        out = _read.decode(response.content)
        return Page([e.recorded() for e in out.events], out.head, out.next)

    path = f"/v1/streams/{_segment(stream)}/events"
    # A long poll is answered only when the wait is over: allow for it.
    timeout = wait + _LONG_POLL_MARGIN if wait else None
    return _Call("GET", path, parse, params, subject=stream, timeout=timeout)


def _subscription(
    method: str,
    name: str,
    action: str = "",
    json: Any = None,
    params: Mapping[str, int] | None = None,
) -> _Call:
    path = f"/v1/subscriptions/{_segment(name)}" + (f"/{action}" if action else "")
    parse = _nothing if method == "DELETE" else _json
    return _Call(method, path, parse, params, json, subject=name)


def _put(name: str, stream: str, url: str, exists: bool | None, config: Mapping[str, Any]) -> _Call:
    call = _subscription("PUT", name, json={"stream": stream, "url": url, **config})
    if exists is None:
        return call
    condition = {"If-Match": "*"} if exists else {"If-None-Match": "*"}
    return dataclasses.replace(call, headers=condition, precondition=exists)


def _stream_info(stream: str) -> _Call:
    return _Call("GET", f"/v1/streams/{_segment(stream)}", _json, subject=stream)


def _streams_page(prefix: str, after: str) -> _Call:
    return _Call("GET", "/v1/streams", _json, {"prefix": prefix, "after": after, "limit": 1000})


def _raise_for(
    response: httpx.Response, subject: str = "", precondition: bool | None = None
) -> None:
    """Eventor's own exception for an error answer (its problem document in `.problem`)."""
    if response.is_success:
        return
    try:
        problem = response.json()
        if not isinstance(problem, dict):
            raise ValueError
    except ValueError:
        raise ClientError(
            f"HTTP {response.status_code}: {response.text[:200]}", response.status_code
        ) from None
    code = str(problem.get("type", "")).rpartition(":")[2]
    detail = str(problem.get("detail", "")) or f"HTTP {response.status_code}"
    error: EventorError
    if code == WrongExpectedVersion.code:
        error = WrongExpectedVersion(
            str(problem.get("stream", subject)),
            problem.get("expected_version", ""),
            int(problem.get("current_version", 0)),
        )
    elif code == StreamNotFound.code:
        error = StreamNotFound(subject)
    elif code == SubscriptionNotFound.code or (response.status_code == 412 and precondition):
        error = SubscriptionNotFound(subject)
    elif response.status_code == 412 and precondition is False:
        error = SubscriptionExists(detail)
    elif code in _BY_CODE:
        error = _BY_CODE[code](detail)
    elif response.status_code in _BY_STATUS:  # e.g. invalid-parameter, bad-request
        error = _BY_STATUS[response.status_code](detail)
    else:
        error = ClientError(detail, response.status_code)
    error.args = (detail,)  # the server's words
    error.problem = problem  # type: ignore[attr-defined]
    raise error


_BY_CODE: dict[str, type[EventorError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest,
        InvalidName,
        LimitExceeded,
        IdempotencyConflict,
        SubscriptionExists,
        StorageError,
        StorageUnavailable,
    )
}


_BY_STATUS: dict[int, type[EventorError]] = {400: InvalidRequest, 413: LimitExceeded}
_LINE_END = re.compile(r"\r\n|\r|\n")


class _SSE:
    """Server-Sent Events, text chunk by text chunk, into events (a message's `data` is one).

    Lines end at CR LF, LF or CR only: the JSON in `data` may hold U+2028, U+0085 and other
    characters at which `str.splitlines` (and so httpx's `iter_lines`) would break it.
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._after_cr = False  # a chunk ended in CR: a LF opening the next one belongs to it
        self._data: list[str] = []

    def feed(self, chunk: str) -> list[RecordedEvent]:
        if self._after_cr and chunk.startswith("\n"):
            chunk = chunk[1:]
        self._after_cr = chunk.endswith("\r")
        *lines, self._buffer = _LINE_END.split(self._buffer + chunk)
        events = []
        for line in lines:
            if line.startswith("data:"):
                self._data.append(line[5:].removeprefix(" "))
            elif not line and self._data:
                text, self._data = "\n".join(self._data), []
                events.append(_event.decode(text).recorded())
        return events


# -- the clients ---------------------------------------------------------------------------------


class Client:
    """A synchronous client. Use it as a context manager, or call `close()`."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout, headers=headers, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: _Call) -> Any:
        try:
            response = self._http.request(
                call.method,
                call.path,
                params=call.params,
                json=call.json,
                headers=call.headers,
                timeout=call.timeout or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            raise ClientError(f"{call.method} {call.path}: {exc!r}") from exc
        _raise_for(response, call.subject, call.precondition)
        return call.parse(response)

    # -- streams

    def append(
        self,
        stream: str,
        events: EventIn | Sequence[EventIn],
        *,
        expected_version: ExpectedVersion = ANY,
    ) -> AppendResult:
        """Append one event or several, atomically; `created` is False for an idempotent
        retry (every id already in the stream)."""
        result: AppendResult = self._run(_append(stream, events, expected_version))
        return result

    def read(
        self,
        stream: str,
        start: int | None = None,
        limit: int = 100,
        *,
        backward: bool = False,
        wait: float | None = None,
    ) -> Page:
        """One page: forward from `start` (default 1), or backward from it (default the head).
        `wait` (forward): hold until an event is there, up to that many seconds."""
        page: Page = self._run(_read_page(stream, start, limit, backward, wait))
        return page

    def iter_events(
        self, stream: str, start: int = 1, *, page_size: int = 1000
    ) -> Iterator[RecordedEvent]:
        """Every event from `start` to the head as it is when the last page is read."""
        while True:
            page = self.read(stream, start, page_size)
            yield from page.events
            if not page.events or page.next is None or page.next > page.head:
                return
            start = page.next

    def live(self, stream: str, start: int | None = None) -> Iterator[RecordedEvent]:
        """Events as they are appended (Server-Sent Events), from `start` on if given, else
        only new ones. Runs until the caller stops iterating or the server closes."""
        params = {} if start is None else {"from": start}
        path = f"/v1/streams/{_segment(stream)}/live"
        with self._http.stream("GET", path, params=params, timeout=None) as response:
            if not response.is_success:
                response.read()
                _raise_for(response, stream)
            sse = _SSE()
            for chunk in response.iter_text():
                yield from sse.feed(chunk)

    def stream(self, stream: str) -> dict[str, Any]:
        """The stream's info: head, times, size, counts per type, subscriptions."""
        info: dict[str, Any] = self._run(_stream_info(stream))
        return info

    def streams(self, prefix: str = "") -> Iterator[dict[str, Any]]:
        """Every stream (name, head, created, updated), in name order."""
        after = ""
        while True:
            page = self._run(_streams_page(prefix, after))
            yield from page["streams"]
            if page["next"] is None:
                return
            after = page["next"]

    # -- subscriptions

    def put_subscription(
        self, name: str, stream: str, url: str, *, exists: bool | None = None, **config: Any
    ) -> Status:
        """Create or update a subscription (`config`: the other fields of api-v1.md's PUT).
        `exists=True` only updates (SubscriptionNotFound when there is none); `exists=False`
        only creates (SubscriptionExists when the name is taken)."""
        status: Status = self._run(_put(name, stream, url, exists, config))
        return status

    def subscription(self, name: str) -> Status:
        status: Status = self._run(_subscription("GET", name))
        return status

    def subscriptions(self) -> list[Status]:
        listed: list[Status] = self._run(_Call("GET", "/v1/subscriptions", _json))["subscriptions"]
        return listed

    def pause(self, name: str) -> Status:
        status: Status = self._run(_subscription("POST", name, "pause"))
        return status

    def resume(self, name: str) -> Status:
        status: Status = self._run(_subscription("POST", name, "resume"))
        return status

    def reset(self, name: str, position: int) -> Status:
        """The next delivery is `position` + 1 (replays, or skips)."""
        status: Status = self._run(_subscription("POST", name, "reset", {"position": position}))
        return status

    def delete_subscription(self, name: str) -> None:
        self._run(_subscription("DELETE", name))

    def deliveries(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        """The latest attempts, newest first."""
        call = _subscription("GET", name, "deliveries", params={"limit": limit})
        listed: list[dict[str, Any]] = self._run(call)["deliveries"]
        return listed

    def parked(self, name: str) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = self._run(_subscription("GET", name, "parked"))["parked"]
        return listed

    def replay_parked(self, name: str) -> int:
        """Queue the parked events for re-delivery, in order; returns how many."""
        queued: int = self._run(_subscription("POST", name, "parked/replay"))["replaying"]
        return queued


class AsyncClient:
    """The same as `Client`, for asyncio (`async with AsyncClient() as eventor: ...`)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=timeout, headers=headers, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, call: _Call) -> Any:
        try:
            response = await self._http.request(
                call.method,
                call.path,
                params=call.params,
                json=call.json,
                headers=call.headers,
                timeout=call.timeout or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            raise ClientError(f"{call.method} {call.path}: {exc!r}") from exc
        _raise_for(response, call.subject, call.precondition)
        return call.parse(response)

    async def append(
        self,
        stream: str,
        events: EventIn | Sequence[EventIn],
        *,
        expected_version: ExpectedVersion = ANY,
    ) -> AppendResult:
        result: AppendResult = await self._run(_append(stream, events, expected_version))
        return result

    async def read(
        self,
        stream: str,
        start: int | None = None,
        limit: int = 100,
        *,
        backward: bool = False,
        wait: float | None = None,
    ) -> Page:
        page: Page = await self._run(_read_page(stream, start, limit, backward, wait))
        return page

    async def iter_events(
        self, stream: str, start: int = 1, *, page_size: int = 1000
    ) -> AsyncIterator[RecordedEvent]:
        while True:
            page = await self.read(stream, start, page_size)
            for event in page.events:
                yield event
            if not page.events or page.next is None or page.next > page.head:
                return
            start = page.next

    async def live(self, stream: str, start: int | None = None) -> AsyncIterator[RecordedEvent]:
        params = {} if start is None else {"from": start}
        path = f"/v1/streams/{_segment(stream)}/live"
        async with self._http.stream("GET", path, params=params, timeout=None) as response:
            if not response.is_success:
                await response.aread()
                _raise_for(response, stream)
            sse = _SSE()
            async for chunk in response.aiter_text():
                for event in sse.feed(chunk):
                    yield event

    async def stream(self, stream: str) -> dict[str, Any]:
        info: dict[str, Any] = await self._run(_stream_info(stream))
        return info

    async def streams(self, prefix: str = "") -> AsyncIterator[dict[str, Any]]:
        after = ""
        while True:
            page = await self._run(_streams_page(prefix, after))
            for stream in page["streams"]:
                yield stream
            if page["next"] is None:
                return
            after = page["next"]

    async def put_subscription(
        self, name: str, stream: str, url: str, *, exists: bool | None = None, **config: Any
    ) -> Status:
        status: Status = await self._run(_put(name, stream, url, exists, config))
        return status

    async def subscription(self, name: str) -> Status:
        status: Status = await self._run(_subscription("GET", name))
        return status

    async def subscriptions(self) -> list[Status]:
        page = await self._run(_Call("GET", "/v1/subscriptions", _json))
        listed: list[Status] = page["subscriptions"]
        return listed

    async def pause(self, name: str) -> Status:
        status: Status = await self._run(_subscription("POST", name, "pause"))
        return status

    async def resume(self, name: str) -> Status:
        status: Status = await self._run(_subscription("POST", name, "resume"))
        return status

    async def reset(self, name: str, position: int) -> Status:
        status: Status = await self._run(
            _subscription("POST", name, "reset", {"position": position})
        )
        return status

    async def delete_subscription(self, name: str) -> None:
        await self._run(_subscription("DELETE", name))

    async def deliveries(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        call = _subscription("GET", name, "deliveries", params={"limit": limit})
        listed: list[dict[str, Any]] = (await self._run(call))["deliveries"]
        return listed

    async def parked(self, name: str) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = (await self._run(_subscription("GET", name, "parked")))[
            "parked"
        ]
        return listed

    async def replay_parked(self, name: str) -> int:
        queued: int = (await self._run(_subscription("POST", name, "parked/replay")))["replaying"]
        return queued
