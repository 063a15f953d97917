"""The subscriptions page with more subscriptions than it draws at once (a module of its own:
its server holds them all)."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
from playwright.sync_api import Page, expect

OpenPage = Callable[..., Page]

COUNT = 230


def test_the_list_draws_the_first_rows_and_the_rest_on_request(
    open_page: OpenPage, api: httpx.Client
) -> None:
    for n in range(COUNT):  # streams without events: nothing to deliver
        spec = {"stream": f"quiet{n:03d}", "url": "http://127.0.0.1:9/hook"}
        assert api.put(f"/v1/subscriptions/many{n:03d}", json=spec).status_code == 201
    page = open_page("/dashboard/subscriptions")
    rows = page.locator("#subscriptions-list tbody tr")
    expect(rows).to_have_count(200)  # thousands took seconds to draw, at every refresh
    expect(rows.first).to_have_attribute("data-subscription", "many000")
    more = page.locator("#subscriptions-more")
    expect(more).to_contain_text("The first 200 of 230")
    # A filter narrows what is drawn: all of it fits.
    page.fill("#subscription-filter", "many22")
    expect(rows).to_have_count(10)
    expect(more).to_have_count(0)
    page.fill("#subscription-filter", "")
    expect(rows).to_have_count(200)
    page.get_by_role("button", name="Show all 230").click()
    expect(rows).to_have_count(COUNT)
    expect(rows.last).to_have_attribute("data-subscription", "many229")
    expect(page.locator("#subscriptions-more")).to_have_count(0)


def test_the_overview_draws_the_first_subscriptions_needing_attention(
    open_page: OpenPage, api: httpx.Client
) -> None:
    names = [f"attention{n:02d}" for n in range(25)]
    try:
        for name in names:
            spec = {"stream": f"still{name}", "url": "http://127.0.0.1:9/hook"}
            assert api.put(f"/v1/subscriptions/{name}", json=spec).status_code == 201
            assert api.post(f"/v1/subscriptions/{name}/pause").status_code == 200
        page = open_page("/dashboard")
        # 1,200 paused subscriptions were 1,200 rows, drawn again every second.
        expect(page.locator("#attention .attention")).to_have_count(20)
        more = page.locator("#attention-more")
        expect(more).to_have_text("The first 20 of 25; the rest: 5 paused")
        more.get_by_role("link", name="5 paused").click()
        expect(page).to_have_url(re.compile(r"/dashboard/subscriptions\?status=paused$"))
        expect(page.locator("#subscriptions-list tbody tr")).to_have_count(25)
    finally:  # the other test counts this server's subscriptions
        for name in names:
            api.delete(f"/v1/subscriptions/{name}")
