"""Times as Eventor writes them: RFC 3339, UTC, with microseconds (2026-11-28T02:54:41.123456Z)."""

from __future__ import annotations

import time
from datetime import datetime

_second = -1
_second_text = ""


def format_utc(timestamp: float) -> str:
    """`timestamp` (Unix seconds) as RFC 3339 UTC with microseconds."""
    micros = round(timestamp * 1_000_000)
    return _format(micros // 1_000_000, micros % 1_000_000)


def parse_utc(text: str) -> float:
    """A time as `format_utc` writes it, back to Unix seconds."""
    return datetime.fromisoformat(text).timestamp()


def utc_now() -> str:
    """The time now as RFC 3339 UTC with microseconds."""
    micros = time.time_ns() // 1000
    return _format(micros // 1_000_000, micros % 1_000_000)


def _format(second: int, micros: int) -> str:
    global _second, _second_text
    if second != _second:  # the date part changes once a second: format it once
        _second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = second
    return f"{_second_text}.{micros:06d}Z"
