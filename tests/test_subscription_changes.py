"""Changes to subscriptions racing each other or a failing disk, driven in process (the
interleavings below cannot be timed from outside), with real storage and a real receiver."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from delivery.receiver import Receiver, Reply

from eventor.api.app import EventorApp
from eventor.clock import parse_utc
from eventor.delivery.loop import SubscriptionLoop
from eventor.errors import StorageError
from eventor.settings import Settings
from eventor.storage.sqlite import subscriptions as subscriptions_sql
from eventor.subscriptions import SubscriptionSpec
from eventor.types import ACTIVE, ANY, DeliveryAttempt, NewEvent, Subscription, SubscriptionConfig


async def started(data: Path) -> EventorApp:
    app = EventorApp(Settings(data_dir=data))
    await app.startup()
    for n in range(3):
        await app.store.append("s", [NewEvent("T", b'{"n": %d}' % n)], ANY)
    return app


def slow_saves(storage: Any, seconds: float) -> None:
    """Every `storage.save_subscription` from now on takes `seconds` more (a slow disk)."""
    save = storage.save_subscription

    async def slow_save(subscription, *pending):  # type: ignore[no-untyped-def]
        await asyncio.sleep(seconds)
        await save(subscription, *pending)

    storage.save_subscription = slow_save


class FullDisk:
    """`storage.save_progress`, failing as on a full disk while `full` is True."""

    def __init__(self, storage: Any) -> None:
        self.full = False
        save = storage.save_progress

        async def save_progress(progress, log_size):  # type: ignore[no-untyped-def]
            if self.full:
                raise StorageError("the catalog failed: database or disk is full")
            await save(progress, log_size)

        storage.save_progress = save_progress


def test_puts_racing_a_delete_make_one_subscription(tmp_path: Path) -> None:
    """A PUT queued behind a DELETE and a PUT after it used to run side by side: two loops,
    every event delivered twice, and one loop left delivering after a later DELETE."""

    async def main(receiver: Receiver) -> None:
        app = await started(tmp_path / "data")
        try:
            service = app.subscriptions
            spec = SubscriptionSpec(stream="s", url=receiver.url)
            await service.put("sub", spec)
            await asyncio.to_thread(receiver.wait_count, 3)
            deleting = asyncio.create_task(service.delete("sub"))
            await asyncio.sleep(0)  # the delete holds the lock
            first = asyncio.create_task(service.put("sub", spec))
            await deleting
            second = asyncio.create_task(service.put("sub", spec))
            outcomes = await asyncio.gather(first, second)
            assert [created for _, created in outcomes] == [True, False]
            requests = await asyncio.to_thread(receiver.wait_count, 6)
            assert [r.position for r in requests] == [1, 2, 3, 1, 2, 3]
            assert await service.delete("sub")
            loops = [t for t in asyncio.all_tasks() if t.get_name() == "subscription:sub"]
            assert all(t.done() for t in loops)
            await app.store.append("s", [NewEvent("T", b"{}")], ANY)
            await asyncio.sleep(0.2)  # a stray loop would deliver 4 within milliseconds
            assert len(receiver.received()) == 6
        finally:
            await app.shutdown()

    with Receiver() as receiver:
        asyncio.run(main(receiver))


def test_an_update_that_cannot_be_stored_is_not_applied(tmp_path: Path) -> None:
    """A PUT whose write fails answers an error and leaves the old configuration in force, so
    that the client's retry writes it (it used to be applied, and the retry found no change)."""

    async def main(receiver: Receiver) -> None:
        app = await started(tmp_path / "data")
        storage = app.storage
        save = storage.save_subscription
        failures = 1

        async def failing_save(subscription, *pending):  # type: ignore[no-untyped-def]
            nonlocal failures
            if failures:
                failures -= 1
                raise StorageError("the catalog failed: database or disk is full")
            await save(subscription, *pending)

        try:
            service = app.subscriptions
            await service.put("sub", SubscriptionSpec(stream="s", url=receiver.url))
            storage.save_subscription = failing_save  # type: ignore[method-assign]
            moved = SubscriptionSpec(stream="s", url=receiver.url + "moved")
            with pytest.raises(StorageError):
                await service.put("sub", moved)
            assert service.get("sub").config.url == receiver.url
            _, created = await service.put("sub", moved)  # the retry
            assert not created
            assert service.get("sub").config.url == receiver.url + "moved"
        finally:
            await app.shutdown()
        app = EventorApp(Settings(data_dir=tmp_path / "data"))
        await app.startup()
        try:
            assert app.subscriptions.get("sub").config.url == receiver.url + "moved"
        finally:
            await app.shutdown()

    with Receiver() as receiver:
        asyncio.run(main(receiver))


