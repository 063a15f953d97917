"""Webhook requests exactly as the specs say: one raw event with headers, or a CloudEvents batch."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from .. import __version__
from ..payloads import NOT_IN_HEADER
from ..types import RecordedEvent, SubscriptionConfig
from .signing import ROTATION_OVERLAP, secret_key, sign

USER_AGENT = f"Eventor/{__version__}"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
#: The headers Eventor sends: a v1 subscription's own `headers` may not override them (they say
#: what is delivered). Any other name is sent as set (`Webhook-Token`, `X-Event-Source`, ...).
EVENTOR_HEADERS = frozenset(
    {
        "content-type",
        "user-agent",
        "x-event-stream",
        "x-event-position",
        "x-event-uuid",
        "x-event-created",
        "x-event-type",
        "x-eventor-subscription",
        "x-eventor-attempt",
        "x-eventor-first-position",
        "x-eventor-last-position",
        "ce-specversion",
        "ce-source",
        "ce-id",
        "ce-type",
        "ce-time",
        "ce-sequence",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)

_encode = msgspec.json.Encoder().encode


def _header_safe(content_type: str) -> str:
    """The content type, unless it cannot be a header (stored before appends checked it): a
    delivery that can never be sent would hold the subscription on that event for good."""
    return "application/octet-stream" if NOT_IN_HEADER.search(content_type) else content_type


def sequence(position: int) -> str:
    """A position as CloudEvents `sequence`: zero-padded, since sequences compare as text."""
    return f"{position:020d}"


def ce_header(value: str) -> str:
    """A CloudEvents attribute as an HTTP header value: space, `"`, `%` and everything outside
    printable ASCII percent-encoded as UTF-8 (CloudEvents HTTP binding, 3.1.3.2)."""
    if _CE_PLAIN.fullmatch(value):
        return value
    return "".join(
        char if _CE_PLAIN.fullmatch(char) else "".join(f"%{b:02X}" for b in char.encode())
        for char in value
    )


_CE_PLAIN = re.compile(r"[\x21\x23\x24\x26-\x7e]*")


class WebhookBuilder:
    """Builds the requests of one subscription; what never changes is computed once."""

    def __init__(
        self,
        name: str,
        config: SubscriptionConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.batch = config.batch_size > 1
        self._clock = clock
        # original-api.md: its deliveries say application/json, whatever the append said (curl
        # -d sends a form type, say). v1 deliveries carry the event's own content type.
        self._content_type = "application/json" if config.original else None
        source = f"/streams/{config.stream}"
        self._source = source
        custom = {k: v for k, v in config.headers.items() if k.lower() not in EVENTOR_HEADERS}
        # The original set a subscription's own headers last, so they won: a receiver may rely
        # on its own User-Agent or Content-Type. On v1, Eventor's say what is delivered.
        self._overrides = (
            {k: v for k, v in config.headers.items() if k.lower() in EVENTOR_HEADERS}
            if config.original
            else {}
        )
        self._base = {
            **custom,
            "User-Agent": USER_AGENT,
            "X-Event-Stream": config.stream,
            "X-Eventor-Subscription": name,
        }
        if not self.batch:
            self._base["ce-specversion"] = "1.0"
            self._base["ce-source"] = source
        else:
            self._base["Content-Type"] = BATCH_CONTENT_TYPE
        self._keys: list[bytes] = []
        if config.secret:
            key = secret_key(config.secret)
            if key is not None:
                self._keys.append(key)
        self._previous: bytes | None = None
        self._previous_until = 0.0
        if config.previous_secret:
            self._previous = secret_key(config.previous_secret)
            self._previous_until = config.secret_replaced_at + ROTATION_OVERLAP

    def build(self, events: Sequence[RecordedEvent], attempt: int) -> tuple[bytes, dict[str, str]]:
        """(body, headers) of one attempt at delivering `events`."""
        headers = self._base.copy()
        headers["X-Eventor-Attempt"] = str(attempt)
        if self.batch:
            body = _encode([self._structured(e) for e in events])
            first, last = events[0], events[-1]
            headers["X-Eventor-First-Position"] = str(first.position)
            headers["X-Eventor-Last-Position"] = str(last.position)
            webhook_id = f"{first.id}:{len(events)}"
        else:
            event = events[0]
            body = event.data
            position = event.position
            headers["Content-Type"] = self._content_type or _header_safe(event.content_type)
            headers["X-Event-Position"] = str(position)
            headers["X-Event-Uuid"] = event.id
            headers["X-Event-Created"] = event.created
            headers["X-Event-Type"] = event.type
            headers["ce-id"] = event.id
            headers["ce-type"] = ce_header(event.type)
            headers["ce-time"] = event.created
            headers["ce-sequence"] = f"{position:020d}"
            webhook_id = event.id
        for name, value in self._overrides.items():
            lower = name.lower()
            for sent in [key for key in headers if key.lower() == lower]:
                del headers[sent]
            headers[name] = value
        if self._keys:
            now = self._clock()
            keys = self._keys
            if self._previous is not None and now < self._previous_until:
                keys = [*keys, self._previous]
            headers.update(sign(keys, webhook_id, int(now), body))
        return body, headers

    def _structured(self, event: RecordedEvent) -> dict[str, Any]:
        out: dict[str, Any] = {
            "specversion": "1.0",
            "id": event.id,
            "source": self._source,
            "type": event.type,
            "time": event.created,
            "sequence": sequence(event.position),
            "datacontenttype": event.content_type,
        }
        if event.is_json:
            out["data"] = msgspec.Raw(event.data)
        else:
            out["data_base64"] = base64.b64encode(event.data).decode()
        return out
