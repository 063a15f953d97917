"""Live views survive a server restart: they reconnect, say so meanwhile, and miss nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from helpers import unique

from .conftest import ConsoleWatch

pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def test_the_live_tail_resumes_after_a_restart(
    make_server: Any, open_page: Callable[..., Page], console: ConsoleWatch
) -> None:
    server = make_server("--durability", "normal")
    stream = unique("restart")
    with httpx.Client(base_url=server.url, timeout=10) as api:
        api.post(f"/v1/streams/{stream}/events", json=[{"type": "Before"}, {"type": "Before"}])
    page = open_page(f"{server.url}/dashboard/streams/{stream}")
    expect(page.locator("#events > li")).to_have_count(2)
    expect(page.locator("#live-state")).to_have_text("● live")
    expect(page.locator("#connection")).to_have_attribute("data-state", "open")

    # While the server is away the browser logs failed connections: expected here.
    console.allow(r"ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_INCOMPLETE_CHUNKED_ENCODING")
    server.kill()  # gone at once (a graceful stop waits out open event streams, up to 5 s)
    expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#connection")).to_contain_text("Reconnecting")
    server.restart()
    with httpx.Client(base_url=server.url, timeout=10) as api:
        api.post(f"/v1/streams/{stream}/events", json={"type": "After"})
    # Back within the backoff (1 s, then 2 s), resumed after the last event it had seen.
    expect(page.locator('#events > li[data-position="3"]')).to_contain_text("After", timeout=8000)
    expect(page.locator("#events > li")).to_have_count(3)
    expect(page.locator("#connection")).to_have_attribute("data-state", "open", timeout=8000)
