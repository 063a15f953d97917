"""Delivery benchmark (run by hand, from the repo root): `python -m benchmarks.delivery`.

Starts an Eventor server and a webhook receiver (separate processes, loopback) and measures:
catch-up and live events/s of one subscription (batch_size 1) beside the sequential aiohttp
ceiling; append -> receipt latency at a steady 1,000 events/s; catch-up of 100,000 events with
batch_size 100; 1,000 idle subscriptions (CPU, RSS), then one append per stream. Prints, for
each figure, [median, min, max] of the runs. Both processes use time.monotonic(), which Linux
shares across processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"serving http://([^\s,]+):(\d+),")


# -- the receiver (its own process) ----------------------------------------------------------


def receiver_main(port_file: str) -> None:
    """Answer 200 at once; remember (path, last position, monotonic time) of each request."""
    import uvloop
    from aiohttp import web

    records: list[tuple[str, int, float]] = []

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        headers = request.headers
        position = headers.get("X-Event-Position") or headers.get("X-Eventor-Last-Position")
        records.append((request.path, int(position or 0), time.monotonic()))
        return web.Response()

    async def count(request: web.Request) -> web.Response:
        return web.json_response(len(records))

    async def dump(request: web.Request) -> web.Response:
        out = list(records)
        records.clear()
        return web.json_response(out)

    def write_port(port: int) -> None:
        Path(port_file).write_text(str(port))

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook/{name}", hook)
        app.router.add_get("/count", count)
        app.router.add_post("/dump", dump)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        write_port(port)
        await asyncio.Event().wait()

    uvloop.run(main())


# -- processes -------------------------------------------------------------------------------


class Processes:
    def __init__(self, data: Path, server_args: list[str]) -> None:
        data.mkdir(parents=True, exist_ok=True)
        port_file = data / "receiver.port"
        self.receiver = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.delivery", "--receiver", str(port_file)], cwd=ROOT
        )
        while not port_file.exists() or not port_file.read_text():
            time.sleep(0.02)
        self.receiver_url = f"http://127.0.0.1:{port_file.read_text()}"
        log = open(data / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
        self.server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "eventor",
                "serve",
                "--port",
                "0",
                "--data",
                str(data / "data"),
                *server_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while (m := READY.search((data / "server.log").read_text())) is None:
            if time.monotonic() > deadline or self.server.poll() is not None:
                raise RuntimeError((data / "server.log").read_text())
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{m[2]}"
        self.http = httpx.Client(base_url=self.url, timeout=60)

    def stop(self) -> None:
        self.http.close()
        self.server.terminate()
        self.server.wait(30)
        self.receiver.terminate()
        self.receiver.wait(10)

    def hook(self, name: str) -> str:
        return f"{self.receiver_url}/hook/{name}"

    def received(self) -> int:
        return int(httpx.get(self.receiver_url + "/count").json())

    def dump(self) -> list[tuple[str, int, float]]:
        return [tuple(r) for r in httpx.post(self.receiver_url + "/dump", timeout=60).json()]

    def wait_received(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.received() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"received {self.received()} of {count}")
            time.sleep(0.01)

    def subscribe(self, name: str, stream: str, **options: Any) -> float:
        started = time.monotonic()
        r = self.http.put(
            f"/v1/subscriptions/{name}", json={"stream": stream, "url": self.hook(name), **options}
        )
        assert r.status_code == 201, r.text
        return started

    def fill(self, stream: str, count: int) -> None:
        body = [{"type": "Filled", "data": {"n": i, "pad": "x" * 64}} for i in range(1000)]
        for start in range(0, count, 1000):
            r = self.http.post(f"/v1/streams/{stream}/events", json=body[: count - start])
            assert r.status_code == 201, r.text

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.server.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


def in_order(records: list[tuple[str, int, float]], count: int) -> bool:
    return [r[1] for r in records] == list(range(1, count + 1))


# -- scenarios ---------------------------------------------------------------------------------


async def ceiling(url: str, count: int) -> float:
    """Requests/s of one aiohttp client posting sequentially (keep-alive) to the receiver."""
    body = json.dumps({"n": 1, "pad": "x" * 64}).encode()
    headers = {"Content-Type": "application/json", "X-Event-Position": "1"}
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            async with session.post(url, data=body, headers=headers) as r:
                await r.read()
        started = time.perf_counter()
        for _ in range(count):
            async with session.post(url, data=body, headers=headers) as r:
                await r.read()
        return count / (time.perf_counter() - started)


def catch_up(p: Processes, run: int, count: int, batch_size: int) -> float:
    stream = f"fill-{count}-{batch_size}"
    if p.http.get(f"/v1/streams/{stream}").status_code == 404:
        p.fill(stream, count)
    name = f"catchup_{batch_size}_{run}"
    p.dump()
    started = p.subscribe(name, stream, batch_size=batch_size)
    if batch_size == 1:
        p.wait_received(count)
    else:
        deadline = time.monotonic() + 120
        while not (records := p.dump()) or records[-1][1] < count:
            if time.monotonic() > deadline:
                raise TimeoutError
            time.sleep(0.05)
    records = p.dump() if batch_size == 1 else records
    assert batch_size > 1 or in_order(records, count), "catch-up out of order"
    p.http.delete(f"/v1/subscriptions/{name}")
    return count / (records[-1][2] - started)


async def append_concurrently(url: str, stream: str, count: int, writers: int, batch: int) -> float:
    """Append `count` events from `writers` concurrent clients; when the first append started."""
    body = json.dumps([{"type": "Live", "data": {"pad": "x" * 64}}] * batch).encode()
    per_writer = count // writers // batch
    started = time.monotonic()

    async def writer(session: aiohttp.ClientSession) -> None:
        for _ in range(per_writer):
            async with session.post(
                f"{url}/v1/streams/{stream}/events",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as r:
                assert r.status == 201, await r.text()

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(writer(session) for _ in range(writers)))
    return started


def live(p: Processes, run: int, count: int) -> float:
    stream = f"live-{run}"
    name = f"live_{run}"
    p.subscribe(name, stream)
    p.dump()
    started = asyncio.run(append_concurrently(p.url, stream, count, 4, 10))
    p.wait_received(count)
    records = p.dump()
    assert in_order(records, count), "live deliveries out of order"
    p.http.delete(f"/v1/subscriptions/{name}")
    return count / (records[-1][2] - started)


async def paced_appends(
    url: str, stream: str, rate: int, seconds: float, writers: int
) -> tuple[dict[int, float], dict[int, float]]:
    """Single-event appends at a steady total `rate`: position -> monotonic send, ack time."""
    sent: dict[int, float] = {}
    acked: dict[int, float] = {}
    interval = writers / rate
    body = json.dumps({"type": "Paced", "data": {"pad": "x" * 64}}).encode()
    t0 = time.monotonic() + 0.05

    async def writer(session: aiohttp.ClientSession, offset: int) -> None:
        for k in range(int(seconds * rate / writers)):
            due = t0 + (k + offset / writers) * interval
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            at = time.monotonic()
            async with session.post(
                f"{url}/v1/streams/{stream}/events",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as r:
                position = (await r.json())["first_position"]
            sent[position] = at
            acked[position] = time.monotonic()

    connector = aiohttp.TCPConnector(limit=writers * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(writer(session, w) for w in range(writers)))
    return sent, acked


def latency(p: Processes, run: int, rate: int = 1000, seconds: float = 5) -> dict[str, float]:
    stream = f"paced-{run}"
    name = f"paced_{run}"
    p.subscribe(name, stream)
    p.dump()
    sent, acked = asyncio.run(paced_appends(p.url, stream, rate, seconds, 8))
    p.wait_received(len(sent))
    records = p.dump()
    assert in_order(records, len(sent)), "paced deliveries out of order"
    ms = sorted((at - sent[pos]) * 1000 for _, pos, at in records)
    append_ms = sorted((acked[pos] - sent[pos]) * 1000 for pos in sent)
    after_ack_ms = sorted((at - acked[pos]) * 1000 for _, pos, at in records)
    p.http.delete(f"/v1/subscriptions/{name}")

    def p99(values: list[float]) -> float:
        return values[int(len(values) * 0.99) - 1]

    return {
        "p50_ms": statistics.median(ms),
        "p99_ms": p99(ms),
        "max_ms": ms[-1],
        "append_alone_p50_ms": statistics.median(append_ms),
        "append_alone_p99_ms": p99(append_ms),
        "ack_to_receipt_p50_ms": statistics.median(after_ack_ms),
        "ack_to_receipt_p99_ms": p99(after_ack_ms),
        "out_of_order": 0,
        "achieved_rate": len(sent) / seconds,
    }


def idle_thousand(p: Processes, run: int, count: int = 1000) -> dict[str, float]:
    prefix = f"idle{run}"
    streams = [f"{prefix}-{i}" for i in range(count)]

    async def one_each(sent: dict[str, float] | None = None) -> None:
        body = json.dumps({"type": "Idle", "data": {}}).encode()
        sem = asyncio.Semaphore(64)

        async def one(session: aiohttp.ClientSession, stream: str) -> None:
            async with sem:
                if sent is not None:
                    sent[stream] = time.monotonic()
                async with session.post(
                    f"{p.url}/v1/streams/{stream}/events",
                    data=body,
                    headers={"Content-Type": "application/json"},
                ) as r:
                    assert r.status == 201

        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(one(session, s) for s in streams))

    asyncio.run(one_each())
    p.dump()
    for i, stream in enumerate(streams):
        p.subscribe(f"{prefix}_{i}", stream)
    p.wait_received(count)  # every subscription caught up
    p.dump()
    time.sleep(1)
    cpu_before, t = p.cpu_seconds(), time.monotonic()
    time.sleep(5)
    cpu = (p.cpu_seconds() - cpu_before) / (time.monotonic() - t) * 100
    rss = p.rss_mb()
    sent: dict[str, float] = {}
    started = time.monotonic()
    asyncio.run(one_each(sent))
    appended = time.monotonic()
    p.wait_received(count, timeout=60)
    records = p.dump()
    done = max(r[2] for r in records)
    by_stream = {f"{prefix}-{r[0].rsplit('_', 1)[1]}": r[2] for r in records}
    worst = max(by_stream[s] - sent[s] for s in streams)
    for i in range(count):
        p.http.delete(f"/v1/subscriptions/{prefix}_{i}")
    return {
        "idle_cpu_percent": cpu,
        "rss_mb": rss,
        "appends_took_s": appended - started,
        "all_delivered_s": done - started,
        "worst_append_to_receipt_s": worst,
    }


def median_of(runs: int, fn: Callable[[int], Any]) -> Any:
    """The median of `runs` results (per key for dicts), with the range beside it."""
    results = [fn(run) for run in range(runs)]
    if isinstance(results[0], dict):
        return {
            k: [
                statistics.median(r[k] for r in results),
                min(r[k] for r in results),
                max(r[k] for r in results),
            ]
            for k in results[0]
        }
    return [statistics.median(results), min(results), max(results)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--receiver", help=argparse.SUPPRESS)
    parser.add_argument("--durability", default="full")
    parser.add_argument("--max-open-files", default="256")
    parser.add_argument("--idle-max-open-files", default="2048")
    parser.add_argument(
        "--only", default="throughput,latency,batch,idle", help="comma-separated scenarios"
    )
    args = parser.parse_args()
    if args.receiver:
        receiver_main(args.receiver)
        return
    only = set(args.only.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        from .machine import describe, load_average

        server_args = ["--durability", args.durability, "--max-open-files", args.max_open_files]
        p = Processes(Path(tmp), server_args)
        try:
            out: dict[str, Any] = {"machine": describe(Path(tmp)), "server_args": server_args}

            def throughput(run: int) -> dict[str, float]:
                # the ceiling is measured beside each run: the load of the machine moves
                top = asyncio.run(ceiling(p.hook("ceiling"), 5000))
                p.dump()
                caught_up = catch_up(p, run, 20_000, 1)
                live_rate = live(p, run, 20_000)
                return {
                    "ceiling_rps": top,
                    "catch_up_eps": caught_up,
                    "live_eps": live_rate,
                    "catch_up_vs_ceiling": caught_up / top,
                    "live_vs_ceiling": live_rate / top,
                }

            if "throughput" in only:
                out["batch_size_1"] = median_of(args.runs, throughput)
            if "latency" in only:
                out["latency_at_1000"] = median_of(args.runs, lambda r: latency(p, r))
            if "batch" in only:
                out["catch_up_100k_batch_100_eps"] = median_of(
                    args.runs, lambda r: catch_up(p, r, 100_000, 100)
                )
        finally:
            p.stop()
        # 1,000 streams: a fresh server for each run, with room to keep every stream open
        idle_args = ["--durability", args.durability, "--max-open-files", args.idle_max_open_files]
        out["idle_1000_server_args"] = idle_args

        def idle_run(run: int) -> dict[str, float]:
            fresh = Processes(Path(tmp) / f"idle{run}", idle_args)
            try:
                return idle_thousand(fresh, run)
            finally:
                fresh.stop()

        if "idle" in only:
            out["idle_1000"] = median_of(args.runs, idle_run)
        out["load_average_at_end"] = load_average()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
