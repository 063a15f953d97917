"""Refusing cross-origin writes (CSRF): a web page on another origin must not change anything.

A browser lets any page send a "simple" request (a POST without a body, or with a text/plain or
form body) to any address without asking first: the page cannot read the answer, but the
request does its work. So without this, any site open in a browser on the operator's network
could pause subscriptions, append events, or create a subscription that sends a stream to
itself. Writes a browser marks as coming from another origin are refused with a 403. Clients
that are not browsers (curl, services, the Python client) send neither header and are not
affected; the dashboard is served from the same origin. Reads stay open to any origin
(original-api.md allows GET from anywhere).
"""

from __future__ import annotations

from starlette.types import Scope

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Sec-Fetch-Site values of requests made by the page's own origin, or by the user (typed URL).
_OWN = frozenset({b"same-origin", b"none"})
_DEFAULT_PORTS = {b"http": b"80", b"https": b"443"}
#: The headers only browsers send.
_BROWSER = frozenset({b"sec-fetch-site", b"origin"})


def cross_origin_write(scope: Scope) -> str | None:
    """Why this request must be refused, or None when it may go ahead."""
    if scope["method"] not in WRITE_METHODS:
        return None
    for key, _ in scope["headers"]:
        if key in _BROWSER:
            return _judge(scope)
    return None  # not a browser: nothing to judge (the one scan every append pays)


def _judge(scope: Scope) -> str | None:
    site = origin = host = None
    for key, value in scope["headers"]:
        if key == b"sec-fetch-site":
            site = value
        elif key == b"origin":
            origin = value
        elif key == b"host":
            host = value
    if site is not None:  # every current browser sends it: the surest sign
        return None if site in _OWN else _refusal(b"Sec-Fetch-Site", site)
    if origin is None:
        return None  # not a browser, or a browser that says nothing of where the page is
    scheme, _, authority = origin.partition(b"://")
    port = _DEFAULT_PORTS.get(scheme)
    if port is not None and host is not None and _place(authority, port) == _place(host, port):
        return None
    return _refusal(b"Origin", origin)


def _refusal(header: bytes, value: bytes) -> str:
    said = f"{header.decode()}: {value.decode('latin-1')[:200]}"
    return f"a web page of another origin may not change anything here ({said})"


def _place(authority: bytes, default_port: bytes) -> bytes:
    """host:port in lower case, the scheme's port written out (`h` and `h:80` agree)."""
    authority = authority.lower()
    if authority.endswith(b"]") or b":" not in authority:  # no port: `h`, `[::1]`
        return authority + b":" + default_port
    return authority
