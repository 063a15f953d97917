"""The requests of eventor.client and how their answers are read: shared by Client and
AsyncClient, which only send them."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
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
    StorageFull,
    StorageUnavailable,
    StreamNotFound,
    SubscriptionExists,
    SubscriptionNotFound,
    WrongExpectedVersion,
)
from .types import ANY, AppendResult, ExpectedVersion, RecordedEvent

DEFAULT_URL = "http://127.0.0.1:9400"
#: Seconds `live()` waits for a line at least: the server sends a keep-alive every 15.
LIVE_READ_TIMEOUT = 45.0
#: Seconds a long poll's request may take beyond its `wait`.
_LONG_POLL_MARGIN = 10.0
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


class ServerUnreachable(ClientError):
    """No answer: the server could not be reached, or the connection broke or timed out
    before the answer was whole. Safe to retry what is idempotent (reads; appends with ids)."""

    code = "server-unreachable"


ClientError.__module__ = ServerUnreachable.__module__ = "eventor.client"  # imported from there

#: The transport errors that mean no answer came (worth a retry); the others (a base URL
#: without http://, say) are mistakes that a retry repeats.
_NO_ANSWER = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)


def transport_failure(what: str, exc: httpx.TransportError) -> ClientError:
    """The exception for a request that got no answer: ServerUnreachable, or a ClientError."""
    kind = ServerUnreachable if isinstance(exc, _NO_ANSWER) else ClientError
    return kind(f"{what}: {exc!r}")


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

    def recorded(self, raw: bytes = b"") -> RecordedEvent:
        """The event; `raw`, the JSON it was decoded from, gives its data byte for byte."""
        if self.data_base64 is not None:
            data, is_json = base64.b64decode(self.data_base64), False
        else:
            data, is_json = _as_sent(raw, bytes(self.data or b"null")), True
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


_DATA_KEY = b'"data":'
_WHITESPACE = b" \t\r\n"


def _as_sent(raw: bytes, value: bytes) -> bytes:
    """An event's JSON data with the whitespace around it that it was appended with (which
    msgspec's Raw leaves out), found in `raw`, the event's JSON as the server wrote it: its
    first `"data":` is the event's own member (the members before it are strings and numbers
    whose quotes are escaped). When `raw` does not read so, `value` as it is."""
    key = raw.find(_DATA_KEY)
    if key < 0:
        return value
    start = key + len(_DATA_KEY)
    begin = start
    while begin < len(raw) and raw[begin] in _WHITESPACE:
        begin += 1
    end = begin + len(value)
    if raw[begin:end] != value:
        return value
    while end < len(raw) and raw[end] in _WHITESPACE:
        end += 1
    if end >= len(raw) or raw[end] not in b",}":
        return value
    return raw[start:end] if (begin, end) != (start, start + len(value)) else value


class _ReadOut(msgspec.Struct):
    head: int
    events: list[msgspec.Raw]
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
class Call:
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
    #: Seconds the server may hold this request before it answers (a long poll's `wait`).
    held: float | None = None


def _segment(name: str) -> str:
    # "." and ".." would be removed from the path as dot segments (RFC 3986), and the request
    # would go to another route: escaped, they reach the server, which refuses the name.
    return quote(name, safe="") if name.strip(".") else name.replace(".", "%2E")


def _answer(*keys: str, pick: str | None = None, kind: type | None = None) -> _Parse:
    """Parses a JSON object that holds `keys` (or raises ValueError, which `parse_answer` makes
    a ClientError: an answer that is not the API's); with `pick`, that key's value, of `kind`."""

    def parse(response: httpx.Response) -> Any:
        value = response.json()
        if not isinstance(value, dict) or any(key not in value for key in keys):
            raise ValueError(f"a JSON object with {', '.join(keys)} was expected")
        if pick is None:
            return value
        picked = value[pick]
        if kind is not None and not isinstance(picked, kind):
            raise ValueError(f"{pick} is not a {kind.__name__}")
        return picked

    return parse


_STATUS = _answer("name", "stream", "status", "position")


_Parse = Callable[[httpx.Response], Any]


def _nothing(response: httpx.Response) -> None:
    """A DELETE's answer: 204, with nothing in it (a 200 page is someone else's answer)."""
    if response.status_code != 204:
        raise ValueError(f"204 No Content was expected, not {response.status_code}")


def append_call(
    stream: str, events: EventIn | Sequence[EventIn], expected: ExpectedVersion
) -> Call:
    params = {} if expected == ANY else {"expected_version": str(expected)}
    body = dict(events) if isinstance(events, Mapping) else [dict(e) for e in events]

    def parse(response: httpx.Response) -> AppendResult:
        out = _appended.decode(response.content)
        ids = tuple(e.id for e in out.events)
        created = response.status_code == 201
        return AppendResult(out.stream, out.first_position, out.last_position, ids, created)

    return Call("POST", f"/v1/streams/{_segment(stream)}/events", parse, params, body, stream)


def read_call(
    stream: str, start: int | None, limit: int, backward: bool, wait: float | None
) -> Call:
    params: dict[str, str | int | float] = {"limit": limit}
    if start is not None:
        params["from"] = start
    if backward:
        params["direction"] = "backward"
    if wait:
        params["wait"] = wait

    def parse(response: httpx.Response) -> Page:
        out = _read.decode(response.content)
        events = []
        for raw in out.events:
            text = bytes(raw)
            events.append(_event.decode(text).recorded(text))
        return Page(events, out.head, out.next)

    path = f"/v1/streams/{_segment(stream)}/events"
    return Call("GET", path, parse, params, subject=stream, held=wait or None)


def subscription_call(
    method: str,
    name: str,
    action: str = "",
    json: Any = None,
    params: Mapping[str, int] | None = None,
) -> Call:
    """A call on one subscription: its status is the answer (nothing for DELETE; for
    `deliveries`, `parked` and `parked/replay`, their list or count)."""
    path = f"/v1/subscriptions/{_segment(name)}" + (f"/{action}" if action else "")
    parse = _nothing if method == "DELETE" else _BY_ACTION.get(action, _STATUS)
    return Call(method, path, parse, params, json, subject=name)


_BY_ACTION: dict[str, _Parse] = {
    "deliveries": _answer("deliveries", pick="deliveries", kind=list),
    "parked": _answer("parked", pick="parked", kind=list),
    "parked/replay": _answer("replaying", pick="replaying", kind=int),
}


def put_call(
    name: str, stream: str, url: str, exists: bool | None, config: Mapping[str, Any]
) -> Call:
    call = subscription_call("PUT", name, json={"stream": stream, "url": url, **config})
    if exists is None:
        return call
    condition = {"If-Match": "*"} if exists else {"If-None-Match": "*"}
    return dataclasses.replace(call, headers=condition, precondition=exists)


def parse_answer(call: Call, response: httpx.Response) -> Any:
    """The call's result from a successful answer; ClientError when it is not what the API
    answers (e.g. the base URL points at something else)."""
    try:
        return call.parse(response)
    except (ValueError, KeyError, TypeError, msgspec.MsgspecError) as exc:
        raise ClientError(
            f"{call.method} {call.path}: the answer is not what the API sends ({exc})",
            response.status_code,
        ) from exc


def live_timeout(timeout: httpx.Timeout) -> httpx.Timeout:
    """The client's timeouts, with time enough between lines for the server's keep-alives."""
    read = timeout.read
    if read is not None:
        read = max(read, LIVE_READ_TIMEOUT)
    return httpx.Timeout(timeout.connect, read=read, write=timeout.write, pool=timeout.pool)


def sse_events(sse: SSE, chunk: str, path: str) -> list[RecordedEvent]:
    """`sse.feed(chunk)`, a ClientError when a message is not an event."""
    try:
        return sse.feed(chunk)
    except (ValueError, msgspec.MsgspecError) as exc:  # ValueError: bad base64, say
        raise ClientError(f"GET {path}: a message is not an event ({exc})") from exc


def request_args(call: Call, timeout: httpx.Timeout) -> dict[str, Any]:
    """What httpx's `request()` takes for `call`, after its method and path (`timeout`: the
    client's)."""
    if call.held and timeout.read is not None:
        # A long poll is answered only when its wait is over: its read timeout allows for it
        # (the other timeouts stay the client's).
        read = max(timeout.read, call.held + _LONG_POLL_MARGIN)
        timeout = httpx.Timeout(timeout.connect, read=read, write=timeout.write, pool=timeout.pool)
    args: dict[str, Any] = {"params": call.params, "headers": call.headers, "timeout": timeout}
    if call.json is not None:
        args["content"] = encode_json(call.json)
        args["headers"] = {**(call.headers or {}), "Content-Type": "application/json"}
    return args


