"""H2Deadlines: the worker's clock over one HTTP/2 connection's streams.

The sans-IO connection enforces sizes, the worker enforces time (DESIGN.md). Each stream
has its own deadlines: the next bytes of its body while the client sends it
(--timeout-body-read; not while its app is behind and the window held), and
--request-timeout for the whole exchange. The connection has its idle timeout
(--keep-alive) once no stream is open. A late stream is answered (408, 503) if its head
is not out yet, else reset; the other streams go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from hybridserve.sansio.h2events import ErrorCode
from hybridserve.sansio.http2 import Http2Connection
from hybridserve.worker.state import WorkerState
from hybridserve.worker.stream import Stream

log = logging.getLogger("hybridserve.error")


class Owner(Protocol):
    """What the deadlines ask of the session whose streams they watch."""

    def gone(self, sid: int) -> None:
        """The stream is over before its response; its app hears of a disconnect."""

    def stream_done(self, stream: Stream) -> None: ...
    def flush(self) -> None: ...
    def shutdown(self) -> None:
        """GOAWAY: the connection was idle too long."""


class H2Deadlines:
    """Body and request deadlines per stream, and the connection's idle time."""

    def __init__(
        self,
        owner: Owner,
        conn: Http2Connection,
        state: WorkerState,
        holding: Callable[[int], bool],
    ) -> None:
        self._owner = owner
        self._conn = conn
        self._clock = state.clock
        self._timeouts = state.config.timeouts
        self._holding = holding  # whether a stream's window is held for its app
        self._body_due: dict[int, float] = {}  # streams whose body is coming: next byte by then
        self._idle_since = self._clock.now

    def body_expected(self, sid: int) -> None:
        self._body_due[sid] = self._clock.now + self._timeouts.body_read_s

    def body_arrived(self, sid: int) -> None:
        if sid in self._body_due:
            self._body_due[sid] = self._clock.now + self._timeouts.body_read_s

    def body_ended(self, sid: int) -> None:
        self._body_due.pop(sid, None)

    def forget(self, sid: int, *, idle: bool) -> None:
        """The stream is over; ``idle``: it was the last one open."""
        self._body_due.pop(sid, None)
        if idle:
            self._idle_since = self._clock.now

    def check(self, now: float, streams: dict[int, Stream]) -> None:
        """The once-a-second sweep: act on every deadline that has passed."""
        for sid, stream in list(streams.items()):
            if stream.request_deadline and now >= stream.request_deadline:
                self._expire(sid, stream)
            elif not self._holding(sid) and now >= self._body_due.get(sid, now + 1):
                self._body_late(sid, stream)  # (a paused stream waits for its app, not us)
        if not streams and now - self._idle_since >= self._timeouts.keep_alive_s:
            self._owner.shutdown()

    def _body_late(self, sid: int, stream: Stream) -> None:
        """The client stopped sending this stream's body (--timeout-body-read): 408 if we
        still can, else a reset; the app hears of a disconnect. Other streams go on."""
        log.debug("HTTP/2 stream %d from %s: body not received in time", sid, stream.client)
        if stream.status:
            self._conn.reset(sid, ErrorCode.CANCEL)
        else:
            self._conn.send_head(sid, 408, [(b"content-length", b"0")], end_stream=True)
        self._owner.gone(sid)
        self._owner.flush()

    def _expire(self, sid: int, stream: Stream) -> None:
        """Past --request-timeout: 503 if the head is not out yet, else a reset."""
        stream.overdue(self._timeouts.request_s)
        if stream.status:
            self._conn.reset(sid, ErrorCode.CANCEL)
            self._owner.gone(sid)
        else:
            stream.status = 503
            self._conn.send_head(sid, 503, [(b"content-length", b"0")], end_stream=True)
            stream.done = True
            self._owner.stream_done(stream)
        self._owner.flush()
