"""The conformance cases' ``Driver`` over a real socket, against a running server."""

from __future__ import annotations

import socket

READ_TIMEOUT_S = 3.0  # quiet this long: the server has nothing more to say (for now)


class SocketDriver:
    """One TCP connection; reads return b"" on the server's close or after a quiet spell."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=READ_TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as real h2 clients
        self._eof = False

    def send(self, data: bytes) -> None:
        if self._eof:
            return
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self._eof = True  # the server closed first (a connection error it answered)

    def read(self) -> bytes:
        if self._eof:
            return b""
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return b""
        except ConnectionResetError:
            data = b""
        if not data:
            self._eof = True
        return data

    def closed(self) -> bool:
        if not self._eof:
            self.read()
        return self._eof

    def close(self) -> None:
        self.sock.close()
