"""Stream: one request as the app adapters see it, on whatever connection carries it.

An HTTP/1.1 connection makes one stream at a time; an HTTP/2 connection makes many. Either
way the adapters hold a ``Stream`` (the ``Channel`` of ``apps/types.py``) and nothing of
the transport: the stream keeps the request's own record (status, body bytes, timing, its
deadline) and hands every byte to its ``Link``, the connection that frames and writes it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Protocol

from hybridserve.apps.types import Address, Cycle, FileBody, TLSInfo
from hybridserve.errors import ResponseError
from hybridserve.sansio.events import Headers, Request
from hybridserve.worker.access import Entry

if TYPE_CHECKING:
    from hybridserve.apps.websocket import WebSocketSession

NO_BODY_STATUSES = (204, 304)
FileSent = Callable[[int, bool], None]  # (body bytes sent, whole): a file response is over
log = logging.getLogger("hybridserve.error")


def _with_file_length(headers: Headers, length: int) -> Headers:
    """A file response's headers with its Content-Length, checked once for every protocol:
    added when the app gave none, a ResponseError when the app's disagrees with the file."""
    declared = [v.strip() for n, v in headers if n.lower() == b"content-length"]
    if not declared:
        return [*headers, (b"content-length", b"%d" % length)]
    if declared != [b"%d" % length]:
        raise ResponseError(f"Content-Length {declared!r} but the file body is {length} bytes")
    return headers


class Link(Protocol):
    """The connection under a stream: it frames and writes what the stream is given."""

    def write_head(
        self, stream: Stream, status: int, headers: Headers, body: bytes, end: bool
    ) -> None:
        """Raises ResponseError for a head that cannot be sent."""

    def write_body(self, stream: Stream, data: bytes, end: bool) -> None: ...
    def write_file(
        self, stream: Stream, status: int, headers: Headers, body: FileBody, sent: FileSent
    ) -> None:
        """A whole response with a file body; ``sent(body bytes, whole)`` once it is over.
        Owns ``body.fd``; ``headers`` carry the file's Content-Length already."""

    def write_trailers(self, stream: Stream, trailers: Headers) -> None: ...
    def write_continue(self, stream: Stream) -> None: ...
    def abort_stream(self, stream: Stream) -> None: ...
    def pause_stream(self, stream: Stream) -> None:
        """Stop taking the stream's body until ``resume_stream``."""

    def resume_stream(self, stream: Stream) -> None: ...
    def stream_done(self, stream: Stream) -> None:
        """The response is complete."""

    def switch_protocols(self, stream: Stream, session: WebSocketSession, head: bytes) -> None:
        """HTTP/1.1 only: write the 101 and give the connection to ``session``."""

    def write_raw(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def reset(self) -> None: ...


class Stream:
    """One request's channel to its connection (``apps.types.Channel``)."""

    __slots__ = (
        "_body_counted",
        "_link",
        "body_bytes",
        "client",
        "cycle",
        "done",
        "loop",
        "request",
        "request_deadline",
        "response_headers",
        "scheme",
        "server",
        "started_at",
        "status",
        "tls",
    )

    def __init__(
        self,
        link: Link,
        request: Request,
        loop: asyncio.AbstractEventLoop,
        client: Address,
        server: Address,
        scheme: str,
        tls: TLSInfo | None,
        request_deadline: float,
    ) -> None:
        self._link = link
        self.request = request
        self.loop = loop
        self.client = client
        self.server = server
        self.scheme = scheme
        self.tls = tls
        self.request_deadline = request_deadline  # --request-timeout on the worker's clock
        self.cycle: Cycle | None = None
        self.status = 0
        self.body_bytes = 0  # for the access log's %(b)s: the body only, as gunicorn counts
        self._body_counted = False
        self.response_headers: Headers = []
        self.started_at = perf_counter()  # uvloop's loop.time() moves in 1 ms steps
        self.done = False

    # -- Channel: what the app adapters call -----------------------------------------
    def send_head(self, status: int, headers: Headers, body: bytes, end: bool) -> None:
        if self.done:
            return
        self._link.write_head(self, status, headers, body, end)
        self.status = status
        self.response_headers = headers
        head_only = self.request.method == b"HEAD"
        counted = not head_only and status >= 200 and status not in NO_BODY_STATUSES
        self._body_counted = counted
        if counted:
            self.body_bytes = len(body)
        if end:  # most responses: head and whole body in one call; the stream is done
            self.done = True
            self._link.stream_done(self)

    def send_body(self, data: bytes, end: bool) -> None:
        if self.done:
            return
        self._count(data)
        self._link.write_body(self, data, end)
        if end:
            self._finish()

    def send_file(
        self, status: int, headers: Headers, body: FileBody, done: Callable[[bool], None]
    ) -> None:
        if self.done:
            os.close(body.fd)
            done(False)
            return
        try:
            headers = _with_file_length(headers, body.length)
        except ResponseError:
            os.close(body.fd)
            raise
        self.status = status
        self.response_headers = headers

        def sent(body_bytes: int, whole: bool) -> None:
            self.body_bytes += body_bytes
            if whole:
                self._finish()
            done(whole)

        self._link.write_file(self, status, headers, body, sent)

    def send_trailers(self, trailers: Headers) -> None:
        if not self.done:
            self._link.write_trailers(self, trailers)
            self._finish()

    def send_continue(self) -> None:
        if not self.done:
            self._link.write_continue(self)

    def abort(self) -> None:
        self._link.abort_stream(self)

    def pause_reading(self) -> None:
        self._link.pause_stream(self)

    def resume_reading(self) -> None:
        self._link.resume_stream(self)

    # -- after a WebSocket handshake (HTTP/1.1): the session writes frames itself ----
    def switch_protocols(self, session: WebSocketSession, head: bytes) -> None:
        self.status = 101
        self._link.switch_protocols(self, session, head)

    def write(self, data: bytes) -> None:
        self._link.write_raw(data)

    def close(self) -> None:
        self._link.close()

    def reset(self) -> None:
        self._link.reset()

    def overdue(self, timeout_s: float) -> None:
        """It ran past --request-timeout: said once, and its cycle told to stop; what the
        client gets (503 or a cut) is the connection's to decide."""
        self.request_deadline = 0.0
        log.error(
            "%s %s ran past --request-timeout (%.0fs)",
            self.request.method.decode("latin-1"),
            self.request.target.decode("latin-1"),
            timeout_s,
        )
        if self.cycle is not None:
            self.cycle.expire()

    # -- the record ------------------------------------------------------------------
    def entry(self, duration_s: float) -> Entry:
        return Entry(
            self.request,
            self.client,
            self.status,
            self.body_bytes,
            duration_s,
            self.response_headers,
        )

    def _count(self, data: bytes) -> None:
        if self._body_counted:
            self.body_bytes += len(data)

    def _finish(self) -> None:
        self.done = True
        self._link.stream_done(self)
