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


def test_a_page_that_cannot_be_loaded_says_so_and_loads_once_the_server_is_back(
    make_server: Any, open_page: Callable[..., Page], console: ConsoleWatch
) -> None:
    server = make_server("--durability", "normal")
    page = open_page(f"{server.url}/dashboard")
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator("#connection")).to_have_attribute("data-state", "open")

    console.allow(r"ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_INCOMPLETE_CHUNKED_ENCODING")
    server.kill()
    page.get_by_role("link", name="Streams", exact=True).click()  # its code is not loaded yet
    # Said in place of the page: no overview left on screen whose controls would do nothing.
    expect(page.locator("#load-error")).to_contain_text("Could not load it")
    expect(page.locator("main h1")).to_have_text("This page could not be loaded")
    expect(page.locator("main h1")).to_be_focused()
    expect(page.locator("main .stat")).to_have_count(0)
    server.restart()
    # Loaded once the live connection is back (within its backoff: 1, 2, 4, 8 s).
    expect(page.locator("main h1")).to_have_text("Streams", timeout=20_000)
    expect(page.locator("#load-error")).to_have_count(0)


def test_try_again_loads_a_page_whose_code_did_not_come(
    open_page: Callable[..., Page], console: ConsoleWatch
) -> None:
    page = open_page("/dashboard")
    expect(page.locator("h1")).to_have_text("Overview")
    console.allow(r"ERR_FAILED")
    page.route("**/js/pages/subscriptions.js", lambda route: route.abort())
    page.get_by_role("link", name="Subscriptions", exact=True).click()
    expect(page.locator("#load-error")).to_be_visible()
    expect(page.locator("main .stat")).to_have_count(0)
    page.unroute("**/js/pages/subscriptions.js")
    page.get_by_role("button", name="Try again").click()
    expect(page.locator("main h1")).to_have_text("Subscriptions")
    expect(page.locator("main h1")).to_be_focused()


@pytest.mark.parametrize(
    ("kind", "blocked", "failure"),
    [
        ("stream", "**/v1/streams/**", "Could not load the stream"),
        ("streams", "**/v1/streams?**", "Could not list the streams"),
        ("subscription", "**/v1/subscriptions/**", "Could not refresh"),
        ("edit", "**/v1/subscriptions/**", "Could not load the subscription"),
    ],
)
def test_a_page_whose_first_read_found_no_server_loads_once_it_answers(
    open_page: Callable[..., Page],
    api: httpx.Client,
    console: ConsoleWatch,
    kind: str,
    blocked: str,
    failure: str,
) -> None:
    """Opened while the server was away (its page code loaded, its data not), a stream page,
    the streams list, a subscription page or its edit form said so for good: only a reload
    brought it back. They load by themselves once the server answers, as docs/dashboard.md
    says of every page."""
    stream, sub = unique("offline"), unique("offline").replace("-", "_")
    api.post(f"/v1/streams/{stream}/events", json={"type": "T"})
    spec = {"stream": stream, "url": "http://127.0.0.1:9/hook", "start": "end"}
    assert api.put(f"/v1/subscriptions/{sub}", json=spec).status_code == 201
    path, loaded = {
        "stream": (f"/dashboard/streams/{stream}", "#events > li"),
        "streams": (f"/dashboard/streams?prefix={stream}", "#streams-list tbody tr"),
        "subscription": (f"/dashboard/subscriptions/{sub}", "#config"),
        "edit": (f"/dashboard/new-subscription?edit={sub}", "input[name=url]"),
    }[kind]
    page = open_page("/dashboard")
    console.allow(r"ERR_FAILED")
    page.route(blocked, lambda route: route.abort())  # no answer at all, as with no server
    page.goto(path)
    expect(page.locator("main")).to_contain_text(failure)
    page.unroute(blocked)
    expect(page.locator(loaded).first).to_be_visible(timeout=10_000)
    api.delete(f"/v1/subscriptions/{sub}")


def test_the_live_tail_says_so_when_the_server_stops_answering(
    open_page: Callable[..., Page], api: httpx.Client, console: ConsoleWatch
) -> None:
    """A server that hangs (stopped, swamped) keeps the tail's connection open: the tail said
    "● live" for as long as the hang lasted, while the header said Reconnecting."""
    stream = unique("hang")
    api.post(f"/v1/streams/{stream}/events", json={"type": "T"})
    page = open_page(f"/dashboard/streams/{stream}")
    expect(page.locator("#live-state")).to_have_text("● live")
    console.allow(r"ERR_FAILED")
    page.route("**/v1/stats", lambda route: route.abort())  # the header's reads: no answer
    expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#live-state")).to_contain_text("the server does not answer")
    page.unroute("**/v1/stats")
    expect(page.locator("#live-state")).to_have_text("● live", timeout=10_000)
