"""create_app: the composition root. Storage, core and routes are wired here and nowhere else."""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter
from typing import Any, cast

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..durations import Durations
from ..errors import EventorError, InvalidName
from ..failures import Throttled, printable
from ..names import check_stream_name
from ..open_files import OpenFilesWatch
from ..settings import Settings
from ..storage.base import Storage, open_storage
from ..store import EventStore
from ..subscriptions import SubscriptionService
from .compat import OriginalRoutes
from .compat_subscriptions import OriginalSubscriptionRoutes
from .dashboard import DashboardRoutes
from .docs import DocsRoutes
from .ops import ErrorAnswers, OpsRoutes, RequestDurations, SubscriptionCollector
from .origins import cross_origin_write
from .params import header
from .problems import HTTPProblem, from_error, problem_response, text_response
from .routing import ErrorStyle, Handler, RawHandler, Route, Router
from .stats import StatsRoutes, StatsSampler
from .streams import StreamRoutes
from .subscription_schemas import MAX_CONFIG_BODY
from .subscriptions import SubscriptionRoutes

log = logging.getLogger("eventor.api")


class EventorApp:
    """The ASGI application. Its lifespan opens and closes the storage."""

    def __init__(self, settings: Settings, storage: Storage | None = None) -> None:
        self.settings = settings
        self.storage = storage or open_storage(settings.data_dir, settings)
        self.store = EventStore(self.storage, settings.limits)
        self.subscriptions = SubscriptionService(self.store, self.storage, settings)
        self.error_answers = ErrorAnswers()
        self.request_durations = Durations()
        self._server_errors: dict[tuple[str, str, str], Throttled] = {}
        self.ops = OpsRoutes(
            self.storage,
            extra_collectors=[
                SubscriptionCollector(
                    self.subscriptions.stats,
                    self.subscriptions.progress,
                    self.subscriptions.delivery_durations,
                ),
                self.error_answers,
                RequestDurations(self.request_durations),
            ],
        )
        self.stats = StatsSampler(self.storage, subscription_stats=self.subscriptions.stats)
        self.open_files = OpenFilesWatch()
        config_body = min(MAX_CONFIG_BODY, settings.limits.max_request_bytes)
        routes: list[Route] = [
            *StreamRoutes(self.store, subscriptions_of=self.subscriptions.names_for).routes(),
            *OriginalRoutes(self.store, settings.limits).routes(),
            *SubscriptionRoutes(self.subscriptions, config_body).routes(),
            *OriginalSubscriptionRoutes(self.subscriptions, config_body).routes(),
            *self.ops.routes(),
            *StatsRoutes(self.store, self.stats).routes(),
            *DashboardRoutes().routes(),
            *DocsRoutes(lambda: self.router.routes).routes(),
        ]
        self.router = Router(routes)

    async def startup(self) -> None:
        await self.storage.open()
        await self.subscriptions.start()
        self.stats.start()
        self.open_files.start()

    def begin_shutdown(self) -> None:
        """A stop was asked for: end long polls and live streams so the server can drain.
        Asked again, webhook requests in flight are abandoned rather than waited for."""
        if self.store.stopping:
            self.subscriptions.hurry()
        self.store.begin_shutdown()
        self.stats.interrupt()

    async def shutdown(self) -> None:
        await self.open_files.stop()
        await self.stats.stop()
        await self.subscriptions.stop()
        await self.storage.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            started = perf_counter()
            try:
                await self._http(scope, receive, send)
            finally:
                self.request_durations.observe(
                    (scope["method"], scope.get(_ROUTE, _NO_ROUTE)), perf_counter() - started
                )
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        route, params, allowed = self.router.match(method, path)
        meant: Route | None = None
        raw_path: bytes | None = scope.get("raw_path")
        if raw_path is not None and b"%2" in raw_path:
            # Routed by the raw path where an encoded slash (%2F) makes it another route than
            # the decoded one: `/v1/streams/x%2Fevents` is the stream `x/events` (a bad name),
            # not an append to `x`.
            meant, meant_params = self.router.match_encoded_slashes(method, raw_path)
            if meant is None or meant is route:
                meant = None
            elif meant.refuses_encoded_slash(meant_params):
                route = None
            elif meant.method != method and not (method == "HEAD" and meant.method == "GET"):
                route = meant = None  # another method's route: not the decoded path's either
            else:
                # A name no subscription has, answered as such (DELETE: "Deleted"; pause: 400),
                # or an original offset or limit that is not a number.
                route, params, meant = meant, meant_params, None
        if route is None:
            style: ErrorStyle = "problem" if path.startswith("/v1/") or path == "/v1" else "text"
            if "GET" in allowed:
                allowed.append("HEAD")  # served on every GET route
            if meant is not None:
                response = self._render(_slash_in_name(meant_params), meant.errors)
            elif method == "OPTIONS" and allowed:
                response = _preflight(allowed, scope, shared=_shared(path))
            elif allowed:
                problem = HTTPProblem(
                    405, f"{method} is not allowed here; use {', '.join(allowed)}"
                )
                response = self._render(problem, style)
                response.headers["allow"] = ", ".join(allowed)
            elif style == "problem":
                shown = path if len(path) <= 200 else path[:200] + "..."
                detail = f"no route here takes {method} {shown!r}: /docs lists the routes"
                response = self._render(HTTPProblem(404, detail), style)
            else:  # the original's words (Go's net/http)
                response = self._render(HTTPProblem(404, "404 page not found"), style)
            if method in _CORS_METHODS and _shared(path):
                response.headers["access-control-allow-origin"] = "*"
            await response(scope, receive, send)
            return
        scope[_ROUTE] = route.path
        refused = cross_origin_write(scope)
        if refused is not None:
            await self._render(HTTPProblem(403, refused, code="cross-origin"), route.errors)(
                scope, receive, send
            )
            return
        scope["path_params"] = params
        if scope["query_string"] and route.query_names is not None:
            unknown = route.unknown_query(scope["query_string"])
            if unknown is not None:
                await self._render(unknown, route.errors)(scope, receive, send)
                return
        try:
            if route.raw:
                await cast(RawHandler, route.handler)(scope, receive, send)
                return
            response = await cast(Handler, route.handler)(Request(scope, receive))
        except ClientDisconnect:
            return  # nobody to answer
        except asyncio.CancelledError:
            if not self.store.stopping:
                raise
            # The server stops and cut this request short (its body never came): it was not
            # done, and the client may send it again.
            stopping = HTTPProblem(503, "the server stopped before this request was done")
            response = self._render(stopping, route.errors)
        except HTTPProblem as problem:
            response = self._render(problem, route.errors)
        except EventorError as error:
            answer = from_error(error)
            if answer.status >= 500:  # the server's trouble, not the client's: say so
                # A full disk (507) or a data dir gone (503) is every stream's trouble: once
                # for the route. Anything else may be one stream's (a damaged file): once for
                # each, so that one does not hide another.
                where = route.path if answer.status in (503, 507) else path
                self._server_error((method, where, answer.detail)).log(
                    logging.ERROR,
                    "%s %s: %d %s",
                    method,
                    printable(path),
                    answer.status,
                    printable(answer.detail),
                )
            response = self._render(answer, route.errors)
        except Exception as exc:
            self._server_error((method, path, type(exc).__qualname__)).log(
                logging.ERROR, "error in %s %s", method, printable(path), exc_info=exc
            )
            response = self._render(HTTPProblem(500, "internal server error"), route.errors)
        if method in _CORS_METHODS and _shared(path):
            response.headers["access-control-allow-origin"] = "*"
        try:
            await response(scope, receive, send)
        except asyncio.CancelledError:
            if not self.store.stopping:
                raise
            # A long answer to a slow reader outlasted the stop's grace period: it is cut
            # short (the client sees the connection end early), which uvicorn says in one
            # line; the cancellation's traceback would say nothing more.
            log.info("%s %s: the answer was cut short by the stop", method, printable(path))

    def _server_error(self, key: tuple[str, str, str]) -> Throttled:
        """Each failure at each key (a route, or a path) is logged once a minute: while the
        disk is full, say, every request meets the same one."""
        throttled = self._server_errors.get(key)
        if throttled is None:
            if len(self._server_errors) >= _MAX_THROTTLED:
                self._server_errors.clear()
            throttled = self._server_errors[key] = Throttled(log)
        return throttled

    def _render(self, problem: HTTPProblem, style: ErrorStyle) -> Response:
        self.error_answers.count(problem.status)
        return problem_response(problem) if style == "problem" else text_response(problem)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                except Exception as exc:
                    log.exception("shutdown failed")
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return


