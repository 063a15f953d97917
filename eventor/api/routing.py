"""A small, fast router: path templates like Starlette's, matched by a dict lookup first.

Starlette's Router tries each route's regex in turn and wraps every request in middleware; on
the append path that costs as much as the storage does (see BENCHMARKS.md), so routes are
indexed by their first path segment. Handlers keep Starlette's style: `async def h(request)
-> Response`, with Starlette's Request and Response, except the hottest routes (appends), which
are raw ASGI (`raw=True`: `async def h(scope, receive, send)`, path params in
`scope["path_params"]`): measured, Request and Response cost them a third of their throughput.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any, Literal
from urllib.parse import unquote, unquote_plus

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .problems import HTTPProblem

Handler = Callable[[Request], Awaitable[Response]]
#: A raw ASGI handler: it sends its own answer, or raises (HTTPProblem, EventorError) before
#: sending anything, and the app renders the error.
RawHandler = Callable[[Scope, Receive, Send], Awaitable[None]]
ErrorStyle = Literal["problem", "text"]

_PARAM = re.compile(r"{([a-z_]+)(:path)?}")
_ENCODED_SLASH = re.compile("%2f", re.IGNORECASE)
_SLASH_MARK = "\ue000"  # a private-use character: stands for an encoded slash while matching


@dataclass(frozen=True)
class Param:
    """A path or query parameter or a header, for the OpenAPI document.

    `schema` is a msgspec type (e.g. an `Annotated[int, Meta(ge=1)]`) or a JSON schema dict.
    """

    name: str
    schema: Any
    description: str = ""
    required: bool = False
    where: Literal["query", "header", "path"] = "query"


@dataclass(frozen=True)
class Media:
    """A body that is not (only) plain JSON, for the OpenAPI document: its media type, its type
    (msgspec type, `str`, `bytes` or a JSON schema dict) and, on a response, its headers.

    For `text/event-stream`, `schema` is the type of each message's `data` (as JSON).
    `example`: a request body that works as it is (what /docs puts in "Try it out").
    """

    media_type: str
    schema: Any = str
    headers: tuple[Param, ...] = ()
    example: Any = None


#: What the append routes answer when the storage cannot take an append (docs, both APIs).
APPEND_503 = (
    "the storage cannot take appends now (its data directory is gone, or the server is"
    " stopping): nothing was appended; try again later"
)
APPEND_507 = "the disk is full: nothing was appended; appends work again once there is room"


@dataclass(frozen=True)
class Doc:
    """What the OpenAPI document says of a route. Types are msgspec types (structs, lists...).

    `responses` maps a status code to (body type or None, description); a body type of `str`
    means a text/plain body, a `Media` any other media type (and response headers).
    `body` is the JSON request body's type (`bytes`: any bytes; a `Media`: that media type).
    """

    summary: str
    description: str = ""
    tag: str = "streams"
    params: tuple[Param, ...] = ()
    body: Any = None
    responses: dict[int, tuple[Any, str]] = field(default_factory=dict)
    hidden: bool = False


#: Path parameters of the original routes that are numbers, read as Go's Atoi reads them.
_GO_NUMBERS = frozenset({"offset", "limit"})


@dataclass(frozen=True)
class Route:
    """One route: method, path template, handler, how errors render, and its documentation."""

    method: str
    path: str
    handler: Handler | RawHandler
    errors: ErrorStyle = "problem"
    doc: Doc | None = field(default=None, compare=False)
    raw: bool = False
    regex: re.Pattern[str] = field(init=False, compare=False)
    #: The query parameters a v1 write takes; None where any are let through (reads, and the
    #: original routes, whose Go router ignored the query).
    query_names: frozenset[str] | None = field(init=False, compare=False)
    _query_bytes: frozenset[bytes] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        takes = None
        if self.path.startswith("/v1/") and self.method not in ("GET", "HEAD", "OPTIONS"):
            params = self.doc.params if self.doc is not None else ()
            takes = frozenset(p.name for p in params if p.where == "query")
        object.__setattr__(self, "query_names", takes)
        object.__setattr__(self, "_query_bytes", frozenset(n.encode() for n in takes or ()))
        pattern = "^"
        last = 0
        for m in _PARAM.finditer(self.path):
            pattern += re.escape(self.path[last : m.start()])
            if m[2]:
                pattern += f"(?P<{m[1]}>.+)"
            elif self.path.startswith("/v1/"):
                # An empty segment matches too, so that the handler refuses the empty name with
                # a 400 (api-v1.md: any other name is a 400). The original's router (Go) did
                # not match empty segments: 404 there.
                pattern += f"(?P<{m[1]}>[^/]*)"
            else:
                pattern += f"(?P<{m[1]}>[^/]+)"
            last = m.end()
        pattern += re.escape(self.path[last:]) + r"\Z"  # not $: it matches before a final \n
        object.__setattr__(self, "regex", re.compile(pattern))

    @property
    def names_refuse_encoded_slash(self) -> bool:
        """Whether some path parameter here is a name that an encoded slash makes a 400."""
        params = {m[1]: "/" for m in _PARAM.finditer(self.path)}
        return self.refuses_encoded_slash(params)

    def refuses_encoded_slash(self, params: dict[str, str]) -> bool:
        """Whether these path parameters, one holding an encoded slash (%2F), are a 400 here
        (see app.py): no name may hold one. On the original's subscription routes it is just
        a name no subscription has; an original `offset` or `limit` holding one is just not
        a number (read as 0, as original-api.md reads anything non-numeric)."""
        if self.path.startswith("/subscriptions/"):
            return False
        return any("/" in value for key, value in params.items() if key not in _GO_NUMBERS)

    @property
    def key(self) -> str:
        """The route's literal leading segments, at most two: its bucket in the router."""
        literal = []
        for segment in self.path.split("/")[1:3]:
            if "{" in segment:
                break
            literal.append(segment)
        return "/".join(literal)

    def unknown_query(self, raw: bytes) -> HTTPProblem | None:
        """The 400 for a query parameter this route does not take (a v1 write's only: there a
        misspelt `expected_version` would make a conditional append an unconditional one)."""
        takes = self.query_names
        if takes is None:
            return None
        for part in raw.split(b"&"):  # as parse_qsl splits; the names decoded only if need be
            name = part.partition(b"=")[0]
            if not name or name in self._query_bytes:
                continue
            key = unquote_plus(name.decode("latin-1"))  # as query() reads it
            if key not in takes:
                close = get_close_matches(key, takes, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                known = f"takes only {', '.join(sorted(takes))}" if takes else "takes none"
                return HTTPProblem(
                    400,
                    f"unknown query parameter {key[:100]!r}{hint}: this route {known}",
                    code="invalid-parameter",
                )
        return None


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._index: dict[str, list[Route]] = {}
        for route in routes:
            self._index.setdefault(route.key, []).append(route)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """(route, path params, []) on a match; (None, {}, allowed methods) otherwise."""
        segments = path.split("/", 3)
        one = segments[1] if len(segments) > 1 else ""
        two = "/".join(segments[1:3])
        allowed: list[str] = []
        for key in (two, one) if two != one else (one,):
            for route in self._index.get(key, ()):
                m = route.regex.match(path)
                if m is None:
                    continue
                if route.method == method or (method == "HEAD" and route.method == "GET"):
                    return route, m.groupdict(), []
                allowed.append(route.method)
        return None, {}, allowed

    def match_encoded_slashes(
        self, method: str, raw_path: bytes | None
    ) -> tuple[Route | None, dict[str, str]]:
        """Match the raw path with each encoded slash (%2F) kept inside its segment: the route
        meant for `method`, else one meant for another method (None when the raw path matches
        no route at all).

        The server decodes `a%2Fb` into `a/b` before routing, so a name holding an encoded
        slash matches no route, or another one (`x%2Fevents` is the stream `x/events`, not the
        events of `x`); this finds the route it was meant for, so that the bad name can be
        refused as such (400) rather than as an unknown page (404) or served as another.
        """
        if not raw_path or b"%2f" not in raw_path.lower():
            return None, {}
        marked = unquote(_ENCODED_SLASH.sub(_SLASH_MARK, raw_path.decode("latin-1")))
        route, params, allowed = self.match(method, marked)
        if route is None and allowed:
            route, params, _ = self.match(allowed[0], marked)
        if route is None:
            return None, {}
        return route, {k: v.replace(_SLASH_MARK, "/") for k, v in params.items()}
