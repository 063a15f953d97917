"""A long poll whose client goes lets go of its waiter at once, over a real connection (the
app served in-process by uvicorn, so that its waiters can be counted)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import uvicorn

from eventor.api import create_app
from eventor.protocol import BoundedHeadProtocol


def test_an_abandoned_long_poll_lets_go_of_its_waiter_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = create_app(data_dir=tmp_path / "data")
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, http=BoundedHeadProtocol, log_config=None, ws="none"
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:  # uvicorn offers no event for it
            assert not serving.done()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        waiters = app.store.appended._waiters
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                polls = [
                    asyncio.create_task(client.get("/v1/streams/quiet/events?wait=30", timeout=40))
                    for _ in range(20)
                ]
                deadline = time.monotonic() + 10
                while sum(len(w) for w in waiters.values()) < 20:  # all 20 are waiting
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.01)
                for poll in polls:
                    poll.cancel()  # the client goes: its connection closes
                await asyncio.gather(*polls, return_exceptions=True)
            deadline = time.monotonic() + 5  # not 30 s: the waiters go with their clients
            while waiters:
                assert time.monotonic() < deadline, waiters
                await asyncio.sleep(0.01)
        finally:
            server.should_exit = True
            await serving

    asyncio.run(scenario())