#: Reads are allowed from any origin (original-api.md), whatever their answer...
_CORS_METHODS = ("GET", "HEAD")
#: ...but for the subscriptions': they show receivers' credentials (`headers`, a URL's
#: user:password), the attempt log their answers. Any web page an operator opened could
#: read them; the dashboard is same-origin and needs no CORS.
_PRIVATE = ("/subscriptions", "/v1/subscriptions")
_PRIVATE_UNDER = ("/subscriptions/", "/v1/subscriptions/")


def _shared(path: str) -> bool:
    """Whether reads of `path` are allowed from any origin (CORS)."""
    return path not in _PRIVATE and not path.startswith(_PRIVATE_UNDER)


#: Where the scope keeps the matched route's template, for the request durations' label.
_ROUTE = "eventor.route"
_NO_ROUTE = "none"
#: Distinct 5xx failures whose logging is throttled at once (then the count starts afresh).
_MAX_THROTTLED = 1000


def _slash_in_name(params: dict[str, str]) -> HTTPProblem:
    """The 400 for a path parameter that held an encoded slash (no name may hold one)."""
    name, value = next((k, v) for k, v in params.items() if "/" in v)
    if name == "stream":
        try:
            check_stream_name(value)
        except InvalidName as error:
            return from_error(error)
    return HTTPProblem(
        400,
        f"path parameter {name!r} must not contain '/' (%2F), got {value!r}",
        code="invalid-name",
    )


def _preflight(allowed: list[str], scope: Scope, *, shared: bool = True) -> Response:
    """OPTIONS: the methods of the path; for a GET route, a CORS preflight answer too (reads
    are allowed from any origin, original-api.md), whatever headers the browser asks for,
    unless the path is not `shared`."""
    response = Response(status_code=204, headers={"allow": ", ".join(allowed)})
    if "GET" in allowed and shared:
        response.headers["access-control-allow-origin"] = "*"
        response.headers["access-control-allow-methods"] = "GET, HEAD"
        asked = header(scope, b"access-control-request-headers")
        if asked:
            response.headers["access-control-allow-headers"] = asked
        response.headers["access-control-max-age"] = "600"
    return response


def create_app(settings: Settings | None = None, **overrides: Any) -> EventorApp:
    """The Eventor ASGI app for `settings` (defaults, with keyword overrides)."""
    from dataclasses import replace

    return EventorApp(replace(settings or Settings(), **overrides))