def test_an_update_that_cannot_be_stored_is_not_used_either(tmp_path: Path) -> None:
    """An update made while a request is in flight, whose write fails, sends nothing to the
    new URL: it is applied only once stored."""

    async def main(receiver: Receiver) -> None:
        app = await started(tmp_path / "data")
        storage = app.storage
        save = storage.save_subscription

        async def slow_failing_save(subscription, *pending):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.5)  # the request in flight ends meanwhile
            raise StorageError("the catalog failed: database or disk is full")

        try:
            service = app.subscriptions
            receiver.script(Reply(delay=0.3))
            await service.put("sub", SubscriptionSpec(stream="s", url=receiver.url + "/old"))
            await asyncio.to_thread(receiver.wait_count, 1)
            storage.save_subscription = slow_failing_save  # type: ignore[method-assign]
            with pytest.raises(StorageError):
                await service.put("sub", SubscriptionSpec(stream="s", url=receiver.url + "/new"))
            storage.save_subscription = save  # type: ignore[method-assign]
            requests = await asyncio.to_thread(receiver.wait_count, 3)
            assert [r.path for r in requests] == ["/hook/old"] * 3
        finally:
            await app.shutdown()

    with Receiver() as receiver:
        asyncio.run(main(receiver))


def test_an_update_stored_while_the_request_in_flight_failed_applies_to_its_retry(
    tmp_path: Path,
) -> None:
    """The request in flight fails while the update is being written: its retry, made when
    scheduled, goes out under the new configuration (the loop waiting under the old one is
    started again)."""

    async def main(receiver: Receiver) -> None:
        app = await started(tmp_path / "data")
        storage = app.storage

        try:
            service = app.subscriptions
            receiver.script(Reply(500, delay=0.2))
            old = SubscriptionSpec(stream="s", url=receiver.url + "/old")
            await service.put("sub", old)
            await asyncio.to_thread(receiver.wait_count, 1)
            slow_saves(storage, 0.5)  # the request in flight fails meanwhile
            await service.put("sub", SubscriptionSpec(stream="s", url=receiver.url + "/new"))
            requests = await asyncio.to_thread(receiver.wait_count, 4, 5.0)
            assert [r.path for r in requests] == ["/hook/old"] + ["/hook/new"] * 3
        finally:
            await app.shutdown()

    with Receiver() as receiver:
        asyncio.run(main(receiver))


def test_secret_null_also_clears_a_replaced_secret_kept_from_before() -> None:
    """Stored by an earlier version: no secret, but a replaced one still signing. `null` ends
    it; so a secret set later signs alone."""
    from eventor.subscriptions import SubscriptionService
    from eventor.types import SubscriptionConfig

    service = object.__new__(SubscriptionService)
    service.clock = lambda: 1000.0
    stored = SubscriptionConfig(stream="s", url="http://x/", secret=None)
    stored.previous_secret, stored.secret_replaced_at = "whsec_b2xk", 990.0
    config = SubscriptionConfig(stream="s", url="http://x/")
    service._set_secret(config, None, stored)
    assert (config.secret, config.previous_secret) == (None, None)


def test_deliveries_wait_while_progress_cannot_be_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk: positions cannot be saved, so deliveries hold (a crash would repeat them
    all); the failure is logged once, and once more when it is over, not on every retry."""

    async def main(receiver: Receiver) -> None:
        app = await started(tmp_path / "data")
        disk = FullDisk(app.storage)
        event = NewEvent("T", b"{}", "application/json", True, None, None, None)
        try:
            await app.subscriptions.put("sub", SubscriptionSpec(stream="t", url=receiver.url))
            await app.store.append("t", [event])
            await asyncio.to_thread(receiver.wait_count, 1)
            disk.full = True
            await app.store.append("t", [event])
            await asyncio.to_thread(receiver.wait_count, 2)  # delivered, not yet stored
            saved = app.subscriptions.engine.progress_saved
            for _ in range(50):  # the next flush finds the disk full
                if not saved.is_set():
                    break
                await asyncio.sleep(0.05)
            assert not saved.is_set()
            assert app.subscriptions.stats()["progress_saved"] == 0  # a metric says so too
            for _ in range(3):
                await app.store.append("t", [event])
            await asyncio.sleep(1.0)  # ten flush intervals: ten failed writes
            assert len(receiver.received()) == 2  # nothing more went out meanwhile
            disk.full = False
            await asyncio.to_thread(receiver.wait_count, 5)
            assert [r.position for r in receiver.received()] == [1, 2, 3, 4, 5]
        finally:
            await app.shutdown()

    with caplog.at_level(logging.WARNING, logger="eventor"), Receiver() as receiver:
        asyncio.run(main(receiver))
    said = [r.getMessage() for r in caplog.records if "progress" in r.getMessage()]
    assert len(said) == 2, said
    assert "disk is full" in said[0]
    assert "works again" in said[1]


def test_parking_every_event_warns_once_not_once_an_event(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver that is down parks every event: the log says so once a minute, not per event."""

    async def main(receiver: Receiver) -> None:
        app = await started(tmp_path / "data")
        try:
            spec = SubscriptionSpec(
                stream="s", url=receiver.url, max_attempts=1, on_exhausted="park"
            )
            await app.subscriptions.put("sub", spec)
            await asyncio.to_thread(receiver.wait_count, 3)
            for _ in range(100):
                if len(app.subscriptions.parked("sub")) == 3:
                    break
                await asyncio.sleep(0.05)
            assert [p.position for p in app.subscriptions.parked("sub")] == [1, 2, 3]
            receiver.decide(None)  # the receiver is back: the count of the unsaid ones is told
            await app.store.append("s", [NewEvent("T", b"{}")])
            await asyncio.to_thread(receiver.wait_count, 4)
        finally:
            await app.shutdown()

    with caplog.at_level(logging.WARNING, logger="eventor"), Receiver() as receiver:
        receiver.decide(lambda r: Reply(500))
        asyncio.run(main(receiver))
    warned = [r.getMessage() for r in caplog.records if "parked" in r.getMessage()]
    assert len(warned) == 2, warned
    assert "parked 1-1 after 1 attempts" in warned[0]
    assert "delivers again, at 4 (2 more events parked since the last warning)" in warned[1]


