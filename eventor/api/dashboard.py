"""The web dashboard: the static files in `eventor/ui`, served as a single-page app.

`/dashboard/<path>` is the file when one exists, else `index.html` (the page's own router reads
the path: deep links work). `/` redirects to `/dashboard`.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .params import header
from .problems import HTTPProblem
from .routing import Doc, Route

UI_DIR = Path(str(resources.files("eventor") / "ui"))

# The page loads nothing from elsewhere and runs no inline script: data shown in it can never
# become code, even if a rendering bug slipped through.
_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    # Revalidate every time (cheap: an ETag), so an upgraded server never serves stale code.
    "cache-control": "no-cache",
}
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".map": "application/json",
}


# Top-level folders of assets: a missing file there is a 404, not the page (a page's path is
# /dashboard, /dashboard/streams/..., /dashboard/subscriptions/..., ...).
ASSET_DIRS = frozenset({"css", "js", "img", "vendor"})


@dataclass(frozen=True, slots=True)
class _File:
    stamp: tuple[int, int]
    body: bytes
    media_type: str
    etag: str


class DashboardRoutes:
    def __init__(self, root: Path = UI_DIR) -> None:
        self._root = root.resolve()
        self._files: dict[Path, _File] = {}

    def routes(self) -> list[Route]:
        hidden = Doc("The web dashboard", hidden=True)
        return [
            Route("GET", "/", self.home, errors="text", doc=hidden),
            Route("GET", "/dashboard", self.page, errors="text", doc=hidden),
            Route("GET", "/dashboard/", self.page, errors="text", doc=hidden),
            Route("GET", "/dashboard/{path:path}", self.page, errors="text", doc=hidden),
        ]

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/dashboard", 307)

    async def page(self, request: Request) -> Response:
        relative: str = request.path_params.get("path", "")
        file = self._file(self._resolve(relative))
        if file is None:
            raise HTTPProblem(404, f"no file {relative!r} in the dashboard")
        headers = {**_HEADERS, "etag": file.etag}
        if header(request.scope, b"if-none-match") == file.etag:
            return Response(status_code=304, headers=headers)
        return Response(file.body, media_type=file.media_type, headers=headers)

    def _resolve(self, relative: str) -> Path | None:
        """The file for `relative`, index.html for a page, None for a missing asset.

        Never anything outside the UI directory.
        """
        if not relative:
            return self._root / "index.html"
        if "\\" not in relative and "\0" not in relative:
            try:
                candidate = (self._root / relative).resolve()
                if candidate.is_relative_to(self._root) and candidate.is_file():
                    return candidate
            except OSError:  # a name too long for the file system, say: no such file
                pass
        if relative.split("/", 1)[0] in ASSET_DIRS or relative == "favicon.svg":
            return None
        return self._root / "index.html"

    def _file(self, path: Path | None) -> _File | None:
        """The file's bytes, read again only when it changed on disk."""
        if path is None:
            return None
        try:
            info = path.stat()
        except OSError:
            return None
        stamp = (info.st_mtime_ns, info.st_size)
        cached = self._files.get(path)
        if cached is not None and cached.stamp == stamp:
            return cached
        body = path.read_bytes()
        media_type = _TYPES.get(path.suffix) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        file = _File(stamp, body, media_type, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
        self._files[path] = file
        return file
