"""Many dashboard tabs in one browser: they share its six connections to the server, so a
hidden tab holds none and a visible one at most one (a stream page's live tail)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import ServerProcess
from helpers import unique

from .conftest import DESKTOP, ConsoleWatch

pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
from playwright.sync_api import Browser, BrowserContext, Page, expect

pytestmark = pytest.mark.browser

# Headless Chromium shows every page: a tab is hidden here as a browser hides it, through
# document.hidden and a visibilitychange event (what the dashboard reads).
VISIBILITY = """(() => {
  let hidden = false;
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => hidden });
  Object.defineProperty(Document.prototype, "visibilityState", {
    configurable: true,
    get: () => (hidden ? "hidden" : "visible"),
  });
  window.setHiddenForTest = (value) => {
    hidden = value;
    document.dispatchEvent(new Event("visibilitychange"));
  };
})();"""


@pytest.fixture
def context(
    browser: Browser, ui_server: ServerProcess, console: ConsoleWatch
) -> Iterator[BrowserContext]:
    """One browser context: its pages are tabs of one browser, sharing its connections."""
    context = browser.new_context(base_url=ui_server.url, viewport=DESKTOP)
    context.add_init_script(VISIBILITY)
    context.set_default_timeout(5000)
    context.on("page", lambda page: page.on("pageerror", lambda e: console.errors.append(str(e))))
    yield context
    context.close()
    assert not console.unexpected(), console.unexpected()


def hide(page: Page, hidden: bool = True) -> None:
    page.evaluate("hidden => window.setHiddenForTest(hidden)", hidden)


def test_tabs_hidden_hold_no_connection_and_catch_up_when_shown(
    context: BrowserContext, api: httpx.Client
) -> None:
    # Four stream pages held eight connections (the stats and the live tail each): from the
    # fourth tab on, nothing loaded, and no request of the tab in use was ever answered.
    streams = [unique("tab") for _ in range(4)]
    for stream in streams:
        assert api.post(f"/v1/streams/{stream}/events", json={"type": "First"}).status_code == 201
    tabs: list[Page] = []
    for stream in streams:
        if tabs:
            hide(tabs[-1])  # a new tab in front hides the one before it
        page = context.new_page()
        page.goto(f"/dashboard/streams/{stream}")
        expect(page.locator("#live-state")).to_have_text("● live")
        tabs.append(page)
    for hidden in tabs[:-1]:
        expect(hidden.locator("#live-state")).to_have_text("paused while the tab is hidden")
        expect(hidden.locator("#connection")).to_have_attribute("data-state", "paused")

    # The tab in front works: an append is answered, the shapes are read.
    front = tabs[-1]
    front.get_by_role("button", name="Append event").click()
    expect(front.locator("#append-result")).to_have_text("Appended as #2.")
    expect(front.locator('#events > li[data-position="2"]')).to_be_visible()
    front.get_by_role("tab", name="Payload shapes").click()
    expect(front.locator("#shapes-body .shape")).to_have_count(2)  # First and the form's type
    # And so does a new one (a page of another kind).
    hide(front)
    overview = context.new_page()
    overview.goto("/dashboard")
    expect(overview.locator("#stat-streams")).not_to_have_text("—")
    expect(overview.locator("#connection")).to_have_attribute("data-state", "open")

    # Shown again, the first tab catches up: what came while it was hidden, then live again.
    api.post(f"/v1/streams/{streams[0]}/events", json={"type": "WhileHidden"})
    hide(overview)
    hide(tabs[0], False)
    first = tabs[0]
    expect(first.locator('#events > li[data-position="2"]')).to_contain_text("WhileHidden")
    expect(first.locator("#live-state")).to_have_text("● live")
    expect(first.locator("#connection")).to_have_attribute("data-state", "open")
    expect(first.locator("#stream-head")).to_have_text("2")
    api.post(f"/v1/streams/{streams[0]}/events", json={"type": "Shown"})
    expect(first.locator('#events > li[data-position="3"]')).to_contain_text("Shown")


def test_a_visible_tab_holds_one_connection_at_most(
    context: BrowserContext, api: httpx.Client
) -> None:
    # Three stream pages and two other pages in view at once (windows side by side): the stream
    # pages hold one connection each (their live tails), the others none, and a sixth page
    # still has connections to work with. (Three stream pages held all six.)
    streams = [unique("seen") for _ in range(4)]
    for stream in streams:
        assert api.post(f"/v1/streams/{stream}/events", json={"type": "First"}).status_code == 201
    paths = [f"/dashboard/streams/{s}" for s in streams[:3]]
    for path in [*paths, "/dashboard", "/dashboard/subscriptions"]:
        page = context.new_page()
        page.goto(path)
        expect(page.locator("#connection")).to_have_attribute("data-state", "open")
    last = context.new_page()
    last.goto(f"/dashboard/streams/{streams[3]}")
    expect(last.locator("#live-state")).to_have_text("● live")
    last.get_by_role("button", name="Append event").click()
    expect(last.locator("#append-result")).to_have_text("Appended as #2.")


def test_the_live_dot_pulses_by_transform_and_opacity_and_not_while_hidden(
    context: BrowserContext,
) -> None:
    page = context.new_page()
    page.goto("/dashboard")
    expect(page.locator("#connection")).to_have_attribute("data-state", "open")
    animated = """() => document.getAnimations()
      .filter((animation) => animation instanceof CSSAnimation)
      .flatMap((animation) => animation.effect.getKeyframes().flatMap(Object.keys))
      .filter((key) => !["offset", "computedOffset", "easing", "composite"].includes(key))"""
    # A box-shadow animation repainted the header at every frame, for as long as it was open.
    assert set(page.evaluate(animated)) == {"transform", "opacity"}
    hide(page)
    expect(page.locator("#connection")).to_have_attribute("data-state", "paused")
    assert page.evaluate(animated) == []
