"""The OpenAPI 3.1 document, built from the routes' own `Doc`s and msgspec types.

The schemas of request and response bodies come from the same msgspec types that validate
requests and render responses, so the document cannot drift from the code. A route without a
`Doc` (and not hidden) makes `build_openapi(strict=True)` raise; the test suite builds it so.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

import msgspec

from .. import __version__
from .origins import WRITE_METHODS
from .problems import PROBLEM_CONTENT_TYPE
from .routing import Doc, Media, Param, Route
from .schemas import Problem

log = logging.getLogger("eventor.api")

REF_TEMPLATE = "#/components/schemas/{name}"
_PATH_PARAM = re.compile(r"{([a-z_]+)(?::path)?}")

DESCRIPTION = """\
Eventor is a durable, strictly ordered HTTP event store with webhook subscriptions.

Two APIs share one store:

- **v1** (`/v1/...`): JSON in and out; errors are RFC 9457 `application/problem+json`
  documents whose `detail` says what to fix.
- **original** (`/streams`, `/introspect`, ...): the 2017 Eventor's routes, served unchanged;
  raw event bodies in, `text/plain` errors.

Positions are 1-based and gap-free within a stream; a stream's `head` is its last position
(0 when empty). Times are RFC 3339 UTC with microseconds.
"""

TAGS = {
    "streams": "Append to and read streams (v1).",
    "subscriptions": "Webhook subscriptions: delivery of a stream's events in order (v1).",
    "original": "The original Eventor's routes, served unchanged for existing clients.",
    "operations": "Liveness, readiness, metrics and this documentation.",
}


ENCODED_SLASH_400 = (
    "a name in the path breaks its rule (the parameter's pattern) or holds an encoded slash"
    " (%2F), which no name may hold"
)
CROSS_ORIGIN_403 = (
    "a browser sent this write from a page of another origin (Sec-Fetch-Site or Origin): refused"
)


class UndocumentedRoutes(ValueError):
    """Some routes have no `Doc` and are not hidden."""


def build_openapi(routes: Iterable[Route], *, strict: bool = True) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes`.

    strict: raise UndocumentedRoutes when a route has no Doc; otherwise list it bare.
    """
    routes = list(routes)
    missing = [f"{r.method} {r.path}" for r in routes if r.doc is None]
    if missing and strict:
        raise UndocumentedRoutes("routes without a Doc: " + ", ".join(missing))
    if missing:
        log.warning("routes without a Doc in /openapi.json: %s", ", ".join(missing))
    builder = _Builder()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if route.doc is not None and route.doc.hidden:
            continue
        path = _PATH_PARAM.sub(r"{\1}", route.path)
        paths.setdefault(path, {})[route.method.lower()] = builder.operation(route)
    tags = sorted(set(builder.tags), key=lambda t: (list(TAGS).index(t) if t in TAGS else 99, t))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Eventor",
            "version": __version__,
            "description": DESCRIPTION,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": [{"name": t, "description": TAGS[t]} if t in TAGS else {"name": t} for t in tags],
        "paths": paths,
        "components": {"schemas": builder.components()},
    }


