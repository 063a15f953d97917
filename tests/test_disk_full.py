"""The storage's own trouble. A full disk, made real by SQLite's own page limit (SQLITE_FULL,
as ENOSPC gives it): the append is a 507 that says so, stores nothing, and appends work again
once there is room. A worker thread that cannot start (out of memory): that append fails, the
next ones work."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from eventor.api.app import EventorApp
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

                def limit_pages(pages: int | None) -> None:
                    def run(db: Any) -> None:
                        count = db._conn.execute("PRAGMA page_count").fetchone()[0]
                        db._conn.execute(f"PRAGMA max_page_count = {pages or count}")

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
                assert (await c.get("/v1/streams/s")).json()["head"] == 1  # nothing stored

                await limit_pages(1_000_000)  # room again: no restart needed
                again = await c.post("/v1/streams/s/events", json=big)
                assert again.status_code == 201, again.text
                assert again.json()["first_position"] == 2
        finally:
            await app.shutdown()

    asyncio.run(main())


def test_a_worker_thread_that_cannot_start_fails_one_append_not_all_after_it(
    tmp_path: Path,
) -> None:
    """Under a memory limit, starting a thread can fail ("can't start new thread"). The round
    had been counted as running and was never given back: every append after it waited for
    ever while /health and /ready said all was well. (Thread creation cannot be made to fail
    on demand here, so the executor refuses once, as it does then.)"""

    async def main() -> None:
        app = EventorApp(Settings(data_dir=tmp_path / "data"))
        await app.startup()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://eventor") as c:
                executor: Any = app.storage._executor  # type: ignore[attr-defined]
                submit = executor.submit

                def refuse_once(*args: Any, **kwargs: Any) -> Any:
                    executor.submit = submit
                    raise RuntimeError("can't start new thread")

                executor.submit = refuse_once
                failed = await c.post("/v1/streams/s/events", json={"type": "T"})
                assert failed.status_code == 500
                assert "can't start new thread" in failed.json()["detail"]
                for stream in ("s", "other"):
                    ok = await asyncio.wait_for(
                        c.post(f"/v1/streams/{stream}/events", json={"type": "T"}), 10
                    )
                    assert ok.status_code == 201, ok.text
                    assert ok.json()["first_position"] == 1  # the failed one stored nothing
        finally:
            await app.shutdown()

    asyncio.run(main())
