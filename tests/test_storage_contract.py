"""The contract of `eventor.storage.base.Storage`, run against every backend.

Each backend is one param of the `make_storage` fixture: a factory of fresh, unopened storage
instances that all point at the same place (so that reopening can be tested). The tests use
only the `Storage` interface, so a new backend passes or fails the same suite.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import TIMESTAMP

from eventor.errors import (
    IdempotencyConflict,
    StorageUnavailable,
    StreamNotFound,
    WrongExpectedVersion,
)
from eventor.payloads import describe
from eventor.settings import Settings
from eventor.storage.base import Storage, open_storage
from eventor.types import ANY, EXISTS, NO_STREAM, NewEvent, RecordedEvent

MakeStorage = Callable[[], Storage]
Body = Callable[[Storage], Awaitable[None]]


def _sqlite(**options: Any) -> Callable[[Path], MakeStorage]:
    def make(path: Path) -> MakeStorage:
        settings = Settings(data_dir=path, max_open_files=8, **options)
        return lambda: open_storage(path, settings)

    return make


BACKENDS: dict[str, Callable[[Path], MakeStorage]] = {
    "sqlite-normal": _sqlite(durability="normal"),
    "sqlite-full": _sqlite(durability="full"),
    "sqlite-full-fsync": _sqlite(durability="full", flush="fsync"),
}


@pytest.fixture(params=sorted(BACKENDS))
def make_storage(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStorage:
    return BACKENDS[request.param](tmp_path / "data")


@pytest.fixture
def run(make_storage: MakeStorage) -> Callable[[Body], None]:
    """run(body): open a storage, await body(storage) in a fresh event loop, close it."""

    def runner(body: Body) -> None:
        async def main() -> None:
            storage = make_storage()
            await storage.open()
            try:
                await body(storage)
            finally:
                await storage.close()

        asyncio.run(main())

    return runner


def event(
    type_: str = "T",
    data: bytes = b'{"a": 1}',
    *,
    id_: str | None = None,
    content_type: str = "application/json",
    metadata: bytes | None = None,
    id_version: int = 7,
) -> NewEvent:
    is_json, shape = describe(data, content_type)
    return NewEvent(type_, data, content_type, is_json, metadata, id_, shape, id_version)


def json_events(count: int, type_: str = "T") -> list[NewEvent]:
    return [event(type_, b'{"n": %d}' % n) for n in range(count)]


# -- append and read ---------------------------------------------------------------------------


def test_append_then_read_forward(run):
    async def body(s: Storage) -> None:
        first = await s.append("orders", json_events(3))
        assert (first.stream, first.first_position, first.last_position) == ("orders", 1, 3)
        assert first.created
        assert len(set(first.ids)) == 3
        second = await s.append("orders", [event("Other", b"[1,  2]")])
        assert (second.first_position, second.last_position) == (4, 4)

        page = await s.read("orders", 1, 100)
        assert page.head == 4
        assert [e.position for e in page.events] == [1, 2, 3, 4]
        assert [e.id for e in page.events] == [*first.ids, *second.ids]
        assert [e.data for e in page.events] == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}', b"[1,  2]"]
        last = page.events[-1]
        assert isinstance(last, RecordedEvent)
        assert (last.stream, last.type, last.content_type, last.is_json) == (
            "orders",
            "Other",
            "application/json",
            True,
        )
        assert last.metadata is None
        for e in page.events:
            assert TIMESTAMP.fullmatch(e.created)
            uuid.UUID(e.id)
        assert s.head("orders") == 4

    run(body)


def test_read_pages_forward_and_backward(run):
    async def body(s: Storage) -> None:
        await s.append("s", json_events(10))
        assert [e.position for e in (await s.read("s", 4, 3)).events] == [4, 5, 6]
        assert [e.position for e in (await s.read("s", 9, 5)).events] == [9, 10]
        assert (await s.read("s", 11, 5)).events == []
        assert (await s.read("s", 11, 5)).head == 10
        backward = await s.read("s", 5, 3, backward=True)
        assert [e.position for e in backward.events] == [5, 4, 3]
        assert [e.position for e in (await s.read("s", 2, 5, backward=True)).events] == [2, 1]
        assert [e.position for e in (await s.read("s", 99, 2, backward=True)).events] == [10, 9]
        assert (await s.read("s", 0, 5, backward=True)).events == []

    run(body)


def test_bytes_are_kept_exactly(run):
    blob = bytes(range(256)) * 4

    async def body(s: Storage) -> None:
        await s.append(
            "b",
            [
                event("Bin", blob, content_type="application/octet-stream"),
                event("Js", b'{ "z":1,\n"a" : [ ] }', metadata=b'{"k":  "v"}'),
                event("Empty", b""),
            ],
        )
        binary, js, empty = (await s.read("b", 1, 10)).events
        assert binary.data == blob
        assert (binary.content_type, binary.is_json) == ("application/octet-stream", False)
        assert js.data == b'{ "z":1,\n"a" : [ ] }'
        assert js.metadata == b'{"k":  "v"}'
        assert js.is_json
        assert (empty.data, empty.is_json) == (b"", False)

    run(body)


def test_ids_given_are_kept_and_made_ids_have_the_asked_version(run):
    given = str(uuid.uuid4())

    async def body(s: Storage) -> None:
        result = await s.append("ids", [event(id_=given), event()])
        assert result.ids[0] == given
        assert uuid.UUID(result.ids[1]).version == 7
        original = await s.append("ids", [event(id_version=4)])  # as the original API asks
        assert uuid.UUID(original.ids[0]).version == 4
        ids = [e.id for e in (await s.read("ids", 1, 10)).events]
        assert ids == [*result.ids, *original.ids]

    run(body)


def test_large_batches_are_atomic_and_ordered(run):
    async def body(s: Storage) -> None:
        batch = [event(f"T{n % 3}", b'{"n": %d, "k%d": 0}' % (n, n % 5)) for n in range(2500)]
        result = await s.append("big", batch)
        assert (result.first_position, result.last_position) == (1, 2500)
        page = await s.read("big", 1, 3000)
        assert [e.data for e in page.events] == [e.data for e in batch]
        info = await s.stream_info("big")
        assert info.event_types == {"T0": 834, "T1": 833, "T2": 833}

    run(body)


# -- unknown streams ---------------------------------------------------------------------------


def test_unknown_stream_is_not_found_and_reading_creates_nothing(run):
    async def body(s: Storage) -> None:
        with pytest.raises(StreamNotFound):
            await s.read("ghost", 1, 10)
        with pytest.raises(StreamNotFound):
            await s.read("ghost", 10, 10, backward=True)
        with pytest.raises(StreamNotFound):
            await s.stream_info("ghost")
        with pytest.raises(StreamNotFound):
            await s.variants("ghost")
        assert s.head("ghost") is None
        assert await s.list_streams() == []

    run(body)


# -- expected version and idempotency ------------------------------------------------------------


def test_expected_version(run):
    async def body(s: Storage) -> None:
        for expected in (EXISTS, 1, 5):
            with pytest.raises(WrongExpectedVersion) as caught:
                await s.append("ev", [event()], expected)
            assert caught.value.current == 0
        assert s.head("ev") is None  # a refused append creates no stream
        assert await s.list_streams() == []

        await s.append("ev", [event()], NO_STREAM)
        with pytest.raises(WrongExpectedVersion) as caught:
            await s.append("ev", [event()], NO_STREAM)
        assert caught.value.current == 1
        await s.append("ev", [event()], EXISTS)
        await s.append("ev", [event()], 2)
        await s.append("ev", [event()], ANY)
        for wrong in (0, 2, 5):
            with pytest.raises(WrongExpectedVersion) as caught:
                await s.append("ev", [event()], wrong)
            assert caught.value.current == 4
        await s.append("ev2", [event()], 0)
        assert s.head("ev") == 4
        assert s.head("ev2") == 1

    run(body)


def test_idempotent_retry_and_conflicts(run):
    ids = [str(uuid.uuid4()) for _ in range(3)]

    async def body(s: Storage) -> None:
        await s.append("idem", [event()])
        first = await s.append("idem", [event(id_=i) for i in ids])
        again = await s.append("idem", [event(id_=i) for i in ids], 0)
        assert not again.created
        assert (again.first_position, again.last_position, again.ids) == (2, 4, tuple(ids))
        tail = await s.append("idem", [event(id_=ids[1]), event(id_=ids[2])])
        assert (tail.first_position, tail.last_position, tail.created) == (3, 4, False)
        for conflicting in (
            [ids[2], str(uuid.uuid4())],
            [ids[1], ids[0]],
            [ids[0], ids[2]],
        ):
            with pytest.raises(IdempotencyConflict):
                await s.append("idem", [event(id_=i) for i in conflicting])
        assert s.head("idem") == 4
        assert [e.id for e in (await s.read("idem", 2, 10)).events] == list(first.ids)

    run(body)


# -- concurrency -------------------------------------------------------------------------------


def test_concurrent_appends_get_unique_gap_free_positions(run):
    async def body(s: Storage) -> None:
        results = await asyncio.gather(
            *(s.append("busy", [event("T", b"%d" % n)] * (1 + n % 3)) for n in range(60))
        )
        spans = sorted((r.first_position, r.last_position) for r in results)
        expected_next = 1
        for first, last in spans:
            assert first == expected_next
            expected_next = last + 1
        page = await s.read("busy", 1, 1000)
        assert [e.position for e in page.events] == list(range(1, expected_next))
        by_id = {e.id: e.position for e in page.events}
        for r in results:
            assert [by_id[i] for i in r.ids] == list(range(r.first_position, r.last_position + 1))

    run(body)


def test_a_failing_append_in_a_group_fails_alone(run):
    async def body(s: Storage) -> None:
        await s.append("group", [event()])
        outcomes = await asyncio.gather(
            *(s.append("group", [event()], 999 if n % 5 == 0 else ANY) for n in range(25)),
            return_exceptions=True,
        )
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(failed) == 5
        assert all(isinstance(f, WrongExpectedVersion) for f in failed)
        assert s.head("group") == 21

    run(body)


def test_streams_are_independent(run):
    async def body(s: Storage) -> None:
        names = [f"s{n}" for n in range(20)]  # more streams than the backend keeps open
        await asyncio.gather(*(s.append(name, json_events(n + 1)) for n, name in enumerate(names)))
        await asyncio.gather(*(s.append(name, [event("Again")]) for name in names))
        for n, name in enumerate(names):
            page = await s.read(name, 1, 100)
            assert page.head == n + 2
            assert page.events[-1].type == "Again"

    run(body)


# -- the appended signal -----------------------------------------------------------------------


def test_append_listener_hears_of_every_append_before_it_returns(run):
    async def body(s: Storage) -> None:
        heard: list[tuple[str, int]] = []
        s.set_append_listener(lambda stream, head: heard.append((stream, head)))
        await s.append("sig", json_events(2))
        assert heard == [("sig", 2)]
        await s.append("other", [event()])
        assert heard[-1] == ("other", 1)
        with pytest.raises(WrongExpectedVersion):
            await s.append("sig", [event()], NO_STREAM)
        assert len(heard) == 2  # a refused append is no news
        await asyncio.gather(*(s.append("sig", [event()]) for _ in range(10)))
        assert max(head for name, head in heard if name == "sig") == 12

    run(body)


# -- registry: listing, info, variants ---------------------------------------------------------


def test_list_streams(run):
    async def body(s: Storage) -> None:
        for name in ("b-2", "a-1", "b-1", "c", "b-3"):
            await s.append(name, json_events(len(name)))
        assert [x.name for x in await s.list_streams()] == ["a-1", "b-1", "b-2", "b-3", "c"]
        assert [x.name for x in await s.list_streams(prefix="b-")] == ["b-1", "b-2", "b-3"]
        assert [x.name for x in await s.list_streams(prefix="b-", after="b-1")] == ["b-2", "b-3"]
        assert [x.name for x in await s.list_streams(after="b-3")] == ["c"]
        assert [x.name for x in await s.list_streams(limit=2)] == ["a-1", "b-1"]
        assert await s.list_streams(prefix="zzz") == []
        [c] = await s.list_streams(prefix="c")
        assert c.head == 1
        assert c.event_types == {"T": 1}
        assert TIMESTAMP.fullmatch(c.created)
        assert c.created <= c.updated

    run(body)


def test_stream_info(run):
    async def body(s: Storage) -> None:
        await s.append("info", [event("A"), event("B")])
        await s.append("info", [event("A", b"x" * 10_000, content_type="text/plain")])
        info = await s.stream_info("info")
        assert (info.name, info.head) == ("info", 3)
        assert info.event_types == {"A": 2, "B": 1}
        assert info.size_bytes >= 10_000
        events = (await s.read("info", 1, 10)).events
        assert info.created == events[0].created
        assert info.updated == events[-1].created

    run(body)


def test_an_imported_event_keeps_its_own_created_time(run):
    async def body(s: Storage) -> None:
        old = [event("A"), event("B")]
        old[0].created = "2017-06-01T08:00:00.123456Z"
        old[1].created = "2017-06-02T08:00:00.000001Z"
        await s.append("imported", old)
        info = await s.stream_info("imported")
        assert (info.created, info.updated) == (old[0].created, old[1].created)
        await s.append("imported", [event("C")])
        first, second, now = (await s.read("imported", 1, 10)).events
        assert (first.created, second.created) == (old[0].created, old[1].created)
        assert TIMESTAMP.fullmatch(now.created)
        assert now.created > second.created
        assert (await s.stream_info("imported")).updated == now.created

    run(body)


def test_variants_one_per_shape_oldest_first(run):
    async def body(s: Storage) -> None:
        await s.append(
            "v",
            [
                event("A", b'{"x": 1}'),
                event("A", b'{"x": 2}'),
                event("A", b'{"y": 1, "x": 0}'),
                event("B", b'{"x": 1}'),
            ],
        )
        await s.append("v", [event("A", b'{"x": 1, "y": 2}'), event("A", b'{"z": 1}')])
        await s.append("v", [event("A", b"[1]"), event("A", b"[2]")])
        found = await s.variants("v")
        assert [(e.type, e.position) for e in found] == [
            ("A", 1),
            ("A", 3),
            ("A", 6),
            ("A", 7),
            ("B", 4),
        ]
        assert [e.data for e in found[:4]] == [
            b'{"x": 1}',
            b'{"y": 1, "x": 0}',
            b'{"z": 1}',
            b"[1]",
        ]
        # Page by page: after a type and position; ending once the data passes max_bytes.
        assert await s.variants("v", after=("A", 3), max_bytes=1) == found[2:3]
        assert await s.variants("v", after=("A", 7), max_bytes=10**6) == found[4:]
        assert await s.variants("v", after=("B", 4)) == []

    run(body)


# -- lifecycle ---------------------------------------------------------------------------------


def test_everything_survives_a_reopen(make_storage):
    async def write() -> tuple[list[RecordedEvent], list[RecordedEvent]]:
        s = make_storage()
        await s.open()
        await s.append("keep", [event("A", b'{"a": 1}', metadata=b"{}"), event("B", b"\x00")])
        await s.append("keep2", json_events(3))
        events = (await s.read("keep", 1, 10)).events
        variants = await s.variants("keep")
        await s.close()
        return events, variants

    async def reopen(events: list[RecordedEvent], variants: list[RecordedEvent]) -> None:
        s = make_storage()
        assert not s.is_open
        await s.open()
        try:
            assert s.is_open
            assert (await s.read("keep", 1, 10)).events == events
            assert await s.variants("keep") == variants
            assert [(x.name, x.head) for x in await s.list_streams()] == [("keep", 2), ("keep2", 3)]
            assert (await s.stream_info("keep")).event_types == {"A": 1, "B": 1}
            result = await s.append("keep", [event()])
            assert result.first_position == 3
        finally:
            await s.close()

    asyncio.run(reopen(*asyncio.run(write())))


def test_closed_storage_refuses_work(make_storage):
    async def body() -> None:
        s = make_storage()
        await s.open()
        await s.append("x", [event()])
        await s.close()
        assert not s.is_open
        with pytest.raises(StorageUnavailable):
            await s.append("x", [event()])
        with pytest.raises(StorageUnavailable):
            await s.read("x", 1, 10)
        with pytest.raises(StorageUnavailable):
            await s.list_streams()
        with pytest.raises(StorageUnavailable):
            await s.stream_info("x")
        await s.close()  # closing twice is harmless

    asyncio.run(body())


def test_stats_count_commits_and_events(run):
    async def body(s: Storage) -> None:
        await s.append("st", json_events(3))
        await s.append("st", json_events(2))
        stats = s.stats()
        assert stats["appended_events"] == 5
        assert 1 <= stats["commits"] <= 2
        assert stats["streams"] == 1

    run(body)


def test_listed_counts_follow_every_commit_across_evictions_and_reopening(make_storage):
    """The listing (`list_streams`, what /introspect shows) keeps each stream's counts per type
    from what its commits add; they must agree with the stream's own (`stream_info`) through
    concurrent appends, streams closed and opened again (8 open files: 4 streams of 12 here),
    a failed append, and a restart."""
    streams = [f"s{n}" for n in range(12)]
    expected: dict[str, dict[str, int]] = {name: {} for name in streams}

    async def check(s: Storage) -> None:
        listed = {x.name: x.event_types for x in await s.list_streams()}
        assert listed == expected
        events = sum(sum(counts.values()) for counts in expected.values())
        stats = s.stats()  # the totals a backend keeps, when it keeps them, agree too
        assert stats.get("events", events) == events
        assert stats.get("streams", len(streams)) == len(streams)
        for name in streams:
            assert (await s.stream_info(name)).event_types == expected[name]

    async def append(s: Storage, name: str, round_: int) -> None:
        types = [f"T{(round_ + k) % 5}" for k in range(1 + round_ % 3)]
        await s.append(name, [event(t) for t in types])
        for t in types:
            expected[name][t] = expected[name].get(t, 0) + 1

    async def first(s: Storage) -> None:
        for round_ in range(6):
            await asyncio.gather(*(append(s, name, round_ + i) for i, name in enumerate(streams)))
            with pytest.raises(WrongExpectedVersion):
                await s.append(streams[round_], [event("Refused")], 0)
        await check(s)

    async def second(s: Storage) -> None:
        await check(s)
        await asyncio.gather(*(append(s, name, 7) for name in streams))
        await check(s)

    async def main() -> None:
        for body in (first, second):
            s = make_storage()
            await s.open()
            try:
                await body(s)
            finally:
                await s.close()

    asyncio.run(main())
