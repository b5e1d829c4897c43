"""A Channel (apps/types.py) that records what an adapter asks of it, for adapter unit tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hybridserve.apps.types import Address, FileBody, TLSInfo
from hybridserve.sansio.events import Headers

CLIENT: Address = ("192.0.2.7", 50123)
SERVER: Address = ("127.0.0.1", 8000)


class Recorder:
    """Every call lands in ``calls``; subclasses add the checks a real connection makes."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.client: Address = CLIENT
        self.server: Address = SERVER
        self.scheme = "http"
        self.tls: TLSInfo | None = None
        self.calls: list[tuple[Any, ...]] = []

    def send_head(self, status: int, headers: Headers, body: bytes, end: bool) -> None:
        self.calls.append(("head", status, body, end))

    def send_body(self, data: bytes, end: bool) -> None:
        self.calls.append(("body", data, end))

    def send_trailers(self, trailers: Headers) -> None:
        self.calls.append(("trailers", trailers))

    def send_file(
        self, status: int, headers: Headers, body: FileBody, done: Callable[[bool], None]
    ) -> None:
        data = b"".join(
            p if isinstance(p, bytes) else os.pread(body.fd, p[1], p[0]) for p in body.pieces
        )
        os.close(body.fd)
        self.calls.append(("file", status, data))
        done(True)

    def send_continue(self) -> None:
        self.calls.append(("continue",))

    def abort(self) -> None:
        self.calls.append(("abort",))

    def pause_reading(self) -> None:
        self.calls.append(("pause",))

    def resume_reading(self) -> None:
        self.calls.append(("resume",))
