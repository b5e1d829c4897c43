"""Run a conformance case against ``ServerConnection`` alone: no sockets, no sleeps.

The app is the demo app's routing (``hybridserve.demo.plan``), answering each request once
its body is in, as ``/echo`` does. What a client would see (statuses in order, whether
the connection closed, the first body the app read) is summed up as an ``Outcome``, so a
run can be compared with the case and with every other way of cutting the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hybridserve.config_groups import Limits
from hybridserve.demo import BadParameter, plan
from hybridserve.errors import ProtocolError
from hybridserve.sansio.connection import ServerConnection
from hybridserve.sansio.events import Body, ConnectionClosed, EndOfRequest, Event, Request

DATE = b"Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n"


@dataclass(frozen=True)
class Outcome:
    statuses: tuple[int, ...]
    closed: bool
    body: bytes | None  # what the first request's body was, once it was whole
    methods: tuple[bytes, ...] = ()
    headers: tuple[tuple[bytes, bytes], ...] = ()  # the first request's
    error: str = ""  # the ProtocolError's message, if one ended the connection


def app_status(request: Request) -> int:
    """The demo app's status for ``request`` (its routing, without the I/O)."""
    target = request.target
    if target[:1] != b"/" and b"://" in target:
        target = b"/" + target.split(b"://", 1)[1].partition(b"/")[2]
    path, _, query = target.decode("latin-1").partition("?")
    try:
        return plan(path, query).status
    except BadParameter:
        return 400


class Client:
    """Drives one ServerConnection as the worker does, answering each complete request."""

    def __init__(self, backend: str, limits: Limits | None = None) -> None:
        self.conn = ServerConnection(limits or Limits(), backend)
        self.statuses: list[int] = []
        self.methods: list[bytes] = []
        self.headers: tuple[tuple[bytes, bytes], ...] = ()
        self.bodies: list[bytes] = []
        self.closed = False
        self.error = ""
        self._body = b""

    def feed(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self._handle(self.conn.receive(data))
        except ProtocolError as exc:
            self.statuses.append(exc.status)
            self.error = str(exc)
            self.closed = True

    def _handle(self, events: list[Event]) -> None:
        while events:
            for event in events:
                if isinstance(event, Body):
                    self._body += event.data
                elif isinstance(event, Request):
                    if not self.methods:
                        self.headers = tuple(event.headers)
                    self.methods.append(event.method)
                elif isinstance(event, ConnectionClosed):
                    self.closed = True
                    return
            if not isinstance(events[-1], EndOfRequest):
                return
            self.bodies.append(self._body)
            self._body = b""
            request = self.conn.request
            assert request is not None
            status = app_status(request)
            self.conn.send_head(status, [], body=b"ok", end=True, date_line=DATE)
            self.statuses.append(status)
            if not self.conn.keep_alive:
                self.closed = True
                return
            events = self.conn.next_cycle()

    def outcome(self) -> Outcome:
        body = self.bodies[0] if self.bodies else None
        statuses, methods = tuple(self.statuses), tuple(self.methods)
        return Outcome(statuses, self.closed, body, methods, self.headers, self.error)


def run(
    backend: str, pieces: Iterable[bytes], *, eof: bool = False, limits: Limits | None = None
) -> Outcome:
    client = Client(backend, limits)
    for piece in pieces:
        if piece:  # b"" would mean EOF
            client.feed(piece)
    if eof:
        client.feed(b"")
    return client.outcome()


def cuts(data: bytes) -> Iterable[tuple[bytes, bytes]]:
    """Every way of cutting ``data`` in two reads. Past 4 KiB: every cut within 4 bytes of
    the edges, of the first line end and of each head's end (where the limits and the
    terminator are judged), and 256 more spread evenly."""
    if len(data) <= 4096:
        positions: Iterable[int] = range(len(data) + 1)
    else:
        marks = [0, len(data), data.find(b"\r\n")]
        at = data.find(b"\r\n\r\n")
        while at >= 0:
            marks.append(at + 4)
            at = data.find(b"\r\n\r\n", at + 1)
        near = {p for m in marks for p in range(m - 4, m + 5) if 0 <= p <= len(data)}
        positions = sorted(near | set(range(0, len(data), len(data) // 256)))
    for at in positions:
        yield data[:at], data[at:]
