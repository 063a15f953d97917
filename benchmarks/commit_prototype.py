"""The issue's reference prototype: raw ASGI, each append group-committed to SQLite (WAL,
`synchronous=FULL`), to learn what a durable append can cost on this host at the least.

It does only what a one-stream append must: read the body, decode `{"type", "data"}` with
msgspec, queue it, commit everything queued in one transaction (one fsync), answer each
request its position and id. No validation, introspection, metrics or reads. Two writers:

- `--writer thread`: the commit runs on one worker thread of this process (Eventor's way,
  sharing the GIL with the event loop);
- `--writer process`: the commit runs in a child process, fed over a pipe (no GIL shared).

`--id-index` adds a unique index on the ids (random UUIDv4, as the original route makes):
each commit then writes into pages all over the index.

Run by hand, beside Eventor, alternating (the host drifts from minute to minute):

    python -m benchmarks.commit_prototype --port 9521 --writer thread &
    python -m benchmarks.commit_prototype --port 9522 --writer process &
    eventor serve --port 9523 --data /tmp/proto-eventor &
    wrk -t2 -c64 -d3s -s benchmarks/lua/append.lua http://127.0.0.1:9521/
    wrk -t2 -c64 -d3s -s benchmarks/lua/append.lua http://127.0.0.1:9522/
    wrk -t2 -c64 -d3s -s benchmarks/lua/append.lua http://127.0.0.1:9523/v1/streams/s/events
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import socket
import sqlite3
import tempfile
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec
import uvloop

from .ceiling import serve

Message = dict[str, Any]
Row = tuple[int, str]  # position, id
Pending = list[tuple[str, bytes, asyncio.Future[Row]]]


class _Event(msgspec.Struct):
    type: str
    data: msgspec.Raw


class Commits:
    """One stream's database: commits batches of (type, data), returns (position, id) each."""

    def __init__(self, path: Path, id_index: bool) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        unique = "UNIQUE" if id_index else ""
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS events (position INTEGER PRIMARY KEY, id TEXT {unique},"
            " type TEXT NOT NULL, data BLOB NOT NULL)"
        )
        found = self._db.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()
        self._head: int = found[0]

    def commit(self, batch: list[tuple[str, bytes]]) -> list[Row]:
        first = self._head + 1
        rows = [(first + i, str(uuid.uuid4()), kind, data) for i, (kind, data) in enumerate(batch)]
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
        self._db.execute("COMMIT")
        self._head += len(rows)
        return [(position, event_id) for position, event_id, _, _ in rows]


def _writer_process(conn: Connection, theirs: Connection, path: Path, id_index: bool) -> None:
    theirs.close()  # so that the server's end closing (it died) ends this process
    commits = Commits(path, id_index)
    with contextlib.suppress(EOFError):
        while True:
            conn.send(commits.commit(conn.recv()))


class GroupCommit:
    """Queues appends; one commit at a time takes everything queued meanwhile."""

    def __init__(self, path: Path, writer: str, id_index: bool) -> None:
        self._pending: Pending = []
        self._in_flight: Pending | None = None
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        if writer == "thread":
            self._commits = Commits(path, id_index)
            self._executor = ThreadPoolExecutor(1)
        else:
            self._conn, child = multiprocessing.Pipe()
            process = multiprocessing.Process(
                target=_writer_process, args=(child, self._conn, path, id_index), daemon=True
            )
            process.start()
            self._loop.add_reader(self._conn.fileno(), self._on_result)

    def append(self, kind: str, data: bytes) -> asyncio.Future[Row]:
        future: asyncio.Future[Row] = self._loop.create_future()
        self._pending.append((kind, data, future))
        if self._in_flight is None and len(self._pending) == 1:
            self._loop.call_soon(self._start)  # the rest of this loop turn joins the commit
        return future

    def _start(self) -> None:
        if self._in_flight is not None or not self._pending:
            return
        self._in_flight, self._pending = self._pending, []
        batch = [(kind, data) for kind, data, _ in self._in_flight]
        if self._writer == "thread":
            done = self._loop.run_in_executor(self._executor, self._commits.commit, batch)
            done.add_done_callback(lambda f: self._finish(f.result()))
        else:
            self._conn.send(batch)

    def _on_result(self) -> None:
        self._finish(self._conn.recv())

    def _finish(self, rows: list[Row]) -> None:
        assert self._in_flight is not None
        for (_, _, future), row in zip(self._in_flight, rows, strict=True):
            future.set_result(row)
        self._in_flight = None
        self._start()


def make_app(path: Path, writer: str, id_index: bool) -> Callable[..., Any]:
    decoder = msgspec.json.Decoder(_Event)
    encoder = msgspec.json.Encoder()
    commits: list[GroupCommit] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if not commits:
            commits.append(GroupCommit(path, writer, id_index))
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        event = decoder.decode(body)
        position, event_id = await commits[0].append(event.type, bytes(event.data))
        out = encoder.encode(
            {
                "stream": "s",
                "first_position": position,
                "last_position": position,
                "events": [{"id": event_id, "position": position}],
            }
        )
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--writer", choices=("thread", "process"), default="thread")
    parser.add_argument("--id-index", action="store_true", help="a unique index on the ids")
    parser.add_argument("--data", type=Path, help="the database file (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eventor-proto-") as scratch:
        path = args.data or Path(scratch) / "stream.db"
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
        sock.listen(2048)
        with contextlib.suppress(KeyboardInterrupt):
            app = make_app(path, args.writer, args.id_index)
            uvloop.run(serve(sock, app, f"prototype writer {args.writer}"))


if __name__ == "__main__":
    main()
