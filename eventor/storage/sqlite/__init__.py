"""The SQLite backend: one database file per stream plus a catalog database."""

from .backend import SQLiteStorage

__all__ = ["SQLiteStorage"]
