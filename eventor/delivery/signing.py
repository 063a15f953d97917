"""Standard Webhooks signing: `webhook-id`, `webhook-timestamp`, `webhook-signature`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

SECRET_PREFIX = "whsec_"
SECRET_RULE = "'whsec_' followed by the base64 of 1 to 1024 random bytes (24 to 64 advised)"
#: How long a replaced secret keeps signing beside the new one.
ROTATION_OVERLAP = 24 * 3600.0


def secret_key(secret: str) -> bytes | None:
    """The HMAC key of a `whsec_...` secret, or None when the secret breaks SECRET_RULE."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return None
    # Standard Webhooks advises 24-64 bytes; its libraries verify any length, so we accept any.
    return key if 1 <= len(key) <= 1024 else None


def signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature over "<id>.<timestamp>.<body>"."""
    signed = b"%s.%d.%s" % (webhook_id.encode(), timestamp, body)
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign(keys: list[bytes], webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, one signature per key (space-separated)."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(k, webhook_id, timestamp, body) for k in keys),
    }
