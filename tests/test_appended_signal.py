"""The appended signal on its own: a waiter returns once the head passes its position, keeps
waiting through appends that stop short of it, and gives up on timeout or `wake_all`."""

from __future__ import annotations

import asyncio

from eventor.appended import AppendedSignal


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_appends_short_of_the_position_keep_the_waiter_waiting() -> None:
    async def main() -> None:
        signal = AppendedSignal()
        waiter = asyncio.ensure_future(signal.wait("s", 5, timeout=5))
        for head in (1, 2, 3, 4, 5):
            await asyncio.sleep(0)
            signal.notify("s", head)
            await asyncio.sleep(0)
            assert not waiter.done(), f"woken at head {head}, waiting to pass 5"
        signal.notify("other", 100)
        await asyncio.sleep(0)
        assert not waiter.done()
        signal.notify("s", 6)
        assert await waiter is True

    run(main())


def test_timeout_and_wake_all_end_the_wait_with_false() -> None:
    async def main() -> None:
        signal = AppendedSignal()
        assert await signal.wait("s", 0, timeout=0.01) is False
        waiter = asyncio.ensure_future(signal.wait("s", 0, timeout=5))
        await asyncio.sleep(0)
        signal.wake_all()
        assert await waiter is False
        signal.notify("s", 1)
        assert await signal.wait("s", 0, timeout=5) is True  # already past: no waiting

    run(main())
