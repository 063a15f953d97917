"""`GET /openapi.json` and `GET /docs`: the API's description and its interactive reference.

The page is Swagger UI, vendored in `eventor/ui/vendor/swagger-ui` and served from the package
under `/docs/assets/`: it loads nothing from elsewhere, so it works without internet access.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .openapi import build_openapi
from .params import header
from .problems import HTTPProblem
from .routing import Doc, Media, Route

SWAGGER_UI_VERSION = "5.35.0"
UI_DIR = Path(str(resources.files("eventor") / "ui"))

# name under /docs/assets/ -> (file under eventor/ui, media type)
ASSETS = {
    "swagger-ui-bundle.js": ("vendor/swagger-ui/swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": ("vendor/swagger-ui/swagger-ui.css", "text/css"),
    "apidocs.js": ("apidocs/apidocs.js", "text/javascript"),
    "apidocs.css": ("apidocs/apidocs.css", "text/css"),
}
PAGE = "apidocs/index.html"

# Swagger UI sets inline styles, hence 'unsafe-inline' for styles only; scripts and requests
# stay on this origin.
_PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


class DocsRoutes:
    """Serves the document of `routes()` (all of the app's routes, these included)."""

    def __init__(self, routes: Callable[[], list[Route]], root: Path = UI_DIR) -> None:
        self._routes = routes
        self._root = root
        self._document: bytes | None = None
        self._assets: dict[str, _Asset] = {}

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/openapi.json", self.openapi, doc=OPENAPI_DOC),
            Route("GET", "/docs", self.page, errors="text", doc=PAGE_DOC),
            Route("GET", "/docs/", self.to_page, errors="text", doc=REDIRECT_DOC),
            Route("GET", "/docs/assets/{name}", self.asset, errors="text", doc=ASSET_DOC),
        ]

    def document(self) -> dict[str, Any]:
        """The OpenAPI document (undocumented routes are listed bare and logged, not refused)."""
        return build_openapi(self._routes(), strict=False)

    async def openapi(self, request: Request) -> Response:
        if self._document is None:
            self._document = msgspec.json.encode(self.document())
        return Response(self._document, media_type="application/json")

    async def page(self, request: Request) -> Response:
        page = self._load(PAGE, "text/html; charset=utf-8")
        return Response(page.body, media_type=page.media_type, headers=_PAGE_HEADERS)

    async def to_page(self, request: Request) -> Response:
        return Response(status_code=308, headers={"location": "/docs"})

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            raise HTTPProblem(404, f"no asset {name!r} in the API docs")
        path, media_type = ASSETS[name]
        asset = self._load(path, f"{media_type}; charset=utf-8")
        headers = {"etag": asset.etag, "cache-control": "no-cache"}
        if header(request.scope, b"if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    def _load(self, path: str, media_type: str) -> _Asset:
        asset = self._assets.get(path)
        if asset is None:
            body = (self._root / path).read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            asset = self._assets[path] = _Asset(body, media_type, etag)
        return asset


OPENAPI_DOC = Doc(
    "This API's OpenAPI 3.1 document",
    "Built from the routes' own types: every route, parameter, body and error.",
    tag="operations",
    responses={200: (Media("application/json", {"type": "object"}), "the OpenAPI document")},
)
PAGE_DOC = Doc(
    "Interactive API reference",
    "Swagger UI over `/openapi.json`, served by Eventor itself: it needs no internet access.",
    tag="operations",
    responses={200: (Media("text/html", str), "an HTML page")},
)
REDIRECT_DOC = Doc("Redirects to /docs", hidden=True)
ASSET_DOC = Doc("The API reference page's scripts and styles", hidden=True)
