"""Import the original Eventor's streams and subscriptions into Eventor's storage.

Streams keep their positions (the original's rowids), event ids, types, bytes and creation
times; subscriptions become original-API subscriptions at the same positions. What Eventor
already holds is never changed: a stream that holds exactly the first events of the original's
gets the rest (so an interrupted import can run again), and a second run changes nothing.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import legacy_files
from .clock import utc_now
from .errors import EventorError, StreamNotFound
from .legacy_files import LegacyStream, LegacySubscription, parse_go_time
from .names import check_stream_name
from .payloads import describe
from .storage.base import Storage
from .store import CONTROL_CHARACTER
from .subscriptions import check_position, original_config
from .types import ACTIVE, JSON_CONTENT_TYPE, MAX_POSITION, PAUSED, NewEvent, Subscription

#: Events per append, and the most data one append carries.
BATCH_EVENTS = 1000
BATCH_BYTES = 16 * 1024 * 1024
_TRUE = (1, "1", "true", "TRUE", "True")
_FALSE = (0, "0", "false", "FALSE", "False")

Say = Callable[[str], None]


class Refused(Exception):
    """Why a stream or a subscription is not imported."""


@dataclass
class ImportReport:
    """What an import did."""

    imported: dict[str, int] = field(default_factory=dict)  # stream -> events appended now
    current: list[str] = field(default_factory=list)  # streams Eventor held in full already
    empty: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # stream -> why
    subscriptions: list[str] = field(default_factory=list)
    subscriptions_present: list[str] = field(default_factory=list)
    subscriptions_refused: dict[str, str] = field(default_factory=dict)
    unread_times: int = 0

    @property
    def complete(self) -> bool:
        """True when everything the original held is now in Eventor."""
        return not self.refused and not self.subscriptions_refused

    def summary(self) -> list[str]:
        events = sum(self.imported.values())
        lines = [f"streams imported: {len(self.imported)} ({events} events)"]
        if self.current:
            lines.append(f"streams already in Eventor, unchanged: {len(self.current)}")
        if self.empty:
            lines.append(f"streams without events, skipped: {', '.join(self.empty)}")
        if self.refused:
            lines.append(f"streams NOT imported: {len(self.refused)} ({_names(self.refused)})")
        lines.append(f"subscriptions imported: {len(self.subscriptions)}")
        if self.subscriptions_present:
            lines.append(
                f"subscriptions already in Eventor, left alone: {len(self.subscriptions_present)}"
            )
        if self.subscriptions_refused:
            lines.append(
                f"subscriptions NOT imported: {len(self.subscriptions_refused)}"
                f" ({_names(self.subscriptions_refused)})"
            )
        if self.unread_times:
            lines.append(
                f"creation times that could not be read (the import time stands instead):"
                f" {self.unread_times}"
            )
        return lines


async def import_original(
    source: Path,
    streams: list[tuple[str, Path]],
    storage: Storage,
    say: Say = print,
    warn: Say = print,
) -> ImportReport:
    """Import the `streams` (`legacy_files.stream_files(source)`, listed before `storage` was
    opened: it may lock files of its own in the same dir) and the subscriptions of the
    original's data dir `source` into `storage` (open). `say` hears progress, `warn` what is
    not imported and why."""
    report = ImportReport()
    for name, path in streams:
        try:
            appended = await _import_stream(name, path, storage, report)
        except (Refused, sqlite3.Error) as why:
            reason = str(why)
            if isinstance(why, sqlite3.Error):  # the original's file is unreadable
                reason = f"{path.name} cannot be read: {why}"
            report.refused[name] = reason
            report.imported.pop(name, None)  # cut short: counted once, as not imported
            warn(f"warning: stream {name!r} not imported: {reason}")
        else:
            if appended:
                say(f"stream {name!r}: {appended} events imported")
    try:
        legacies = legacy_files.subscriptions(source)
    except legacy_files.LegacyFileError as exc:
        report.subscriptions_refused[legacy_files.META_FILE] = str(exc)
        warn(f"warning: subscriptions not imported: {exc}")
        legacies = []
    taken = {r.subscription.name: r.subscription for r in await storage.load_subscriptions(1)}
    named: set[str] = set()  # the original's table did not keep names unique
    for legacy in legacies:
        name = legacy.name or "(no name)"
        try:
            if legacy.name and legacy.name in named:
                raise Refused(
                    f"an earlier row of {legacy_files.META_FILE} has that name (the original did"
                    " not keep names unique): only the first row of a name is taken"
                )
            named.add(name)
            present = taken.get(name)
            if present is not None:
                if (present.config.stream, present.config.url) == (legacy.stream, legacy.url):
                    report.subscriptions_present.append(name)
                    continue
                raise Refused(
                    f"Eventor has a subscription of that name already (to stream"
                    f" {present.config.stream!r}, {present.config.url}): left alone"
                )
            if legacy.stream in report.refused:
                # Its position refers to events not imported: delivering new ones from there
                # (or from 0) would be wrong. It comes along when its stream does.
                raise Refused(f"its stream {legacy.stream!r} was not imported")
            subscription = _subscription(legacy, report)
        except (Refused, EventorError) as why:
            report.subscriptions_refused[name] = str(why)
            warn(f"warning: subscription {name!r} not imported: {why}")
            continue
        await storage.save_subscription(subscription)
        report.subscriptions.append(name)
        head = await _file_head(storage, subscription.config.stream)
        if subscription.position > head:
            warn(
                f"warning: subscription {name!r} stands at position {subscription.position},"
                f" past the head ({head}) of stream {subscription.config.stream!r}"
            )
    return report


async def _import_stream(name: str, path: Path, storage: Storage, report: ImportReport) -> int:
    """Append the events Eventor lacks; how many. Raises Refused."""
    try:
        check_stream_name(name)
    except EventorError as exc:
        raise Refused(str(exc)) from None
    legacy = LegacyStream(path)
    try:
        count, first, last = legacy.positions()
        if count == 0:
            report.empty.append(name)
            return 0
        if first != 1 or last != count:
            raise Refused(
                f"its positions have gaps ({count} events at positions {first} to {last});"
                " subscription positions refer to them, so they are not renumbered"
            )
        _check_rows(legacy)
        _check_unique(legacy)
        head = await _file_head(storage, name)
        if head:
            await _check_prefix(name, legacy, storage, head, last)
        if head >= last:
            report.current.append(name)
            return 0
        batch: list[NewEvent] = []
        size = 0
        for event in legacy.events(after=head):
            created = parse_go_time(event.created)
            if created is None:
                report.unread_times += 1
                created = utc_now()
            is_json, shape = describe(event.body, JSON_CONTENT_TYPE)
            assert event.uuid is not None  # checked by _check_rows
            assert event.type is not None
            batch.append(
                NewEvent(
                    event.type,
                    event.body,
                    JSON_CONTENT_TYPE,
                    is_json,
                    None,
                    event.uuid.lower(),  # canonical: /v1 takes ids in any case
                    shape,
                    created=created,
                )
            )
            size += len(event.body)
            if len(batch) >= BATCH_EVENTS or size >= BATCH_BYTES:
                head = await _append(name, storage, batch, head, report)
                batch, size = [], 0
        if batch:
            head = await _append(name, storage, batch, head, report)
        return report.imported.get(name, 0)
    finally:
        legacy.close()


def _is_uuid(text: str) -> bool:
    """A UUID in its canonical form (36 characters; `uuid.UUID` would take braces, a `urn:`
    prefix and any number of hyphens too)."""
    try:
        return len(text) == 36 and str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def _check_rows(legacy: LegacyStream) -> None:
    """Every event has an id and a type Eventor can keep (before anything is appended)."""
    for event in legacy.events(with_body=False):
        if not event.uuid:
            raise Refused(f"the event at position {event.position} has no uuid (or not UTF-8)")
        if not _is_uuid(event.uuid):
            # It goes out as X-Event-Uuid, ce-id and webhook-id headers: 20 KB of text there
            # stalled deliveries on receivers' 431s.
            raise Refused(
                f"the event at position {event.position} has a uuid that is no UUID:"
                f" {event.uuid[:60]!r}"
            )
        if not event.type or CONTROL_CHARACTER.search(event.type):
            raise Refused(
                f"the event at position {event.position} has no type, or one with control"
                " characters (or not UTF-8)"
            )


def _check_unique(legacy: LegacyStream) -> None:
    """No uuid is held by two events (the original's mirror could replay events; Eventor keeps
    a uuid once in a stream): else nothing of the stream is appended, not even a prefix."""
    repeated = legacy.repeated_uuids(_SHOWN + 1)
    if repeated:
        listed = "; ".join(
            f"{uuid} at positions {_listed(positions)}" for uuid, positions in repeated[:_SHOWN]
        )
        more = "; and more" if len(repeated) > _SHOWN else ""
        raise Refused(
            f"events repeat uuids ({listed}{more}): Eventor keeps a uuid once in a stream,"
            " so nothing of it is imported"
        )


#: Repeated uuids, and positions of one, named in a refusal.
_SHOWN = 3


def _listed(positions: list[int]) -> str:
    shown = ", ".join(map(str, positions[:_SHOWN]))
    return shown + (f" and {len(positions) - _SHOWN} more" if len(positions) > _SHOWN else "")


async def _check_prefix(
    name: str, legacy: LegacyStream, storage: Storage, head: int, last: int
) -> None:
    """Raise Refused unless Eventor's first events are the original's first ones: the first
    `head` of them (an import cut short), or all `last` (imported, maybe appended to since)."""
    ours = 0
    page: list[str] = []
    for event in legacy.events(with_body=False):
        if event.position > min(head, last):
            break
        if not page:
            read = await storage.read(name, event.position, BATCH_EVENTS, max_bytes=BATCH_BYTES)
            page = [e.id for e in reversed(read.events)]
        ours = event.position
        if page.pop().lower() != (event.uuid or "").lower():  # in any case, as /v1 does
            raise Refused(
                f"Eventor holds other events in it (position {ours} differs from the"
                " original's): Eventor was used before the import; nothing of it is changed"
            )


async def _append(
    name: str, storage: Storage, batch: list[NewEvent], head: int, report: ImportReport
) -> int:
    try:
        result = await storage.append(name, batch, head)
    except EventorError as exc:
        raise Refused(f"{_imported(report, name, head)}: {exc}") from None
    if not result.created or result.first_position != head + 1:
        raise Refused(
            f"{_imported(report, name, head)}: events from position {head + 1} on repeat the"
            " uuids of earlier ones"
        )
    report.imported[name] = report.imported.get(name, 0) + len(batch)
    return result.last_position


def _imported(report: ImportReport, name: str, head: int) -> str:
    return f"imported up to position {head} ({report.imported.get(name, 0)} events this run)"


def _subscription(legacy: LegacySubscription, report: ImportReport) -> Subscription:
    """The original's subscription as Eventor keeps one made through the original API."""
    if not legacy.name:
        raise Refused("it has no name")
    config = original_config(legacy.name, legacy.stream or "", legacy.url or "", _headers(legacy))
    position = _position(legacy.last_read_position)
    check_position(position)
    if legacy.is_active in _TRUE:
        active = True
    elif legacy.is_active in _FALSE:
        active = False
    else:
        raise Refused(f"isActive is {legacy.is_active!r}, neither 1 nor 0")
    created = parse_go_time(legacy.created_at)
    if created is None:
        report.unread_times += 1
        created = utc_now()
    updated = parse_go_time(legacy.updated_at) if legacy.updated_at else created
    if updated is None:
        report.unread_times += 1
        updated = created
    return Subscription(
        legacy.name,
        config,
        position,
        ACTIVE if active else PAUSED,
        None if active else (legacy.pause_reason or None),
        created=created,
        updated=updated,
    )


