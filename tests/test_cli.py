"""The `eventor` command: version, help, configuration by options and EVENTOR_* variables, and
one-line errors (no tracebacks) when the server cannot start."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import httpx
import pytest
from conftest import READY_LINE
from helpers import wait_until

import eventor
from eventor.cli import serve

EVENTOR = [sys.executable, "-m", "eventor"]
#: Options the issue names; the help must list them (and every other option) with its variable.
REQUIRED_OPTIONS = {
    "--host",
    "--port",
    "--data",
    "--durability",
    "--max-event-bytes",
    "--max-request-bytes",
    "--max-append-events",
    "--max-original-read",
    "--max-open-files",
}


def run(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    preexec_fn: Callable[[], object] | None = None,
) -> tuple[int, str]:
    """Run `eventor *args` to completion: (exit code, stdout + stderr)."""
    done = subprocess.run(
        [*EVENTOR, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        preexec_fn=preexec_fn,
    )
    return done.returncode, done.stdout + done.stderr


def assert_one_line_error(code: int, output: str, *fragments: str) -> None:
    assert code != 0
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    for fragment in fragments:
        assert fragment in lines[0], output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def listening() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_version():
    code, output = run("--version")
    assert code == 0
    assert eventor.__version__ in output
    script = Path(sys.executable).parent / "eventor"
    assert script.exists(), "the console script `eventor` is installed"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    assert eventor.__version__ in done.stdout


def test_serve_help_lists_every_option_and_its_variable():
    code, output = run("serve", "--help", env={"COLUMNS": "200"})
    assert code == 0
    text = " ".join(output.split())
    options = [p for p in serve.params if isinstance(p, click.Option) and p.name != "help"]
    listed = set()
    for option in options:
        flag = next(o for o in option.opts if o.startswith("--"))
        variable = "EVENTOR_" + flag[2:].upper().replace("-", "_")
        assert flag in text, flag
        assert option.envvar == variable, (flag, option.envvar)
        assert variable in text, variable
        listed.add(flag)
    assert listed >= REQUIRED_OPTIONS


def test_port_taken_is_a_one_line_error(tmp_path, listening):
    code, output = run("serve", "--port", str(listening), "--data", str(tmp_path / "data"))
    assert_one_line_error(code, output, str(listening), "in use")
    assert not (tmp_path / "data").exists()  # nothing left behind


def test_data_dir_that_is_a_file_is_a_one_line_error(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    code, output = run("serve", "--port", "0", "--data", str(afile))
    assert_one_line_error(code, output, str(afile))
    assert afile.read_text() == "not a directory"
    code, output = run("serve", "--port", "0", "--data", str(afile / "below"))
    assert_one_line_error(code, output, str(afile / "below"))
    assert f"{afile} is not a directory" in output  # not "File exists"
    # A link to a volume not mounted: said so, not "File exists".
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "unmounted" / "data")
    code, output = run("serve", "--port", "0", "--data", str(link))
    assert_one_line_error(code, output, str(link))
    assert "symbolic link" in output
    assert "does not exist" in output
    assert not (tmp_path / "unmounted").exists()


def test_corrupt_catalog_is_a_one_line_error(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "catalog.db").write_bytes(os.urandom(5000))
    code, output = run("serve", "--port", "0", "--data", str(data))
    assert_one_line_error(code, output, str(data), "not a database")


def test_access_log_shows_requests_at_the_default_log_level(make_server):
    server = make_server("--access-log")
    with httpx.Client(base_url=server.url) as c:
        assert c.get("/health").status_code == 200
    wait_until(lambda: '"GET /health HTTP/1.1" 200' in server.log(), what="the access line")
    # A long target (up to 1 MiB is served) is no line as long.
    long_name = "a" * 60_000  # (httpx sends no longer URL)
    with httpx.Client(base_url=server.url) as c:
        assert c.get(f"/v1/streams/{long_name}").status_code == 400
    wait_until(lambda: "(57964 more characters)" in server.log(), what="the shortened line")
    assert max(len(line) for line in server.log().splitlines()) < 3000


def test_unwritable_data_dir_is_a_one_line_error(tmp_path):
    prefix: list[str] = []
    if os.geteuid() == 0:
        # Root writes anywhere: run the server without the capability that allows it.
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv (util-linux) is missing")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    try:
        for data in (readonly, readonly / "data"):
            done = subprocess.run(
                [*prefix, *EVENTOR, "serve", "--port", "0", "--data", str(data)],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert_one_line_error(done.returncode, done.stdout + done.stderr, str(data))
            assert list(readonly.iterdir()) == []
    finally:
        readonly.chmod(0o755)


def test_options_from_environment_variables(tmp_path):
    port = free_port()
    data = tmp_path / "env-data"
    env = {
        "EVENTOR_HOST": "127.0.0.1",
        "EVENTOR_PORT": str(port),
        "EVENTOR_DATA": str(data),
        "EVENTOR_DURABILITY": "Normal",  # choices in any case, as written in a unit file
        "EVENTOR_MAX_EVENT_BYTES": "50",
        "EVENTOR_MAX_APPEND_EVENTS": "2",
        "EVENTOR_MAX_ORIGINAL_READ": "2",
        "EVENTOR_LOG_LEVEL": "INFO",
    }
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*EVENTOR, "serve"], stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
    try:
        line = wait_until(
            lambda: READY_LINE.search(log.read_text()) or proc.poll() is not None,
            timeout=20,
            what="the startup line",
        )
        assert proc.poll() is None, log.read_text()
        assert isinstance(line, re.Match)
        startup = log.read_text().splitlines()[0]
        assert eventor.__version__ in startup
        assert f"http://127.0.0.1:{port}" in startup
        assert str(data.resolve()) in startup
        assert "durability normal" in startup
        assert data.is_dir()  # created when missing

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            wait_until(lambda: c.get("/ready").status_code == 200, timeout=10)
            for n in range(3):
                c.post("/streams/env", content=b"%d" % n, headers={"x-event-type": "T"})
            assert [e["position"] for e in c.get("/streams/env/0/-1").json()] == [1, 2]
            big = c.post("/v1/streams/env/events", json={"type": "T", "data": "x" * 49})
            assert big.status_code == 413
            many = c.post("/v1/streams/env/events", json=[{"type": "T"}] * 3)
            assert many.status_code == 413
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0


def test_options_override_environment_variables(make_server):
    server = make_server("--max-original-read", "1", env={"EVENTOR_MAX_ORIGINAL_READ": "5"})
    with httpx.Client(base_url=server.url) as c:
        for n in range(3):
            c.post("/streams/o", content=b"%d" % n, headers={"x-event-type": "T"})
        assert len(c.get("/streams/o/0/-1").json()) == 1


def test_startup_line_and_clean_stop(make_server):
    server = make_server("--durability", "off")
    startup = next(line for line in server.log().splitlines() if READY_LINE.search(line))
    assert f"Eventor {eventor.__version__}" in startup
    assert f"http://127.0.0.1:{server.port}" in startup
    assert str(server.data_dir.resolve()) in startup
    assert "durability off" in startup
    with httpx.Client(base_url=server.url) as c:
        assert c.post("/v1/streams/kept/events", json={"type": "T"}).status_code == 201
    assert server.stop() == 0  # SIGTERM: a clean stop
    assert "Traceback" not in server.log()
    server.restart()
    with httpx.Client(base_url=server.url) as c:
        assert c.get("/v1/streams/kept").json()["head"] == 1


def test_what_the_server_makes_only_its_user_may_read(make_server, tmp_path):
    """The catalog holds subscriptions' secrets and credentials: not for other users of the
    machine, whatever umask the server was started with."""
    data = tmp_path / "new" / "data"
    data.mkdir(parents=True, mode=0o755)
    data.chmod(0o755)  # an older version's data dir, say, or one made by hand
    server = make_server(data_dir=data)
    with httpx.Client(base_url=server.url) as c:
        assert c.post("/v1/streams/kept/events", json={"type": "T"}).status_code == 201
        sub = {"stream": "kept", "url": "http://127.0.0.1:9/", "secret": "whsec_" + "A" * 32}
        assert c.put("/v1/subscriptions/s", json=sub).status_code == 201
    assert server.stop() == 0
    made = [data, *data.rglob("*")]
    assert {p.name for p in made} >= {"data", "catalog.db", "streams", ".lock"}
    for path in made:
        assert path.stat().st_mode & 0o077 == 0, f"{path}: {oct(path.stat().st_mode)}"


def test_an_empty_data_dir_is_refused_not_taken_as_the_current_one(tmp_path):
    code, output = run("serve", "--data", "", cwd=tmp_path)
    assert code != 0
    assert "--data" in output
    assert "Traceback" not in output
    assert list(tmp_path.iterdir()) == []


def test_an_empty_eventor_data_is_refused_not_taken_as_unset(tmp_path):
    code, output = run("serve", env={"EVENTOR_DATA": ""}, cwd=tmp_path)
    assert code != 0
    assert "EVENTOR_DATA is set but empty" in output
    assert "Traceback" not in output
    assert list(tmp_path.iterdir()) == []  # no ./data made in the working dir


def test_other_empty_variables_and_overridden_ones_count_as_unset(make_server):
    """`${VAR:-}` in a compose file passes every variable, set or not."""
    empty = {"EVENTOR_PORT": "", "EVENTOR_ACCESS_LOG": "", "EVENTOR_FLUSH": "", "EVENTOR_DATA": ""}
    server = make_server(env=empty)  # gives --port and --data on the command line
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/health").status_code == 200


def test_a_data_dir_whose_name_is_too_long_is_a_one_line_error(tmp_path):
    code, output = run("serve", "--port", "0", "--data", str(tmp_path / ("x" * 300)))
    assert_one_line_error(code, output, "too long")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--durability", "sometimes"], "durability"),
        (["--port", "70000"], "port"),
        (["--max-event-bytes", "0"], "max-event-bytes"),
        (["--position-flush-interval", "nan"], "position-flush-interval"),
        (["--host", ""], "--host"),  # not every interface by accident
        # No PostgreSQL backend: a URL is not a directory named "postgresql:"
        (["--data", "postgresql://localhost/events"], "is a URL"),
    ],
)
def test_bad_option_values_are_refused(tmp_path, args, fragment):
    code, output = run("serve", "--data", str(tmp_path / "d"), *args, cwd=tmp_path)
    assert code != 0
    assert "Traceback" not in output
    assert fragment in output
    assert not (tmp_path / "d").exists()


@contextlib.contextmanager
def serving(
    tmp_path: Path, *args: str, preexec_fn: Callable[[], object] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], re.Match[str], Path]]:
    """`eventor serve --port 0 *args` in a process of its own (`preexec_fn` run in it before):
    (the process, its ready line's match: address and port, its log), until the block ends."""
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*EVENTOR, "serve", "--port", "0", "--data", str(tmp_path / "data"), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )
    try:
        wait_until(lambda: READY_LINE.search(log.read_text()) or proc.poll() is not None)
        match = READY_LINE.search(log.read_text())
        assert match is not None, log.read_text()
        assert proc.poll() is None, log.read_text()
        yield proc, match, log
    finally:
        proc.terminate()
        proc.wait(10)


