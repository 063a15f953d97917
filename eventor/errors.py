"""Eventor's exceptions. The HTTP layer maps each to a status code; nothing here knows HTTP."""

from __future__ import annotations

from typing import Any


class EventorError(Exception):
    """Base class of every error Eventor raises on purpose."""

    #: Short stable identifier, used as the problem type on the wire.
    code = "error"
    #: The problem document the server answered with, when raised by `eventor.client`.
    problem: dict[str, Any] | None = None


class InvalidRequest(EventorError):
    """The request is malformed or breaks a rule; nothing was changed."""

    code = "invalid-request"


class InvalidName(InvalidRequest):
    """A stream or subscription name breaks the naming rules."""

    code = "invalid-name"


class LimitExceeded(EventorError):
    """A body, an event or a batch is larger than the configured limit."""

    code = "limit-exceeded"


class StreamNotFound(EventorError):
    """The stream has no events (streams come into being with their first event)."""

    code = "stream-not-found"

    def __init__(self, stream: str) -> None:
        super().__init__(f"stream {stream!r} does not exist")
        self.stream = stream


class WrongExpectedVersion(EventorError):
    """The stream's head is not what the append expected."""

    code = "wrong-expected-version"

    def __init__(self, stream: str, expected: int | str, current: int) -> None:
        super().__init__(
            f"stream {stream!r} is at version {current}, the append expected {expected}"
        )
        self.stream = stream
        self.expected = expected
        self.current = current


class IdempotencyConflict(EventorError):
    """Some, not all, of an append's event ids are already in the stream (or out of order)."""

    code = "idempotency-conflict"


class SubscriptionNotFound(EventorError):
    """No subscription has this name."""

    code = "subscription-not-found"

    def __init__(self, name: str) -> None:
        super().__init__(f"subscription {name!r} does not exist")
        self.name = name


class SubscriptionExists(EventorError):
    """A subscription with this name already exists."""

    code = "subscription-exists"


class StorageError(EventorError):
    """The storage failed (disk full, I/O error, corruption): the operation did not happen."""

    code = "storage-error"


class StorageFull(StorageError):
    """The disk (or the file system's quota) is full: nothing was written. Appends work again
    once there is room; nothing needs a restart."""

    code = "storage-full"


class StorageUnavailable(StorageError):
    """The storage is not open (starting up or shutting down)."""

    code = "storage-unavailable"
