"""Storage backends behind one interface (`base.Storage`)."""

from .base import Storage, open_storage

__all__ = ["Storage", "open_storage"]
