"""Which session speaks on a connection: chosen on the client's first bytes.

HTTP/2 for a client that opens with the connection preface: over TLS after ALPN "h2", on
plain TCP with prior knowledge (RFC 9113 §3.3, §3.4). Everything else is HTTP/1.1; the
HTTP/1.1 ``Upgrade: h2c`` route (deprecated by RFC 9113 §3.1) is not offered.
"""

from __future__ import annotations

from hybridserve.sansio.http2 import PREFACE
from hybridserve.worker.h2session import H2Session
from hybridserve.worker.http1 import H1Session
from hybridserve.worker.protocol import HTTPProtocol, Session


def make_session(wire: HTTPProtocol, first: bytes) -> Session:
    """HTTP/2 for a client that opens with the preface (RFC 9113 §3.3, §3.4), else HTTP/1.1.

    Three bytes decide: no HTTP/1.1 method but PRI (reserved for this) starts so. Fewer
    ("P", "PR") wait in an ``Undecided`` session for the next read.
    """
    if PREFACE.startswith(first[: len(PREFACE)]):
        if len(first) < 3:
            return Undecided(wire)
        return H2Session(wire)
    return H1Session(wire, first)


class Undecided:
    """The session of a client whose first bytes could still be either protocol."""

    def __init__(self, wire: HTTPProtocol) -> None:
        self._wire = wire
        self._held = b""
        self._session: Session | None = None
        self._give_up_at = wire.state.clock.now + wire.state.config.timeouts.request_head_s

    def data_received(self, data: bytes) -> None:
        if self._session is None:
            held = self._held + data
            if len(held) < 3 and PREFACE.startswith(held):
                self._held = held
                return
            self._session, data = make_session(self._wire, held), held
        self._session.data_received(data)

    def eof_received(self) -> None:
        if self._session is not None:
            self._session.eof_received()

    def connection_lost(self) -> None:
        if self._session is not None:
            self._session.connection_lost()

    def pause_writing(self) -> None:
        if self._session is not None:
            self._session.pause_writing()

    def resume_writing(self) -> None:
        if self._session is not None:
            self._session.resume_writing()

    def check_deadline(self, now: float) -> None:
        if self._session is not None:
            self._session.check_deadline(now)
        elif now >= self._give_up_at:
            self._wire.close()

    def shutdown(self) -> None:
        if self._session is not None:
            self._session.shutdown()
        else:
            self._wire.close()

    def hand_over(self) -> bool:
        return self._session is not None and self._session.hand_over()
