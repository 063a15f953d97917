"""Server settings: one frozen value, built by the CLI from options and EVENTOR_* variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Durability = Literal["full", "normal", "off"]
DURABILITIES: tuple[Durability, ...] = ("full", "normal", "off")
#: How durability `full` reaches the disk: one `syncfs` for many streams' commits (Linux), or
#: an fsync of each stream's file as it commits.
FlushMethod = Literal["syncfs", "fsync"]
FLUSH_METHODS: tuple[FlushMethod, ...] = ("syncfs", "fsync")


MiB = 1024 * 1024
DEFAULT_MAX_OPEN_FILES = 256


@dataclass(frozen=True, slots=True)
class Limits:
    """Request limits (api-v1.md, "Limits"). Over a limit the request is refused with 413."""

    max_event_bytes: int = 1 * MiB
    max_request_bytes: int = 16 * MiB
    max_append_events: int = 10_000
    #: Most events one read on the original route returns (negative or larger limits are capped).
    max_original_read: int = 10_000


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything `eventor serve` can be told."""

    host: str = "127.0.0.1"
    port: int = 9400
    data_dir: Path = Path("data")
    durability: Durability = "full"
    #: None: syncfs where the platform has it, else fsync.
    flush: FlushMethod | None = None
    limits: Limits = Limits()
    #: File descriptors the open stream databases may hold (an LRU; each open stream holds two).
    max_open_files: int = DEFAULT_MAX_OPEN_FILES
    #: Delivery attempts kept per subscription in the attempt log.
    attempt_log_size: int = 100
    #: How often delivered positions are written to disk (seconds).
    position_flush_interval: float = 0.1
    #: Seconds a request may go without a byte while its head or body is incomplete (then
    #: 408); its head may take twice that in all.
    request_timeout: float = 30.0
    #: Seconds an idle kept-alive connection stays open between requests.
    keep_alive_timeout: int = 120
    log_level: str = "info"
    access_log: bool = False
