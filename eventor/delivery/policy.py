"""Retry policy: how long to wait before the next attempt, and when to give up.

Time and randomness are injected (`sleep`, `random`, `clock`) so tests need no real waiting.
"""

from __future__ import annotations

import asyncio
import random as _random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime

from ..types import SubscriptionConfig

#: The original Eventor's schedule: 5 attempts in all, these waits between them, no jitter.
ORIGINAL_DELAYS = (4.0, 8.0, 16.0, 32.0)
ORIGINAL_MAX_ATTEMPTS = len(ORIGINAL_DELAYS) + 1


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, within [initial, maximum], or a fixed schedule (the
    original's).

    `max_attempts` 0 retries forever. A `Retry-After` (429/503) replaces the computed delay,
    capped at `maximum`.
    """

    max_attempts: int = 5
    initial: float = 1.0
    maximum: float = 300.0
    fixed: tuple[float, ...] | None = None
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    random: Callable[[], float] = field(default=_random.random, compare=False)
    clock: Callable[[], float] = field(default=time.time, compare=False)

    @classmethod
    def for_config(cls, config: SubscriptionConfig) -> RetryPolicy:
        if config.original:
            return cls(ORIGINAL_MAX_ATTEMPTS, fixed=ORIGINAL_DELAYS)
        return cls(config.max_attempts, config.backoff_initial, config.backoff_max)

    def exhausted(self, failures: int) -> bool:
        """True when `failures` failed attempts on one event are all the policy allows."""
        return self.max_attempts > 0 and failures >= self.max_attempts

    def delay(self, failures: int, retry_after: str | None = None) -> float:
        """Seconds to wait after the `failures`-th failed attempt (1-based)."""
        if self.fixed is not None:
            return self.fixed[min(failures, len(self.fixed)) - 1]
        if retry_after is not None:
            seconds = parse_retry_after(retry_after, self.clock())
            if seconds is not None:
                return min(seconds, self.maximum)
        exponent = min(failures - 1, 64)  # 2**64 * anything is past any maximum
        step = min(self.maximum, self.initial * 2**exponent)
        # "Equal jitter": the upper half of the step, never below `initial` (the spec: delays
        # between backoff.initial and backoff.max). The first retry waits exactly `initial`.
        return float(max(self.initial, step * (0.5 + 0.5 * self.random())))

    @property
    def longest(self) -> float:
        """Seconds of the longest wait this policy may make."""
        return max(self.fixed) if self.fixed is not None else self.maximum

    def remaining(self, until: float) -> float:
        """Seconds from now to `until` (Unix time), within what one wait of this policy may
        be (a clock set back must not stretch a retry past the policy's longest wait)."""
        return min(max(0.0, until - self.clock()), self.longest)

    def latest(self, until: float) -> float:
        """`until` (Unix time), or sooner when this policy never waits that long."""
        return min(until, self.clock() + self.longest)


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds from a Retry-After value (delta seconds or an HTTP date); None if unreadable."""
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²": str.isdigit takes any digit
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # HTTP dates are GMT in all three of RFC 9110's forms; the asctime one says no zone.
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
