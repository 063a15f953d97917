"""The Python client for Eventor's v1 API, on httpx: `Client` and `AsyncClient`.

    import json

    from eventor.client import Client

    with Client("http://127.0.0.1:9400") as eventor:
        eventor.append("orders", {"type": "OrderPlaced", "data": {"order_id": 42}})
        for event in eventor.iter_events("orders"):
            print(event.position, event.type, json.loads(event.data))

Events come back as `RecordedEvent`s whose `data` holds the bytes exactly as appended. Errors the
server answers with are raised as Eventor's own exceptions (`WrongExpectedVersion`,
`StreamNotFound`, ...), each with the problem document in `.problem`. No answer (connection
refused or broken, a timeout) is `ServerUnreachable`; an answer the API does not give is a
`ClientError` (both are `EventorError`s: catch `ServerUnreachable` first to retry). Pass
`transport=` to talk to an app in-process (e.g. `httpx.ASGITransport`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator, Mapping, Sequence
from typing import Any, Self

import httpx

from ._client_calls import (
    DEFAULT_URL,
    SSE,
    Call,
    ClientError,
    EventIn,
    Page,
    ServerUnreachable,
    Status,
    append_call,
    check_event_stream,
    live_path,
    live_timeout,
    parse_answer,
    put_call,
    raise_for,
    read_call,
    request_args,
    sse_events,
    stream_info_call,
    streams_page_call,
    subscription_call,
    subscriptions_call,
    transport_failure,
)
from .errors import StreamNotFound
from .types import ANY, AppendResult, ExpectedVersion, RecordedEvent

__all__ = ["AsyncClient", "Client", "ClientError", "Page", "ServerUnreachable"]


# -- the clients ---------------------------------------------------------------------------------


class Client:
    """A synchronous client. Use it as a context manager, or call `close()`.

    `timeout`: seconds for each request (or an `httpx.Timeout`; None: no limit); long polls and
    `live()` are given the time they need to read on top of it.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float | httpx.Timeout | None = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout, headers=headers, transport=transport
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _run(self, call: Call) -> Any:
        try:
            args = request_args(call, self._http.timeout)
            response = self._http.request(call.method, call.path, **args)
        except httpx.TransportError as exc:
            raise transport_failure(f"{call.method} {call.path}", exc) from exc
        raise_for(response, call.subject, call.precondition)
        return parse_answer(call, response)

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
        result: AppendResult = self._run(append_call(stream, events, expected_version))
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
        page: Page = self._run(read_call(stream, start, limit, backward, wait))
        return page

    def head(self, stream: str) -> int:
        """The stream's last position; 0 for a stream with no events (one that does not
        exist yet), as `expected_version` counts it."""
        try:
            head: int = self.stream(stream)["head"]
        except StreamNotFound:
            return 0
        return head

    def iter_events(
        self, stream: str, start: int = 1, *, page_size: int = 1000
    ) -> Iterator[RecordedEvent]:
        """Every event from `start` to the head as it is when the last page is read (none for
        a stream that does not exist yet)."""
        while True:
            try:
                page = self.read(stream, start, page_size)
            except StreamNotFound:
                return
            yield from page.events
            if not page.events or page.next is None or page.next > page.head:
                return
            start = page.next

    def live(self, stream: str, start: int | None = None) -> Generator[RecordedEvent, None, None]:
        """Events as they are appended (Server-Sent Events), from `start` on if given, else
        only those appended once iteration begins (the request goes out at the first `next()`:
        to leave no gap, pass `start=head(stream) + 1` taken before). Runs until the caller
        stops iterating (close it, or leave the loop) or the server closes the stream, e.g. on
        shutdown: to go on, call again with `start` = the last position + 1. A line break
        between the tokens of an event's JSON data arrives as LF (SSE's framing); the value is
        the same, and `read()` has the bytes."""
        params = {} if start is None else {"from": start}
        path = live_path(stream)
        timeout = live_timeout(self._http.timeout)
        try:
            with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if not response.is_success:
                    response.read()
                    raise_for(response, stream)
                check_event_stream(response, path)
                sse = SSE()
                for chunk in response.iter_text():
                    yield from sse_events(sse, chunk, path)
        except httpx.TransportError as exc:
            raise transport_failure(f"GET {path}", exc) from exc

    def stream(self, stream: str) -> dict[str, Any]:
        """The stream's info: head, times, size, counts per type, subscriptions."""
        info: dict[str, Any] = self._run(stream_info_call(stream))
        return info

    def streams(self, prefix: str = "") -> Iterator[dict[str, Any]]:
        """Every stream (name, head, created, updated), in name order."""
        after = ""
        while True:
            page = self._run(streams_page_call(prefix, after))
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
        status: Status = self._run(put_call(name, stream, url, exists, config))
        return status

    def subscription(self, name: str) -> Status:
        """The subscription's status (position, head, lag, errors, config)."""
        status: Status = self._run(subscription_call("GET", name))
        return status

    def subscriptions(self, stream: str | None = None) -> list[Status]:
        """Every subscription's status, in name order; only those to `stream` when given."""
        listed: list[Status] = self._run(subscriptions_call(stream))
        return listed

    def pause(self, name: str) -> Status:
        """Stop delivering (a request in flight finishes); the position stays."""
        status: Status = self._run(subscription_call("POST", name, "pause"))
        return status

    def resume(self, name: str) -> Status:
        """Deliver again, from the stored position (a failed event is tried afresh)."""
        status: Status = self._run(subscription_call("POST", name, "resume"))
        return status

    def reset(self, name: str, position: int) -> Status:
        """The next delivery is `position` + 1 (replays, or skips)."""
        status: Status = self._run(subscription_call("POST", name, "reset", {"position": position}))
        return status

    def delete_subscription(self, name: str) -> None:
        """Delete it: deliveries stop at once and its position is forgotten."""
        self._run(subscription_call("DELETE", name))

    def deliveries(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        """The latest attempts, newest first."""
        call = subscription_call("GET", name, "deliveries", params={"limit": limit})
        listed: list[dict[str, Any]] = self._run(call)
        return listed

    def parked(self, name: str) -> list[dict[str, Any]]:
        """The parked events (given up on under `on_exhausted: park`), in position order."""
        listed: list[dict[str, Any]] = self._run(subscription_call("GET", name, "parked"))
        return listed

    def replay_parked(self, name: str) -> int:
        """Queue the parked events for re-delivery, in order; returns how many."""
        queued: int = self._run(subscription_call("POST", name, "parked/replay"))
        return queued


class AsyncClient:
    """The same as `Client`, for asyncio (`async with AsyncClient() as eventor: ...`): the
    same methods, awaited; `iter_events`, `streams` and `live` are async iterators, and
    `close()` is `aclose()`."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float | httpx.Timeout | None = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=timeout, headers=headers, transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, call: Call) -> Any:
        try:
            args = request_args(call, self._http.timeout)
            response = await self._http.request(call.method, call.path, **args)
        except httpx.TransportError as exc:
            raise transport_failure(f"{call.method} {call.path}", exc) from exc
        raise_for(response, call.subject, call.precondition)
        return parse_answer(call, response)

    async def append(
        self,
        stream: str,
        events: EventIn | Sequence[EventIn],
        *,
        expected_version: ExpectedVersion = ANY,
    ) -> AppendResult:
        result: AppendResult = await self._run(append_call(stream, events, expected_version))
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
        page: Page = await self._run(read_call(stream, start, limit, backward, wait))
        return page

    async def head(self, stream: str) -> int:
        try:
            head: int = (await self.stream(stream))["head"]
        except StreamNotFound:
            return 0
        return head

    async def iter_events(
        self, stream: str, start: int = 1, *, page_size: int = 1000
    ) -> AsyncIterator[RecordedEvent]:
        while True:
            try:
                page = await self.read(stream, start, page_size)
            except StreamNotFound:
                return
            for event in page.events:
                yield event
            if not page.events or page.next is None or page.next > page.head:
                return
            start = page.next

    async def live(
        self, stream: str, start: int | None = None
    ) -> AsyncGenerator[RecordedEvent, None]:
        params = {} if start is None else {"from": start}
        path = live_path(stream)
        timeout = live_timeout(self._http.timeout)
        try:
            async with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if not response.is_success:
                    await response.aread()
                    raise_for(response, stream)
                check_event_stream(response, path)
                sse = SSE()
                async for chunk in response.aiter_text():
                    for event in sse_events(sse, chunk, path):
                        yield event
        except httpx.TransportError as exc:
            raise transport_failure(f"GET {path}", exc) from exc

    async def stream(self, stream: str) -> dict[str, Any]:
        info: dict[str, Any] = await self._run(stream_info_call(stream))
        return info

    async def streams(self, prefix: str = "") -> AsyncIterator[dict[str, Any]]:
        after = ""
        while True:
            page = await self._run(streams_page_call(prefix, after))
            for stream in page["streams"]:
                yield stream
            if page["next"] is None:
                return
            after = page["next"]

    async def put_subscription(
        self, name: str, stream: str, url: str, *, exists: bool | None = None, **config: Any
    ) -> Status:
        status: Status = await self._run(put_call(name, stream, url, exists, config))
        return status

    async def subscription(self, name: str) -> Status:
        status: Status = await self._run(subscription_call("GET", name))
        return status

    async def subscriptions(self, stream: str | None = None) -> list[Status]:
        listed: list[Status] = await self._run(subscriptions_call(stream))
        return listed

    async def pause(self, name: str) -> Status:
        status: Status = await self._run(subscription_call("POST", name, "pause"))
        return status

    async def resume(self, name: str) -> Status:
        status: Status = await self._run(subscription_call("POST", name, "resume"))
        return status

    async def reset(self, name: str, position: int) -> Status:
        status: Status = await self._run(
            subscription_call("POST", name, "reset", {"position": position})
        )
        return status

    async def delete_subscription(self, name: str) -> None:
        await self._run(subscription_call("DELETE", name))

    async def deliveries(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        call = subscription_call("GET", name, "deliveries", params={"limit": limit})
        listed: list[dict[str, Any]] = await self._run(call)
        return listed

    async def parked(self, name: str) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = await self._run(subscription_call("GET", name, "parked"))
        return listed

    async def replay_parked(self, name: str) -> int:
        queued: int = await self._run(subscription_call("POST", name, "parked/replay"))
        return queued
