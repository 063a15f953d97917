"""What an event's bytes are: JSON or not, and their shape (for introspection's variants)."""

from __future__ import annotations

import functools
import re

import msgspec

from .types import JSON_CONTENT_TYPE

_KEYS_ONLY = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ANY = msgspec.json.Decoder()
_encode = msgspec.json.Encoder().encode
_JSON_STARTS = frozenset(bytes([c]) for c in b'{["-0123456789tfn')
_KINDS = {b"[": "(array)", b'"': "(string)", b"n": "(null)", b"t": "(boolean)", b"f": "(boolean)"}
#: Object shapes by their keys in the order they came. Sorting and encoding the keys cost more
#: than decoding them (1.3 of 2.3 µs an event), and a stream carries few shapes. Bounded: it
#: starts afresh when full, and keeps only objects whose keys are few and short (at most
#: ~4096 x 2 x 512 characters in all, however large the keys clients send).
_SHAPES: dict[tuple[str, ...], str] = {}
_SHAPES_KEPT = 4096
_KEYS_KEPT = 64
_KEY_CHARS_KEPT = 512


_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e]|\\[\t \x21-\x7e])*"'
# Possessive (`*+`): the whitespace around a `;` cannot be split between repetitions in many
# ways, which made a failed match backtrack exponentially ("a/b" + " ; " * 20 + "!" held the
# event loop for minutes).
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*+;[ \t]*+(?:{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))?+)*+[ \t]*+"
)


#: Characters a header value may not hold (tabs it may: RFC 9110). An event's content type
#: becomes the Content-Type of its deliveries.
NOT_IN_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def is_media_type(text: str) -> bool:
    """`type/subtype` with optional `; name=value` parameters, in ASCII (RFC 9110 8.3.1)."""
    return _MEDIA_TYPE.fullmatch(text) is not None


@functools.lru_cache(maxsize=256)
def is_json_content_type(content_type: str) -> bool:
    """application/json, or any `+json` type, with or without parameters."""
    mime = content_type.partition(";")[0].strip().lower()
    return mime == JSON_CONTENT_TYPE or mime.endswith("+json")


def describe(data: bytes, content_type: str, *, known_json: bool = False) -> tuple[bool, str]:
    """(is_json, shape) of an event's data.

    `is_json`: the content type is JSON and the bytes parse as JSON. The shape comes from the
    bytes alone, whatever the content type says (the original Eventor ignored it, and its
    clients often sent JSON as a form): a JSON object's shape is the sorted list of its
    top-level keys, as JSON text; other JSON values are "(array)", "(string)", "(null)",
    "(boolean)", "(number)"; bytes that are not JSON are "(not JSON)" under a JSON content
    type, else named after their content type, e.g. "(image/png)".
    `known_json` skips re-validating bytes that were already parsed as JSON.
    """
    json_type = is_json_content_type(content_type)
    shape = _json_shape(data, known_json)
    if shape is not None:
        return json_type, shape
    if json_type:
        return False, "(not JSON)"
    return False, f"({content_type.partition(';')[0].strip().lower() or 'no content type'})"


def _json_shape(data: bytes, known_json: bool) -> str | None:
    """The shape of `data` as JSON; None when it is not JSON."""
    first = data.lstrip()[:1]
    if not first or first not in _JSON_STARTS:
        return None  # saves decoding a binary body just to learn it is not JSON
    try:
        if not known_json:
            data.decode()  # JSON is UTF-8; msgspec does not check inside values it skips
        if first == b"{":
            return _object_shape(_KEYS_ONLY.decode(data))
        if not known_json:
            _ANY.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        # RecursionError: nested deeper than the parser goes; kept, but not as JSON.
        return None
    return _KINDS.get(first, "(number)")


def _object_shape(keys: dict[str, msgspec.Raw]) -> str:
    """The sorted list of an object's keys, as JSON text."""
    order = tuple(keys)
    shape = _SHAPES.get(order)
    if shape is None:
        shape = _encode(sorted(keys)).decode()
        if len(order) <= _KEYS_KEPT and sum(map(len, order)) <= _KEY_CHARS_KEPT:
            if len(_SHAPES) >= _SHAPES_KEPT:
                _SHAPES.clear()
            _SHAPES[order] = shape
    return shape
