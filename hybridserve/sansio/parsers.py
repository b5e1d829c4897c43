"""Parser backends behind one seam: bytes in, our events out, one request cycle at a time.

A backend turns bytes into ``Request``/``Body``/``EndOfRequest``/``ConnectionClosed`` and
stops after ``EndOfRequest``: anything pipelined behind it stays buffered until
``next_cycle()``, which the connection calls once the response is complete and the
connection is kept alive. Header names come out lower-cased. Keep-alive, Expect and Upgrade
are decided in ``connection.py``, once, for every backend.

h11 is the strict reference. It owns the response state machine too, so ``next_cycle``
tells it that a response was sent (the bytes we really send come from ``writer.py``).
"""

from __future__ import annotations

import re
from typing import Protocol

import h11

from hybridserve.config_values import resolved_http
from hybridserve.errors import ProtocolError
from hybridserve.sansio.events import (
    CONNECTION_CLOSED,
    END_OF_REQUEST,
    Body,
    Event,
    Request,
)


class ParserBackend(Protocol):
    """What ``ServerConnection`` needs from a parser."""

    name: str
    #: Whether the backend can keep an HTTP/1.0 connection alive when asked to.
    http10_keep_alive: bool

    def feed(self, data: bytes) -> list[Event]:
        """Parse ``data`` (``b""`` means EOF); return the events of the current cycle."""

    def next_cycle(self) -> list[Event]:
        """The response finished on a kept-alive connection: parse what is buffered."""


_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_H11_SENT_RESPONSE = h11.Response(status_code=200, headers=[(b"content-length", b"0")])
_H11_END = h11.EndOfMessage()


class H11Backend:
    """The reference parser: strict, well-tested, pure Python."""

    name = "h11"
    http10_keep_alive = False  # h11 always closes HTTP/1.0 connections

    def __init__(self, max_head_bytes: int) -> None:
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head_bytes)
        self._request_done = False

    def feed(self, data: bytes) -> list[Event]:
        try:
            self._conn.receive_data(data)
        except RuntimeError:  # data after EOF: nothing more can come of it
            return []
        if self._request_done:
            return []
        if not data:
            try:
                return self._drain()
            except ProtocolError:  # EOF in the middle of a request: the client went away
                return [CONNECTION_CLOSED]
        return self._drain()

    def next_cycle(self) -> list[Event]:
        conn = self._conn
        conn.send(_H11_SENT_RESPONSE)
        conn.send(_H11_END)
        conn.start_next_cycle()
        self._request_done = False
        return self._drain()

    def _drain(self) -> list[Event]:
        out: list[Event] = []
        next_event = self._conn.next_event
        while True:
            try:
                ev = next_event()
            except h11.RemoteProtocolError as exc:
                raise ProtocolError(str(exc), exc.error_status_hint) from None
            kind = type(ev)
            if kind is h11.Data:
                data = ev.data  # type: ignore[union-attr]  # narrowed by kind
                # h11 hands out a bytearray for chunked bodies; apps are owed bytes.
                out.append(Body(data if type(data) is bytes else bytes(data)))
            elif kind is h11.Request:
                req: h11.Request = ev  # type: ignore[assignment]  # narrowed by kind
                for _, value in req.headers:
                    if _CONTROL.search(value) is not None:  # h11 lets these through
                        raise ProtocolError("control character in a header value", 400)
                out.append(
                    Request(
                        method=req.method,
                        target=req.target,
                        http_version=req.http_version,
                        headers=list(req.headers),
                        keep_alive=False,
                    )
                )
            elif kind is h11.EndOfMessage:
                out.append(END_OF_REQUEST)
                self._request_done = True
                return out
            elif kind is h11.ConnectionClosed:
                out.append(CONNECTION_CLOSED)
                return out
            else:  # NEED_DATA or PAUSED
                return out


def make_backend(name: str, max_head_bytes: int) -> ParserBackend:
    """Build the backend called ``name`` (``auto`` picks the fastest one installed)."""
    if resolved_http(name) == "httptools":
        from hybridserve.sansio.httptools_backend import HttptoolsBackend

        return HttptoolsBackend(max_head_bytes)
    return H11Backend(max_head_bytes)
