"""The subscription pages in Chromium, against a real server and a real webhook receiver:
create through the form, pause and resume, a failing receiver, parked events, reset, delete."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from delivery.receiver import Receiver, Reply
from helpers import unique, wait_until

from .conftest import ConsoleWatch

pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

OpenPage = Callable[..., Page]
FAST = {"backoff": {"initial": 0.02, "max": 0.05}}


def sub_name() -> str:
    return f"ui_{uuid.uuid4().hex[:10]}"


def append(api: httpx.Client, stream: str, count: int, start: int = 1) -> None:
    events = [{"type": "Tick", "data": {"n": n}} for n in range(start, start + count)]
    r = api.post(f"/v1/streams/{stream}/events", json=events)
    assert r.status_code == 201, r.text


def subscribe(api: httpx.Client, name: str, stream: str, url: str, **options: Any) -> None:
    r = api.put(f"/v1/subscriptions/{name}", json={"stream": stream, "url": url, **options})
    assert r.status_code == 201, r.text


def status(api: httpx.Client, name: str) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/v1/subscriptions/{name}").json()
    return body


def delivered(receiver: Receiver, count: int) -> list[int]:
    return [r.position for r in receiver.wait_for(lambda requests: len(requests) >= count)]


def test_a_subscription_created_through_the_form_delivers(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("orders"), sub_name()
    append(api, stream, 3)
    page = open_page(f"/dashboard/new-subscription?stream={stream}")
    expect(page.locator("#sub-stream")).to_have_value(stream)
    page.fill("#sub-name", name)
    page.fill("#sub-url", receiver.url)
    page.get_by_role("button", name="Add header").click()
    page.get_by_label("Header name").fill("X-Team")
    page.get_by_label("Value").fill("billing")
    page.get_by_role("button", name="+ Tick").click()  # the stream's known types, one click
    expect(page.locator("#sub-event-types-list .type-name")).to_have_text(["Tick"])
    # Types are isolated (<bdi>): a right-to-left override in one reorders nothing around it.
    isolated = "e => getComputedStyle(e.querySelector('bdi')).unicodeBidi"
    assert page.locator("#sub-event-types-list .type-name").evaluate(isolated) == "isolate"
    assert page.get_by_role("button", name="+ Tick").evaluate(isolated) == "isolate"
    page.get_by_role("button", name="Create subscription").click()

    expect(page).to_have_url(re.compile(rf"/dashboard/subscriptions/{name}$"))
    assert delivered(receiver, 3) == [1, 2, 3]
    assert receiver.received()[0].headers["x-team"] == "billing"
    expect(page.locator("#status")).to_have_text("active")
    expect(page.locator("#position")).to_have_text("#3")
    expect(page.locator("#config")).to_contain_text(receiver.url)
    expect(page.locator("#config")).not_to_contain_text("billing")  # header values are masked
    assert page.locator("#config .chip", has_text="Tick").evaluate(isolated) == "isolate"
    expect(page.locator("#deliveries tbody tr")).to_have_count(3)
    assert status(api, name)["config"]["event_types"] == ["Tick"]


def test_a_password_in_the_url_is_masked_as_header_values_are(
    open_page: OpenPage, api: httpx.Client
) -> None:
    stream, name = unique("urlpass"), sub_name()
    spec = {"stream": stream, "url": "http://ops:pa55word@127.0.0.1:9/hook?x=1", "start": "end"}
    assert api.put(f"/v1/subscriptions/{name}", json=spec).status_code == 201
    page = open_page(f"/dashboard/subscriptions/{name}")
    config = page.locator("#config")
    expect(config).to_contain_text("http://ops:••••••@127.0.0.1:9/hook?x=1")
    expect(config).not_to_contain_text("pa55word")
    page.get_by_role("button", name="Show the URL's password").click()
    expect(config).to_contain_text("http://ops:pa55word@127.0.0.1:9/hook?x=1")
    page.get_by_role("button", name="Hide the URL's password").click()
    expect(config).not_to_contain_text("pa55word")
    page.close()
    api.delete(f"/v1/subscriptions/{name}")


def test_a_revealed_header_value_stays_revealed_as_deliveries_refresh_the_page(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("reveal"), sub_name()
    append(api, stream, 1)
    subscribe(api, name, stream, receiver.url, headers={"X-Token": "s3cret"})
    page = open_page(f"/dashboard/subscriptions/{name}")
    expect(page.locator("#position")).to_have_text("#1")
    page.get_by_role("button", name="Show the value of X-Token").click()
    expect(page.locator("#config")).to_contain_text("s3cret")
    append(api, stream, 2, start=2)
    assert delivered(receiver, 3) == [1, 2, 3]
    expect(page.locator("#position")).to_have_text("#3")  # the page refreshed
    expect(page.locator("#config")).to_contain_text("s3cret")
    expect(page.get_by_role("button", name="Hide the value of X-Token")).to_be_visible()


def test_the_form_shows_what_to_fix(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver, console: ConsoleWatch
) -> None:
    stream, taken = unique("form"), sub_name()
    subscribe(api, taken, stream, receiver.url)
    page = open_page("/dashboard/new-subscription")
    page.fill("#sub-name", "no spaces allowed")
    page.fill("#sub-url", "ftp://example.com")
    page.get_by_role("button", name="Create subscription").click()
    expect(page.locator("#sub-name-error")).to_contain_text("A-Z a-z 0-9")
    expect(page.locator("#sub-stream-error")).to_contain_text("1-200 characters")
    expect(page.locator("#sub-url-error")).to_contain_text("http:// or https://")
    expect(page.locator("#sub-name")).to_be_focused()

    # A name in use: refused (If-None-Match: *), the existing subscription left alone.
    console.allow("412")
    page.fill("#sub-name", taken)
    page.fill("#sub-stream", stream)
    page.fill("#sub-url", "http://127.0.0.1:9/elsewhere")
    page.get_by_role("button", name="Create subscription").click()
    expect(page.locator("#sub-name-error")).to_contain_text("exists already")
    assert status(api, taken)["url"] == receiver.url

    # Refused by the API: its message, on the field it is about.
    console.allow(r"status of 400")
    page.fill("#sub-name", sub_name())
    page.get_by_role("button", name="Add header").click()
    page.get_by_label("Header name").fill("Content-Length")
    page.get_by_label("Value").fill("1")
    page.get_by_role("button", name="Create subscription").click()
    expect(page.locator("#form-error [role=alert]")).to_contain_text("cannot be set")
    expect(page.locator("#sub-headers-error")).to_contain_text("Content-Length")
    expect(page).to_have_url(re.compile(r"/dashboard/new-subscription$"))


def test_pause_stops_deliveries_and_resume_delivers_the_rest_in_order(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("ticks"), sub_name()
    append(api, stream, 3)
    subscribe(api, name, stream, receiver.url)
    assert delivered(receiver, 3) == [1, 2, 3]

    page = open_page(f"/dashboard/subscriptions/{name}")
    expect(page.locator("#position")).to_have_text("#3")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#status")).to_have_text("paused")
    expect(page.locator("#notice")).to_contain_text("Paused")
    assert status(api, name)["status"] == "paused"

    append(api, stream, 4, start=4)
    expect(page.locator("#lag")).to_have_text("4")  # the page saw the stream grow...
    time.sleep(0.3)  # ...and a paused subscription sends nothing, not even a moment later
    assert len(receiver.received()) == 3

    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#status")).to_have_text("active")
    assert delivered(receiver, 7) == [1, 2, 3, 4, 5, 6, 7]
    expect(page.locator("#position")).to_have_text("#7")
    expect(page.locator("#lag")).to_have_text("0")


def test_a_failing_receiver_shows_the_error_and_the_attempt_log(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("fails"), sub_name()
    receiver.decide(lambda request: Reply(500, b"boom: the database is down"))
    append(api, stream, 2)
    subscribe(api, name, stream, receiver.url, max_attempts=2, **FAST)
    wait_until(lambda: status(api, name)["status"] == "paused", what="paused after 2 attempts")

    page = open_page(f"/dashboard/subscriptions/{name}")
    expect(page.locator("#status")).to_have_text("paused")
    expect(page.locator("#notice")).to_contain_text("500")
    expect(page.locator("#last-error")).to_contain_text("500")
    attempts = page.locator("#deliveries tbody tr")
    expect(attempts).to_have_count(2)
    expect(attempts.first.locator(".badge")).to_have_text("500")
    expect(attempts.first).to_contain_text(re.compile(r"\d+ ms"))
    attempts.first.get_by_text("Response").click()
    expect(attempts.first.locator("pre")).to_have_text("boom: the database is down")

    # Fixed receiver, resumed: the same event is retried, then the rest, in order.
    receiver.decide(None)
    page.get_by_role("button", name="Resume").click()
    wait_until(lambda: receiver.positions()[-2:] == [1, 2], what="1 and 2 delivered")
    expect(page.locator("#status")).to_have_text("active")
    expect(attempts.first.locator(".badge")).to_have_text("200")


def test_a_retrying_subscription_says_when_it_tries_again(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("retry"), sub_name()
    receiver.decide(lambda request: Reply(503, headers={"Retry-After": "600"}))
    append(api, stream, 1)
    subscribe(api, name, stream, receiver.url, backoff={"initial": 1, "max": 900})
    wait_until(lambda: status(api, name)["next_attempt_at"], what="a retry scheduled")

    page = open_page(f"/dashboard/subscriptions/{name}")
    expect(page.locator("#status")).to_have_text("retrying")
    expect(page.locator("#notice")).to_contain_text("Retrying event #1 after 1 failed attempt")
    expect(page.locator("#next-attempt")).to_contain_text(re.compile(r"Next attempt in (9|10) min"))


def test_parked_events_are_listed_and_replayed(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("parks"), sub_name()
    receiver.decide(lambda request: Reply(503))
    append(api, stream, 2)
    subscribe(api, name, stream, receiver.url, max_attempts=1, on_exhausted="park", **FAST)
    wait_until(lambda: status(api, name)["parked"] == 2, what="two parked events")

    page = open_page(f"/dashboard/subscriptions/{name}")
    expect(page.locator("#parked tbody tr")).to_have_count(2)
    expect(page.locator("#parked")).to_contain_text("503")
    receiver.decide(None)
    page.get_by_role("button", name="Replay parked").click()
    expect(page.locator("#action-error")).to_contain_text("Replaying 2 parked events")
    wait_until(lambda: receiver.positions()[-2:] == [1, 2], what="the parked events replayed")
    expect(page.locator("#parked-events")).to_contain_text("No parked events")


def test_many_parked_events_draw_the_first_ones_and_again_only_when_they_change(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("manyparks"), sub_name()
    receiver.decide(lambda request: Reply(503) if b"fail" in request.body else None)
    r = api.post(f"/v1/streams/{stream}/events", json=[{"type": "T", "data": "fail"}] * 105)
    assert r.status_code == 201, r.text
    subscribe(api, name, stream, receiver.url, max_attempts=1, on_exhausted="park", **FAST)
    wait_until(lambda: status(api, name)["parked"] == 105, what="105 parked events")

    page = open_page(f"/dashboard/subscriptions/{name}")
    rows = page.locator("#parked tbody tr")
    expect(rows).to_have_count(100)  # 10,000 took seconds to draw, again at every refresh
    expect(page.locator("#parked-more")).to_contain_text("The first 100 of 105")
    # A delivery refreshes the page; the parked events, unchanged, are not drawn again.
    rows.first.evaluate("row => { row.drawnBefore = true; }")
    with page.expect_request(lambda r: r.url.split("?")[0].endswith("/parked")) as read:
        api.post(f"/v1/streams/{stream}/events", json={"type": "T", "data": "ok"})
    assert read.value.url.endswith("/parked?limit=100")  # the server sends only those drawn
    expect(page.locator("#position")).to_have_text("#106")
    assert rows.first.evaluate("row => row.drawnBefore === true"), "the parked rows were redrawn"

    with page.expect_request(lambda r: r.url.split("?")[0].endswith("/parked")) as read:
        page.get_by_role("button", name="Show all 105").click()
    assert read.value.url.endswith("/parked")
    expect(rows).to_have_count(105)
    expect(page.locator('#parked tr[data-position="101"]')).to_be_focused()
    expect(page.locator("#parked-more")).to_have_count(0)
    api.post(f"/v1/streams/{stream}/events", json={"type": "T", "data": "fail"})
    expect(rows).to_have_count(106)  # all of them, as asked
    expect(rows.last).to_have_attribute("data-position", "107")


def test_reset_and_delete_ask_first(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("resets"), sub_name()
    append(api, stream, 3)
    subscribe(api, name, stream, receiver.url)
    assert delivered(receiver, 3) == [1, 2, 3]
    page = open_page(f"/dashboard/subscriptions/{name}")
    expect(page.locator("#position")).to_have_text("#3")

    page.get_by_role("button", name="Reset…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert status(api, name)["position"] == 3

    page.get_by_role("button", name="Reset…").click()
    page.fill("#dialog-input", "-1")
    dialog.get_by_role("button", name="Reset position").click()
    expect(dialog).to_contain_text("A whole number")
    page.fill("#dialog-input", "1")
    dialog.get_by_role("button", name="Reset position").click()
    expect(page.locator("#action-error")).to_contain_text("the next delivery is #2")
    assert delivered(receiver, 5) == [1, 2, 3, 2, 3]

    page.get_by_role("button", name="Delete…").click()
    page.keyboard.press("Escape")  # Escape cancels too
    expect(dialog).to_have_count(0)
    assert status(api, name)["name"] == name
    page.get_by_role("button", name="Delete…").click()
    dialog.get_by_role("button", name="Delete subscription").click()
    expect(page).to_have_url(re.compile(r"/dashboard/subscriptions$"))
    assert api.get(f"/v1/subscriptions/{name}").status_code == 404
    expect(page.locator(f'[data-subscription="{name}"]')).to_have_count(0)
    expect(page.locator("#deleted-notice")).to_have_text(f"Deleted “{name}”.")  # said, once
    page.reload()
    expect(page.locator("h1")).to_have_text("Subscriptions")
    expect(page.locator("#deleted-notice")).to_have_count(0)


def test_subscriptions_list_and_the_streams_subscriptions(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, running, stopped = unique("listed"), sub_name(), sub_name()
    append(api, stream, 2)
    subscribe(api, running, stream, receiver.url)
    subscribe(api, stopped, stream, receiver.url, start="end")
    api.post(f"/v1/subscriptions/{stopped}/pause")
    append(api, stream, 1, start=3)
    delivered(receiver, 3)

    page = open_page("/dashboard/subscriptions")
    row = page.locator(f'#subscriptions-list tr[data-subscription="{running}"]')
    expect(row.locator(".badge").first).to_have_text("active")
    expect(row).to_contain_text("3 / 3")
    paused_row = page.locator(f'#subscriptions-list tr[data-subscription="{stopped}"]')
    expect(paused_row.locator(".badge").first).to_have_text("paused")
    expect(paused_row).to_contain_text("1 behind")
    page.get_by_role("button", name="Paused", exact=True).click()
    expect(row).to_have_count(0)
    expect(paused_row).to_be_visible()
    page.get_by_role("button", name="All", exact=True).click()
    page.fill("#subscription-filter", running)
    expect(page.locator("#subscriptions-list tbody tr")).to_have_count(1)

    page.get_by_role("link", name=stream).first.click()
    expect(page.locator("h1")).to_have_text(stream)
    subs = page.locator("#stream-subscriptions")
    expect(subs.locator(f'[data-subscription="{running}"] .badge')).to_have_text("active")
    expect(subs.locator(f'[data-subscription="{stopped}"] .badge')).to_have_text("paused")


def test_a_stream_without_events_lists_the_subscriptions_waiting_for_it(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver, console: ConsoleWatch
) -> None:
    console.allow(r"status of 404")  # the stream's info: none until its first event
    stream, waiting = unique("future"), sub_name()
    subscribe(api, waiting, stream, receiver.url)
    page = open_page(f"/dashboard/streams/{stream}")
    subs = page.locator("#stream-subscriptions")
    expect(subs.locator(f'[data-subscription="{waiting}"] a')).to_have_text(waiting)  # whole
    expect(page.locator("#subscriptions")).not_to_contain_text("No subscription delivers")


def test_an_unknown_subscription_says_so(open_page: OpenPage, console: ConsoleWatch) -> None:
    console.allow(r"status of 404")
    name = sub_name()
    page = open_page(f"/dashboard/subscriptions/{name}")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("No such subscription (404)")
    expect(alert).to_contain_text(name)  # the API's own words
    expect(page.get_by_role("link", name="All subscriptions")).to_be_visible()
    # Nothing to act on: no actions offered.
    for action in ["Pause", "Reset…", "Delete…"]:
        expect(page.get_by_role("button", name=action)).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)


def test_deleting_one_deleted_behind_the_pages_back_says_it_is_gone(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver, console: ConsoleWatch
) -> None:
    console.allow(r"status of 404")
    stream, name = unique("gone"), sub_name()
    subscribe(api, name, stream, receiver.url)
    page = open_page(f"/dashboard/subscriptions/{name}")
    expect(page.locator("#status")).to_have_text("active")
    page.get_by_role("button", name="Delete…").click()
    # Deleted behind the page's back while its dialog is open (once deleted, the page may
    # notice on its next refresh and disable the button that opens it).
    assert api.delete(f"/v1/subscriptions/{name}").status_code == 204
    page.get_by_role("dialog").get_by_role("button", name="Delete subscription").click()
    # Deleted first behind its back: what was asked is done, and the page says so.
    expect(page.locator("#gone")).to_contain_text("no longer exists")


def test_destructive_dialogs_start_on_cancel(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("careful"), sub_name()
    append(api, stream, 2)
    subscribe(api, name, stream, receiver.url)
    page = open_page(f"/dashboard/subscriptions/{name}")
    expect(page.locator("#position")).to_have_text("#2")
    dialog = page.get_by_role("dialog")
    for action in ["Delete…", "Reset…"]:
        page.get_by_role("button", name=action).click()
        expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        page.keyboard.press("Enter")  # Enter, Enter: cancelled, nothing destroyed
        expect(dialog).to_have_count(0)
    assert status(api, name)["position"] == 2


def test_reset_sends_the_position_as_typed(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("far"), sub_name()
    subscribe(api, name, stream, receiver.url)
    page = open_page(f"/dashboard/subscriptions/{name}")
    expect(page.locator("#status")).to_have_text("active")
    dialog = page.get_by_role("dialog")
    page.get_by_role("button", name="Reset…").click()
    confirm = dialog.get_by_role("button", name="Reset position")
    for too_large in ["99999999999999999999999", str(2**62 + 1)]:
        page.fill("#dialog-input", too_large)
        confirm.click()
        expect(dialog).to_contain_text(f"at most {2**62} (2^62)")
    page.fill("#dialog-input", "9007199254740993")  # 2^53 + 1: a JS number would round it
    confirm.click()
    dialog.get_by_role("button", name="Skip them and reset").click()  # past the head: asked
    expect(page.locator("#action-error")).to_contain_text("the next delivery is #9007199254740994")
    assert status(api, name)["position"] == 2**53 + 1
    # Shown exact where statuses are read (they are parsed natively unless a position is long).
    expect(page.locator("#position")).to_have_text("#9,007,199,254,740,993")
    page.reload()
    expect(page.locator("#position")).to_have_text("#9,007,199,254,740,993")
    listed = open_page(f"/dashboard/subscriptions?q={name}")
    expect(listed.locator(f'tr[data-subscription="{name}"] .lag-text')).to_contain_text(
        "9,007,199,254,740,993 / 0"
    )


def test_editing_keeps_each_event_type_as_it_is(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("types"), sub_name()
    r = api.post(f"/v1/streams/{stream}/events", json=[{"type": "Order,Shipped"}])
    assert r.status_code == 201, r.text
    kept = ["Order,Placed", "Order, Paid"]  # commas and spaces are part of a type
    subscribe(api, name, stream, receiver.url, event_types=[*kept, "Gone"], start="end")
    page = open_page(f"/dashboard/new-subscription?edit={name}")
    chips = page.locator("#sub-event-types-list .type-name")
    expect(chips).to_have_text([*kept, "Gone"])
    page.fill("#sub-timeout", "7")  # an unrelated change
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/subscriptions/{name}$"))
    page.go_back()  # to where the form was opened from, not to the form
    expect(page).not_to_have_url(re.compile("edit="))
    page.go_forward()
    expect(page).to_have_url(re.compile(rf"/dashboard/subscriptions/{name}$"))
    config = status(api, name)["config"]
    assert config["event_types"] == [*kept, "Gone"]
    assert config["timeout"] == 7

    # One removed, one from the stream's known types, one typed (Enter adds it).
    page.get_by_role("link", name="Edit").click()
    page.get_by_role("button", name="Remove Gone").click()
    page.get_by_role("button", name="+ Order,Shipped").click()
    page.fill("#sub-event-types", "Order,Refunded")
    page.press("#sub-event-types", "Enter")
    expect(chips).to_have_text([*kept, "Order,Shipped", "Order,Refunded"])
    expect(page).to_have_url(re.compile(r"edit="))  # Enter added the type, did not save
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/subscriptions/{name}$"))
    assert status(api, name)["config"]["event_types"] == [*kept, "Order,Shipped", "Order,Refunded"]


def test_saving_an_edit_of_a_subscription_changed_meanwhile_asks_first(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    """A PUT replaces the whole configuration: the form's save undid a change made elsewhere
    after it was filled (headers set through the API went back to none), without a word."""
    stream, name = unique("changed"), sub_name()
    subscribe(api, name, stream, receiver.url, start="end")
    page = open_page(f"/dashboard/new-subscription?edit={name}")
    expect(page.locator("#sub-timeout")).to_have_value("10")
    # A pause moves `updated`, not the configuration a save replaces: not asked about.
    assert api.post(f"/v1/subscriptions/{name}/pause").status_code == 200
    page.fill("#sub-batch-size", "2")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/subscriptions/{name}$"))
    assert status(api, name)["config"]["batch_size"] == 2
    page.get_by_role("link", name="Edit").click()
    expect(page.locator("#sub-timeout")).to_have_value("10")
    changed = {"stream": stream, "url": receiver.url, "headers": {"X-Team": "ops"}}
    assert api.put(f"/v1/subscriptions/{name}", json=changed).status_code == 200
    page.fill("#sub-timeout", "7")
    dialog = page.get_by_role("dialog")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#changed-elsewhere")).to_contain_text("was changed elsewhere")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert status(api, name)["config"]["headers"] == {"X-Team": "ops"}  # nothing saved
    page.get_by_role("button", name="Save changes").click()
    dialog.get_by_role("button", name="Save all the same").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/subscriptions/{name}$"))
    assert status(api, name)["config"]["timeout"] == 7


def test_saving_an_edit_of_a_subscription_deleted_meanwhile_brings_nothing_back(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver, console: ConsoleWatch
) -> None:
    console.allow("412")  # the refused PUT, logged by the browser
    stream, name = unique("gone"), sub_name()
    append(api, stream, 3)
    subscribe(api, name, stream, receiver.url, start="end")
    page = open_page(f"/dashboard/new-subscription?edit={name}")
    expect(page.locator("#sub-url")).to_have_value(receiver.url)
    assert api.delete(f"/v1/subscriptions/{name}").status_code == 204
    page.fill("#sub-timeout", "7")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert")).to_contain_text("deleted meanwhile")
    assert api.get(f"/v1/subscriptions/{name}").status_code == 404  # not made again
    assert receiver.received() == []  # and so nothing delivered from the start


def test_a_subscription_deleted_while_its_page_is_open_says_so(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver, console: ConsoleWatch
) -> None:
    console.allow("404")  # the refresh that finds it gone
    stream, name = unique("gone"), sub_name()
    append(api, stream, 2)
    subscribe(api, name, stream, receiver.url)
    page = open_page(f"/dashboard/subscriptions/{name}")
    expect(page.locator("#progress")).to_contain_text("2")
    assert api.delete(f"/v1/subscriptions/{name}").status_code == 204
    append(api, stream, 1, start=3)  # the stats tick that follows refreshes the page
    expect(page.locator("#gone")).to_contain_text("no longer exists")
    for button in ("#toggle-pause", "#reset", "#delete", "#replay-parked"):
        expect(page.locator(button)).to_be_disabled()
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)


def test_a_start_position_past_2_to_the_53_is_sent_as_typed(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("big"), sub_name()
    append(api, stream, 1)
    page = open_page(f"/dashboard/new-subscription?stream={stream}")
    page.fill("#sub-name", name)
    page.fill("#sub-url", receiver.url)
    page.check("input[name=start][value=position]")
    page.fill("#sub-start-position", "9007199254740993")  # 2^53 + 1: a JS number rounds it
    # Past the stream's head: the events up to it would be skipped. Asked first, as a reset is.
    dialog = page.get_by_role("dialog")
    for answer in ["Cancel", "Skip them and create"]:
        page.get_by_role("button", name="Create subscription").click()
        warning = page.locator("#beyond-head-warning")
        expect(warning).to_contain_text("ends at #1")
        expect(warning).to_contain_text("9,007,199,254,740,992 events")
        dialog.get_by_role("button", name=answer).click()
        expect(dialog).to_have_count(0)
        if answer == "Cancel":
            expect(page.locator("#sub-start-position")).to_be_focused()
            assert api.get(f"/v1/subscriptions/{name}").status_code == 404
    expect(page).to_have_url(re.compile(rf"/dashboard/subscriptions/{name}$"))
    assert status(api, name)["position"] == 2**53 + 1
    # Within the head: not asked.
    other = sub_name()
    page = open_page(f"/dashboard/new-subscription?stream={stream}")
    page.fill("#sub-name", other)
    page.fill("#sub-url", receiver.url)
    page.check("input[name=start][value=position]")
    page.fill("#sub-start-position", "1")
    page.get_by_role("button", name="Create subscription").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/subscriptions/{other}$"))
    assert status(api, other)["position"] == 1


def test_a_late_answer_does_not_bring_a_deleted_subscription_back(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver, console: ConsoleWatch
) -> None:
    console.allow("404")
    stream, name = unique("late"), sub_name()
    append(api, stream, 1)
    subscribe(api, name, stream, receiver.url)
    page = open_page(f"/dashboard/subscriptions/{name}")
    expect(page.locator("#status")).to_have_text("active")
    held: list[Any] = []

    def hold(route: Any) -> None:  # the pause is done; its answer waits
        held.append((route, route.fetch()))

    page.route(re.compile(r"/pause$"), hold)
    page.get_by_role("button", name="Pause").click()
    for _ in range(100):  # Playwright runs the handler while the test is in one of its calls
        if held:
            break
        page.wait_for_timeout(50)
    assert status(api, name)["status"] == "paused"
    assert api.delete(f"/v1/subscriptions/{name}").status_code == 204
    append(api, stream, 1, start=2)
    expect(page.locator("#gone")).to_be_visible()
    route, answer = held[0]
    with page.expect_request_finished(lambda request: request.url.endswith("/pause")):
        route.fulfill(response=answer)
    page.evaluate("() => new Promise((done) => setTimeout(done))")  # its handling runs first
    expect(page.locator("#gone")).to_be_visible()
    expect(page.locator("#delete")).to_be_disabled()


def test_editing_an_original_subscription_says_it_becomes_a_v1_one(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("orig"), sub_name()
    r = api.post(f"/subscriptions/{name}", json={"stream": stream, "url": receiver.url})
    assert r.status_code == 200, r.text
    page = open_page(f"/dashboard/new-subscription?edit={name}")
    expect(page.locator("#sub-original-hint")).to_contain_text("original API")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/subscriptions/{name}$"))
    assert status(api, name)["config"]["created_by"] == "v1"
    v1 = open_page(f"/dashboard/new-subscription?edit={name}")
    expect(v1.locator("#sub-url")).to_have_value(receiver.url)
    expect(v1.locator("#sub-original-hint")).to_have_count(0)


def test_a_reset_made_elsewhere_shows_with_every_digit_on_a_quiet_server(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    """A reset of a paused subscription moves no delivery counter: the pages follow the count
    of changes. And a position past 2^53 is shown as stored, not rounded by JS numbers."""
    stream, name = unique("quiet"), sub_name()
    append(api, stream, 2)
    subscribe(api, name, stream, receiver.url)
    wait_until(lambda: status(api, name)["position"] == 2)
    assert api.post(f"/v1/subscriptions/{name}/pause").status_code == 200
    page = open_page(f"/dashboard/subscriptions/{name}")
    expect(page.locator("#position")).to_have_text("#2")
    listed = open_page(f"/dashboard/subscriptions?q={name}")
    row = listed.locator("tbody tr", has_text=name)
    expect(row).to_contain_text("paused: API request")  # why, in the error column
    reset = api.post(f"/v1/subscriptions/{name}/reset", json={"position": 2**53 + 1})
    assert reset.status_code == 200
    expect(page.locator("#position")).to_have_text("#9,007,199,254,740,993")
    expect(row).to_contain_text("9,007,199,254,740,993")


def test_a_reset_past_the_head_is_confirmed_first_and_flagged_after(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("past"), sub_name()
    append(api, stream, 3)
    subscribe(api, name, stream, receiver.url)
    assert delivered(receiver, 3) == [1, 2, 3]
    page = open_page(f"/dashboard/subscriptions/{name}")
    expect(page.locator("#position")).to_have_text("#3")
    dialog = page.get_by_role("dialog")
    for answer in ["Cancel", "Skip them and reset"]:
        page.get_by_role("button", name="Reset…").click()
        page.fill("#dialog-input", "2000")
        dialog.get_by_role("button", name="Reset position").click()
        warning = page.locator("#beyond-head-warning")
        expect(warning).to_contain_text("ends at #3")
        expect(warning).to_contain_text("1,997 events")
        expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        dialog.get_by_role("button", name=answer).click()
        expect(dialog).to_have_count(0)
        if answer == "Cancel":
            assert status(api, name)["position"] == 3
    expect(page.locator("#action-error")).to_contain_text("the next delivery is #2001")
    assert status(api, name)["position"] == 2000
    # Not a healthy full bar: flagged.
    progress = page.locator("#progress .lag")
    expect(progress).to_contain_text("2,000 / 3")
    expect(progress).to_contain_text("position beyond head")
    expect(progress.locator(".lag-bar")).to_have_class(re.compile(r"\bbeyond\b"))


def test_an_action_without_an_answer_says_the_server_was_not_reached(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver, console: ConsoleWatch
) -> None:
    console.allow(r"ERR_FAILED")
    stream, name = unique("noanswer"), sub_name()
    subscribe(api, name, stream, receiver.url)
    page = open_page(f"/dashboard/subscriptions/{name}")
    expect(page.locator("#status")).to_have_text("active")
    page.route(re.compile(r"/pause$"), lambda route: route.abort())
    page.get_by_role("button", name="Pause").click()
    alert = page.locator("#action-error [role=alert]")
    expect(alert).to_contain_text("No answer from the server")
    expect(alert).not_to_contain_text("refused")
    assert status(api, name)["status"] == "active"


def test_no_answer_to_an_action_is_no_longer_said_once_the_server_answers_again(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver, console: ConsoleWatch
) -> None:
    console.allow(r"ERR_FAILED")
    stream, name = unique("again"), sub_name()
    subscribe(api, name, stream, receiver.url)
    page = open_page(f"/dashboard/subscriptions/{name}")
    expect(page.locator("#status")).to_have_text("active")
    page.route("**/v1/**", lambda route: route.abort())  # the server out of reach
    page.get_by_role("button", name="Pause").click()
    alert = page.locator("#action-error [role=alert]")
    expect(alert).to_contain_text("No answer from the server")
    expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    page.unroute("**/v1/**")
    expect(page.locator("#connection")).to_have_attribute("data-state", "open")
    expect(alert).to_have_count(0)  # it stayed, stale, with the server back
    expect(page.locator("#status")).to_have_text("active")


def test_counts_said_on_the_overview_have_thousands_separators(open_page: OpenPage) -> None:
    page = open_page("/dashboard")
    reasons = page.evaluate(
        """async () => {
          const { attentionReason } = await import("/dashboard/js/ui.js");
          return [
            attentionReason({ status: "active", parked: 10000 }),
            attentionReason({ status: "active", parked: 0, lag: 12345 }, true),
          ];
        }"""
    )
    assert reasons == ["10,000 parked events", "Lag growing: 12,345 behind"]


def test_a_subscription_paused_by_hand_needs_attention_after_a_growing_lag(
    open_page: OpenPage,
) -> None:
    page = open_page("/dashboard")
    order = page.evaluate(
        """async () => {
          const { attentionOrder } = await import("/dashboard/js/ui.js");
          const hand = { status: "paused", paused_reason: "API request", parked: 0 };
          const subs = {
            retrying: [{ status: "retrying", parked: 0, lag: 1 }, false],
            failed: [{ status: "paused", paused_reason: "HTTP 500", parked: 0, lag: 1 }, false],
            parked: [{ status: "active", parked: 3, lag: 0 }, false],
            growing: [{ status: "active", parked: 0, lag: 5000 }, true],
            byHandBehind: [{ ...hand, lag: 9 }, false],
            byHandCaughtUp: [{ ...hand, lag: 0 }, false],
          };
          return Object.entries(subs)
            .sort(([, a], [, b]) => attentionOrder(...a) - attentionOrder(...b))
            .map(([name]) => name);
        }"""
    )
    assert order == ["retrying", "failed", "parked", "growing", "byHandBehind", "byHandCaughtUp"]


def test_the_edit_form_masks_header_values(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("masked"), sub_name()
    subscribe(api, name, stream, receiver.url, headers={"X-Token": "s3cret"}, start="end")
    page = open_page(f"/dashboard/new-subscription?edit={name}")
    value = page.get_by_label("Value")
    expect(value).to_have_value("s3cret")
    # drawn as dots, but no password field: a browser would offer to save it as a login
    expect(value).to_have_attribute("type", "text")

    def masked() -> str:
        return str(value.evaluate("e => getComputedStyle(e).webkitTextSecurity"))

    assert masked() == "disc"
    reveal = page.get_by_role("button", name="Reveal this header")
    expect(reveal).to_have_text("Show")
    expect(reveal).to_have_attribute("aria-pressed", "false")
    reveal.click()
    expect(reveal).to_have_text("Hide")
    expect(reveal).to_have_attribute("aria-pressed", "true")
    assert masked() == "none"
    reveal.click()
    expect(reveal).to_have_text("Show")
    assert masked() == "disc"
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/subscriptions/{name}$"))
    assert status(api, name)["config"]["headers"] == {"X-Token": "s3cret"}


def test_the_overviews_parked_events_lead_to_the_subscriptions_holding_them(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, parking, healthy = unique("parkl"), sub_name(), sub_name()
    receiver.decide(lambda request: Reply(503))
    append(api, stream, 1)
    subscribe(api, parking, stream, receiver.url, max_attempts=1, on_exhausted="park", **FAST)
    wait_until(lambda: status(api, parking)["parked"] == 1, what="one parked event")
    subscribe(api, healthy, stream, receiver.url, start="end")
    page = open_page("/dashboard")
    link = page.get_by_role("link", name="Review and replay them →")
    link.click()
    expect(page).to_have_url(re.compile(r"/dashboard/subscriptions\?status=parked$"))
    parked = page.get_by_role("button", name="Parked", exact=True)
    expect(parked).to_have_attribute("aria-pressed", "true")
    expect(page.locator(f'tr[data-subscription="{parking}"]')).to_contain_text("1 parked")
    expect(page.locator(f'tr[data-subscription="{healthy}"]')).to_have_count(0)


def test_back_after_deleting_does_not_return_to_the_deleted_subscription(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("backdel"), sub_name()
    subscribe(api, name, stream, receiver.url)
    page = open_page(f"/dashboard/subscriptions?q={name}")
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.locator("#status")).to_have_text("active")
    page.get_by_role("button", name="Delete…").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete subscription").click()
    expect(page).to_have_url(re.compile(r"/dashboard/subscriptions$"))
    page.go_back()
    expect(page).to_have_url(re.compile(rf"/dashboard/subscriptions\?q={name}$"))
    expect(page.get_by_role("alert")).to_have_count(0)  # no "No such subscription (404)"


def test_a_double_click_on_an_action_sends_it_once(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("dbl"), sub_name()
    receiver.decide(lambda request: Reply(503))
    append(api, stream, 1)
    subscribe(api, name, stream, receiver.url, max_attempts=1, on_exhausted="park", **FAST)
    wait_until(lambda: status(api, name)["parked"] == 1, what="one parked event")
    page = open_page(f"/dashboard/subscriptions/{name}")
    expect(page.locator("#status")).to_have_text("active")
    sent: list[str] = []

    def posted(request: Any) -> None:
        if request.method == "POST":
            sent.append(request.url.rsplit("/", 1)[-1])

    page.on("request", posted)

    # While the answer is on its way, every action button waits for it.
    held: list[Any] = []
    page.route(re.compile(r"/pause$"), lambda route: held.append(route))
    toggle = page.locator("#toggle-pause")
    with page.expect_request(re.compile(r"/pause$")):
        toggle.dblclick()
    for button in [toggle, page.locator("#reset"), page.locator("#delete")]:
        expect(button).to_be_disabled()
    assert len(held) == 1
    held[0].continue_()
    expect(page.locator("#status")).to_have_text("paused")
    expect(toggle).to_have_text("Resume")
    expect(toggle).to_be_enabled()
    expect(toggle).to_be_focused()
    # The double click's second click landing after the answer (as on a fast server): ignored.
    box = toggle.bounding_box()
    assert box
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    page.mouse.down(click_count=2)
    page.mouse.up(click_count=2)
    toggle.click()  # one click: resumes
    expect(page.locator("#status")).to_have_text("active")
    assert status(api, name)["status"] == "active"

    receiver.decide(None)
    page.locator("#replay-parked").dblclick()
    expect(page.locator("#action-error")).to_contain_text("Replaying 1 parked event")
    wait_until(lambda: receiver.positions()[-1:] == [1], what="the parked event replayed")
    assert sent == ["pause", "resume", "replay"]


def test_a_start_position_typed_without_its_radio_button_is_used(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("typed"), sub_name()
    append(api, stream, 3)
    page = open_page(f"/dashboard/new-subscription?stream={stream}")
    page.fill("#sub-name", name)
    page.fill("#sub-url", receiver.url)
    position = page.locator("input[name=start][value=position]")
    expect(page.locator("input[name=start][value=beginning]")).to_be_checked()
    page.fill("#sub-start-position", "2")  # the radio button left alone
    expect(position).to_be_checked()
    page.get_by_role("button", name="Create subscription").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/subscriptions/{name}$"))
    wait_until(lambda: status(api, name)["position"] == 3, what="caught up")
    assert receiver.positions() == [3]  # #1 and #2 skipped, as asked


def test_the_streams_subscriptions_follow_its_appends(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("lagging"), sub_name()
    append(api, stream, 2)
    subscribe(api, name, stream, receiver.url, start="end")
    api.post(f"/v1/subscriptions/{name}/pause")
    page = open_page(f"/dashboard/streams/{stream}")
    row = page.locator(f'#stream-subscriptions [data-subscription="{name}"]')
    expect(row).to_contain_text("2 / 2")
    append(api, stream, 5, start=3)  # a paused subscription: no delivery, no change to it
    expect(page.locator("#stream-head")).to_have_text("7")
    expect(row).to_contain_text("2 / 7 · 5 behind", timeout=10_000)


def test_leaving_the_page_closes_its_dialog(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("leave"), sub_name()
    subscribe(api, name, stream, receiver.url)
    page = open_page(f"/dashboard/subscriptions?q={name}")
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.locator("#status")).to_have_text("active")
    page.get_by_role("button", name="Delete…").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    page.go_back()  # the dialog would stay over the list, its button doing nothing
    expect(page.locator(f'tr[data-subscription="{name}"]')).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.locator("#subscription-filter")).to_be_editable()
    assert status(api, name)["status"] == "active"


def test_an_opened_response_and_the_focus_stay_as_attempts_come(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("flaky"), sub_name()
    receiver.decide(lambda request: Reply(500, b"boom"))
    append(api, stream, 1)
    subscribe(api, name, stream, receiver.url, max_attempts=0, backoff={"initial": 0.3, "max": 0.3})
    page = open_page(f"/dashboard/subscriptions/{name}")
    first = page.locator('#deliveries tr[data-attempt="1"]')
    first.get_by_text("Response").click()
    expect(first.locator("pre")).to_have_text("boom")
    # Each attempt redraws the log: the row read stays open, the keyboard where it was.
    expect(page.locator('#deliveries tr[data-attempt="4"]')).to_have_count(1)
    expect(first.locator("details")).to_have_attribute("open", "")
    expect(first.locator("summary")).to_be_focused()


def test_the_lists_keep_the_keyboards_place_as_they_refresh(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("kept"), sub_name()
    append(api, stream, 1)
    subscribe(api, name, stream, receiver.url, start="end")
    api.post(f"/v1/subscriptions/{name}/pause")  # so it needs attention on the overview
    rows = {
        f"/dashboard/subscriptions?q={name}": f'#subscriptions-list tr[data-subscription="{name}"]',
        "/dashboard": f'#attention [data-subscription="{name}"]',
    }
    for path, row in rows.items():
        page = open_page(path)
        link = page.locator(row).get_by_role("link", name=name)
        link.focus()
        head = status(api, name)["head"]
        append(api, stream, 1, start=head + 1)  # the lists are read again
        expect(page.locator(row)).to_contain_text(f"1 / {head + 1}")
        expect(link).to_be_focused()


def test_subscriptions_named_dot_or_dot_dot_are_no_broken_links(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream = unique("dots")
    dots = {".": "%2E", "..": "%2E%2E"}  # valid names, but dot segments in any browser's URL
    for escaped in dots.values():
        subscribe(api, escaped, stream, receiver.url)
    try:
        page = open_page(f"/dashboard/subscriptions?q={stream}")
        for name in dots:
            row = page.locator(f'#subscriptions-list tr[data-subscription="{name}"]')
            expect(row).to_contain_text("the API or the Python client")
            expect(row.get_by_role("link", name=name, exact=True)).to_have_count(0)
        expect(page.get_by_role("link", name=stream)).to_have_count(2)  # the stream's are kept

        page = open_page(f"/dashboard/new-subscription?stream={stream}")
        page.fill("#sub-name", "..")  # was sent as PUT /v1/ (a 404 saying nothing useful)
        page.fill("#sub-url", receiver.url)
        page.get_by_role("button", name="Create subscription").click()
        expect(page.locator("#sub-name-error")).to_contain_text("the API or the Python client")
        expect(page).to_have_url(re.compile(r"/dashboard/new-subscription"))
    finally:
        for escaped in dots.values():
            assert api.delete(f"/v1/subscriptions/{escaped}").status_code == 204


def test_a_batch_attempt_shows_the_range_it_carried(
    open_page: OpenPage, api: httpx.Client, receiver: Receiver
) -> None:
    stream, name = unique("batched"), sub_name()
    append(api, stream, 5)
    subscribe(api, name, stream, receiver.url, batch_size=5)
    wait_until(lambda: status(api, name)["position"] == 5, what="the batch delivered")
    page = open_page(f"/dashboard/subscriptions/{name}")
    row = page.locator("#deliveries tbody tr").first
    expect(row.locator('[data-label="position"]')).to_have_text("1\u20135 (5 events)")
