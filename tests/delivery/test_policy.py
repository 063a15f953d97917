"""The retry policy, with injected time and randomness: no real waiting."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from eventor.delivery.policy import ORIGINAL_DELAYS, RetryPolicy, parse_retry_after
from eventor.types import SubscriptionConfig

NOW = 1_800_000_000.0


def test_jittered_backoff_grows_exponentially_between_initial_and_max():
    top = RetryPolicy(initial=1, maximum=10, random=lambda: 1.0)
    assert [top.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    bottom = RetryPolicy(initial=1, maximum=10, random=lambda: 0.0)
    assert [bottom.delay(n) for n in range(1, 7)] == [1, 1, 2, 4, 5, 5]
    half = RetryPolicy(initial=0.5, maximum=300, random=lambda: 0.5)
    assert half.delay(3) == 0.5 * 2 * 2 * 0.75


def test_every_backoff_delay_lies_between_initial_and_max():
    import random

    rng = random.Random(7)
    policy = RetryPolicy(initial=0.25, maximum=20, random=rng.random)
    delays = [policy.delay(n) for n in range(1, 40) for _ in range(50)]
    assert min(delays) >= 0.25
    assert max(delays) <= 20
    assert policy.delay(1) == 0.25


def test_huge_attempt_numbers_do_not_overflow():
    policy = RetryPolicy(initial=1, maximum=300, random=lambda: 1.0)
    assert policy.delay(10_000) == 300


def test_exhaustion_counts_attempts_and_zero_means_forever():
    assert not RetryPolicy(max_attempts=3).exhausted(2)
    assert RetryPolicy(max_attempts=3).exhausted(3)
    assert not RetryPolicy(max_attempts=0).exhausted(10**9)


def test_retry_after_seconds_replaces_the_backoff_capped_at_max():
    policy = RetryPolicy(initial=1, maximum=30, random=lambda: 0.0, clock=lambda: NOW)
    assert policy.delay(1, "7") == 7
    assert policy.delay(1, "3600") == 30
    assert policy.delay(1, "soon") == 1.0  # unreadable: the normal backoff


def test_retry_after_http_date():
    when = format_datetime(datetime.fromtimestamp(NOW + 12, UTC), usegmt=True)
    assert parse_retry_after(when, NOW) == pytest.approx(12)
    past = format_datetime(datetime.fromtimestamp(NOW - 50, UTC), usegmt=True)
    assert parse_retry_after(past, NOW) == 0
    assert parse_retry_after("Tue, 99 Foo 2026", NOW) is None
    # RFC 9110's two obsolete forms, both GMT though asctime's says no zone.
    later = datetime.fromtimestamp(NOW + 12, UTC)
    assert parse_retry_after(later.strftime("%a %b %e %H:%M:%S %Y"), NOW) == pytest.approx(12)
    assert parse_retry_after(later.strftime("%A, %d-%b-%y %H:%M:%S GMT"), NOW) == pytest.approx(12)
    assert parse_retry_after("²", NOW) is None  # a digit to str.isdigit, not to float()
    overflowing = "Sun, 06 Nov 1994 08:49:37 +99999999999999999999"  # OverflowError inside
    assert parse_retry_after(overflowing, NOW) is None
    policy = RetryPolicy(initial=1, maximum=5, random=lambda: 0.0, clock=lambda: NOW)
    assert policy.delay(1, when) == 5


def test_original_schedule_is_fixed_without_jitter():
    policy = RetryPolicy.for_config(SubscriptionConfig("s", "http://x", original=True))
    assert [policy.delay(n, "1") for n in range(1, 5)] == list(ORIGINAL_DELAYS) == [4, 8, 16, 32]
    assert policy.max_attempts == 5
    assert not policy.exhausted(4)
    assert policy.exhausted(5)


def test_v1_config_maps_to_the_policy():
    config = SubscriptionConfig(
        "s", "http://x", max_attempts=9, backoff_initial=0.25, backoff_max=2
    )
    policy = RetryPolicy.for_config(config)
    assert (policy.max_attempts, policy.initial, policy.maximum) == (9, 0.25, 2)


def test_remaining_counts_down_to_a_stored_retry_within_the_longest_wait():
    policy = RetryPolicy(initial=1, maximum=60, clock=lambda: 1000.0)
    assert policy.remaining(1030.0) == 30
    assert policy.remaining(990.0) == 0  # overdue: at once
    assert policy.remaining(5000.0) == 60  # a clock set back stretches no wait past the longest
    original = RetryPolicy(fixed=ORIGINAL_DELAYS, clock=lambda: 1000.0)
    assert original.remaining(5000.0) == ORIGINAL_DELAYS[-1]
