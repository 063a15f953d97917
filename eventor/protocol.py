"""uvicorn's HTTP protocol (httptools) with a bound on the size of a request's head, and v1's
error format for requests HTTP cannot frame."""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: The most bytes a request line and its headers may take, as Go's net/http allows (the
#: original Eventor's server): larger, and the request is refused with 431.
MAX_HEAD_BYTES = 1 << 20

_REFUSAL = b"431 Request Header Fields Too Large"
_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n"
    b"x-content-type-options: nosniff\r\n"
    b"\r\n%s" % (len(_REFUSAL), _REFUSAL)
)


class BoundedHeadProtocol(HttpToolsProtocol):
    """Refuses a request whose line and headers pass MAX_HEAD_BYTES. httptools sets no
    bound of its own, and joins the pieces of a long header in quadratic time: a header of
    48 MiB held the event loop, and so every other client, for seconds."""

    _in_head = True  # between two requests, or in one's line and headers
    _head_bytes = 0  # received since its head began (a bound, not an exact count)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES:
            self._in_head = False
            if not self.transport.is_closing():
                self.logger.warning("Request line and headers over %d bytes: 431", MAX_HEAD_BYTES)
                self.transport.write(_RESPONSE)
                self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request HTTP cannot frame (a bad chunk size, two lengths, a
        control character in a header); as a problem document on /v1, like every v1 error."""
        if not getattr(self, "url", b"").startswith(b"/v1/"):
            super().send_400_response(msg)
            return
        body = json.dumps(
            {
                "type": "urn:eventor:problem:bad-request",
                "title": "Bad Request",
                "status": 400,
                "detail": f"{msg} The request breaks HTTP/1.1's framing (RFC 9112).",
            }
        ).encode()
        self.transport.write(
            b"HTTP/1.1 400 Bad Request\r\n"
            b"content-type: application/problem+json\r\n"
            b"content-length: %d\r\n"
            b"connection: close\r\n"
            b"x-content-type-options: nosniff\r\n"
            b"\r\n%s" % (len(body), body)
        )
        self.transport.close()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0
