"""Errors on the wire: RFC 9457 problem documents for /v1, plain text for the original routes."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

from ..errors import (
    EventorError,
    IdempotencyConflict,
    InvalidRequest,
    LimitExceeded,
    StorageError,
    StorageFull,
    StorageUnavailable,
    StreamNotFound,
    SubscriptionExists,
    SubscriptionNotFound,
    WrongExpectedVersion,
)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:eventor:problem:"

TITLES = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
    507: "Insufficient Storage",
}

_STATUS: list[tuple[type[EventorError], int]] = [
    (InvalidRequest, 400),
    (LimitExceeded, 413),
    (StreamNotFound, 404),
    (SubscriptionNotFound, 404),
    (WrongExpectedVersion, 409),
    (IdempotencyConflict, 409),
    (SubscriptionExists, 409),
    (StorageUnavailable, 503),
    (StorageFull, 507),
    (StorageError, 500),
]

_encoder = msgspec.json.Encoder()
#: Error texts echo what the client sent (a path, a name): no browser may read them as HTML.
_NOSNIFF = {"x-content-type-options": "nosniff"}


class HTTPProblem(Exception):
    """Raised by a route to answer with an error; `code` becomes the problem type."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str = "",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or TITLES.get(status, "error").lower().replace(" ", "-")
        self.headers = {**_NOSNIFF, **headers} if headers else _NOSNIFF
        self.extra = extra


def from_error(error: EventorError) -> HTTPProblem:
    """The HTTP problem for one of Eventor's own errors."""
    status = next((s for cls, s in _STATUS if isinstance(error, cls)), 500)
    extra: dict[str, Any] = {}
    if isinstance(error, WrongExpectedVersion):
        extra = {
            "stream": error.stream,
            "current_version": error.current,
            "expected_version": error.expected,
        }
    return HTTPProblem(status, str(error), code=error.code, **extra)


def problem_response(problem: HTTPProblem) -> Response:
    body = {
        "type": PROBLEM_TYPE_PREFIX + problem.code,
        "title": TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
        **problem.extra,
    }
    return Response(
        _encoder.encode(body),
        problem.status,
        headers=problem.headers,
        media_type=PROBLEM_CONTENT_TYPE,
    )


#: Texts original-api.md gives without the newline Go's http.Error adds to every other one.
EXACT_TEXTS = frozenset(
    {
        "Event must have type specified in x-event-type header",
        "Subscription with this name already exists",
    }
)


def text_response(problem: HTTPProblem) -> Response:
    """A plain-text error as the original answered: the message and a newline, except for the
    texts the spec spells out without one (EXACT_TEXTS), which are sent exactly so."""
    end = "" if problem.detail in EXACT_TEXTS else "\n"
    return Response(
        problem.detail + end, problem.status, headers=problem.headers, media_type="text/plain"
    )
