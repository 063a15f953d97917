"""Helpers shared by the test modules: polling, problem checks, metrics, SSE and raw HTTP."""

from __future__ import annotations

import base64
import contextlib
import http.client
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec

from eventor.api.app import EventorApp
from eventor.settings import Settings

T = TypeVar("T")

#: RFC 3339, UTC, with microseconds (api-v1.md, "Times").
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
UUID_V4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
PROBLEM_TYPE = "application/problem+json"
MISSING_TYPE = "Event must have type specified in x-event-type header"


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01, what: str = ""
) -> T:
    """Poll `predicate` until it returns something truthy (returned); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def unique(prefix: str = "t") -> str:
    """A stream name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Check an RFC 9457 problem answer with `status`; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_TYPE), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["type"], str)
    assert body["type"]
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


def assert_text_error(response: httpx.Response, status: int) -> str:
    """Check a plain-text error of the original routes; return its text."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    assert response.text.strip()
    return response.text


def append(client: httpx.Client, stream: str, events: Any, **params: Any) -> httpx.Response:
    """POST events (a dict or a list of dicts) to the v1 append route."""
    return client.post(f"/v1/streams/{stream}/events", json=events, params=params)


def append_ok(client: httpx.Client, stream: str, events: Any, **params: Any) -> dict[str, Any]:
    response = append(client, stream, events, **params)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def read_all(client: httpx.Client, stream: str, page: int = 1000) -> list[dict[str, Any]]:
    """Every event of `stream`, forward, following `next`."""
    events: list[dict[str, Any]] = []
    start = 1
    while True:
        response = client.get(f"/v1/streams/{stream}/events", params={"from": start, "limit": page})
        assert response.status_code == 200, response.text
        body = response.json()
        events += body["events"]
        if not body["events"]:
            return events
        start = body["next"]


def stream_files(data_dir: Path) -> set[str]:
    """The names of the stream database files in a data dir."""
    streams = data_dir / "streams"
    return {p.name for p in streams.iterdir()} if streams.exists() else set()


def metric(text: str, name: str) -> float:
    """The value of the unlabelled sample `name` in a Prometheus text exposition."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} not found in:\n{text}")


def raw_request(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Send `path` exactly as given (no normalisation of '..' or percent-escapes)."""
    parsed = httpx.URL(url)
    conn = http.client.HTTPConnection(parsed.host, parsed.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        all_headers = {"Content-Length": str(len(body or b"")), **(headers or {})}
        for key, value in all_headers.items():
            conn.putheader(key, value)
        conn.endheaders(body)
        response = conn.getresponse()
        return (
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            response.read(),
        )
    finally:
        conn.close()


class SSE:
    """Reads Server-Sent Events from a streaming httpx response, one message at a time."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        self._lines: Iterator[str] = response.iter_lines()

    def next(self) -> dict[str, str]:
        """The next message with data: its fields (`data` lines joined by newlines)."""
        fields: dict[str, str] = {}
        data: list[str] = []
        for line in self._lines:
            if line == "":
                if data:
                    fields["data"] = "\n".join(data)
                    return fields
                fields = {}
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "data":
                data.append(value)
            else:
                fields[key] = value
        raise AssertionError("the event stream ended")

    def take(self, count: int) -> list[dict[str, str]]:
        return [self.next() for _ in range(count)]


def positions(events: Sequence[dict[str, Any]]) -> list[int]:
    return [e["position"] for e in events]


class _RawEvent(msgspec.Struct):
    position: int
    data: msgspec.Raw = msgspec.Raw(b"")
    data_base64: str | None = None


class _RawPage(msgspec.Struct):
    events: list[_RawEvent]


def raw_data(response: httpx.Response) -> dict[int, bytes]:
    """Position -> the exact bytes of each event's `data` (or decoded `data_base64`)."""
    page = msgspec.json.decode(response.content, type=_RawPage)
    return {
        e.position: base64.b64decode(e.data_base64) if e.data_base64 is not None else bytes(e.data)
        for e in page.events
    }


def histogram(text: str, name: str) -> dict[tuple[str, ...], dict[str, float]]:
    """The histogram `name` in a Prometheus text exposition: for each series (its label
    values, sorted by label name) its buckets by `le`, plus `count` and `sum`."""
    from prometheus_client.parser import text_string_to_metric_families

    [family] = [f for f in text_string_to_metric_families(text) if f.name == name]
    assert family.type == "histogram"
    found: dict[tuple[str, ...], dict[str, float]] = {}
    for sample in family.samples:
        labels = {k: v for k, v in sample.labels.items() if k != "le"}
        series = found.setdefault(tuple(labels[k] for k in sorted(labels)), {})
        if sample.name.endswith("_bucket"):
            series[sample.labels["le"]] = sample.value
        else:
            series[sample.name.rsplit("_", 1)[1]] = sample.value
    return found


@contextlib.asynccontextmanager
async def in_process(
    data_dir: Path, **settings: Any
) -> AsyncIterator[tuple[EventorApp, httpx.AsyncClient]]:
    """An app on `data_dir`, started in this process, and a client that calls it directly (no
    socket); shut down after."""
    app = EventorApp(Settings(data_dir=data_dir, **settings))
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://eventor") as client:
            yield app, client
    finally:
        await app.shutdown()
