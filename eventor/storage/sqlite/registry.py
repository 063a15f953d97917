"""The in-memory stream registry: every stream's head, times and counts, in name order.

It is what listing and introspection read, and what the catalog persists. Each stream's own
database is the authority: the registry takes its word whenever a stream file is opened.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from ...types import StreamSummary
from .streamdb import StreamCommit, StreamState


class Registry:
    def __init__(self) -> None:
        self._streams: dict[str, StreamSummary] = {}
        self._names: list[str] = []
        #: The events of all streams (the sum of their heads), kept as they change.
        self.events = 0

    def __len__(self) -> int:
        return len(self._streams)

    def __contains__(self, name: object) -> bool:
        return name in self._streams

    def get(self, name: str) -> StreamSummary | None:
        return self._streams.get(name)

    def update(self, state: StreamState) -> bool:
        """Take `state` as the truth for its stream; True when anything changed."""
        entry = self._streams.get(state.name)
        if entry is None:
            self._streams[state.name] = StreamSummary(
                state.name, state.head, state.created, state.updated, dict(state.event_types)
            )
            bisect.insort(self._names, state.name)
            self.events += state.head
            return True
        if (entry.head, entry.updated, entry.event_types) == (
            state.head,
            state.updated,
            state.event_types,
        ):
            return False
        self.events += state.head - entry.head
        entry.head = state.head
        entry.created = state.created
        entry.updated = state.updated
        entry.event_types = dict(state.event_types)
        return True

    def committed(self, commit: StreamCommit) -> None:
        """Apply what a commit changed (O(types it added), however many the stream holds).

        Exact as long as every commit of an open stream comes here after the state it was
        opened with (`update`); a stream not listed had no events before this commit.
        """
        entry = self._streams.get(commit.name)
        if entry is None:
            self.update(
                StreamState(commit.name, commit.head, commit.created, commit.updated, commit.added)
            )
            return
        self.events += commit.head - entry.head
        entry.head = commit.head
        entry.updated = commit.updated
        counts = entry.event_types
        for event_type, count in commit.added.items():
            counts[event_type] = counts.get(event_type, 0) + count

    def remove(self, name: str) -> None:
        entry = self._streams.pop(name, None)
        if entry is not None:
            del self._names[bisect.bisect_left(self._names, name)]
            self.events -= entry.head

    def load(self, states: Iterable[StreamState]) -> None:
        for state in states:
            self.update(state)

    def page(self, prefix: str, after: str, limit: int | None) -> list[StreamSummary]:
        start = max(
            bisect.bisect_left(self._names, prefix), bisect.bisect_right(self._names, after)
        )
        names = self._names
        out: list[StreamSummary] = []
        for index in range(start, len(names)):
            if not names[index].startswith(prefix) or (limit is not None and len(out) >= limit):
                break
            out.append(self._streams[names[index]])
        return out

    def state(self, name: str) -> StreamState:
        e = self._streams[name]
        return StreamState(e.name, e.head, e.created, e.updated, dict(e.event_types))