def _headers(legacy: LegacySubscription) -> dict[str, str]:
    if not legacy.headers or not legacy.headers.strip():
        return {}
    try:
        headers = json.loads(legacy.headers)
    except ValueError:
        raise Refused(f"httpHeaders is not JSON: {legacy.headers[:100]!r}") from None
    if headers is None:
        return {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise Refused("httpHeaders is not a JSON object of strings")
    return headers


#: A position as text (str.isdigit would take "²", and int() refuses 4,300 digits).
_DIGITS = re.compile(r"\+?[0-9]{1,19}")


async def _file_head(storage: Storage, stream: str) -> int:
    """The head as the stream's file says: after a crash (an import killed midway, say) the
    head kept in memory lags it until the background re-check comes by."""
    try:
        return (await storage.read(stream, MAX_POSITION, 1)).head
    except StreamNotFound:
        return 0


def _position(value: object) -> int:
    """lastReadPosition, stored as a number or as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value)
    raise Refused(f"lastReadPosition is {value!r}, not a position")


def _names(reasons: dict[str, str]) -> str:
    return ", ".join(sorted(reasons))


# -- at server start ---------------------------------------------------------------------------


def original_streams(data_dir: Path) -> dict[str, int]:
    """The original's streams with events in `data_dir`, and their last positions. Cheap: no
    event is read. Call it before the storage opens (it may lock files of its own there)."""
    found = {}
    for name, path in legacy_files.stream_files(data_dir):
        try:
            legacy = LegacyStream(path)
            try:
                last = legacy.last_position()
            finally:
                legacy.close()
        except Exception:
            continue  # the import says what is wrong with it
        if last:
            found[name] = last
    return found


def not_imported_warning(
    data_dir: Path, streams: dict[str, int], storage: Storage, subscriptions: set[str]
) -> str | None:
    """A warning when `data_dir` holds the original's data (`streams`: see `original_streams`)
    and none of it is in Eventor (`subscriptions`: the names Eventor has)."""
    if any((storage.head(name) or 0) >= last for name, last in streams.items()):
        return None
    try:
        names = {s.name for s in legacy_files.subscriptions(data_dir) if s.name}
    except legacy_files.LegacyFileError:
        names = set()
    if names & subscriptions or not (streams or names):
        return None
    where = shlex.quote(str(data_dir))
    return (
        f"{data_dir} holds data of the original Eventor that is not imported ({len(streams)}"
        f" streams, {len(names)} subscriptions): stop Eventor, run `eventor import-original"
        f" {where} --data {where}`, and start it again"
    )
