"""Cold reads: many streams whose files are closed, all read at once (the open-file pool).

`python -m benchmarks.cold_reads [--streams 4000] [--runs 3]`: makes the streams (one event
each) in a temporary data dir, then, each run on a freshly opened storage, reads every stream
at once and prints the time the reads took. More streams than the open-file budget wait for
files and are opened and closed in turn: this measures that bookkeeping and SQLite's open.
Storage only (no HTTP), durability `off` for the set-up; the reads do not write.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from eventor.settings import Settings
from eventor.storage.base import open_storage
from eventor.types import NewEvent

MAX_OPEN_FILES = 256  # the default: 128 streams open at most


async def _fill(settings: Settings, streams: int) -> None:
    storage = open_storage(settings.data_dir, settings)
    await storage.open()
    try:
        for first in range(0, streams, 64):
            batch = range(first, min(streams, first + 64))
            await asyncio.gather(*(storage.append(f"s{n}", [NewEvent("T", b"{}")]) for n in batch))
    finally:
        await storage.close()


async def _read_all(settings: Settings, streams: int) -> float:
    storage = open_storage(settings.data_dir, settings)
    await storage.open()
    try:
        started = time.perf_counter()
        await asyncio.gather(*(storage.read(f"s{n}", 1, 10) for n in range(streams)))
        return time.perf_counter() - started
    finally:
        await storage.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eventor-cold-") as root:
        settings = Settings(data_dir=Path(root), durability="off", max_open_files=MAX_OPEN_FILES)
        asyncio.run(_fill(settings, args.streams))
        times = [asyncio.run(_read_all(settings, args.streams)) for _ in range(args.runs)]
    print(
        f"{args.streams} cold reads at once (budget {MAX_OPEN_FILES} files):"
        f" median {statistics.median(times):.2f} s"
        f" ({min(times):.2f}-{max(times):.2f}), {args.streams / statistics.median(times):,.0f}"
        " reads/s"
    )


if __name__ == "__main__":
    main()
