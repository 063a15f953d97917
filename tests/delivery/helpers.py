"""Small helpers shared by the delivery tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

#: Retry settings that keep failure tests fast (real waits, just short ones).
FAST: dict[str, Any] = {"backoff": {"initial": 0.01, "max": 0.05}}


def name() -> str:
    """A subscription name no other test uses."""
    return f"sub_{uuid.uuid4().hex[:12]}"


def append(client: httpx.Client, stream: str, count: int, type_: str = "T", **data: Any) -> None:
    """Append `count` events in one request, data {"i": n, ...}."""
    events = [{"type": type_, "data": {"i": i, **data}} for i in range(count)]
    r = client.post(f"/v1/streams/{stream}/events", json=events)
    assert r.status_code == 201, r.text


def subscribe(
    client: httpx.Client, sub: str, stream: str, url: str, **options: Any
) -> dict[str, Any]:
    r = client.put(f"/v1/subscriptions/{sub}", json={"stream": stream, "url": url, **options})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def status(client: httpx.Client, sub: str) -> dict[str, Any]:
    r = client.get(f"/v1/subscriptions/{sub}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def wait_status(
    client: httpx.Client,
    sub: str,
    condition: Callable[[dict[str, Any]], bool],
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Poll the subscription's status until `condition` holds."""
    deadline = time.monotonic() + timeout
    while True:
        current = status(client, sub)
        if condition(current):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"status condition not met in {timeout}s: {current}")
        time.sleep(0.01)


def event_ids(client: httpx.Client, stream: str) -> dict[int, str]:
    """Every event's id by position."""
    out: dict[int, str] = {}
    start = 1
    while True:
        page = client.get(f"/v1/streams/{stream}/events", params={"from": start, "limit": 1000})
        events = page.json()["events"]
        if not events:
            return out
        out.update({e["position"]: e["id"] for e in events})
        start = events[-1]["position"] + 1
