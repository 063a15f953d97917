"""The naming rules for streams and subscriptions (api-v1.md, "Names")."""

from __future__ import annotations

import re

from .errors import InvalidName

STREAM_NAME_RULE = "1-200 characters of A-Z a-z 0-9 _ - . : not starting with '.' or '-'"
SUBSCRIPTION_NAME_RULE = "1-100 characters of A-Z a-z 0-9 _ - ."

_STREAM = re.compile(r"[A-Za-z0-9_:][A-Za-z0-9_.:-]{0,199}")
_SUBSCRIPTION = re.compile(r"[A-Za-z0-9_.-]{1,100}")
# The original Eventor's rule, kept for its routes: ^[a-z0-9_]+$, case-insensitively. It set
# no length; 1,000 keeps a name within reason in logs and headers.
_ORIGINAL_SUBSCRIPTION = re.compile(r"[A-Za-z0-9_]{1,1000}")


def check_stream_name(name: str) -> str:
    """Return `name` when it is a valid stream name, else raise InvalidName."""
    if _STREAM.fullmatch(name) is None:
        raise InvalidName(f"invalid stream name {_shown(name)}: use {STREAM_NAME_RULE}")
    return name


def check_subscription_name(name: str, *, original: bool = False) -> str:
    """Return `name` when it is a valid subscription name, else raise InvalidName."""
    rule = _ORIGINAL_SUBSCRIPTION if original else _SUBSCRIPTION
    if rule.fullmatch(name) is None:
        allowed = "1-1000 characters of A-Z a-z 0-9 _" if original else SUBSCRIPTION_NAME_RULE
        raise InvalidName(f"invalid subscription name {_shown(name)}: use {allowed}")
    return name


def _shown(name: str) -> str:
    """A name as an error says it: a path or query may carry up to 1 MiB of one."""
    return repr(name) if len(name) <= 300 else f"{name[:300]!r}... ({len(name)} characters)"
