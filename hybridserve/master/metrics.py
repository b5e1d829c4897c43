"""The master's metrics and health endpoint (``--metrics-bind``).

What it says is built in ``worker/exposition.py``. The endpoint is a tiny HTTP/1.0
responder driven by the master's own select loop: no thread is ever started in the master
(a thread holding a lock at fork time would hang the child), and a client that stalls is
dropped after ``CLIENT_DEADLINE_S``.
"""

from __future__ import annotations

import contextlib
import socket
import time

from hybridserve.worker.exposition import Handler, Totals, WorkerSample, respond

__all__ = ["MetricsServer", "Totals", "WorkerSample", "respond"]

CLIENT_DEADLINE_S = 2.0
MAX_REQUEST_BYTES = 8192


class MetricsServer:
    """Answers ``GET`` requests on its listener from inside the master's select loop."""

    def __init__(self, sock: socket.socket, handler: Handler) -> None:
        self.sock = sock
        self._handler = handler
        self._clients: dict[int, tuple[socket.socket, bytearray, float]] = {}

    def fds(self) -> list[int]:
        return [self.sock.fileno(), *self._clients]

    def on_readable(self, fd: int) -> None:
        if fd == self.sock.fileno():
            with contextlib.suppress(BlockingIOError, InterruptedError, ConnectionAbortedError):
                client, _ = self.sock.accept()
                client.setblocking(False)
                self._clients[client.fileno()] = (client, bytearray(), time.monotonic())
            return
        client, buf, _ = self._clients[fd]
        try:
            data = client.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        buf += data
        if not data or b"\r\n\r\n" in buf or b"\n\n" in buf or len(buf) > MAX_REQUEST_BYTES:
            self._answer(fd, bytes(buf) if data else b"")

    def sweep(self) -> None:
        """Drop clients that have not sent a whole request in time."""
        now = time.monotonic()
        for fd, (_, _, started) in list(self._clients.items()):
            if now - started > CLIENT_DEADLINE_S:
                self._close(fd)

    def close(self) -> None:
        for fd in list(self._clients):
            self._close(fd)
        self.sock.close()

    def _answer(self, fd: int, request: bytes) -> None:
        client = self._clients[fd][0]
        if request:
            parts = request.split(b"\r\n", 1)[0].split()
            method = parts[0] if parts else b""
            if len(parts) >= 2 and method in (b"GET", b"HEAD"):
                status, content_type, body = self._handler(parts[1].decode("latin-1"))
            else:
                status, content_type, body = 405, "text/plain", b"only GET\n"
            head = (
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            payload = head if method == b"HEAD" else head + body
            with contextlib.suppress(OSError):
                client.settimeout(CLIENT_DEADLINE_S)
                client.sendall(payload)
        self._close(fd)

    def _close(self, fd: int) -> None:
        client = self._clients.pop(fd)[0]
        with contextlib.suppress(OSError):
            client.close()
