"""The ceiling: a raw uvloop Protocol that answers each request with a canned response.

It does not parse HTTP: every ``\\r\\n\\r\\n`` in the stream counts as one request and gets
one keep-alive ``Hello, world!`` response. ``--port 0`` picks a free port; the bound address
is logged as ``Listening at http://127.0.0.1:PORT`` on stderr. ``--reuse-port N`` forks N
processes, each with its own SO_REUSEPORT listener on that port (the kernel spreads
connections over them by a hash of the 4-tuple): the bench's balance baseline.
"""

import argparse
import asyncio
import os
import signal
import socket
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


async def serve(host: str, port: int, reuse_port: bool = False, announce: bool = True) -> None:
    """Serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        CannedProtocol, host, port, backlog=4096, reuse_port=reuse_port or None
    )
    bound = server.sockets[0].getsockname()[1]
    if announce:
        sys.stderr.write(f"Listening at http://{host}:{bound}\n")
        sys.stderr.flush()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


def serve_reuse_port(host: str, processes: int) -> None:
    """Fork ``processes`` children on one SO_REUSEPORT port; stop them on TERM."""
    with socket.socket() as probe:  # learn a free port; never listens, so never gets traffic
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        probe.bind((host, 0))
        port = probe.getsockname()[1]
        children = []
        for _ in range(processes):
            pid = os.fork()
            if pid == 0:
                uvloop.run(serve(host, port, reuse_port=True, announce=False))
                os._exit(0)
            children.append(pid)
    sys.stderr.write(f"Listening at http://{host}:{port}\n")
    sys.stderr.flush()

    def stop(signum: int, frame: object) -> None:
        for child in children:
            os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        os.waitpid(child, 0)


def main() -> None:
    """Parse ``--host``/``--port``/``--reuse-port`` and run the server."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reuse-port", type=int, default=0, metavar="N")
    args = parser.parse_args()
    if args.reuse_port:
        serve_reuse_port(args.host, args.reuse_port)
    else:
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
