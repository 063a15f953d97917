"""The dashboard as files over HTTP: a single page at every /dashboard path, its assets, and `/`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import httpx
import pytest
from conftest import ServerProcess
from helpers import raw_request

UI = Path(str(resources.files("eventor") / "ui"))
PAGES = [
    "/dashboard",
    "/dashboard/",
    "/dashboard/streams",
    "/dashboard/streams/orders",
    "/dashboard/streams/a.b:c-1",
    "/dashboard/streams/index.html",
    "/dashboard/subscriptions",
    "/dashboard/subscriptions/billing",
    "/dashboard/new-subscription",
    "/dashboard/no/such/page",
    # A name too long for any file system (ENAMETOOLONG was a 500 with a traceback logged).
    "/dashboard/" + "a" * 300,
    "/dashboard/streams/" + "b" * 5000,
]


@pytest.fixture
def web(ui_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ui_server.url, timeout=10) as client:
        yield client


def test_root_redirects_to_the_dashboard(web: httpx.Client) -> None:
    r = web.get("/")
    assert r.status_code == 307
    assert r.headers["location"] == "/dashboard"


@pytest.mark.parametrize("path", PAGES)
def test_every_dashboard_path_is_the_page(web: httpx.Client, path: str) -> None:
    r = web.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.content == (UI / "index.html").read_bytes()
    # No inline script may run, whatever data the page shows.
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp


def _imports(text: str) -> set[str]:
    found = re.findall(r"""(?:from|import)\s*\(?\s*["'](\.{1,2}/[^"']+)["']""", text)
    return set(found)


def test_every_asset_the_page_loads_is_served_with_its_type(web: httpx.Client) -> None:
    """index.html's assets and, transitively, every module they import (incl. page modules)."""
    page = (UI / "index.html").read_text()
    queue = re.findall(r'<(?:link|script)[^>]+(?:href|src)="(/dashboard/[^"]+)"', page)
    queue += [f"/dashboard/js/pages/{p.name}" for p in (UI / "js" / "pages").glob("*.js")]
    seen: set[str] = set()
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        r = web.get(url)
        assert r.status_code == 200, url
        expected = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
        assert r.headers["content-type"].startswith(expected[Path(url).suffix]), url
        if url.endswith(".js"):
            base = url.rsplit("/", 1)[0]
            for target in _imports(r.text):
                resolved = httpx.URL(f"http://x{base}/").join(target).path
                queue.append(resolved)
    assert "/dashboard/js/main.js" in seen
    assert "/dashboard/css/app.css" in seen
    assert len([u for u in seen if u.endswith(".js")]) >= 10


def test_assets_revalidate_with_an_etag(web: httpx.Client) -> None:
    first = web.get("/dashboard/css/app.css")
    assert first.headers["cache-control"] == "no-cache"
    etag = first.headers["etag"]
    again = web.get("/dashboard/css/app.css", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize("path", ["/dashboard/js/nope.js", "/dashboard/css/x.css"])
def test_a_missing_asset_is_a_404_not_the_page(web: httpx.Client, path: str) -> None:
    r = web.get(path)
    assert r.status_code == 404
    assert "nope.js" in r.text or "x.css" in r.text


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/../../../../etc/passwd",
        "/dashboard/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/dashboard/js/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/dashboard/%2fetc%2fpasswd",
    ],
)
def test_nothing_outside_the_ui_directory_is_served(ui_server: ServerProcess, path: str) -> None:
    status, _, body = raw_request(ui_server.url, "GET", path)
    assert b"root:" not in body
    assert status in (200, 400, 404)


def test_the_ui_ships_as_package_data() -> None:
    """pyproject's package-data glob must take every file the page needs (no build step)."""
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["eventor"]
    assert "ui/**/*" in globs
    files = [p for p in UI.rglob("*") if p.is_file() and "vendor" not in p.parts]
    assert {p.suffix for p in files} <= {".html", ".js", ".css", ".svg"}
