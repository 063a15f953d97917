"""Filling a server with data before a benchmark: many POSTs, a few at a time, all checked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import aiohttp

JSON = {"Content-Type": "application/json"}


class FillError(RuntimeError):
    """The server refused a request while filling."""


def post_all(url: str, requests: Iterable[tuple[str, bytes]], concurrency: int = 32) -> int:
    """POST each (path, JSON body) to `url`; raise unless every answer is 2xx. Returns the count."""
    return asyncio.run(_post_all(url, list(requests), concurrency))


async def _post_all(url: str, requests: list[tuple[str, bytes]], concurrency: int) -> int:
    queue = iter(requests)
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, timeout=timeout, connector=connector) as session:

        async def worker() -> None:
            for path, body in queue:  # one shared iterator: each request is taken once
                async with session.post(path, data=body, headers=JSON) as response:
                    text = await response.text()
                    if response.status >= 300:
                        raise FillError(f"POST {path} -> {response.status}: {text[:300]}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(requests)
