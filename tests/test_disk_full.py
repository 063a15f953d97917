"""The storage's own trouble. A full disk, made real by SQLite's own page limit (SQLITE_FULL,
as ENOSPC gives it): the append is a 507 that says so, stores nothing, and appends work again
once there is room. A worker thread that cannot start (out of memory): that append fails, the
next ones work."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import in_process

from eventor.api.app import EventorApp
from eventor.client import AsyncClient
from eventor.errors import StorageFull
from eventor.settings import Settings


def test_a_full_disk_is_a_507_and_appends_work_again_once_there_is_room(tmp_path: Path) -> None:
    async def main() -> None:
        app = EventorApp(Settings(data_dir=tmp_path / "data"))
        await app.startup()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://eventor") as c:
                first = await c.post("/v1/streams/s/events", json={"type": "T", "data": 1})
                assert first.status_code == 201
                pool: Any = app.storage._pool  # type: ignore[attr-defined]

                def limit_pages(pages: int | None, more: int = 0) -> None:
                    def run(db: Any) -> None:
                        count = db._conn.execute("PRAGMA page_count").fetchone()[0]
                        db._conn.execute(f"PRAGMA max_page_count = {pages or count + more}")

                    return pool.call("s", run)  # type: ignore[no-any-return]

                await limit_pages(None)  # the file may not grow: the disk is full
                big = {"type": "T", "data": "x" * 200_000}
                full = await c.post("/v1/streams/s/events", json=big)
                assert full.status_code == 507, full.text
                assert full.headers["content-type"] == "application/problem+json"
                problem = full.json()
                assert problem["title"] == "Insufficient Storage"
                assert "disk is full" in problem["detail"]
                original = await c.post(
                    "/streams/s", content=b"y" * 200_000, headers={"x-event-type": "T"}
                )
                assert original.status_code == 507
                async with AsyncClient("http://eventor", transport=transport) as client:
                    with pytest.raises(StorageFull, match="disk is full"):
                        await client.append("s", big)
                # A batch of several INSERTs in one transaction, the disk full after the first
                # (~290 KB of 660): none of them stays.
                await limit_pages(None, more=100)
                batch = [{"type": "T", "data": "z" * 500} for _ in range(1200)]
                assert (await c.post("/v1/streams/s/events", json=batch)).status_code == 507
                assert (await c.post("/v1/streams/s/events", json=batch[:100])).status_code == 201
                assert (await c.get("/v1/streams/s")).json()["head"] == 101  # nothing more

                await limit_pages(1_000_000)  # room again: no restart needed
                again = await c.post("/v1/streams/s/events", json=big)
                assert again.status_code == 201, again.text
                assert again.json()["first_position"] == 102
                again = await c.post("/v1/streams/s/events", json=batch)
                assert again.json()["last_position"] == 1302
                page = (await c.get("/v1/streams/s/events?from=1&limit=1000")).json()
                assert [e["position"] for e in page["events"]] == list(range(1, 1001))
        finally:
            await app.shutdown()

    asyncio.run(main())


def test_no_worker_thread_needs_starting_while_serving(tmp_path: Path) -> None:
    """Under a memory limit, starting a thread can fail ("can't start new thread"). The
    executor queues the job before it starts a thread, so such a job ran later, after its
    append was told it failed: the stream was left locked (every later append: 500), and
    before that fix, every append on every stream waited for ever. The storage's threads all
    start when it opens, so appends and reads never start one."""

    async def main() -> None:
        app = EventorApp(Settings(data_dir=tmp_path / "data"))
        await app.startup()
        start = threading.Thread.start

        def cannot_start(thread: threading.Thread) -> None:
            raise RuntimeError("can't start new thread")

        threading.Thread.start = cannot_start  # type: ignore[method-assign]
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://eventor") as c:
                for _ in range(2):
                    appends = [
                        c.post(f"/v1/streams/s{n}/events", json={"type": "T"}) for n in range(20)
                    ]
                    reads = [c.get(f"/v1/streams/s{n}/events") for n in range(20)]
                    answers = await asyncio.wait_for(asyncio.gather(*appends, *reads), 30)
                    assert {a.status_code for a in answers[:20]} == {201}, answers[0].text
                    assert {a.status_code for a in answers[20:]} <= {200, 404}
                heads = [(await c.get(f"/v1/streams/s{n}")).json()["head"] for n in range(20)]
                assert heads == [2] * 20
        finally:
            threading.Thread.start = start  # type: ignore[method-assign]
            await app.shutdown()

    asyncio.run(main())


def test_a_full_disk_is_logged_once_for_all_streams(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One line a minute per route and failure, not per stream: with thousands of streams
    a full disk would otherwise write thousands of lines a minute."""

    async def main() -> list[int]:
        app = EventorApp(Settings(data_dir=tmp_path / "data"))
        await app.startup()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://eventor") as c:
                pool: Any = app.storage._pool  # type: ignore[attr-defined]

                def full(db: Any) -> None:
                    count = db._conn.execute("PRAGMA page_count").fetchone()[0]
                    db._conn.execute(f"PRAGMA max_page_count = {count}")

                statuses = []
                for stream in ("a", "b", "c"):
                    first = await c.post(f"/v1/streams/{stream}/events", json={"type": "T"})
                    assert first.status_code == 201
                    await pool.call(stream, full)
                for stream in ("a", "b", "c", "a"):
                    big = {"type": "T", "data": "x" * 200_000}
                    r = await c.post(f"/v1/streams/{stream}/events", json=big)
                    statuses.append(r.status_code)
                return statuses
        finally:
            await app.shutdown()

    with caplog.at_level(logging.ERROR, logger="eventor"):
        assert asyncio.run(main()) == [507] * 4
    lines = [r.getMessage() for r in caplog.records if "507" in r.getMessage()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("POST /v1/streams/a/events: 507")


def test_a_change_whose_write_failed_answers_2xx_only_once_stored(tmp_path: Path) -> None:
    """A pause whose write fails (503 here, the data directory moved away; 507 on a full
    disk) stays in effect and is written by a later flush. Asked again meanwhile, it answered
    200 ("paused already") though nothing was on disk, and a crash lost it: now it is written
    then, and fails again until it can be."""
    data, aside = tmp_path / "data", tmp_path / "aside"

    async def main() -> None:
        async with in_process(data) as (_, c):
            spec = {"stream": "s", "url": "http://127.0.0.1:9/hook"}
            assert (await c.put("/v1/subscriptions/v1sub", json=spec)).status_code == 201
            r = await c.post("/subscriptions/orig", json=spec)
            assert r.status_code == 200, r.text
            data.rename(aside)
            for _ in range(2):
                r = await c.post("/v1/subscriptions/v1sub/pause")
                assert r.status_code == 503, r.text
                assert (await c.post("/subscriptions/orig/pause")).status_code == 503
            aside.rename(data)
            r = await c.post("/v1/subscriptions/v1sub/pause")
            assert r.status_code == 200, r.text
            assert (await c.post("/subscriptions/orig/pause")).text == "Paused\n"

    async def after_a_restart() -> None:
        async with in_process(data) as (app, _):
            statuses = {s.name: s.status for s in app.subscriptions.all()}
            assert statuses == {"v1sub": "paused", "orig": "paused"}

    asyncio.run(main())
    asyncio.run(after_a_restart())
