"""The dashboard in Chromium: the overview, the streams list, a stream's page (live tail, events,
shapes, the append form), untrusted data, narrow screens, keyboard and dark mode."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from delivery.receiver import Receiver
from helpers import raw_data, unique, wait_until

from .conftest import NARROW, ConsoleWatch

pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
from playwright.sync_api import Page, Route, expect

pytestmark = pytest.mark.browser

OpenPage = Callable[..., Page]


def append(api: httpx.Client, stream: str, *events: dict[str, Any]) -> dict[str, Any]:
    r = api.post(f"/v1/streams/{stream}/events", json=list(events))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_overview_shows_the_servers_numbers(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    first, second = unique("ov"), unique("ov")
    append(api, first, *[{"type": "A", "data": i} for i in range(3)])
    append(api, second, *[{"type": "B", "data": i} for i in range(5)])
    healthy, paused = unique("ok"), unique("stopped")
    api.put(f"/v1/subscriptions/{healthy}", json={"stream": first, "url": receiver.url})
    api.put(f"/v1/subscriptions/{paused}", json={"stream": second, "url": receiver.url})
    api.post(f"/v1/subscriptions/{paused}/pause")
    receiver.wait_for(lambda requests: len({r.position for r in requests}) >= 3)
    stats = api.get("/v1/stats").json()

    page = open_page("/dashboard")

    expect(page.locator("#stat-streams")).to_have_text(str(stats["streams"]["total"]))
    expect(page.locator("#stat-events")).to_have_text(f"{stats['streams']['events']:,}")
    expect(page.locator("#stat-subscriptions")).to_have_text(str(stats["subscriptions"]["total"]))
    # The paused subscription needs attention; the healthy, caught-up one does not.
    row = page.locator(f'#attention [data-subscription="{paused}"]')
    expect(row).to_contain_text("paused")
    expect(row).to_contain_text(re.compile(r"\d / 5"))  # (it may deliver one before the pause)
    expect(page.locator(f'#attention [data-subscription="{healthy}"]')).to_have_count(0)
    # The live chart draws both series once it has two samples, and says the current rates.
    expect(page.locator(".chart .series-line")).to_have_count(2, timeout=5000)
    expect(page.locator('[data-series="appends"] .legend-value')).to_have_text(re.compile(r"/s$"))
    expect(page.locator("#connection")).to_have_attribute("data-state", "open")

    # Live: a new stream shows up without a reload.
    append(api, unique("ov"), {"type": "C"})
    expect(page.locator("#stat-streams")).to_have_text(
        str(stats["streams"]["total"] + 1), timeout=3000
    )


def test_streams_list_pages_and_searches(open_page: OpenPage, api: httpx.Client) -> None:
    prefix = unique("list")
    for i in range(55):
        append(api, f"{prefix}-{i:03d}", {"type": f"Type{i % 3}", "data": i})

    page = open_page(f"/dashboard/streams?prefix={prefix}")
    rows = page.locator("#streams-list tbody tr")
    expect(rows).to_have_count(50)
    first = rows.first
    expect(first.locator("a")).to_have_text(f"{prefix}-000")
    expect(first.locator("td").nth(1)).to_have_text("1")
    expect(first.locator(".chip")).to_have_text("Type0")  # the types come per row, from the API

    page.get_by_role("button", name="Next →").click()
    expect(rows).to_have_count(5)
    expect(rows.first.locator("a")).to_have_text(f"{prefix}-050")
    expect(page).to_have_url(re.compile(rf"after={prefix}-049"))
    expect(page.locator("#pager-range")).to_have_text("Showing 51\u201355")
    page.get_by_role("button", name="← Previous").click()
    expect(rows).to_have_count(50)

    # Opened at the later page (a reload, a shared link): where it starts, and a way back.
    later = open_page(f"/dashboard/streams?prefix={prefix}&after={prefix}-049")
    expect(later.locator("#streams-list tbody tr")).to_have_count(5)
    expect(later.locator("#pager-range")).to_have_text(f"Showing 5 after “{prefix}-049”")
    later.get_by_role("button", name="← Previous").click()
    expect(later.locator("#pager-range")).to_have_text("Showing 1\u201350")
    past = open_page(f"/dashboard/streams?prefix={prefix}&after={prefix}-054")  # the last one
    expect(past.locator("#streams-list")).to_contain_text(f"No streams after “{prefix}-054”")
    past.get_by_role("button", name="First page").click()
    expect(past.locator("#streams-list tbody tr")).to_have_count(50)

    page.fill("#stream-search", f"{prefix}-05")
    expect(rows).to_have_count(5)
    page.fill("#stream-search", f"{prefix}-nothing")
    expect(page.locator("#streams-list")).to_contain_text("No stream starts with")

    page.fill("#stream-search", f"{prefix}-042")
    page.get_by_role("link", name=f"{prefix}-042").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/streams/{prefix}-042$"))
    expect(page.locator("h1")).to_have_text(f"{prefix}-042")


def test_the_streams_list_follows_appends_made_elsewhere(
    open_page: OpenPage, api: httpx.Client
) -> None:
    prefix = unique("follow")
    append(api, f"{prefix}-b", {"type": "T"})
    page = open_page(f"/dashboard/streams?prefix={prefix}")
    rows = page.locator("#streams-list tbody tr")
    expect(rows).to_have_count(1)
    row = page.locator(f'#streams-list tr[data-stream="{prefix}-b"]')
    row.evaluate("tr => { tr.dataset.mark = 'kept' }")  # gone if the table were drawn anew
    append(api, f"{prefix}-b", {"type": "T"}, {"type": "Other"})
    expect(row.locator("td").nth(1)).to_have_text("3", timeout=10_000)
    expect(row.locator(".chip")).to_have_count(2)
    expect(row).to_have_attribute("data-mark", "kept")  # updated in place: focus stays put
    link = row.get_by_role("link")
    link.focus()
    append(api, f"{prefix}-a", {"type": "T"})  # a new stream that belongs on this page
    expect(rows).to_have_count(2, timeout=10_000)
    expect(rows.first.locator("a")).to_have_text(f"{prefix}-a")
    expect(link).to_be_focused()  # drawn anew, the focus kept on its row (it went to <body>)


def test_the_append_form_keeps_the_focus_on_its_button(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("keys")
    page = open_page(f"/dashboard/streams/{stream}")
    page.fill("#append-type", "Typed")
    submit = page.get_by_role("button", name="Append event")
    submit.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#append-result")).to_have_text("Appended as #1.")
    # Disabled while its request ran, the button lost the focus to the page.
    expect(submit).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#append-result")).to_have_text("Appended as #2.")
    expect(submit).to_be_focused()


def test_a_streams_size_on_disk_follows_the_live_tail(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("size")
    append(api, stream, {"type": "T"})
    page = open_page(f"/dashboard/streams/{stream}")
    meta = page.locator(".page-head .meta")
    expect(meta).to_contain_text(re.compile(r"\d+ KiB on disk"))
    for _ in range(2):  # 2 MiB: read while the events arrive, not only when the page loads
        append(api, stream, *[{"type": "T", "data": "x" * 4000}] * 256)
    expect(page.locator("#stream-head")).to_have_text("513")
    size = api.get(f"/v1/streams/{stream}").json()["size_bytes"]
    assert size > 2 * 2**20
    expect(meta).to_contain_text(re.compile(r"\d\.\d MiB on disk"), timeout=10_000)


def test_a_new_streams_size_and_creation_time_come_even_when_its_first_read_is_late(
    open_page: OpenPage, api: httpx.Client, console: ConsoleWatch
) -> None:
    stream = unique("late")
    page = open_page("/dashboard")
    page.clock.install()  # the 3 s before the size is read again, passed at once
    page.goto(f"/dashboard/streams/{stream}")
    expect(page.locator("#live-state")).to_have_text("● live")
    # The stream's info read at its first event is answered only after the live tail has
    # shown more: older than the tail, that answer was dropped, and nothing read it again.
    held: list[Route] = []
    reads: list[str] = []

    def hold_the_first(route: Route) -> None:
        reads.append(route.request.url)
        if held:
            route.continue_()
        else:
            held.append(route)

    def until(predicate: Callable[[], object], what: str) -> None:
        deadline = time.monotonic() + 5
        while not predicate():  # (route handlers run only while Playwright is called)
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            page.wait_for_timeout(20)

    page.route(f"**/v1/streams/{stream}", hold_the_first)
    append(api, stream, {"type": "T"})
    as_read = api.get(f"/v1/streams/{stream}").text  # one event, as the held read would say
    until(lambda: held, "the stream's info read at its first event")
    append(api, stream, *[{"type": "T"}] * 5)
    expect(page.locator("#stream-head")).to_have_text("6")
    page.clock.fast_forward(3500)  # the read due a while after the head moved: asked, meanwhile
    held[0].fulfill(body=as_read, content_type="application/json")
    meta = page.locator(".page-head .meta")
    expect(meta).to_contain_text("on disk")
    expect(meta).to_contain_text("created")
    expect(page.locator("#stream-head")).to_have_text("6")  # the tail's, not the late read's
    until(lambda: len(reads) >= 2, "a fresh read after the one dropped")


def test_a_burst_of_live_events_is_drawn_once_a_frame(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("burst")
    append(api, stream, {"type": "First"})
    page = open_page(f"/dashboard/streams/{stream}")
    expect(page.locator("#live-state")).to_have_text("● live")
    # Each event drew the header, the Event types card (sorted) and a row: 10,000 froze the tab
    # for 10 s. Counted here: the header's draws.
    page.locator(".page-head .meta").evaluate(
        """meta => {
          window.headDraws = 0;
          new MutationObserver((records) => {
            for (const record of records)
              for (const node of record.addedNodes)
                if (node.querySelector?.("#stream-head")) window.headDraws += 1;
          }).observe(meta, { childList: true });
        }"""
    )
    append(api, stream, *[{"type": f"T{i % 7}", "data": i} for i in range(1000)])
    expect(page.locator("#stream-head")).to_have_text("1,001")
    expect(page.locator('#event-types [data-type="T0"] strong')).to_have_text("143")
    rows = page.locator("#events > li")
    expect(rows).to_have_count(250)  # the live tail keeps the newest 250
    expect(rows.first).to_have_attribute("data-position", "1001")
    expect(rows.last).to_have_attribute("data-position", "752")
    draws = page.evaluate("window.headDraws")
    assert 0 < draws <= 100, f"the header was drawn {draws} times for 1,000 events"


def test_a_streams_page_reads_its_own_subscriptions_only(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream, other = unique("own"), unique("other")
    append(api, stream, {"type": "T"})
    for sub, of in [(f"own_{stream[-12:]}", stream), (f"other_{other[-12:]}", other)]:
        spec = {"stream": of, "url": "http://127.0.0.1:9/hook", "start": "end"}
        assert api.put(f"/v1/subscriptions/{sub}", json=spec).status_code == 201
    read: list[str] = []
    page = open_page("/dashboard")
    page.on("request", lambda request: read.append(request.url))
    page.goto(f"/dashboard/streams/{stream}")
    row = page.locator(f'#stream-subscriptions [data-subscription="own_{stream[-12:]}"]')
    expect(row.locator(".badge")).to_have_text("active")
    expect(page.locator("#stream-subscriptions li")).to_have_count(1)
    # Not the whole list of the server (660 KB for 1,200 subscriptions, at every refresh).
    lists = [url.split("/v1/subscriptions")[1] for url in read if "/v1/subscriptions?" in url]
    assert lists, read
    assert set(lists) == {f"?stream={stream}"}, read
    assert not [url for url in read if url.endswith("/v1/subscriptions")], read


def test_a_reload_keeps_the_pages_seen_so_previous_goes_one_back(
    open_page: OpenPage, api: httpx.Client
) -> None:
    prefix = unique("reload")
    append(api, f"{prefix}-000", {"type": "T"})
    for i in range(1, 110):  # one request each would take a while: the original route is lean
        api.post(f"/streams/{prefix}-{i:03d}", content=b"{}", headers={"X-Event-Type": "T"})
    page = open_page(f"/dashboard/streams?prefix={prefix}")
    for shown in ("Showing 51\u2013100", "Showing 101\u2013110"):
        page.get_by_role("button", name="Next →").click()
        expect(page.locator("#pager-range")).to_have_text(shown)
    page.reload()
    expect(page.locator("#pager-range")).to_have_text("Showing 101\u2013110")
    page.get_by_role("button", name="← Previous").click()
    expect(page.locator("#pager-range")).to_have_text("Showing 51\u2013100")
    expect(page.locator("#streams-list tbody tr").first.locator("a")).to_have_text(f"{prefix}-050")


def test_stream_page_shows_events_and_tails_new_ones_live(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("tail:orders")
    append(
        api,
        stream,
        {
            "type": "OrderPlaced",
            "data": {"id": 1, "items": [{"sku": "A1"}]},
            "metadata": {"correlation_id": "c-1"},
        },
        {"type": "Note", "data_base64": "aGVsbG8gd29ybGQ=", "content_type": "text/plain"},
        {"type": "OrderShipped", "data": {"id": 1, "carrier": "DHL"}},
    )
    page = open_page(f"/dashboard/streams/{stream}")
    items = page.locator("#events > li")
    expect(items).to_have_count(3)
    expect(items.first).to_have_attribute("data-position", "3")
    expect(page.locator("#live-state")).to_have_text("● live")

    appended_at = time.monotonic()
    append(api, stream, {"type": "OrderCancelled", "data": {"id": 1}})
    expect(page.locator('#events > li[data-position="4"]')).to_be_visible(timeout=2000)
    assert time.monotonic() - appended_at < 2.0
    expect(items.first).to_contain_text("OrderCancelled")
    expect(page.locator("#stream-head")).to_have_text("4")
    expect(page.locator('#event-types [data-type="OrderCancelled"]')).to_contain_text("1")

    # Expanded: the data pretty-printed, the metadata, binary data as base64 and as text.
    first = page.locator('#events > li[data-position="1"]')
    first.locator(".event-toggle").click()
    body = first.locator(".event-body")
    expect(body).to_be_visible()
    expect(body.locator("pre.json").first).to_have_text(
        json.dumps({"id": 1, "items": [{"sku": "A1"}]}, indent=2)
    )
    expect(body).to_contain_text('"correlation_id": "c-1"')
    note = page.locator('#events > li[data-position="2"]')
    note.locator(".event-toggle").press("Enter")  # keyboard works too
    expect(note.locator(".event-body")).to_contain_text("aGVsbG8gd29ybGQ=")
    expect(note.locator(".event-body")).to_contain_text("hello world")

    # Jump to a position: a page around it (here the whole stream), it picked out and open.
    # (exact: an event's "2 s ago" holds "go" too)
    page.fill("#jump-position", "2")
    page.get_by_role("button", name="Go", exact=True).click()
    expect(page.locator("#events > li.target")).to_have_attribute("data-position", "2")
    expect(page.locator("#events-range")).to_have_text(re.compile(r"Showing #1.#4 of 4"))
    expect(page.locator("#events > li.target .event-body")).to_be_visible()
    page.fill("#jump-position", "99")  # past the end: the newest, and a word saying so
    page.get_by_role("button", name="Go", exact=True).click()
    expect(page.locator("#jump-past-head")).to_contain_text("There is no #99 yet")
    expect(items.first).to_have_attribute("data-position", "4")
    append(api, stream, {"type": "Late"})
    expect(items.first).to_have_attribute("data-position", "5")

    # The payload shapes: one example per type and shape, as the original dashboard had.
    page.get_by_role("tab", name="Payload shapes").click()
    shape = page.locator('#shapes [data-type="OrderPlaced"]')
    expect(shape).to_contain_text("id")
    expect(shape).to_contain_text("items")
    expect(page.locator('#shapes [data-type="Note"]')).to_contain_text("not JSON")
    expect(page.locator('#shapes [data-type="Note"]')).to_contain_text("aGVsbG8gd29ybGQ=")


def test_a_binary_payload_shape_shows_its_bytes_as_base64(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("binary")
    png = b"\x89PNG\r\n\x1a\n\x00\xff\xfe"
    r = api.post(
        f"/streams/{stream}",
        content=png,
        headers={"X-Event-Type": "Pic", "Content-Type": "image/png"},
    )
    assert r.status_code == 200
    page = open_page(f"/dashboard/streams/{stream}")
    page.get_by_role("tab", name="Payload shapes").click()
    shape = page.locator('#shapes [data-type="Pic"]')
    expect(shape).to_contain_text(base64.b64encode(png).decode())
    expect(shape).to_contain_text("binary: shown as base64 only")
    expect(shape).not_to_contain_text("\ufffd")  # no bytes mangled into text
    # Bytes that are not UTF-8 but, mangled, would read as JSON ("\ufffd" is a JSON string).
    r = api.post(
        f"/streams/{stream}",
        content=b'"\xff"',
        headers={"X-Event-Type": "Odd", "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 200
    page.reload()
    page.get_by_role("tab", name="Payload shapes").click()
    odd = page.locator('#shapes [data-type="Odd"]')
    expect(odd).to_contain_text(base64.b64encode(b'"\xff"').decode())


def test_append_form_checks_json_and_shows_the_apis_error(
    open_page: OpenPage, api: httpx.Client, console: ConsoleWatch
) -> None:
    stream = unique("form")
    page = open_page(f"/dashboard/streams/{stream}")
    expect(page.get_by_role("status").filter(has_text="no events yet")).to_be_visible()

    page.fill("#append-type", "Made")
    page.fill("#append-data", '{"oops": ')
    page.get_by_role("button", name="Append event").click()
    expect(page.locator("#append-data-error")).to_contain_text("Not valid JSON")
    expect(page.locator("#append-data")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#append-data")).to_be_focused()
    page.fill("#append-data", "{}")
    page.fill("#append-metadata", "[1]")
    page.get_by_role("button", name="Append event").click()
    expect(page.locator("#append-metadata-error")).to_contain_text("must be a JSON object")
    assert api.get("/v1/streams", params={"prefix": stream}).json()["streams"] == []

    # Sent as typed: big numbers and formatting survive (the store keeps the bytes).
    typed = '{"big": 12345678901234567890, "price": 1.50}'
    page.fill("#append-metadata", "")
    page.fill("#append-data", typed)
    page.get_by_role("button", name="Append event").click()
    expect(page.locator("#append-result")).to_have_text("Appended as #1.")
    expect(page.locator('#events > li[data-position="1"]')).to_contain_text("Made")
    read = api.get(f"/v1/streams/{stream}/events")
    assert raw_data(read) == {1: typed.encode()}

    # Refused by the API: its message is shown in the form.
    console.allow(r"status of 413")
    page.fill("#append-data", json.dumps("x" * 70_000))
    page.get_by_role("button", name="Append event").click()
    alert = page.locator("#append-result [role=alert]")
    expect(alert).to_contain_text("413")
    expect(alert).to_contain_text("at most 65536 allowed")
    assert api.get(f"/v1/streams/{stream}").json()["head"] == 1


def test_untrusted_data_is_shown_as_text_never_run(open_page: OpenPage, api: httpx.Client) -> None:
    stream = unique("xss")
    evil = "<img src=x onerror=alert(1)>"
    append(
        api,
        stream,
        {
            "type": evil,
            "data": {"html": "</pre><script>alert(2)</script>"},
            "metadata": {evil: evil},
        },
    )
    page = open_page(f"/dashboard/streams/{stream}")
    item = page.locator('#events > li[data-position="1"]')
    expect(item).to_contain_text(evil)
    item.locator(".event-toggle").click()
    expect(item.locator(".event-body")).to_contain_text("</pre><script>alert(2)</script>")
    page.get_by_role("tab", name="Payload shapes").click()
    expect(page.locator("#shapes")).to_contain_text(evil)
    assert page.locator("main img, main script").count() == 0
    # (an alert() would have been an unexpected dialog: the fixture fails the test on one)


PHONE_STREAM = "phone:a-rather-long-stream-name-for-a-small-screen"
PHONE_SUB = "phone_subscription_with_a_long_name"


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard",
        "/dashboard/streams",
        f"/dashboard/streams/{PHONE_STREAM}",
        "/dashboard/subscriptions",
        f"/dashboard/subscriptions/{PHONE_SUB}",
        "/dashboard/new-subscription",
        f"/dashboard/new-subscription?edit={PHONE_SUB}",
        "/dashboard/no/such/page",
    ],
)
def test_every_page_fits_a_phone_in_dark_mode(
    open_page: OpenPage, api: httpx.Client, path: str
) -> None:
    append(api, PHONE_STREAM, {"type": "AVeryLongEventTypeNameThatCouldOverflow", "data": {}})
    api.put(
        f"/v1/subscriptions/{PHONE_SUB}",
        json={
            "stream": PHONE_STREAM,
            "url": "http://127.0.0.1:9/unreachable",
            "start": "end",
            "event_types": ["AVeryLongEventTypeNameThatCouldOverflow" * 4],
        },
    )
    page = open_page(path, viewport=NARROW, color_scheme="dark")
    expect(page.locator("h1")).to_be_visible()
    expect(page.locator("main .loading")).to_have_count(0)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"], f"{path} is {width}px wide at {NARROW['width']}px"
    # Dark mode follows the system.
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    red, green, blue = (int(v) for v in re.findall(r"\d+", background)[:3])
    assert red + green + blue < 120, background


def test_keyboard_reaches_the_navigation_and_moves_focus_to_the_page(
    open_page: OpenPage,
) -> None:
    page = open_page("/dashboard")
    expect(page.locator("h1")).to_have_text("Overview")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Streams":
            break
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/dashboard/streams$"))
    expect(page.locator("h1")).to_be_focused()
    expect(page.get_by_role("link", name="Streams", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    # Browser history works: back to the overview.
    page.go_back()
    expect(page.locator("h1")).to_have_text("Overview")
    wait_until(lambda: page.url.endswith("/dashboard"))


# Numbers a JS number would change: past 2^53, a fraction ending in 0, past 1e21.
BIG_DATA = (
    '{"id": 9007199254740993, "big": 1234567890123456789, "price": 10.10,'
    ' "huge": 12345678901234567890123, "small": [7, -0.5], "text": "9007199254740993"}'
)
BIG_PRETTY = """{
  "id": 9007199254740993,
  "big": 1234567890123456789,
  "price": 10.10,
  "huge": 12345678901234567890123,
  "small": [
    7,
    -0.5
  ],
  "text": "9007199254740993"
}"""


def append_raw(api: httpx.Client, stream: str, body: str) -> None:
    r = api.post(
        f"/v1/streams/{stream}/events",
        content=body.encode(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 201, r.text


def test_numbers_in_event_data_are_shown_and_copied_as_stored(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("big")
    event = f'{{"type": "Big", "data": {BIG_DATA}, "metadata": {{"trace": 9007199254740993}}}}'
    append_raw(api, stream, event)
    page = open_page(f"/dashboard/streams/{stream}")
    page.evaluate("navigator.clipboard.writeText = async (text) => { window.copied = text; }")

    first = page.locator('#events > li[data-position="1"]')
    event_id = api.get(f"/v1/streams/{stream}/events").json()["events"][0]["id"]
    expect(first.locator(".event-id")).to_have_text(event_id[-12:])  # v7 ids share their start
    first.locator(".event-toggle").click()
    expect(first.locator("pre.json").first).to_have_text(BIG_PRETTY)
    expect(first.locator("pre.json").nth(1)).to_have_text('{\n  "trace": 9007199254740993\n}')
    first.get_by_role("button", name="Copy data").click()
    page.wait_for_function("window.copied !== undefined")
    assert page.evaluate("window.copied") == BIG_PRETTY

    # The same over the live tail.
    expect(page.locator("#live-state")).to_have_text("● live")
    append_raw(api, stream, event)
    second = page.locator('#events > li[data-position="2"]')
    second.locator(".event-toggle").click()
    expect(second.locator("pre.json").first).to_have_text(BIG_PRETTY)

    # And in the payload shapes.
    page.get_by_role("tab", name="Payload shapes").click()
    expect(page.locator('#shapes [data-type="Big"] pre')).to_have_text(BIG_PRETTY)


def test_the_header_and_types_follow_events_read_while_the_tail_was_off(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("counts")
    append(api, stream, *[{"type": "A", "data": n} for n in range(30)])
    page = open_page(f"/dashboard/streams/{stream}")
    expect(page.locator("#live-state")).to_have_text("● live")
    expect(page.locator("#stream-head")).to_have_text("30")

    def matches_the_api() -> None:
        info = api.get(f"/v1/streams/{stream}").json()
        expect(page.locator("#stream-head")).to_have_text(str(info["head"]))
        for type_, count in info["event_types"].items():
            expect(page.locator(f'#event-types [data-type="{type_}"]')).to_contain_text(str(count))
        expect(page.locator("#stream-types")).to_have_text(str(len(info["event_types"])))

    # Off, appended meanwhile, on again: the list catches up, and so do the counts.
    live = page.locator("#live-toggle")
    live.uncheck()
    expect(page.locator("#live-state")).to_have_text("")
    append(api, stream, {"type": "B"}, {"type": "B"})
    live.check()
    expect(page.locator("#events > li").first).to_have_attribute("data-position", "32")
    matches_the_api()

    # Off, appended meanwhile, a page read: it saw the new head.
    live.uncheck()
    append(api, stream, {"type": "C"})
    page.get_by_role("button", name="Older →").click()
    expect(page.locator("#events > li").first).to_have_attribute("data-position", "7")
    matches_the_api()
    live.check()
    expect(page.locator("#live-state")).to_have_text("● live")
    append(api, stream, {"type": "C"})
    expect(page.get_by_role("button", name=re.compile("1 new"))).to_be_visible()
    matches_the_api()


def test_the_skip_link_moves_focus_to_the_content(open_page: OpenPage) -> None:
    page = open_page("/dashboard/streams")
    expect(page.locator("h1")).to_have_text("Streams")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    page.keyboard.press("Tab")
    focused_in_main = "document.querySelector('main').contains(document.activeElement)"
    assert page.evaluate(focused_in_main)
    expect(page.locator("#main")).not_to_be_focused()
    expect(page).to_have_url(re.compile(r"/dashboard/streams$"))  # no re-render, no new entry


def test_a_stream_page_takes_focus_to_its_heading(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("focus"), unique("focus_sub")
    append(api, stream, {"type": "A"})
    api.put(f"/v1/subscriptions/{name}", json={"stream": stream, "url": receiver.url})
    for start, link in [
        (f"/dashboard/streams?prefix={stream}", "#streams-list a"),
        (f"/dashboard/subscriptions/{name}", "#config a"),
    ]:
        page = open_page(start)
        page.locator(link).first.click()
        expect(page).to_have_url(re.compile(rf"/dashboard/streams/{stream}$"))
        expect(page.locator("#events > li")).to_have_count(1)  # loaded, the page filled in
        expect(page.locator("#stream-subscriptions")).to_be_visible()
        expect(page.get_by_role("heading", level=1)).to_be_focused()


@pytest.mark.parametrize("viewport", [NARROW, {"width": 1280, "height": 900}], ids=["375", "1280"])
def test_long_unbroken_names_and_types_never_widen_the_page(
    open_page: OpenPage, api: httpx.Client, viewport: dict[str, int]
) -> None:
    stream = ("L" + "o" * 150 + unique("ng"))[:200]
    long_type = "T" * 200
    r = api.post(f"/v1/streams/{stream}/events", json={"type": long_type, "data": {"k": 1}})
    assert r.status_code == 201, r.text
    sub = f"wide_{unique('s')[-12:]}"
    r = api.put(
        f"/v1/subscriptions/{sub}",
        json={"stream": stream, "url": "http://127.0.0.1:9/", "start": "end"},
    )
    assert r.status_code == 201, r.text
    pages = [
        ("/dashboard/subscriptions", None),
        (f"/dashboard/streams?prefix={stream[:20]}", None),
        (f"/dashboard/streams/{stream}", "Payload shapes"),
        (f"/dashboard/streams/{stream}", None),
    ]
    for path, tab in pages:
        page = open_page(path, viewport=viewport)
        expect(page.locator("main")).to_contain_text(stream[:20])
        if tab:
            page.get_by_role("tab", name=tab).click()
            expect(page.locator("#shapes")).to_contain_text("TTTT")
        elif path.startswith("/dashboard/streams/"):
            # The row cuts the type short (a tooltip has it); the opened event says it whole.
            expect(page.locator(".event-type").first).to_have_attribute("title", long_type)
            page.locator(".event-toggle").first.click()
            expect(page.locator(".event-full-type")).to_have_text(long_type)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"{path} ({tab}): {width} px wide"
        page.close()  # before the delete below: an open stream page reads its subscriptions
    api.delete(f"/v1/subscriptions/{sub}")


def test_a_right_to_left_override_in_a_type_stays_inside_it(
    open_page: OpenPage, api: httpx.Client, stream: str
) -> None:
    r = api.post(f"/v1/streams/{stream}/events", json={"type": "Order\u202eRTL", "data": {}})
    assert r.status_code == 201, r.text
    page = open_page(f"/dashboard/streams/{stream}")
    kind = page.locator(".event-type").first
    expect(kind).to_contain_text("RTL")
    isolated = kind.evaluate("e => getComputedStyle(e.querySelector('bdi')).unicodeBidi")
    assert isolated == "isolate"
    # And in the "Event types" card, and in the streams list's chips.
    listed = page.locator('#event-types [data-type="Order\u202eRTL"]')
    expect(listed).to_contain_text("1")
    assert listed.evaluate("e => getComputedStyle(e.querySelector('bdi')).unicodeBidi") == "isolate"
    page = open_page(f"/dashboard/streams?prefix={stream}")
    chip = page.locator(".chip", has_text="RTL").first
    expect(chip).to_be_visible()
    assert chip.evaluate("e => getComputedStyle(e.querySelector('bdi')).unicodeBidi") == "isolate"


def test_right_to_left_text_in_event_data_keeps_the_json_in_order(
    open_page: OpenPage, api: httpx.Client, stream: str
) -> None:
    data = {"שם": "ערך", "note": "a\u202eb"}  # a Hebrew pair, and a direction override
    r = api.post(f"/v1/streams/{stream}/events", json={"type": "T", "data": data})
    assert r.status_code == 201, r.text
    page = open_page(f"/dashboard/streams/{stream}")
    page.locator(".event-toggle").first.click()
    view = page.locator(".event-body pre.json").first
    expect(view).to_contain_text('"note": "a\u202eb"')  # the text itself is as stored
    # Each string's text is isolated between its quotes: it cannot reorder what is around it.
    isolated = view.evaluate(
        "e => [...e.querySelectorAll('.j-key, .j-str')].map(s => s.querySelector('bdi')"
        " && getComputedStyle(s.querySelector('bdi')).unicodeBidi)"
    )
    assert len(isolated) == 4, isolated  # two keys, two values
    assert set(isolated) == {"isolate"}, isolated


def test_jump_shows_a_full_page_around_the_position_and_the_url_keeps_it(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("jump")
    append(api, stream, *[{"type": "Tick", "data": n} for n in range(1, 601)])
    page = open_page(f"/dashboard/streams/{stream}")
    shown = page.locator("#events-range")
    expect(shown).to_have_text("Showing #576\u2013#600 of 600")
    target = page.locator("#events > li.target")
    go = page.get_by_role("button", name="Go", exact=True)

    page.fill("#jump-position", "1")
    go.click()
    expect(shown).to_have_text("Showing #1\u2013#25 of 600")  # a full page, not #1 alone
    expect(target).to_have_attribute("data-position", "1")
    expect(target).to_have_attribute("aria-current", "true")
    expect(target.locator(".event-toggle")).to_be_focused()
    expect(page).to_have_url(re.compile(r"\?at=1$"))

    page.fill("#jump-position", "300")
    go.click()
    expect(shown).to_have_text("Showing #288\u2013#312 of 600")  # events after it too
    expect(target).to_have_attribute("data-position", "300")
    expect(target).to_be_in_viewport()
    expect(page).to_have_url(re.compile(r"\?at=300$"))
    page.reload()  # the same page, the same event picked out
    expect(shown).to_have_text("Showing #288\u2013#312 of 600")
    expect(target).to_have_attribute("data-position", "300")

    # Paging goes on from there, and is kept in the URL too.
    page.get_by_role("button", name="Older →").click()
    expect(shown).to_have_text("Showing #263\u2013#287 of 600")
    expect(page).to_have_url(re.compile(r"\?from=287$"))
    page.reload()
    expect(shown).to_have_text("Showing #263\u2013#287 of 600")
    page.get_by_role("button", name="← Newer").click()
    expect(shown).to_have_text("Showing #288\u2013#312 of 600")
    # While looking at older events, new ones are counted, not pushed in.
    append(api, stream, {"type": "Late"})
    banner = page.get_by_role("button", name=re.compile("1 new"))
    expect(banner).to_be_visible()
    banner.click()
    expect(page.locator("#events > li").first).to_have_attribute("data-position", "601")
    expect(page).to_have_url(re.compile(rf"/dashboard/streams/{stream}$"))


def test_the_pager_keeps_the_keyboard_when_its_button_disables_itself(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("pager")
    append(api, stream, *[{"type": "T", "data": n} for n in range(60)])
    page = open_page(f"/dashboard/streams/{stream}?from=35")
    shown = page.locator("#events-range")
    expect(shown).to_have_text("Showing #11\u2013#35 of 60")
    newest = page.get_by_role("button", name="Newest", exact=True)
    older = page.get_by_role("button", name="Older →")
    newest.focus()
    page.keyboard.press("Enter")
    expect(shown).to_have_text("Showing #36\u2013#60 of 60")
    expect(newest).to_be_disabled()
    expect(older).to_be_focused()  # not <body>
    page.keyboard.press("Enter")
    expect(shown).to_have_text("Showing #11\u2013#35 of 60")
    page.keyboard.press("Enter")
    expect(shown).to_have_text("Showing #1\u2013#10 of 60")
    expect(older).to_be_disabled()
    expect(page.get_by_role("button", name="← Newer")).to_be_focused()


def test_the_jump_and_append_forms_say_what_is_wrong_in_their_own_words(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("words")
    append(api, stream, {"type": "T"})
    page = open_page(f"/dashboard/streams/{stream}")
    expect(page.locator("#events > li")).to_have_count(1)
    problem = page.locator("#events-status [role=alert]")
    for typed in ["0", "-3", "1.5", ""]:  # not the browser's own popup for some of them
        page.evaluate("document.getElementById('events-status').replaceChildren()")
        page.fill("#jump-position", typed)
        page.get_by_role("button", name="Go", exact=True).click()
        expect(problem).to_contain_text("a whole number from 1")
        expect(page.locator("#jump-position")).to_have_attribute("aria-invalid", "true")

    page.fill("#append-data", '{"a": 1 "b": 2}')
    page.get_by_role("button", name="Append event").click()
    error = page.locator("#append-data-error")
    expect(error).to_contain_text("Not valid JSON (line 1, column 9): ")
    text = error.inner_text()
    assert text.count("line") == 1, text  # the place said once
    assert "position" not in text, text


def test_payload_shapes_say_null_and_follow_new_types(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("shapes")
    append(api, stream, {"type": "Nothing", "data": None})
    page = open_page(f"/dashboard/streams/{stream}")
    shapes_tab = page.get_by_role("tab", name="Payload shapes")
    shapes_tab.click()
    expect(page.locator('#shapes [data-type="Nothing"] .chip')).to_have_text("null")

    # Read again each time the tab is chosen...
    append(api, stream, {"type": "Later", "data": {"k": 1}})
    page.get_by_role("tab", name="Events").click()
    shapes_tab.click()
    expect(page.locator('#shapes [data-type="Later"] .chip')).to_have_text("k")
    # ...and on request.
    append(api, stream, {"type": "Latest", "data": [1]})
    refresh = page.get_by_role("button", name="Refresh")
    refresh.click()
    expect(page.locator('#shapes [data-type="Latest"] .chip')).to_have_text("array")
    expect(refresh).to_be_focused()


def test_a_page_answered_late_never_replaces_a_newer_one_nor_loses_live_events(
    open_page: OpenPage, api: httpx.Client
) -> None:
    """Answers held back in the browser (the server answered them at once): the one asked
    for last is what shows, and an event appended while the newest page is read is on it."""
    stream = unique("late")
    append(api, stream, *[{"type": "Tick", "data": n} for n in range(1, 201)])
    page = open_page(f"/dashboard/streams/{stream}?from=150")
    shown = page.locator("#events-range")
    expect(shown).to_have_text("Showing #126\u2013#150 of 200")
    expect(page.locator("#live-state")).to_have_text("● live")
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append((route, route.fetch()))  # answered by the server now, passed on later

    def wait_held() -> None:
        # Playwright's sync API runs route handlers only while the test is inside one of its
        # calls: wait in the page, not beside it.
        deadline = time.monotonic() + 10
        while not held and time.monotonic() < deadline:
            page.wait_for_timeout(20)
        assert held, "the answer was never held"

    page.route(re.compile(r"/events\?.*from=125"), hold)
    page.get_by_role("button", name="Older →").click()
    wait_held()
    page.get_by_role("button", name="Newest").click()
    expect(shown).to_have_text("Showing #176\u2013#200 of 200")
    route, response = held.pop()
    route.fulfill(response=response)  # the late answer: dropped
    page.wait_for_timeout(300)  # nothing to wait for when it is dropped: a moment to show it
    expect(shown).to_have_text("Showing #176\u2013#200 of 200")
    expect(page).not_to_have_url(re.compile(r"\?"))

    # The newest page read while an event is appended: the event is not lost under it.
    page.get_by_role("button", name="Older →").click()
    expect(shown).to_have_text("Showing #151\u2013#175 of 200")
    page.route(re.compile(r"/events\?direction=backward&limit=25$"), hold)
    page.get_by_role("button", name="Newest").click()
    wait_held()
    append(api, stream, {"type": "Late"})
    expect(page.locator("#stream-head")).to_have_text("201")  # the tail heard it meanwhile
    route, response = held.pop()
    route.fulfill(response=response)  # read before the append: #176-#200
    expect(shown).to_have_text("Showing #176\u2013#201 of 201")
    expect(page.locator("#events > li").first).to_have_attribute("data-position", "201")


def test_a_page_turn_answered_late_leaves_the_focus_where_the_user_went(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("focus")
    append(api, stream, *[{"type": "Tick", "data": n} for n in range(1, 61)])
    page = open_page(f"/dashboard/streams/{stream}?from=30")
    expect(page.locator("#events-range")).to_have_text("Showing #6\u2013#30 of 60")
    expect(page.locator("#live-state")).to_have_text("● live")
    append(api, stream, {"type": "Late"})
    banner = page.get_by_role("button", name=re.compile("1 new"))
    held: list[Any] = []
    page.route(re.compile(r"/events\?direction=backward&limit=25$"), lambda r: held.append(r))
    banner.focus()
    page.keyboard.press("Enter")  # the banner's button goes once the newest page shows
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(20)  # (route handlers run only inside Playwright's calls)
    data = page.locator("#append-data")
    data.click()  # the user goes on to write an event meanwhile
    held.pop().continue_()
    expect(page.locator("#events-range")).to_have_text("Showing #37\u2013#61 of 61")
    expect(data).to_be_focused()


def test_back_and_forward_go_through_the_pages_turned_to(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("back")
    append(api, stream, *[{"type": "Tick", "data": n} for n in range(1, 101)])
    page = open_page("/dashboard/streams")
    page.goto(page.url.rsplit("/dashboard", 1)[0] + f"/dashboard/streams/{stream}")
    shown = page.locator("#events-range")
    expect(shown).to_have_text("Showing #76\u2013#100 of 100")
    page.get_by_role("button", name="Older →").click()
    expect(shown).to_have_text("Showing #51\u2013#75 of 100")
    page.fill("#jump-position", "10")
    page.get_by_role("button", name="Go", exact=True).click()
    expect(shown).to_have_text("Showing #1\u2013#25 of 100")
    page.evaluate("document.getElementById('events').dataset.marked = 'yes'")
    page.go_back()
    expect(shown).to_have_text("Showing #51\u2013#75 of 100")
    expect(page).to_have_url(re.compile(r"\?from=75$"))
    page.get_by_role("button", name="← Newer").focus()
    page.go_back()
    expect(shown).to_have_text("Showing #76\u2013#100 of 100")
    # "← Newer" disabled itself at the newest: the focus goes to the first event, not <body>
    expect(page.locator("#events .event-toggle").first).to_be_focused()
    # the same page, turned back, not built anew (its live tail and its form kept)
    expect(page.locator("#events")).to_have_attribute("data-marked", "yes")
    page.go_forward()
    expect(shown).to_have_text("Showing #51\u2013#75 of 100")
    page.go_forward()
    expect(page.locator("#events > li.target")).to_have_attribute("data-position", "10")
    page.go_back()
    page.go_back()
    page.go_back()  # the pages turned to are behind: then the page before the stream's
    expect(page).to_have_url(re.compile(r"/dashboard/streams$"))


def test_event_data_keeps_its_members_order_and_duplicate_keys(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("order")
    append_raw(
        api, stream, '{"type": "K", "data": {"zeta": 1, "10": "ten", "alpha": 2, "2": "two"}}'
    )
    append_raw(api, stream, '{"type": "D", "data": {"a": 1, "nested": [{"a": 1, "a": 2}]}}')
    page = open_page(f"/dashboard/streams/{stream}")
    page.evaluate("navigator.clipboard.writeText = async (text) => { window.copied = text; }")
    ordered = '{\n  "zeta": 1,\n  "10": "ten",\n  "alpha": 2,\n  "2": "two"\n}'
    duplicates = '{\n  "a": 1,\n  "nested": [\n    {\n      "a": 1,\n      "a": 2\n    }\n  ]\n}'
    for position, shown in [(1, ordered), (2, duplicates)]:
        event = page.locator(f'#events > li[data-position="{position}"]')
        event.locator(".event-toggle").click()
        expect(event.locator("pre.json")).to_have_text(shown)
    page.locator('#events > li[data-position="1"]').get_by_role("button", name="Copy data").click()
    page.wait_for_function("window.copied !== undefined")
    assert page.evaluate("window.copied") == ordered


def test_many_event_types_draw_the_first_ones_and_the_rest_on_request(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("types")
    append(api, stream, *[{"type": f"Type{n:03d}", "data": n} for n in range(120)])
    page = open_page(f"/dashboard/streams/{stream}")
    types = page.locator("#event-types li")
    expect(types).to_have_count(50)  # 1,500 made the page 58,000 px tall
    expect(page.locator("#event-types-more")).to_contain_text("The first 50 of 120")
    page.get_by_role("button", name="Show all 120").click()
    expect(types).to_have_count(120)
    append(api, stream, {"type": "Type999"})  # redrawn with the live tail: all, still
    expect(types).to_have_count(121)
    expect(page.locator("#event-types-more")).to_have_count(0)

    page = open_page(f"/dashboard/new-subscription?stream={stream}")
    choices = page.locator(".type-choices .chip-button")
    expect(choices).to_have_count(50)
    page.get_by_role("button", name="Show all 121 types").click()
    expect(choices).to_have_count(121)
    expect(choices.nth(50)).to_be_focused()


def test_many_payload_shapes_draw_the_first_ones_and_the_rest_on_request(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("many-shapes")
    # 40 types of two shapes each: 80 examples (up to 100 a type: thousands froze the tab).
    append(api, stream, *[{"type": f"Shape{n:03d}", "data": {"a": n}} for n in range(40)])
    append(api, stream, *[{"type": f"Shape{n:03d}", "data": {"b": n}} for n in range(40)])
    page = open_page(f"/dashboard/streams/{stream}")
    page.get_by_role("tab", name="Payload shapes").click()
    shapes = page.locator("#shapes .shape")
    expect(shapes).to_have_count(50)
    expect(page.locator("#shapes-more")).to_contain_text("The first 50 of 80")
    page.get_by_role("button", name="Show all 80").click()
    expect(shapes).to_have_count(80)
    expect(page.locator("#shapes-more")).to_have_count(0)
    expect(shapes.nth(50)).to_be_focused()  # the keyboard goes on from the first one drawn
    assert len(set(shapes.evaluate_all("els => els.map(e => e.textContent)"))) == 80

    # Read again on Refresh: all of them, still.
    append(api, stream, {"type": "Shape999", "data": [1]})
    page.get_by_role("button", name="Refresh").click()
    expect(shapes).to_have_count(81)
    expect(page.locator("#shapes-more")).to_have_count(0)


def test_a_shape_with_many_keys_draws_the_first_ones_and_the_rest_on_request(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream = unique("wide")
    append(api, stream, {"type": "Wide", "data": {f"k{n:02d}": n for n in range(60)}})
    page = open_page(f"/dashboard/streams/{stream}")
    page.get_by_role("tab", name="Payload shapes").click()
    chips = page.locator('#shapes .shape[data-type="Wide"] .chip.mono')
    expect(chips).to_have_count(50)  # 20,000 keys made the card 41,000 px tall
    expect(chips.last).to_have_text("k49")
    more = page.get_by_role("button", name="Show 10 more keys")
    expect(more).to_have_text("+10 more")
    more.click()
    expect(chips).to_have_count(60)
    expect(chips.nth(50)).to_have_text("k50")
    expect(chips.nth(50)).to_be_focused()  # the keyboard goes on from the first one drawn
    expect(more).to_have_count(0)
