"""Where things live in the data directory, and how a stream name becomes a file name.

A stream's file name is a readable slug of its name plus a digest of the exact name: names that
differ only in case get different files (also on case-insensitive file systems), no name can
reach outside `streams/`, and no file name is a reserved device name (`con`, `nul`, ...).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import sqlite3
from pathlib import Path

from ...names import check_stream_name

CATALOG_FILE = "catalog.db"
STREAMS_DIR = "streams"
LOCK_FILE = ".lock"
STREAM_SUFFIX = ".db"

_NOT_SLUG = re.compile(r"[^a-z0-9_-]")
#: Every name `stream_file_name` makes matches this.
STREAM_FILE = re.compile(r"[a-z0-9_-]{1,40}-[0-9a-f]{24}\.db")


def stream_file_name(stream: str) -> str:
    """The file name (no directory) of `stream`'s database."""
    check_stream_name(stream)
    slug = _NOT_SLUG.sub("_", stream.lower())[:40]
    digest = hashlib.sha256(stream.encode()).hexdigest()[:24]
    return f"{slug}-{digest}{STREAM_SUFFIX}"


def stream_path(data_dir: Path, stream: str) -> Path:
    return data_dir / STREAMS_DIR / stream_file_name(stream)


def disk_full(exc: BaseException) -> bool:
    """Whether `exc` says the disk (or a quota) is full: SQLite's SQLITE_FULL, or ENOSPC and
    EDQUOT from the file system."""
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


#: The database, its WAL, and a rollback journal while a new stream's file is made.
_FILES_TO_OPEN_A_STREAM = 3
#: What keeps a directory Eventor made from being written to.
NOT_WRITABLE = "its permissions were changed, or its file system is read-only"


def cannot_open_cause(exc: BaseException, directory: Path) -> str | None:
    """Why SQLite could not open a file in `directory`, when that is every stream's trouble
    rather than one file's: the process has no file descriptor left, or the directory cannot
    be written. None otherwise (SQLite says only "unable to open database file")."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    if code != sqlite3.SQLITE_CANTOPEN:
        # A file that was there opens, and its WAL cannot be made on a read-only file system:
        # SQLite says "disk I/O error" (or "readonly") for that.
        if code & 0xFF in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY):
            return not_writable(directory)
        return None
    # As many files as opening a stream takes: SQLite gave back the database's descriptor
    # when the WAL's open failed, so one free descriptor proves nothing.
    held: list[int] = []
    try:
        for _ in range(_FILES_TO_OPEN_A_STREAM):
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError as error:
        if error.errno in (errno.EMFILE, errno.ENFILE):
            return (
                "too many open files: raise the open-file limit (ulimit -n, LimitNOFILE=)"
                " or lower --max-open-files"
            )
        return None
    finally:
        for fd in held:
            os.close(fd)
    return not_writable(directory)


def not_writable(directory: Path) -> str | None:
    """Why nothing can be written in `directory`, when that is so; else None."""
    if not os.access(directory, os.W_OK):
        return f"the data directory {directory} is not writable: {NOT_WRITABLE}"
    return None