def test_a_receiver_failing_now_and_then_warns_twice_a_minute_at_most(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every other event parked: one warning for the first park, one when deliveries succeed
    again, and the rest counted for the next warning (it was a warning per park)."""

    async def main(receiver: Receiver) -> None:
        app = await started(tmp_path / "data")
        try:
            await app.store.append("s", [NewEvent("T", b"{}") for _ in range(17)])  # 20 in all
            spec = SubscriptionSpec(
                stream="s", url=receiver.url, max_attempts=1, on_exhausted="park"
            )
            await app.subscriptions.put("sub", spec)
            await asyncio.to_thread(receiver.wait_count, 20)
            for _ in range(100):
                if len(app.subscriptions.parked("sub")) == 10:
                    break
                await asyncio.sleep(0.05)
            assert [p.position for p in app.subscriptions.parked("sub")] == list(range(1, 21, 2))
        finally:
            await app.shutdown()

    with caplog.at_level(logging.WARNING, logger="eventor"), Receiver() as receiver:
        receiver.decide(lambda r: Reply(500) if r.position % 2 else None)
        asyncio.run(main(receiver))
    warned = [r.getMessage() for r in caplog.records if "parked" in r.getMessage()]
    assert len(warned) == 2, warned
    assert "parked 1-1 after 1 attempts" in warned[0]
    assert "delivers again, at 4 (1 more events parked since the last warning)" in warned[1]


def test_deliveries_go_on_once_the_unsaved_progress_is_gone(tmp_path: Path) -> None:
    """Progress that could not be written belonged to a subscription since deleted: nothing
    is left unsaved, so the others deliver again (they used to wait for good)."""

    async def main(first: Receiver, second: Receiver) -> None:
        app = await started(tmp_path / "data")
        disk = FullDisk(app.storage)
        event = NewEvent("T", b"{}", "application/json", True, None, None, None)
        service = app.subscriptions
        try:
            await service.put("a", SubscriptionSpec(stream="t", url=first.url, start="end"))
            await service.put("b", SubscriptionSpec(stream="u", url=second.url, start="end"))
            disk.full = True
            await app.store.append("t", [event])
            await asyncio.to_thread(first.wait_count, 1)
            saved = service.engine.progress_saved
            for _ in range(50):
                if not saved.is_set():
                    break
                await asyncio.sleep(0.05)
            assert not saved.is_set()
            await service.delete("a")
            await app.store.append("u", [event])
            await asyncio.to_thread(second.wait_count, 1)
        finally:
            await app.shutdown()

    with Receiver() as first, Receiver() as second:
        asyncio.run(main(first, second))


def test_a_retry_waited_out_after_a_restart_of_the_loop_waits_for_the_gate_too(
    tmp_path: Path,
) -> None:
    """The loop restarts (an update) while an event waits for its retry time; progress cannot
    be written by the time that wait ends: the retry waits for the gate as well."""

    async def main(receiver: Receiver) -> None:
        app = await started(tmp_path / "data")
        disk = FullDisk(app.storage)
        service = app.subscriptions
        try:
            receiver.script(Reply(500))
            spec = SubscriptionSpec(stream="t", url=receiver.url, backoff_initial=1.5)
            await service.put("sub", spec)
            await app.store.append("t", [NewEvent("T", b"{}")])
            await asyncio.to_thread(receiver.wait_count, 1)  # failed: retried in 1.5 s
            await service.put("sub", dataclasses.replace(spec, timeout=7))  # the loop restarts
            disk.full = True
            service.engine.mark_dirty("sub")
            await asyncio.sleep(2.5)  # past the retry time
            assert len(receiver.received()) == 1  # held by the gate
            disk.full = False
            await asyncio.to_thread(receiver.wait_count, 2)
        finally:
            await app.shutdown()

    with Receiver() as receiver:
        asyncio.run(main(receiver))


def test_attempts_put_back_after_a_failed_save_keep_the_newest() -> None:
    """A flush whose write failed puts its attempts back before those logged since; a full log
    dropped the newest ones, not the oldest (found by a review)."""
    s = Subscription("x", SubscriptionConfig("s", "http://h/"), 0, ACTIVE, created="", updated="")
    loop = SubscriptionLoop(s, [], [], 3, lambda name: None, asyncio.Event())

    def attempt(position: int) -> DeliveryAttempt:
        return DeliveryAttempt(position, "id", 1, 200, None, None, 1.0, "t")

    for position in (1, 2, 3):
        loop._new_attempts.append(attempt(position))
    taken = loop.take_progress()
    loop._new_attempts.append(attempt(4))  # delivered while the write was failing
    loop.restore_progress(taken)
    assert [a.position for a in loop.take_progress().attempts] == [2, 3, 4]


def test_a_change_cancelled_while_written_logs_its_attempts_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelling a change (uvicorn cancels requests late in a stop) does not stop its write
    on the catalog's thread: the attempts it carried were put back and written again by the
    next flush, each logged twice (found by a review)."""
    written = threading.Event()
    save = subscriptions_sql.save

    def slow_save(*args: Any) -> None:  # a slow disk, on the catalog's thread
        time.sleep(0.3)
        save(*args)
        written.set()

    async def main(receiver: Receiver) -> None:
        app = EventorApp(Settings(data_dir=tmp_path / "data", position_flush_interval=10))
        await app.startup()
        try:
            await app.store.append("s", [NewEvent("T", b"{}")], ANY)
            receiver.decide(lambda r: Reply(500))
            spec = SubscriptionSpec("s", receiver.url, backoff_initial=0.01, backoff_max=0.01)
            await app.subscriptions.put("sub", spec)
            await asyncio.to_thread(receiver.wait_count, 5)  # attempts not yet flushed
            monkeypatch.setattr(subscriptions_sql, "save", slow_save)
            pausing = asyncio.create_task(app.subscriptions.pause("sub"))
            await asyncio.sleep(0.1)  # the write is under way
            pausing.cancel()
            assert await asyncio.to_thread(written.wait, 5)
            await app.subscriptions.engine.flush()
            [record] = await app.storage.load_subscriptions(100)
            logged = [(a.position, a.attempt, a.at) for a in record.attempts]
            assert len(logged) >= 5
            assert len(set(logged)) == len(logged), logged
        finally:
            await app.shutdown()

    with Receiver() as receiver:
        asyncio.run(main(receiver))


def test_a_retry_set_while_an_update_is_written_waits_at_most_the_new_backoff_max(
    tmp_path: Path,
) -> None:
    """The request in flight failed while an update lowering backoff.max was written: the
    retry time it set under the old backoff (a Retry-After of 100 s) stood in the status after
    the update, though the loop waited the new backoff.max only (found by a review)."""

    async def main(receiver: Receiver) -> None:
        app = await started(tmp_path / "data")
        storage = app.storage

        try:
            service = app.subscriptions
            receiver.script(Reply(503, headers={"Retry-After": "100"}, delay=0.3))
            await service.put("sub", SubscriptionSpec("s", receiver.url, backoff_initial=0.01))
            await asyncio.to_thread(receiver.wait_count, 1)
            slow_saves(storage, 0.6)  # the request in flight fails meanwhile
            lowered = SubscriptionSpec("s", receiver.url, backoff_initial=0.01, backoff_max=1)
            updated, _ = await service.put("sub", lowered)
            assert updated.config.backoff_max == 1
            retry = service.get("sub").next_attempt_at
            assert retry is not None
            assert parse_utc(retry) <= time.time() + 1.5, retry  # what the status says...
            retried = await asyncio.to_thread(receiver.wait_count, 2, 5.0)
            assert retried[1].at - retried[0].at < 3  # ...and does: 0.3 s, then 1 s at most
        finally:
            await app.shutdown()

    with Receiver() as receiver:
        asyncio.run(main(receiver))