def encode_json(value: Any) -> bytes:
    """A request body as JSON: UUIDs as text (an event's `id`); NaN and infinities, which
    JSON has not, are a ValueError."""
    return json.dumps(
        value, default=_json_default, allow_nan=False, ensure_ascii=False, separators=(",", ":")
    ).encode()


def _json_default(value: object) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(
            "bytes are not JSON: send them as data_base64 (base64 text) with their content_type"
        )
    raise TypeError(f"an object of type {type(value).__name__} is not JSON")


def live_path(stream: str) -> str:
    return f"/v1/streams/{_segment(stream)}/live"


def subscriptions_call(stream: str | None = None) -> Call:
    parse = _answer("subscriptions", pick="subscriptions", kind=list)
    params = None if stream is None else {"stream": stream}
    return Call("GET", "/v1/subscriptions", parse, params, subject=stream or "")


def stream_info_call(stream: str) -> Call:
    parse = _answer("name", "head")
    return Call("GET", f"/v1/streams/{_segment(stream)}", parse, subject=stream)


def streams_page_call(prefix: str, after: str) -> Call:
    parse = _answer("streams", "next")
    return Call("GET", "/v1/streams", parse, {"prefix": prefix, "after": after, "limit": 1000})


def check_event_stream(response: httpx.Response, path: str) -> None:
    """ClientError unless a successful answer to `live` is an event stream (a proxy's login
    page would otherwise read as a stream that ended: a reconnect loop would spin on it)."""
    media = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "text/event-stream":
        raise ClientError(
            f"GET {path}: the answer is not an event stream ({media or 'no content type'})",
            response.status_code,
        )


