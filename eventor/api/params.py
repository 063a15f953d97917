"""Reading requests: bodies within limits, JSON content types, and query parameters."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import TypeVar
from urllib.parse import parse_qsl

import msgspec
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

from ..errors import InvalidRequest, LimitExceeded
from ..payloads import is_json_content_type
from ..types import ANY, EXISTS, MAX_POSITION, NO_STREAM, ExpectedVersion
from .problems import HTTPProblem

# The helpers below read the ASGI scope directly rather than through Starlette's Request
# properties: on the append path those cost more than the storage does (BENCHMARKS.md). Handlers
# built on Request pass `request.scope` (and `request.receive`).

T = TypeVar("T")
_NO_QUERY: Mapping[str, str] = {}
_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")
_VERSION = re.compile(r"[0-9]{1,30}")  # a version is written as it is read back: digits only


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower-case bytes), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def query(scope: Scope) -> Mapping[str, str]:
    """The query parameters (the first value of each)."""
    raw: bytes = scope["query_string"]
    if not raw:
        return _NO_QUERY
    params: dict[str, str] = {}
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        params.setdefault(key, value)
    return params


def _refuse_content_coding(scope: Scope) -> None:
    for key, value in scope["headers"]:
        if key == b"content-encoding":
            coding = value.decode("latin-1")
            if any(c.strip(" \t").lower() not in ("", "identity") for c in coding.split(",")):
                raise HTTPProblem(
                    415,
                    f"the body is encoded ({coding[:50]!r}), which this server does not decode:"
                    " send it as is, without Content-Encoding",
                    code="unsupported-media-type",
                    headers={"accept-encoding": "identity"},
                )


#: How the OpenAPI document describes read_body's 415.
ENCODED_BODY = "the body comes with a `Content-Encoding` (gzip, ...): send it as is"


async def read_body(
    scope: Scope, receive: Receive, limit: int, *, any_coding: bool = False
) -> bytes:
    """The whole body; 413 as soon as it is known to exceed `limit` bytes; 415 when it comes
    with a content coding (gzip, ...), unless `any_coding`: the server decodes none."""
    if not any_coding:
        _refuse_content_coding(scope)
    declared = header(scope, b"content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise LimitExceeded(f"the request body is {declared} bytes; at most {limit} allowed")
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnect()
    first: bytes = message.get("body", b"")
    if len(first) > limit:
        raise LimitExceeded(f"the request body is over {limit} bytes, the most allowed")
    if not message.get("more_body", False):
        return first  # the common case: one chunk, no copy
    body = bytearray(first)  # grows in place: joining bytes chunk by chunk is quadratic
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        body += message.get("body", b"")
        if len(body) > limit:
            raise LimitExceeded(f"the request body is over {limit} bytes, the most allowed")
        more = message.get("more_body", False)
    return bytes(body)


#: A \uD800-\uDBFF escape not followed by a \uDC00-\uDFFF one.
_HIGH_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})")


def decode_json(decoder: msgspec.json.Decoder[T], body: bytes, what: str) -> T:
    """`body` decoded as `what`, or InvalidRequest (400) saying what to fix."""
    try:
        body.decode()  # JSON is UTF-8; msgspec does not check inside the values it skips
        try:
            return decoder.decode(body)
        except msgspec.ValidationError as exc:
            # msgspec judges the values it has read before the rest: `[1,` is "expected an
            # object", not the truncated body it is. Broken JSON is said as such first.
            try:
                msgspec.json.decode(body)
            except msgspec.ValidationError:
                # A number no decoder holds (1e400), met before the end: is the rest JSON?
                _check_well_formed(body)
            message = _with_member_named(str(exc), body)
            raise InvalidRequest(f"invalid {what}: {message}") from None
    except msgspec.DecodeError as exc:
        if str(exc) == "Input data was truncated" and _HIGH_SURROGATE.search(body):
            # msgspec's words when a \uD800-\uDBFF escape lacks its pair, in a complete body
            raise InvalidRequest(
                "the body is not valid JSON: a \\uD800-\\uDBFF escape must be followed by a"
                " \\uDC00-\\uDFFF one (a lone surrogate is not a character)"
            ) from None
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"the body is not valid UTF-8 (byte {exc.start}), so not JSON either"
        ) from None
    except RecursionError:
        raise InvalidRequest("the body's JSON is nested too deeply") from None


def _check_well_formed(body: bytes) -> None:
    """InvalidRequest unless `body` is well-formed JSON, whatever the size of its numbers."""
    try:
        json.loads(body, parse_int=_any_number, parse_float=_any_number, parse_constant=_no)
    except ValueError as exc:  # JSONDecodeError, and `_no`'s
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None


def _any_number(text: str) -> int:
    return 0


def _no(text: str) -> None:
    raise ValueError(f"{text} is not JSON")


_IN_SOME_MEMBER = re.compile(r"(Expected .+, got `(\w+)`) - at `(\$[^`]*)\[\.\.\.\]`")
_PATH_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_JSON_TYPES = ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"))


def _with_member_named(message: str, body: bytes) -> str:
    """msgspec says `$.headers[...]` for a bad value in an object of any keys: name the key
    (the first member whose value has the type it got), so that the message says what to fix."""
    match = _IN_SOME_MEMBER.fullmatch(message)
    if match is None:
        return message
    expected, got, path = match.groups()
    try:
        node = msgspec.json.decode(body)
        for name, index in _PATH_STEP.findall(path[1:]):
            node = node[int(index)] if index else node[name]
    except (msgspec.DecodeError, LookupError, TypeError, ValueError, RecursionError):
        return message
    if not isinstance(node, dict):
        return message
    for key, value in node.items():
        if _json_type(value) == got:
            return f"{expected} - at `{path}[{msgspec.json.encode(key).decode()}]`"
    return message


def _json_type(value: object) -> str:
    for kind, name in _JSON_TYPES:
        if isinstance(value, kind):
            return name
    return "null" if value is None else "array" if isinstance(value, list) else "object"


def require_json(scope: Scope) -> None:
    """415 unless the body is declared JSON (or not declared at all)."""
    content_type = header(scope, b"content-type")
    if content_type and not is_json_content_type(content_type):
        raise HTTPProblem(
            415,
            f"the body must be JSON: send Content-Type: application/json (got {content_type!r})",
            code="unsupported-media-type",
        )
    if content_type and ";" in content_type:
        charset = _charset(content_type)
        if charset is not None and charset.lower() not in _UTF8_CHARSETS:
            raise HTTPProblem(
                415,
                f"JSON is read as UTF-8 (RFC 8259); got charset={charset!r}:"
                " send the body as UTF-8",
                code="unsupported-media-type",
            )


_UTF8_CHARSETS = ("utf-8", "utf8", "us-ascii")
#: A number as a query parameter gives one: digits, a point, an exponent.
#: Possessive (`++`, `*+`): the digits before and after an optional point could be split in
#: as many ways as there are digits, and a long run of them followed by a bad character made
#: a failed match take quadratic time on the event loop (20,000 digits: 6 s).
_DECIMAL = re.compile(r"[+-]?+(?:[0-9]++(?:\.[0-9]*+)?+|\.[0-9]++)(?:[eE][+-]?+[0-9]++)?+")
#: What separates a media type's parameters: a ";" outside quoted strings (RFC 9110 5.6.6).
_PARAMETERS = re.compile(r'(?:[^;"]|"(?:[^"\\]|\\.)*"?)+')


def _charset(content_type: str) -> str | None:
    """The charset parameter of a media type (None when it has none), read parameter by
    parameter: a quoted value holding ";charset=" is not one, and empty or malformed
    parameters before it are passed over."""
    parameters: list[str] = _PARAMETERS.findall(content_type)[1:]
    for parameter in parameters:
        name, equals, value = parameter.partition("=")
        if equals and name.strip(" \t").lower() == "charset":
            value = value.strip(" \t")
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:].removesuffix('"'))
            return value
    return None


def int_param(
    query: Mapping[str, str],
    name: str,
    default: int | None,
    *,
    low: int | None = None,
    high: int | None = None,
) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if _INTEGER.fullmatch(raw) is None:  # int() would also take "1_000", " 7" and "٣"
        raise _bad(name, f"must be an integer, got {raw!r}")
    value = int(raw)
    if (low is not None and value < low) or (high is not None and value > high):
        raise _bad(name, f"must be {_range(low, high)}, got {value}")
    return value


def number_param(query: Mapping[str, str], name: str, *, low: float, high: float) -> float | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if _DECIMAL.fullmatch(raw) is None:  # float() would also take "1_0", " 5", Arabic digits
        raise _bad(name, f"must be a number of seconds, got {raw!r}")
    value = float(raw)
    if not math.isfinite(value) or not low <= value <= high:
        raise _bad(name, f"must be {_range(low, high)} seconds, got {raw}")
    return value


def choice_param(query: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = query.get(name) or choices[0]
    if raw not in choices:
        raise _bad(name, f"must be one of {', '.join(choices)}; got {raw!r}")
    return raw


def expected_version(query: Mapping[str, str]) -> ExpectedVersion:
    raw = query.get("expected_version")
    if raw is None or raw == "" or raw == ANY:  # empty is absent, as for every parameter
        return ANY
    if raw in (NO_STREAM, EXISTS):
        return raw
    value = int(raw) if _VERSION.fullmatch(raw) else -1
    if not 0 <= value <= MAX_POSITION:
        raise _bad(
            "expected_version",
            f"must be any, no_stream, exists or an integer between 0 and 2^62; got {raw[:100]!r}",
        )
    return value


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low} and {high}"
    return f">= {low}" if low is not None else f"<= {high}"


def _bad(name: str, what: str) -> HTTPProblem:
    return HTTPProblem(400, f"query parameter {name!r} {what}", code="invalid-parameter")
