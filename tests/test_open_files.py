"""The LRU of open stream databases keeps file descriptors bounded, and evicted streams reopen."""

from __future__ import annotations

import os

import httpx
from helpers import wait_until


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