def raise_for(
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
        current = problem.get("current_version")
        if not isinstance(current, int) or isinstance(current, bool):
            raise ClientError(
                f"HTTP {response.status_code}: a {code} problem without its current_version",
                response.status_code,
            )
        error = WrongExpectedVersion(
            str(problem.get("stream", subject)), problem.get("expected_version", ""), current
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
    error.problem = problem
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
        StorageFull,
        StorageUnavailable,
    )
}


_BY_STATUS: dict[int, type[EventorError]] = {
    400: InvalidRequest,
    413: LimitExceeded,
    507: StorageFull,
}
_LINE_END = re.compile(r"\r\n|\r|\n")


class SSE:
    """Server-Sent Events, text chunk by text chunk, into events (a message's `data` is one).

    Lines end at CR LF, LF or CR only: the JSON in `data` may hold U+2028, U+0085 and other
    characters at which `str.splitlines` (and so httpx's `iter_lines`) would break it.
    """

    def __init__(self) -> None:
        #: The line begun and not ended yet, in pieces: a line of 1 MiB comes in many chunks,
        #: and splitting it again at each one would cost the square of its length.
        self._pieces: list[str] = []
        self._after_cr = False  # a chunk ended in CR: a LF opening the next one belongs to it
        self._data: list[str] = []

    def feed(self, chunk: str) -> list[RecordedEvent]:
        if self._after_cr and chunk.startswith("\n"):
            chunk = chunk[1:]
        self._after_cr = chunk.endswith("\r")
        *lines, rest = _LINE_END.split(chunk)
        if lines:
            lines[0] = "".join(self._pieces) + lines[0]
            self._pieces = []
        if rest:
            self._pieces.append(rest)
        events = []
        for line in lines:
            if line.startswith("data:"):
                self._data.append(line[5:].removeprefix(" "))
            elif not line and self._data:
                text, self._data = "\n".join(self._data).encode(), []
                events.append(_event.decode(text).recorded(text))
        return events
