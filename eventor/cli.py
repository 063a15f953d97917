"""The `eventor` command. `eventor serve` runs the server; every option has an EVENTOR_* twin."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import re
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .errors import EventorError
from .settings import (
    DEFAULT_MAX_OPEN_FILES,
    DURABILITIES,
    FLUSH_METHODS,
    Limits,
    Settings,
)

#: glibc's mallopt parameter for the arena cap (malloc.h).
_M_ARENA_MAX = -8

if TYPE_CHECKING:
    from .api.app import EventorApp

log = logging.getLogger("eventor")

_LIMITS = Limits()
_DEFAULTS = Settings()
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class _FiniteRange(click.FloatRange):
    """A FloatRange that refuses nan (which compares false with both bounds, so passes them)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail(
                f"{value!r} is not a number in the range {self._describe_range()}.", param, ctx
            )
        return number


def _not_empty(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if not value.strip():
        raise click.BadParameter(
            "must not be empty"
            + (" (0.0.0.0 listens on every interface)" if param.name == "host" else "")
        )
    if param.name == "host" and value.startswith("[") and value.endswith("]"):
        return value[1:-1]  # [::1], as an address is written in a URL
    if param.name != "data_dir":
        return value
    if _URL.match(value):
        # postgresql://... would otherwise become a directory named "postgresql:".
        raise click.BadParameter(
            f"{value!r} is a URL; Eventor keeps its data in a directory (SQLite files):"
            " give a directory's path"
        )
    return Path(value)


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


_data_option = click.option(
    "--data",
    "data_dir",
    default="./data",
    show_default=True,
    envvar="EVENTOR_DATA",
    show_envvar=True,
    type=click.Path(),  # checked by _prepare_data_dir: a one-line error
    callback=_not_empty,
    help="Data directory, created when missing.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="eventor")
def main() -> None:
    """Eventor: a durable, strictly ordered HTTP event store with webhook subscriptions."""


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="EVENTOR_HOST",
    show_envvar=True,
    callback=_not_empty,
    help="Address to listen on.",
)
@click.option(
    "--port",
    default=9400,
    show_default=True,
    envvar="EVENTOR_PORT",
    show_envvar=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@_data_option
@click.option(
    "--durability",
    default="full",
    show_default=True,
    envvar="EVENTOR_DURABILITY",
    show_envvar=True,
    type=click.Choice(DURABILITIES, case_sensitive=False),
    help="full: flushed to disk (syncfs or fsync, see --flush) before acknowledging (survives"
    " power loss); "
    "normal: survives a crash of the process; off: throwaway data.",
)
@click.option(
    "--flush",
    default=None,
    envvar="EVENTOR_FLUSH",
    show_envvar=True,
    type=click.Choice(FLUSH_METHODS, case_sensitive=False),
    help="How durability full reaches the disk: syncfs (one flush of the file system for "
    "many streams' commits; the default on Linux) or fsync (each stream's file as it commits: "
    "for a data dir on a file system other programs write to heavily; the default elsewhere).",
)
@click.option(
    "--max-event-bytes",
    default=_LIMITS.max_event_bytes,
    show_default=True,
    envvar="EVENTOR_MAX_EVENT_BYTES",
    show_envvar=True,
    type=click.IntRange(1),
    help="Largest event data.",
)
@click.option(
    "--max-request-bytes",
    default=_LIMITS.max_request_bytes,
    show_default=True,
    envvar="EVENTOR_MAX_REQUEST_BYTES",
    show_envvar=True,
    type=click.IntRange(1),
    help="Largest request body.",
)
@click.option(
    "--max-append-events",
    default=_LIMITS.max_append_events,
    show_default=True,
    envvar="EVENTOR_MAX_APPEND_EVENTS",
    show_envvar=True,
    type=click.IntRange(1),
    help="Most events in one append.",
)
@click.option(
    "--max-original-read",
    default=_LIMITS.max_original_read,
    show_default=True,
    envvar="EVENTOR_MAX_ORIGINAL_READ",
    show_envvar=True,
    type=click.IntRange(1),
    help="Most events one read on the original API returns.",
)
@click.option(
    "--max-open-files",
    default=DEFAULT_MAX_OPEN_FILES,
    show_default=True,
    envvar="EVENTOR_MAX_OPEN_FILES",
    show_envvar=True,
    type=click.IntRange(2),
    help="File descriptors open stream databases may hold (two per open stream).",
)
@click.option(
    "--attempt-log-size",
    default=_DEFAULTS.attempt_log_size,
    show_default=True,
    envvar="EVENTOR_ATTEMPT_LOG_SIZE",
    show_envvar=True,
    type=click.IntRange(1, 100_000),
    help="Delivery attempts kept per subscription in its attempt log.",
)
@click.option(
    "--position-flush-interval",
    default=_DEFAULTS.position_flush_interval,
    show_default=True,
    envvar="EVENTOR_POSITION_FLUSH_INTERVAL",
    show_envvar=True,
    type=_FiniteRange(0.001, 10),
    help="Seconds between writes of subscription positions (after a crash, the deliveries "
    "of about this window, plus the time the write takes, are repeated).",
)
@click.option(
    "--request-timeout",
    default=_DEFAULTS.request_timeout,
    show_default=True,
    envvar="EVENTOR_REQUEST_TIMEOUT",
    show_envvar=True,
    type=_FiniteRange(0.1, 3600),
    help="Seconds a request may go without bringing 1 KiB more while its head or body is"
    " incomplete (and"
    " a new connection before its first byte): then 408, and the connection closes. The head"
    " may take twice that in all.",
)
@click.option(
    "--keep-alive-timeout",
    default=_DEFAULTS.keep_alive_timeout,
    show_default=True,
    envvar="EVENTOR_KEEP_ALIVE_TIMEOUT",
    show_envvar=True,
    type=click.IntRange(1, 3600),
    help="Seconds an idle kept-alive connection stays open between requests. Longer than"
    " clients keep theirs (Go's 90 s), so that a request is never sent just as the server"
    " closes its connection.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    envvar="EVENTOR_LOG_LEVEL",
    show_envvar=True,
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="The least severe log lines shown (at warning and above, the start line is not).",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    envvar="EVENTOR_ACCESS_LOG",
    show_envvar=True,
    help="Log every request.",
)
def serve(
    host: str,
    port: int,
    data_dir: Path,
    durability: str,
    flush: str | None,
    max_event_bytes: int,
    max_request_bytes: int,
    max_append_events: int,
    max_original_read: int,
    max_open_files: int,
    attempt_log_size: int,
    position_flush_interval: float,
    request_timeout: float,
    keep_alive_timeout: int,
    log_level: str,
    access_log: bool,
) -> None:
    """Run the Eventor server."""
    _refuse_empty_environment(click.get_current_context())
    settings = Settings(
        host=host,
        port=port,
        data_dir=data_dir,
        durability=durability,  # type: ignore[arg-type]
        flush=flush,  # type: ignore[arg-type]
        limits=Limits(max_event_bytes, max_request_bytes, max_append_events, max_original_read),
        max_open_files=max_open_files,
        attempt_log_size=attempt_log_size,
        position_flush_interval=position_flush_interval,
        request_timeout=request_timeout,
        keep_alive_timeout=keep_alive_timeout,
        log_level=log_level,
        access_log=access_log,
    )
    # Worker threads (SQLite, fsync) wait for the GIL while the event loop is busy; at the
    # default 5 ms switch interval that wait dominates an append's latency. Measured with
    # benchmarks/run.py: +23 % appends/s on one stream and on 100 streams at 1 ms.
    sys.setswitchinterval(0.001)
    _limit_malloc_arenas(2)
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    sock = _listen(host, port)  # first: a start that fails on the port leaves no data dir
    _prepare_data_dir(data_dir)
    _ensure_open_file_limit(max_open_files)
    try:
        import uvloop

        uvloop.run(_serve(settings, sock))
    except KeyboardInterrupt:
        pass


async def _serve(settings: Settings, sock: socket.socket) -> None:
    import uvicorn

    from .api import create_app
    from .protocol import BoundedHeadProtocol
    from .storage.sqlite.backend import DataDirInUse

    _Server = _make_server_class()
    app = create_app(settings)
    from .legacy_files import is_stream_file

    original = _original_streams(settings.data_dir)
    catalog = settings.data_dir / "catalog.db"
    # The original's stream 'catalog' (even one without events): its file is where Eventor's
    # catalog goes, never to be written into.
    if catalog.is_file() and is_stream_file(catalog):
        raise click.ClickException(
            f"{catalog} is the original Eventor's stream 'catalog':"
            f" import it into another data dir (eventor import-original --data)"
        )
    # A stop asked for while starting waits for the start to end (the default action would
    # kill the process with the storage half open), then stops cleanly before serving.
    loop = asyncio.get_running_loop()
    asked: list[int] = []

    def asked_while_starting(sig: int) -> None:
        if asked:  # asked again: stop at once, as a crash would (every 2xx is on disk)
            log.warning("asked again to stop while starting: stopping at once")
            os._exit(128 + sig)
        asked.append(sig)

    for sig in _stop_signals():
        loop.add_signal_handler(sig, asked_while_starting, sig)
    try:
        await app.startup()
    except DataDirInUse as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, EventorError, sqlite3.Error) as exc:  # sqlite3: e.g. a corrupt catalog
        raise click.ClickException(f"cannot open the data dir {settings.data_dir}: {exc}") from None
    if asked:
        await app.shutdown()
        log.info("Eventor stopped: asked to while starting")
        return
    config = uvicorn.Config(
        app,
        lifespan="off",
        http=BoundedHeadProtocol.configured(settings.request_timeout, app.error_answers.count),
        log_config=None,
        log_level="debug" if settings.log_level == "debug" else "warning",
        access_log=settings.access_log,
        timeout_graceful_shutdown=5,
        # uvicorn's 5 s closed connections that clients still held as idle: a POST sent just
        # then fails with no answer (Go's client does not resend it). The original's Go server
        # had no idle timeout at all.
        timeout_keep_alive=settings.keep_alive_timeout,
        ws="none",  # no WebSocket routes: an upgrade request is served as plain HTTP
        server_header=False,
        proxy_headers=False,
    )
    if settings.access_log:
        # uvicorn sets its access logger to its own level, kept at warning unless debugging;
        # asked for, the access lines (INFO) must show at every --log-level.
        access = logging.getLogger("uvicorn.access")
        access.setLevel(logging.INFO)
        access.addFilter(_shorten_access_target)
    server = _Server(config)
    for sig in _stop_signals():
        loop.add_signal_handler(sig, _stop, app, server, sig)
    _warn_of_original_data(app, settings.data_dir, original)
    address = sock.getsockname()
    log.info(
        "Eventor %s serving http://%s:%d, data in %s (durability %s)",
        __version__,
        _host_for_url(address[0]),
        address[1],
        settings.data_dir.resolve(),
        settings.durability,
    )
    try:
        await server.serve(sockets=[sock])
    finally:
        try:
            await app.shutdown()
        except Exception as exc:  # e.g. a full disk: what could be saved is said in the log
            log.error("Eventor did not stop cleanly: %s", exc)
            raise SystemExit(1) from None
        log.info("Eventor stopped")


def _original_streams(data_dir: Path) -> dict[str, int]:
    from .legacy_import import original_streams

    try:
        return original_streams(data_dir)
    except Exception as exc:  # a hint only: never a reason not to serve
        log.debug("could not look for the original Eventor's data: %s", exc)
        return {}


def _warn_of_original_data(app: EventorApp, data_dir: Path, streams: dict[str, int]) -> None:
    from .legacy_import import not_imported_warning

    try:
        names = {s.name for s in app.subscriptions.all()}
        warning = not_imported_warning(data_dir, streams, app.storage, names)
    except Exception as exc:  # a hint only: never a reason not to serve
        log.debug("could not look for the original Eventor's data: %s", exc)
        return
    if warning:
        log.warning("%s", warning)


@main.command("import-original")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_data_option
def import_original(source: Path, data_dir: Path) -> None:
    """Import the streams and subscriptions of the original Eventor's data dir SOURCE.

    Stop the original server (and Eventor) first. --data may be SOURCE itself: an upgrade in
    place. The original's files are only read; running it again imports only what is missing.
    """
    from . import legacy_files

    _refuse_empty_environment(click.get_current_context())
    logging.basicConfig(
        level="WARNING", format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    streams = legacy_files.stream_files(source)  # before the storage locks its own files
    if not streams and not (source / legacy_files.META_FILE).is_file():
        raise click.ClickException(
            f"{source} holds no data of the original Eventor (no {legacy_files.META_FILE},"
            " no <stream>.db with its events table)"
        )
    _prepare_data_dir(data_dir)
    catalog = data_dir / "catalog.db"
    if catalog.is_file() and legacy_files.is_stream_file(catalog):
        raise click.ClickException(
            f"{catalog} is the original's stream 'catalog', where Eventor keeps its catalog:"
            " import into another --data dir"
        )
    if not asyncio.run(_import(source, streams, data_dir)):
        sys.exit(1)


async def _import(source: Path, streams: list[tuple[str, Path]], data_dir: Path) -> bool:
    from .legacy_import import import_original
    from .storage.base import open_storage
    from .storage.sqlite.backend import DataDirInUse

    storage = open_storage(data_dir, Settings(data_dir=data_dir))
    try:
        await storage.open()
    except DataDirInUse as exc:
        raise click.ClickException(f"{exc}: stop it before importing") from None
    except (OSError, EventorError, sqlite3.Error) as exc:
        raise click.ClickException(f"cannot open the data dir {data_dir}: {exc}") from None
    try:
        report = await import_original(
            source, streams, storage, say=click.echo, warn=lambda line: click.echo(line, err=True)
        )
    except (OSError, EventorError, sqlite3.Error) as exc:
        raise click.ClickException(f"the import stopped: {exc}") from None
    finally:
        await storage.close()
    click.echo(f"Imported the original Eventor's data from {source} into {data_dir}:")
    for line in report.summary():
        click.echo(f"  {line}")
    if not report.complete:
        click.echo("Not everything was imported: see the warnings above.", err=True)
    return report.complete


#: File descriptors wanted beyond the stream files: connections, the catalog, the flush dir.
_FD_HEADROOM = 1024
#: The signals that stop the server cleanly (SIGHUP: its terminal went away, or a supervisor
#: that sends it; its default action would kill the process without closing the storage).
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stop_signals() -> list[int]:
    """The stop signals to handle: not one the process was started ignoring (`nohup` ignores
    SIGHUP so that the server outlives its terminal: a handler would undo that)."""
    return [sig for sig in _STOP_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN]


#: Files the server holds beside the streams' (the catalog and its WAL, the lock, the listening
#: socket, stdio, the executor's pipes) and a few connections: less than this cannot serve.
_FD_OWN = 64
#: Of those, the files an idle server holds (measured: about 20).
_FD_SERVER = 20
_FD_CEILING = 1 << 20


def _ensure_open_file_limit(max_open_files: int) -> None:
    """Raise the soft limit on open files as far as the hard limit allows (at least to what
    --max-open-files and some connections need), and warn when that leaves too little."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_open_files + _FD_HEADROOM
    # As high as allowed, as Go's runtime does (the original's): every connection takes one,
    # and a limit near what the streams need lets a few thousand idle clients shut out the rest.
    target = max(wanted, _FD_CEILING if hard == resource.RLIM_INFINITY else min(hard, _FD_CEILING))
    for raised in (target, wanted):  # the first may pass what the kernel allows (nr_open)
        if soft == resource.RLIM_INFINITY or soft >= raised:
            break
        if hard != resource.RLIM_INFINITY:
            raised = min(raised, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft != resource.RLIM_INFINITY and soft < max_open_files + _FD_OWN:
        # Streams past the limit would fail to open (a 500 each) while all looked well.
        fits = soft - _FD_OWN
        lower = f", or lower --max-open-files to at most {fits}" if fits >= 2 else ""
        raise click.ClickException(
            f"the open-file limit ({soft}) cannot hold --max-open-files {max_open_files} and"
            f" the server's own files: raise it (ulimit -n, LimitNOFILE=) to at least"
            f" {max_open_files + _FD_OWN} ({max_open_files + _FD_HEADROOM} leaves room for"
            f" about {_FD_HEADROOM - _FD_SERVER} connections){lower}"
        )
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning(
            "the open-file limit (%d) leaves room for about %d connections beside"
            " --max-open-files %d and the server's own files: raise it (ulimit -n,"
            " LimitNOFILE=) or lower --max-open-files",
            soft,
            max(soft - max_open_files - _FD_SERVER, 0),
            max_open_files,
        )


def _limit_malloc_arenas(count: int) -> None:
    """Cap glibc's malloc arenas (unless MALLOC_ARENA_MAX says otherwise), before any thread.

    Stream databases move between worker threads, and glibc gives each thread its own arena:
    their page caches end up spread over up to 8 x cores arenas that never shrink. Measured with
    10,000 streams created by 64 clients: 201 MB resident uncapped, 107 MB with 2 arenas, and
    no change in appends/s (A/B medians within 1 %).
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_ARENA_MAX, count)


def _make_server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, minus its signal handling: after a graceful stop uvicorn re-raises
        SIGTERM/SIGINT, which would kill the process before the storage is closed cleanly;
        and with a `Date` that keeps up with the clock."""

        _date_second = 0

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        async def on_tick(self, counter: int) -> bool:
            # uvicorn writes the Date header anew once a second, every tenth tick: answers
            # said a time up to two seconds past (an append created at 09:22:08.23 answered
            # "Date: 09:22:07"). Looked at every tick (0.1 s): a new second, a new Date.
            now = time.time()
            if int(now) != self._date_second and self.config.date_header:
                self._date_second = int(now)
                date = (b"date", formatdate(now, usegmt=True).encode())
                self.server_state.default_headers = [date, *self.config.encoded_headers]
            return bool(await super().on_tick(counter))

    return Server


#: The longest request target an access line shows (a target may be up to 1 MiB long).
ACCESS_TARGET_CHARS = 2048


def _shorten_access_target(record: logging.LogRecord) -> bool:
    """An access line shows at most ACCESS_TARGET_CHARS of the target: any client could
    otherwise write a line of a megabyte with every request."""
    args = record.args
    # uvicorn's access line: (client, method, target, HTTP version, status)
    if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
        target = args[2]
        if len(target) > ACCESS_TARGET_CHARS:
            more = len(target) - ACCESS_TARGET_CHARS
            short = f"{target[:ACCESS_TARGET_CHARS]}...({more} more characters)"
            record.args = (*args[:2], short, *args[3:])
    return True


def _stop(app: EventorApp, server: Any, sig: int) -> None:
    if app.store.stopping:
        # Asked again: stop without waiting (uvicorn forces its exit on a second SIGINT only).
        server.force_exit = True
    app.begin_shutdown()
    server.handle_exit(sig, None)


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _refuse_empty_environment(ctx: click.Context) -> None:
    """EVENTOR_DATA set to nothing (a unit file's unset value, say) is a mistake, not a wish
    for the default: ./data of whatever the working dir is. Other variables set but empty
    count as unset, as click reads them (`${VAR:-}` in a compose file)."""
    if (
        os.environ.get("EVENTOR_DATA") == ""
        and ctx.get_parameter_source("data_dir") != click.core.ParameterSource.COMMANDLINE
    ):
        raise click.UsageError(
            "EVENTOR_DATA is set but empty: give it a value, or unset it for the default"
        )


def _prepare_data_dir(data_dir: Path) -> None:
    try:
        if data_dir.exists() and not data_dir.is_dir():
            raise click.ClickException(f"cannot use the data dir {data_dir}: it is not a directory")
        if data_dir.is_symlink() and not data_dir.exists():
            raise click.ClickException(
                f"cannot use the data dir {data_dir}: it is a symbolic link to"
                f" {os.readlink(data_dir)}, which does not exist (a volume not mounted?)"
            )
        for parent in data_dir.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise click.ClickException(
                        f"cannot use the data dir {data_dir}: {parent} is not a directory"
                    )
                break
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        # The data dir is its user's alone, and so is what Eventor makes in it (files 0600,
        # whatever the umask said): the catalog holds subscriptions' secrets and their
        # receivers' credentials. The dir's mode covers files an older version made 0644 too.
        os.umask(0o077)
        data_dir.mkdir(exist_ok=True)
        _keep_private(data_dir)
        probe = data_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise click.ClickException(f"cannot use the data dir {data_dir}: {reason}") from None


def _keep_private(data_dir: Path) -> None:
    log = logging.getLogger("eventor")
    mode = data_dir.stat().st_mode & 0o7777
    if not mode & 0o077:
        return
    try:
        data_dir.chmod(mode & ~0o077)  # taking from others only (a read-only dir stays so)
    except OSError as exc:  # not its owner, say: served all the same
        log.warning("data dir %s: others may read it (%s)", data_dir, exc.strerror or exc)


def _listen(host: str, port: int) -> socket.socket:
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.set_inheritable(True)
        return sock
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = "the address is already in use (is another server running?)"
        else:
            reason = exc.strerror or str(exc)
        raise click.ClickException(f"cannot listen on {host}:{port}: {reason}") from None