class _Builder:
    """Collects msgspec types while operations are built; their schemas are made in one go."""

    def __init__(self) -> None:
        self.tags: list[str] = []
        self._types: list[Any] = []
        self._refs: list[dict[str, Any]] = []  # placeholders, filled by components()
        self._operation_ids: set[str] = set()

    def operation(self, route: Route) -> dict[str, Any]:
        doc = route.doc or Doc("(undocumented)", tag="undocumented")
        self.tags.append(doc.tag)
        op: dict[str, Any] = {
            "tags": [doc.tag],
            "summary": doc.summary,
            "operationId": self._operation_id(doc.tag, route),
        }
        if doc.description:
            op["description"] = doc.description
        params = self._parameters(route, doc)
        if params:
            op["parameters"] = params
        if doc.body is not None:
            op["requestBody"] = self._request_body(doc.body)
        responses = {
            str(status): self._response(body, text)
            for status, (body, text) in doc.responses.items()
        }
        if route.names_refuse_encoded_slash and "400" not in responses:
            # The app refuses an encoded slash in any path parameter (app.py), whatever the route.
            body = Problem if route.errors == "problem" else str
            responses["400"] = self._response(body, ENCODED_SLASH_400)
        if route.method in WRITE_METHODS:
            # The app refuses cross-origin writes (origins.py), whatever the route.
            body = Problem if route.errors == "problem" else str
            responses["403"] = self._response(body, CROSS_ORIGIN_403)
        op["responses"] = responses or {"default": {"description": "undocumented"}}
        return op

    def _operation_id(self, tag: str, route: Route) -> str:
        base = f"{tag}_{getattr(route.handler, '__name__', 'handler')}"
        name, n = base, 1
        while name in self._operation_ids:
            n += 1
            name = f"{base}_{n}"
        self._operation_ids.add(name)
        return name

    def _parameters(self, route: Route, doc: Doc) -> list[dict[str, Any]]:
        given = {(p.where, p.name): p for p in doc.params}
        out = []
        for name in _PATH_PARAM.findall(route.path):
            param = given.pop(("path", name), None) or Param(name, {"type": "string"})
            out.append(self._parameter(param, where="path"))
        out.extend(self._parameter(p, where=p.where) for p in given.values())
        return out

    def _parameter(self, param: Param, where: str) -> dict[str, Any]:
        out: dict[str, Any] = {"name": param.name, "in": where}
        if param.description:
            out["description"] = param.description
        if param.required or where == "path":
            out["required"] = True
        out["schema"] = _inline_schema(param.schema)
        return out

    def _request_body(self, body: Any) -> dict[str, Any]:
        if body is bytes:
            return {
                "required": False,
                "content": {"*/*": {"schema": {"type": "string", "description": "any bytes"}}},
            }
        media = body if isinstance(body, Media) else Media("application/json", body)
        described = self._media(media)
        if media.example is not None:
            described["example"] = media.example
        return {"required": True, "content": {media.media_type: described}}

    def _response(self, body: Any, description: str) -> dict[str, Any]:
        out: dict[str, Any] = {"description": description}
        if body is None:
            return out
        if isinstance(body, Media):
            media = body
        elif body is str:
            media = Media("text/plain", str)
        elif body is bytes:
            media = Media("application/octet-stream", bytes)
        elif isinstance(body, type) and issubclass(body, Problem):
            media = Media(PROBLEM_CONTENT_TYPE, body)
        else:
            media = Media("application/json", body)
        out["content"] = {media.media_type: self._media(media)}
        if media.headers:
            out["headers"] = {h.name: self._header(h) for h in media.headers}
        return out

    def _header(self, param: Param) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": _inline_schema(param.schema)}
        if param.description:
            out["description"] = param.description
        if param.required:
            out["required"] = True
        return out

    def _media(self, media: Media) -> dict[str, Any]:
        if media.media_type == "text/event-stream":
            # OpenAPI 3.1 cannot describe the messages; `x-item-schema` does, as 3.2's
            # itemSchema will: one object per message, its `data` a JSON document.
            data = {"contentMediaType": "application/json", "contentSchema": self._schema(media)}
            item = {
                "type": "object",
                "properties": {"id": {"type": "string"}, "event": {"type": "string"}, "data": data},
                "required": ["data"],
            }
            return {"schema": {"type": "string"}, "x-item-schema": item}
        return {"schema": self._schema(media)}

    def _schema(self, media: Media) -> dict[str, Any]:
        if media.schema is str:
            return {"type": "string"}
        if media.schema is bytes:
            return {"type": "string", "description": "any bytes"}
        if isinstance(media.schema, dict):
            return dict(media.schema)
        ref: dict[str, Any] = {}
        self._types.append(media.schema)
        self._refs.append(ref)
        return ref

    def components(self) -> dict[str, Any]:
        """Fill in the body schemas collected so far; return the shared component schemas."""
        if not self._types:
            return {}
        schemas, components = msgspec.json.schema_components(self._types, ref_template=REF_TEMPLATE)
        for ref, schema in zip(self._refs, schemas, strict=True):
            ref.update(schema)
        return dict(sorted(components.items()))


def _inline_schema(schema: Any) -> dict[str, Any]:
    if isinstance(schema, dict):
        return dict(schema)
    out: dict[str, Any] = msgspec.json.schema(schema)
    if "$defs" in out:
        raise ValueError(f"parameter schema {schema!r} needs definitions; use a plain type")
    return out
