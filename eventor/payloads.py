"""What an event's bytes are: JSON or not, and their shape (for introspection's variants)."""

from __future__ import annotations

import functools

import msgspec

from .types import JSON_CONTENT_TYPE

_KEYS_ONLY = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ANY = msgspec.json.Decoder()
_encode = msgspec.json.Encoder().encode
_KINDS = {b"[": "(array)", b'"': "(string)", b"n": "(null)", b"t": "(boolean)", b"f": "(boolean)"}


@functools.lru_cache(maxsize=256)
def is_json_content_type(content_type: str) -> bool:
    """application/json, or any `+json` type, with or without parameters."""
    mime = content_type.partition(";")[0].strip().lower()
    return mime == JSON_CONTENT_TYPE or mime.endswith("+json")


def describe(data: bytes, content_type: str, *, known_json: bool = False) -> tuple[bool, str]:
    """(is_json, shape) of an event's data.

    The shape of a JSON object is the sorted list of its top-level keys, as JSON text; other
    payloads get a name in parentheses: "(array)", "(number)", "(not JSON)", "(image/png)".
    `known_json` skips re-validating bytes that were already parsed as JSON.
    """
    if not is_json_content_type(content_type):
        return False, f"({content_type.partition(';')[0].strip().lower() or 'no content type'})"
    first = data.lstrip()[:1]
    try:
        if not known_json:
            data.decode()  # JSON is UTF-8; msgspec does not check inside values it skips
        if first == b"{":
            keys = _KEYS_ONLY.decode(data)
            return True, _encode(sorted(keys)).decode()
        if not known_json:
            _ANY.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        # RecursionError: nested deeper than the parser goes; kept, but not as JSON.
        return False, "(not JSON)"
    return True, _KINDS.get(first, "(number)")
