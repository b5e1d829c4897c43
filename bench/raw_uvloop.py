"""The ceiling: a raw uvloop Protocol that answers each request with a canned response.

It does not parse HTTP: every ``\\r\\n\\r\\n`` in the stream counts as one request and gets
one keep-alive ``Hello, world!`` response. ``--port 0`` picks a free port; the bound address
is logged as ``Listening at http://127.0.0.1:PORT`` on stderr.
"""

import argparse
import asyncio
import signal
import sys
from typing import cast

import uvloop

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"


class CannedProtocol(asyncio.Protocol):
    """Answer every end-of-headers marker with the canned response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        buf = self.pending + data
        count = buf.count(b"\r\n\r\n")
        self.pending = buf[buf.rfind(b"\r\n\r\n") + 4 :] if count else buf[-3:]
        if count and self.transport is not None:
            self.transport.write(RESPONSE * count)


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(CannedProtocol, host, port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    sys.stderr.write(f"Listening at http://{host}:{bound}\n")
    sys.stderr.flush()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main() -> None:
    """Parse ``--host``/``--port`` and run the server."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
