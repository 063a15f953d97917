"""Subscriptions across a restart: caught-up ones open no stream file to learn so, and a head
the server learns late (after a crash) still reaches them."""

from __future__ import annotations

import signal
import sqlite3

import httpx
from helpers import metric, wait_until

from .helpers import append, subscribe, wait_status
from .receiver import Receiver


def test_caught_up_subscriptions_open_no_stream_at_a_start(make_server):
    """Each used to read its stream first: thousands of them held up a start (and a stop),
    opening every stream's file, with every client request queued behind them."""
    server = make_server()
    with Receiver() as receiver, httpx.Client(base_url=server.url, timeout=10) as c:
        for n in range(5):
            append(c, f"s{n}", 2)
            subscribe(c, f"sub{n}", f"s{n}", receiver.url)
        for n in range(5):
            wait_status(c, f"sub{n}", lambda s: s["position"] == 2)
        assert server.stop(signal.SIGTERM) == 0
        server.restart()
        append(c, "other", 1)
        subscribe(c, "other", "other", receiver.url)
        wait_status(c, "other", lambda s: s["position"] == 1)  # the loops run
        append(c, "s0", 1)  # and the others wake on an append
        wait_status(c, "sub0", lambda s: s["position"] == 3)
        assert metric(c.get("/metrics").text, "eventor_open_streams") == 2  # other, s0
        assert sorted(receiver.positions()) == [1] * 6 + [2] * 5 + [3]


def test_a_head_learnt_after_a_crash_reaches_a_caught_up_subscription(make_server):
    """After a crash the catalog's heads may lag the stream files until the re-check reaches
    them (one stream after another, by name); a subscription at the catalog's head must not
    wait for the re-check (nor for ever) to deliver the events beyond it."""
    server = make_server()
    with Receiver() as receiver, httpx.Client(base_url=server.url, timeout=30) as c:
        for n in range(300):  # re-checked before the last one
            append(c, f"a{n:03d}", 1)
        append(c, "z_lagging", 2)
        subscribe(c, "late", "z_lagging", receiver.url)
        wait_status(c, "late", lambda s: s["position"] == 2)
        c.post("/v1/subscriptions/late/pause")
        append(c, "z_lagging", 3)
        assert server.stop(signal.SIGTERM) == 0
        # As a crash can leave it: the catalog says 2 events, the file holds 5; and the
        # subscription, at 2, resumes as it starts.
        catalog = sqlite3.connect(server.data_dir / "catalog.db")
        with catalog:
            catalog.execute("UPDATE streams SET head = 2 WHERE name = 'z_lagging'")
            catalog.execute("DELETE FROM state WHERE key = 'clean_shutdown'")
            catalog.execute("UPDATE subscriptions SET status = 'active', paused_reason = NULL")
        catalog.close()
        server.restart()
        wait_until(lambda: receiver.positions() == [1, 2, 3, 4, 5], timeout=20)
