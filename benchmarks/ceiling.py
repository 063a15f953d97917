"""The ceiling: a raw ASGI app that reads the body and answers 200, served like `eventor serve`.

Run as `python benchmarks/ceiling.py --port 0`; it prints the same "serving http://host:port,"
line as Eventor, so the harness starts both the same way. The uvicorn settings mirror
`eventor.cli._serve`: whatever the stack costs here, it costs Eventor too.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
from typing import Any

import uvicorn
import uvloop

Message = dict[str, Any]
RESPONSE_START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")],
}
RESPONSE_BODY: Message = {"type": "http.response.body", "body": b"OK\n"}


async def app(scope: Message, receive: Any, send: Any) -> None:
    """Read the whole request body, then answer `200 OK`."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(RESPONSE_START)
    await send(RESPONSE_BODY)


async def serve(sock: socket.socket, asgi: Any = app, name: str = "ceiling raw ASGI") -> None:
    """Serve `asgi` on `sock` as `eventor serve` serves Eventor; say so on stderr first."""
    config = uvicorn.Config(
        asgi,
        lifespan="off",
        http="httptools",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        server_header=False,
        proxy_headers=False,
    )
    host, port = sock.getsockname()[:2]
    what, _, detail = name.partition(" ")
    print(f"{what} serving http://{host}:{port}, {detail}", file=sys.stderr, flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(sock))


if __name__ == "__main__":
    main()
