"""Operations routes: /health, /ready and /metrics (api-v1.md, "Operations")."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import append_ok, assert_problem, histogram, in_process, metric, unique
from prometheus_client.parser import text_string_to_metric_families

import eventor
from eventor.api import create_app


def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"status": "ok", "version": eventor.__version__}


def test_ready(client):
    r = client.get("/ready")
    assert r.status_code == 200
    assert r.json()["status"] == "ready"


def test_ready_is_503_while_the_storage_is_closed(tmp_path):
    """In-process, the real app around its real storage, before it opens and after it closes."""
    app = create_app(data_dir=tmp_path / "data")

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://eventor") as c:
            answers = [await c.get("/ready"), await c.get("/health")]
            await app.startup()
            answers.append(await c.get("/ready"))
            await app.shutdown()
            answers += [await c.get("/ready"), await c.get("/health")]
            return answers

    before, health_before, opened, after, health_after = asyncio.run(scenario())
    assert_problem(before, 503)
    assert health_before.status_code == 200
    assert opened.status_code == 200
    assert_problem(after, 503)
    assert health_after.status_code == 200


def test_metrics_exposition(client):
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    for name in ("eventor_appended_events", "eventor_commits"):
        assert families[name].type == "counter"
    for name in ("eventor_streams", "eventor_open_streams"):
        assert families[name].type == "gauge"
    [info] = families["eventor_info"].samples
    assert info.labels == {"version": eventor.__version__}
    assert info.value == 1
    # The process's own, as every Python exporter has them: fds against their limit, memory.
    open_fds = families["process_open_fds"].samples[0].value
    assert 0 < open_fds < families["process_max_fds"].samples[0].value
    assert families["process_resident_memory_bytes"].samples[0].value > 10_000_000
    assert "python_info" in families


def test_metrics_count_appends_commits_and_streams(client):
    def scrape() -> dict[str, float]:
        text = client.get("/metrics").text
        names = ("appended_events_total", "commits_total", "streams", "open_streams")
        return {n: metric(text, f"eventor_{n}") for n in names}

    before = scrape()
    stream = unique("metrics")
    append_ok(client, stream, [{"type": "T"}] * 3)
    client.post(f"/streams/{stream}", content=b"{}", headers={"x-event-type": "T"})
    client.post(f"/v1/streams/{stream}/events", json={"type": ""})  # refused: counts nothing
    after = scrape()
    assert after["appended_events_total"] - before["appended_events_total"] == 4
    assert after["commits_total"] - before["commits_total"] == 2
    assert after["streams"] - before["streams"] == 1
    assert after["open_streams"] >= 1


def test_ready_is_503_once_the_data_dir_is_moved_away(make_server):
    server = make_server()
    assert httpx.get(f"{server.url}/ready").status_code == 200
    opened = httpx.post(f"{server.url}/v1/streams/open/events", json={"type": "T"})
    assert opened.status_code == 201  # its file is open: appends would go on into it
    moved = server.data_dir.with_name("moved")
    server.data_dir.rename(moved)
    try:
        assert_problem(httpx.get(f"{server.url}/ready"), 503)
        assert httpx.get(f"{server.url}/health").status_code == 200  # still alive, not ready
        # What an append would write now is lost with the directory: none is acknowledged.
        refused = httpx.post(f"{server.url}/v1/streams/open/events", json={"type": "T"})
        assert "moved or removed" in assert_problem(refused, 503)["detail"]
        assert (
            httpx.post(
                f"{server.url}/streams/open", content=b"{}", headers={"X-Event-Type": "T"}
            ).status_code
            == 503
        )
        sub = {"stream": "open", "url": "http://127.0.0.1:9/"}  # a catalog write, lost too
        assert_problem(httpx.put(f"{server.url}/v1/subscriptions/s", json=sub), 503)
    finally:
        moved.rename(server.data_dir)
    assert httpx.get(f"{server.url}/ready").status_code == 200
    again = httpx.post(f"{server.url}/v1/streams/open/events", json={"type": "T"})
    assert again.json()["first_position"] == 2  # back where it was
    assert httpx.put(f"{server.url}/v1/subscriptions/s", json=sub).status_code == 201


def test_error_answers_are_counted_by_status(make_server):
    server = make_server("--request-timeout", "0.3")

    def counts() -> dict[str, float]:
        text = httpx.get(f"{server.url}/metrics").text
        [family] = [
            f for f in text_string_to_metric_families(text) if f.name == "eventor_error_answers"
        ]
        return {s.labels["status"]: s.value for s in family.samples if s.name.endswith("_total")}

    with httpx.Client(base_url=server.url) as c:
        assert counts() == {}
        stream = unique("errors")
        append_ok(c, stream, [{"type": "T"}])  # successes count nothing
        assert c.post(f"/v1/streams/{stream}/events", json={"type": ""}).status_code == 400
        assert c.post(f"/streams/{stream}", content=b"{}").status_code == 400  # text, original
        assert c.get("/v1/nothing-here").status_code == 404
        appended = c.post(f"/v1/streams/{stream}/events?expected_version=0", json={"type": "T"})
        assert appended.status_code == 409
        moved = server.data_dir.with_name("moved")
        server.data_dir.rename(moved)
        try:
            assert c.get("/ready").status_code == 503
        finally:
            moved.rename(server.data_dir)
        assert counts() == {"400": 2, "404": 1, "409": 1, "503": 1}
    # Answered before any route (they were not counted): a head too large, a request HTTP
    # cannot frame, a transfer coding not supported, a body that stalls.
    address = (server.url.removeprefix("http://").split(":")[0], server.port)
    head = b"POST /v1/streams/s/events HTTP/1.1\r\nHost: x\r\n"
    for request in [
        b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n",
        head + b"Transfer-Encoding: chunked\r\n\r\nZZ\r\n",
        head + b"Transfer-Encoding: gzip\r\n\r\n",
        head + b"Content-Type: application/json\r\nContent-Length: 10\r\n\r\n{",
    ]:
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(request)
            assert sock.recv(12)[9:12] in (b"431", b"400", b"501", b"408")
    assert counts() == {"400": 3, "404": 1, "408": 1, "409": 1, "431": 1, "501": 1, "503": 1}


def test_request_durations_by_method_and_route(make_server):
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        stream = unique("timed")
        for _ in range(3):
            append_ok(c, stream, [{"type": "T"}])
        assert c.post(f"/streams/{stream}", content=b"{}", headers={"X-Event-Type": "T"}).is_success
        assert c.post(f"/v1/streams/{stream}/events", json={"type": ""}).status_code == 400
        assert c.get("/v1/no/such/route").status_code == 404
        assert c.head(f"/v1/streams/{stream}").status_code == 200
        # A long poll that times out: its wait is part of its duration.
        waited = c.get(f"/v1/streams/{stream}/events?from=5&wait=0.3")
        assert waited.json()["events"] == []
        text = c.get("/metrics").text
    series = histogram(text, "eventor_http_request_duration_seconds")
    appends = series[("POST", "/v1/streams/{stream}/events")]
    assert appends["count"] == 4  # the refused one too
    assert appends["+Inf"] == 4
    assert 0 < appends["sum"] < 4 * 10
    buckets = [v for k, v in appends.items() if k not in ("count", "sum")]
    assert buckets == sorted(buckets)  # cumulative
    assert series[("POST", "/streams/{stream}")]["count"] == 1
    assert series[("GET", "none")]["count"] == 1
    assert series[("HEAD", "/v1/streams/{stream}")]["count"] == 1
    read = series[("GET", "/v1/streams/{stream}/events")]
    assert read["count"] == 1
    assert read["0.25"] == 0  # took its 0.3 s wait
    assert read["+Inf"] == 1
    assert read["sum"] >= 0.3


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """`directory` on a read-only bind mount of itself (files opened before keep working).
    Unmounted lazily: files the server opened through it (to read) hold it until closed."""
    mounted = subprocess.run(["mount", "--bind", str(directory), str(directory)], check=False)
    if mounted.returncode != 0:
        pytest.skip("mount --bind is not allowed here")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(directory)], check=True)
        yield
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True)


def test_a_data_dir_made_read_only_is_a_503_said_once_and_not_ready(make_server, tmp_path):
    """A read-only remount (or permissions changed under the server) made every append to a
    new stream a 500 "unable to open database file", logged once per stream name, with
    /ready 200: any client could grow the log without end, and nothing said why."""
    data = tmp_path / "data"
    server = make_server(data_dir=data)
    with httpx.Client(base_url=server.url, timeout=10) as c:
        append_ok(c, "kept", {"type": "T"})
        with read_only(data / "streams"):
            answers = [c.post(f"/v1/streams/new{n}/events", json={"type": "T"}) for n in range(5)]
            assert [r.status_code for r in answers] == [503] * 5
            assert "is not writable" in answers[0].json()["detail"]
            ready = c.get("/ready")
            assert ready.status_code == 503
            assert "is not writable" in ready.json()["detail"]
            assert c.get("/v1/streams/kept/events").json()["head"] == 1  # reads go on
        assert c.get("/ready").status_code == 200
        append_ok(c, "new0", {"type": "T"})  # and appends, once it is writable again
    assert server.log().count("is not writable") == 1


def test_streams_whose_files_are_closed_are_read_while_the_data_dir_is_read_only(
    make_server, tmp_path
):
    """A stream file opened again (past the LRU, after a restart) needs its WAL file made,
    which a read-only directory refuses: every such read was a 503. Closed cleanly, the file
    holds every event, and is read as it is; once the directory is writable, appends to it
    open it for writing again."""
    data = tmp_path / "data"
    server = make_server("--max-open-files", "4", data_dir=data)  # two streams open at most
    streams = [f"ro{n}" for n in range(6)]
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for stream in streams:
            append_ok(c, stream, [{"type": "T", "data": n} for n in range(3)])
        with read_only(data / "streams"):
            # The first four were closed (the last two are open, and are closed, evicted, as
            # these open: without a WAL file of their own to be read by, unless it is empty).
            for stream in streams[:4]:
                r = c.get(f"/v1/streams/{stream}/events")
                assert r.status_code == 200, r.text
                assert [e["data"] for e in r.json()["events"]] == [0, 1, 2]
                assert c.get(f"/streams/{stream}/0/10").json()[2]["position"] == 3
                assert c.get(f"/v1/streams/{stream}").json()["head"] == 3
                r = c.post(f"/v1/streams/{stream}/events", json={"type": "T"})
                assert r.status_code == 503, r.text
        # The last read is still open to read only: opened again, to write, first.
        for stream in [*reversed(streams[:4]), *streams[4:]]:
            append_ok(c, stream, {"type": "T", "data": 3})
            r = c.get(f"/v1/streams/{stream}/events")
            assert [e["data"] for e in r.json()["events"]] == [0, 1, 2, 3]


def test_reads_beside_a_refused_append_are_answered(tmp_path):
    """Reads waiting on a stream with an append were answered by the append's refusal (503)
    when the stream, opened to read only, could not take it."""
    data = tmp_path / "data"

    async def main() -> None:
        async with in_process(data, max_open_files=4) as (_, c):
            for stream in "abcd":  # a and b closed, evicted
                r = await c.post(f"/v1/streams/{stream}/events", json=[{"type": "T"}] * 3)
                assert r.status_code == 201, r.text
            with read_only(data / "streams"):
                assert (await c.get("/v1/streams/a/events")).status_code == 200
                for _ in range(3):
                    answers = await asyncio.gather(
                        c.get("/v1/streams/a/events"),
                        c.post("/v1/streams/a/events", json={"type": "T"}),
                        *[c.get("/v1/streams/a/events") for _ in range(4)],
                    )
                    statuses = [r.status_code for r in answers]
                    assert statuses == [200, 503, 200, 200, 200, 200], answers[2].text

    asyncio.run(main())
