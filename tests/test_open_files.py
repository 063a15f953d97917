"""The LRU of open stream databases keeps file descriptors bounded, and evicted streams reopen."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from helpers import wait_until

from eventor.storage.sqlite.files import STREAMS_DIR
from eventor.storage.sqlite.pool import StreamPool
from eventor.types import ANY, NewEvent


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_many_streams_stay_within_the_file_budget(make_server):
    server = make_server("--max-open-files", "20")
    assert server.proc is not None
    with httpx.Client(base_url=server.url, timeout=10) as client:
        client.get("/health")  # the baseline includes this client's connection
        baseline = open_fds(server.proc.pid)
        for i in range(150):
            r = client.post(f"/v1/streams/s{i}/events", json={"type": "T", "data": {"i": i}})
            assert r.status_code == 201
        # Two descriptors per open stream (database and WAL), at most 20 in all once the
        # evictions that the last appends started have finished (they run after the answer).
        wait_until(lambda: open_fds(server.proc.pid) <= baseline + 20, timeout=5)
        for i in range(150):
            r = client.get(f"/v1/streams/s{i}/events")
            assert r.status_code == 200
            assert [e["data"] for e in r.json()["events"]] == [{"i": i}]
        wait_until(lambda: open_fds(server.proc.pid) <= baseline + 20, timeout=5)
        metrics = client.get("/metrics").text
        open_streams = next(
            float(line.split()[1])
            for line in metrics.splitlines()
            if line.startswith("eventor_open_streams ")
        )
        assert 1 <= open_streams <= 10


def test_large_appends_leave_no_temporary_file_open(make_server):
    """A batch past one INSERT (512 rows) runs in a transaction of several statements; with a
    statement journal, each such stream kept a deleted temporary file open (in /var/tmp, the
    budget above not counting it) until it closed."""
    server = make_server("--max-open-files", "20")
    assert server.proc is not None
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i in range(4):
            for _ in range(2):
                batch = [{"type": "T", "id": str(uuid.uuid4())} for _ in range(600)]
                r = client.post(f"/v1/streams/big{i}/events", json=batch)
                assert r.status_code == 201, r.text
        fds = f"/proc/{server.proc.pid}/fd"
        targets = []
        for fd in os.listdir(fds):
            with contextlib.suppress(OSError):
                targets.append(os.readlink(f"{fds}/{fd}"))
        assert sum("/streams/" in t for t in targets) == 8  # four streams: database and WAL
        assert [t for t in targets if "etilqs" in t] == []


def test_busy_streams_do_not_starve_one_waiting_for_files(tmp_path: Path) -> None:
    """With the budget held by busy streams, a stream waiting for files is served in turn:
    a busy stream whose close freed files queues behind it, rather than taking them back."""
    (tmp_path / STREAMS_DIR).mkdir()

    async def main() -> None:
        with ThreadPoolExecutor(2) as executor:
            pool = StreamPool(
                tmp_path, "OFF", 8, executor, lambda state, n: None, lambda state: None
            )  # room for 4 open streams
            event = NewEvent("T", b"{}")
            for name in "ABCDE":
                await pool.append(name, [event], ANY)
            stop = False

            async def busy(name: str) -> None:
                while not stop:
                    await pool.append(name, [event], ANY)

            tasks = [asyncio.create_task(busy(name)) for name in "ACDE"]
            await asyncio.sleep(0.1)
            result = await asyncio.wait_for(pool.append("B", [event], ANY), 5)
            assert result.last_position == 2
            stop = True
            await asyncio.gather(*tasks)
            await pool.close()

    asyncio.run(main())


def test_a_stream_busy_for_ever_gives_its_files_up_to_one_waiting(tmp_path: Path) -> None:
    """Budget for one open stream, kept busy by appends that never pause: a read of another
    stream is answered all the same (the busy stream is closed between two of its jobs)."""
    (tmp_path / STREAMS_DIR).mkdir()

    async def main() -> None:
        with ThreadPoolExecutor(2) as executor:
            pool = StreamPool(tmp_path, "OFF", 2, executor, lambda s, n: None, lambda s: None)
            event = NewEvent("T", b"{}")
            await pool.append("b", [event], ANY)
            await pool.append("a", [event], ANY)
            stop = False

            async def busy() -> None:
                while not stop:
                    await pool.append("a", [event], ANY)

            writers = [asyncio.create_task(busy()) for _ in range(4)]
            await asyncio.sleep(0.1)
            page = await asyncio.wait_for(pool.call("b", lambda db: db.read(1, 10, False)), 5)
            assert [e.position for e in page] == [1]
            stop = True
            await asyncio.gather(*writers)
            await pool.close()

    asyncio.run(main())


_ONE_DESCRIPTOR_LEFT = """
import errno, os, resource, sqlite3, sys
from pathlib import Path
from eventor.storage.sqlite.files import cannot_open_cause
directory = Path(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError as error:
    assert error.errno == errno.EMFILE
os.close(held.pop())
conn = sqlite3.connect(directory / "s.db")  # takes the last descriptor
try:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    print("opened")
except sqlite3.Error as exc:
    conn.close()  # as the pool does, giving the database's descriptor back
    print(exc.sqlite_errorcode == sqlite3.SQLITE_CANTOPEN, cannot_open_cause(exc, directory))
"""


def test_a_stream_short_of_descriptors_by_one_is_said_to_be(tmp_path):
    """With one descriptor left, the database opens and its WAL cannot; the database's
    descriptor is given back before the cause is looked for, and one free descriptor proved
    nothing: a 500 "unable to open database file" instead of the 503 that says why."""
    done = subprocess.run(
        [sys.executable, "-c", _ONE_DESCRIPTOR_LEFT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("True too many open files: raise the"), done.stdout
