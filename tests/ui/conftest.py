"""Fixtures for the dashboard's tests: one real server per module, Chromium driven by Playwright,
pages that fail their test on any console error, and a real webhook receiver."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from conftest import ServerProcess
from delivery.receiver import Receiver

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
NARROW = {"width": 360, "height": 740}
#: The dashboard's server: events up to 64 KiB, so a test can provoke a 413 cheaply.
SERVER_ARGS = ("--durability", "off", "--max-event-bytes", "65536")


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of the module's own: counts on the overview are the module's alone."""
    base = tmp_path_factory.mktemp("ui")
    server = ServerProcess(base / "data", base / "server.log", *SERVER_ARGS).start()
    yield server
    server.stop()


@pytest.fixture
def api(ui_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ui_server.url, timeout=10) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install the Debian package `chromium`")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is missing: pip install playwright"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class ConsoleWatch:
    """Collects console errors and uncaught page errors; `allow` expects some by pattern."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@pytest.fixture
def console() -> ConsoleWatch:
    return ConsoleWatch()


@pytest.fixture
def open_page(
    browser: Browser, ui_server: ServerProcess, console: ConsoleWatch
) -> Iterator[Callable[..., Page]]:
    """open_page(path, viewport=DESKTOP, color_scheme="light") -> a Page at `path`.

    Any console error or page error fails the test (unless `console.allow`ed), and so does
    any dialog the page did not ask for (an alert() would mean injected script ran).
    """
    contexts: list[Any] = []

    def open_(path: str, viewport: dict[str, int] = DESKTOP, color_scheme: str = "light") -> Page:
        context = browser.new_context(
            base_url=ui_server.url,
            viewport=viewport,
            color_scheme=color_scheme,  # type: ignore[arg-type]
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(5000)
        page.on(
            "console",
            lambda m: (
                console.errors.append(f"console: {m.text} at {page.url}")
                if m.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda e: console.errors.append(f"page error: {e} at {page.url}"))
        page.on("dialog", lambda d: console.errors.append(f"unexpected dialog: {d.message}"))
        page.goto(path)
        return page

    yield open_
    for context in contexts:
        context.close()
    unexpected = console.unexpected()
    assert not unexpected, "errors in the browser:\n" + "\n".join(unexpected)
