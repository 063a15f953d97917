"""Payload shapes (introspection's variants), and the bounds of the cache that keeps them."""

from __future__ import annotations

import msgspec

from eventor import payloads
from eventor.payloads import describe


def test_shapes_of_objects_do_not_depend_on_key_order() -> None:
    assert describe(b'{"b": 1, "a": {"z": 0}}', "application/json") == (True, '["a","b"]')
    assert describe(b'{"a": 2, "b": 1}', "application/json") == (True, '["a","b"]')
    many = b"{" + b",".join(b'"k%d": %d' % (i, i) for i in range(100)) + b"}"
    assert (
        describe(many, "application/json")[1]
        == msgspec.json.encode(sorted(f"k{i}" for i in range(100))).decode()
    )


def test_the_shape_cache_keeps_no_long_keys_and_stays_bounded() -> None:
    long_key = "k" * 100_000
    shape = describe(b'{"%s": 1}' % long_key.encode(), "application/json")[1]
    assert shape == f'["{long_key}"]'
    assert all(len(key) < 1000 for keys in payloads._SHAPES for key in keys)
    for n in range(payloads._SHAPES_KEPT + 10):
        describe(b'{"distinct-%d": 1}' % n, "application/json")
    assert 0 < len(payloads._SHAPES) <= payloads._SHAPES_KEPT
    assert describe(b'{"distinct-1": 2}', "application/json") == (True, '["distinct-1"]')