def start_with_open_file_limit(tmp_path: Path, soft: int, hard: int) -> tuple[int, str]:
    """Start `eventor serve` under that limit; (the soft limit it runs with, its log)."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    with serving(tmp_path, preexec_fn=limit) as (proc, _, log):
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
        return int(line.split()[3]), log.read_text()


def test_the_open_file_limit_is_raised_for_the_stream_files_and_connections(tmp_path):
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 2000:
        pytest.skip(f"the hard limit ({hard}) leaves no room to raise the soft one")
    raised, _ = start_with_open_file_limit(tmp_path, 512, hard)
    # as far as the hard limit goes (as Go does): every connection takes one
    assert raised == (1 << 20 if hard == resource.RLIM_INFINITY else min(hard, 1 << 20))
    raised, _ = start_with_open_file_limit(tmp_path, 512, 1500)
    assert raised == 1500
    kept, said = start_with_open_file_limit(tmp_path, 600, 600)  # no room: said so
    assert kept == 600
    assert "the open-file limit (600) leaves room for about 324 connections" in said


def test_a_max_open_files_the_open_file_limit_cannot_hold_is_refused(tmp_path):
    import resource

    code, output = run(
        "serve",
        "--data",
        str(tmp_path / "d"),
        "--max-open-files",
        "1000",
        cwd=tmp_path,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (300, 300)),
    )
    assert code == 1
    assert "Traceback" not in output
    assert "the open-file limit (300) cannot hold --max-open-files 1000" in output
    assert "lower --max-open-files to at most 236" in output
    # the least it needs, and what leaves room for connections
    assert "to at least 1064 (2024 leaves room for about 1004 connections)" in output


def test_an_ipv6_host_may_be_written_as_in_a_url(tmp_path):
    with serving(tmp_path, "--host", "[::1]") as (_, match, _):
        assert match[1] == "[::1]"
        assert httpx.get(f"http://[::1]:{match[2]}/health", timeout=10).status_code == 200


def test_a_server_started_under_nohup_outlives_sighup(tmp_path):
    """nohup ignores SIGHUP so that the server outlives its terminal: still so."""
    import signal

    def nohup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    with serving(tmp_path, preexec_fn=nohup) as (proc, match, log):
        proc.send_signal(signal.SIGHUP)
        url = f"http://127.0.0.1:{match[2]}/v1/streams/s/events"
        assert httpx.post(url, json={"type": "T"}, timeout=10).status_code == 201
        assert proc.poll() is None
        assert "Eventor stopped" not in log.read_text()


@pytest.mark.parametrize("connections", [170, 260], ids=["near", "past"])
def test_open_files_near_or_at_the_limit_are_warned_of(tmp_path, connections):
    """Past the limit, connections are refused before any request exists to log: the log
    says so, once, while the files near it, and when none is left (then even listing them
    fails)."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))

    with serving(tmp_path, "--max-open-files", "64", preexec_fn=limit) as (_, match, log):
        port = int(match[2])
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        assert client.get("/health").status_code == 200  # its connection made before the rest
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
        try:
            wait_until(lambda: "files open of the limit of 200" in log.read_text(), timeout=20)
            if connections > 200:
                # No file left for a new stream: every stream's trouble, said as such, once
                # (it was a 500 "unable to open database file", logged once per stream name).
                for n in range(3):
                    r = client.post(f"/v1/streams/new{n}/events", json={"type": "T"})
                    assert r.status_code == 503, r.text
                    assert "too many open files" in r.json()["detail"]
        finally:
            for conn in held:
                conn.close()
            client.close()
    assert log.read_text().count("files open of the limit of 200") == 1
    assert log.read_text().count("too many open files") == (1 if connections > 200 else 0)
