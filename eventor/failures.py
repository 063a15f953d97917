"""Logging what repeats: a failure on every retry (a full disk, say) once when it begins and
once when it ends, instead of a traceback on every attempt; a warning any client can cause
(a malformed request) at most once a minute."""

from __future__ import annotations

import logging
import re
import time

from .errors import StorageFull, StorageUnavailable

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with its control characters escaped (`\\x1b`), for a log line: text a client
    or a webhook receiver chose (a path, a reason phrase) must not erase or forge lines on
    the terminal that shows the log."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class RepeatedFailure:
    """The failures of one action retried until it works (`what`: e.g. "saving the
    subscriptions' progress"), logged when they begin, change, and end."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self._what = what
        self.failures = 0
        self._since = 0.0
        self._said = ""

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(self, error: BaseException) -> None:
        """Log the first failure in a row with its traceback, and any that fails otherwise;
        count the same failure again quietly."""
        if not self.failures:
            self._since = time.monotonic()
        if str(error) != self._said:
            self._said = str(error)
            # A full disk or a data dir gone says all in its message: no traceback for them.
            expected = isinstance(error, StorageFull | StorageUnavailable)
            self._log.error(
                "%s failed: %s (retrying; logged again when it works)",
                self._what,
                error,
                exc_info=None if expected else error,
            )
        self.failures += 1

    def succeeded(self) -> None:
        """After failures: say that it works again, and after how long."""
        if self.failures:
            self._log.warning(
                "%s works again, after %d failed attempts over %.1f s",
                self._what,
                self.failures,
                time.monotonic() - self._since,
            )
            self.forget()

    def forget(self) -> None:
        """Nothing is left to retry: the next failure is news again."""
        self.failures = 0
        self._said = ""


class Throttled:
    """Log a message at most once every `every` seconds; the count of those held back in
    between goes with the next one logged. For what any client can cause at will (a flood of
    bad requests), or what every request meets while it lasts (a storage failure)."""

    def __init__(self, log: logging.Logger, every: float = 60.0) -> None:
        self._log = log
        self._every = every
        self._last = -every
        self.held = 0

    def warning(self, message: str, *args: object) -> None:
        self.log(logging.WARNING, message, *args)

    def log(
        self, level: int, message: str, *args: object, exc_info: BaseException | None = None
    ) -> None:
        now = time.monotonic()
        if now - self._last < self._every:
            self.held += 1
            return
        if self.held:
            message += " (and %d more like it since the last such warning)"
            args = (*args, self.held)
        self._last = now
        self.held = 0
        self._log.log(level, message, *args, exc_info=exc_info)
