"""HTTPProtocol: the glue between an asyncio transport and the session that speaks HTTP on it.

It owns what belongs to the transport: the reasons reading is paused, the write deadline,
a PROXY header in front of the first request, the connection's place in the worker's
capacity, and the words close (flush, then close) and abort (drop now), as asyncio means
them. The bytes after the PROXY header go to a session made on the first of them: the
HTTP/1.1 one (``http1.py``), and the HTTP/2 one that the connection preface will pick.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from typing import Protocol, cast

from hybridserve.apps.types import Address, FileBody, TLSInfo
from hybridserve.errors import ProtocolError
from hybridserve.sansio import proxy_protocol
from hybridserve.worker.preface import Preface
from hybridserve.worker.proxy import Peer
from hybridserve.worker.sendfile import FileSender
from hybridserve.worker.state import WorkerState
from hybridserve.worker.stream import FileSent
from hybridserve.worker.tls import ServerTLS

log = logging.getLogger("hybridserve.error")


class Pause(enum.Enum):
    """Why reading is paused; it resumes only once no reason is left."""

    PIPELINED = "pipelined"  # a request waits behind the one in progress
    BACKPRESSURE = "backpressure"  # the app is behind on the body (or WebSocket messages)


class Session(Protocol):
    """What speaks HTTP on one connection, once its first bytes have come."""

    def data_received(self, data: bytes) -> None: ...
    def eof_received(self) -> None: ...
    def connection_lost(self) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...
    def check_deadline(self, now: float) -> None: ...
    def shutdown(self) -> None: ...
    def hand_over(self) -> bool: ...


def _nobody(body_bytes: int, whole: bool) -> None:
    """No file body in progress."""


SessionMaker = Callable[["HTTPProtocol", bytes], Session]  # given the first bytes it will get


def _address(info: object) -> Address:
    if isinstance(info, tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None


class HTTPProtocol(asyncio.Protocol):
    """One client connection in a worker."""

    def __init__(
        self,
        state: WorkerState,
        make_session: SessionMaker,
        tls: ServerTLS | None = None,
        preface: Preface | None = None,
    ) -> None:
        self.state = state
        self._make_session = make_session
        self._capacity = state.capacity
        self._tls = tls
        self._preface = preface  # the PROXY header, when read before the TLS handshake
        self._transport: asyncio.Transport | None = None
        self._session: Session | None = None
        self._paused: set[Pause] = set()
        self.reading_paused = False  # for any reason: a cheap check before resume()
        self.fresh = True  # counted in capacity.fresh until its first request
        self._silent = True  # counted in capacity.silent until its first bytes
        self.connected = False  # connection_made ran (its counters are ours to settle)
        self.open = False  # the transport is there to write to
        self.close_after = False  # draining or handed over: close once the response is done
        self._idle_until = 0.0  # before its first bytes: a silent client is closed then
        self._write_deadline = 0.0  # set while the client leaves our output unread
        self.peer = Peer(None, "http", state.proxies)
        self.server: Address = None
        self.tls: TLSInfo | None = None
        self._proxy_header: proxy_protocol.HeaderReader | None = None
        self._sender: FileSender | None = None  # a file body going out
        self._file_done: FileSent = _nobody

    # -- asyncio callbacks --------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._transport = transport
        self.open = True
        self.connected = True
        self.server = _address(transport.get_extra_info("sockname"))
        peer = _address(transport.get_extra_info("peername"))
        if self._tls is not None:
            self.peer.scheme = "https"
            self.tls = self._tls.describe(transport.get_extra_info("ssl_object"))
        if self._preface is not None and self._preface.source is not None:
            peer = self._preface.source
        self.peer.moved_to(peer)
        if self.state.config.proxy_protocol and self._preface is None:
            self._proxy_header = proxy_protocol.HeaderReader()
        self._capacity.connection_opened(self)
        self.close_after = self.state.draining  # accepted before the drain: serve one
        self._idle_until = self.state.clock.now + self.state.config.timeouts.keep_alive_s

    def data_received(self, data: bytes) -> None:
        if self._proxy_header is not None:
            data = self._take_proxy_header(data)
        if not data:
            return
        if self._session is None:
            self._session = self._make_session(self, data)
        if self._silent:
            self._silent = False
            self._capacity.first_bytes()
            self._session.data_received(data)
            # No longer held in reserve (its request, if whole, now counts in flight):
            # the worker may take the next connection now rather than in 20 ms.
            self._capacity.room_changed()
        else:
            self._session.data_received(data)

    def _take_proxy_header(self, data: bytes) -> bytes:
        """The bytes after the PROXY header once it is whole; b"" until then."""
        assert self._proxy_header is not None
        try:
            done = self._proxy_header.feed(data)
        except ProtocolError as exc:
            log.debug("bad PROXY header from %s: %s", self.peer.address, exc)
            self.close()
            return b""
        if done is None:
            return b""
        self._proxy_header = None
        source, rest = done
        if source is not None:
            self.peer.moved_to(source)
        return rest

    def eof_received(self) -> bool:
        if self._session is not None:
            self._session.eof_received()
        # The client is gone, as uvicorn and hypercorn read an EOF too: close, so the
        # app hears of it (http.disconnect, or a WSGI response cut short).
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self.open = False
        if self._sender is not None:
            self._sender.cancel()
            self._file_over(False)
        if self._session is not None:
            self._session.connection_lost()
        fresh, silent = self.fresh, self._silent
        self.fresh = self._silent = False
        self._capacity.connection_closed(self, fresh=fresh, silent=silent)

    def pause_writing(self) -> None:
        self._write_deadline = self.state.clock.now + self.state.config.timeouts.write_s
        if self._sender is not None:
            self._sender.pause_writing()
        if self._session is not None:
            self._session.pause_writing()

    def resume_writing(self) -> None:
        self._write_deadline = 0.0
        if self._sender is not None:
            self._sender.resume_writing()
        if self._session is not None:
            self._session.resume_writing()

    # -- what a session asks of its connection --------------------------------------
    def first_request(self) -> None:
        if self.fresh:
            self.fresh = False
            self._capacity.first_request()

    def write(self, data: bytes) -> None:
        if data and self._transport is not None:
            self._transport.write(data)

    def send_file(self, body: FileBody, done: FileSent) -> None:
        """A file body after its head: by os.sendfile on plain TCP (bounded reads under TLS),
        with the backpressure and write timeout of any response; ``done(bytes, whole)``."""
        state, transport = self.state, self._transport
        assert transport is not None and self._sender is None
        self._file_done = done
        self._sender = FileSender(
            transport,
            body,
            zero_copy=self._tls is None and state.config.static.sendfile,
            offload=state.offload,
            clock=lambda: state.clock.now,
            on_done=self._file_over,
        )
        self._sender.start()

    def _file_over(self, whole: bool) -> None:
        sender, done = self._sender, self._file_done
        if sender is not None:
            self._sender, self._file_done = None, _nobody
            done(sender.sent_bytes, whole)

    def close(self) -> None:
        """Close once what was written is flushed."""
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection now, unsent bytes and all."""
        if self._transport is not None:
            self._transport.abort()

    def write_eof(self) -> bool:
        """Half-close: our FIN after what is queued, reading goes on; False where the
        transport cannot (TLS)."""
        if self._transport is None or not self._transport.can_write_eof():
            return False
        self._transport.write_eof()
        return True

    def pause(self, reason: Pause) -> bool:
        """Whether this reason was new; the transport pauses with the first reason."""
        if reason in self._paused or self._transport is None:
            return False
        if not self._paused:
            self._transport.pause_reading()
            self.reading_paused = True
        self._paused.add(reason)
        return True

    def resume(self, *reasons: Pause) -> bool:
        """Whether any of ``reasons`` held reading; it resumes once none is left."""
        held = bool(self._paused.intersection(reasons))
        self._paused.difference_update(reasons)
        if held and not self._paused:
            self.reading_paused = False
            if self._transport is not None:
                self._transport.resume_reading()
        return held

    # -- the worker's sweep and drain ---------------------------------------------------
    def check_deadline(self, now: float) -> None:
        """Called once a second by the worker's sweep."""
        if self._transport is None:
            return
        sender = self._sender  # a file the client stopped taking?
        write_s = self.state.config.timeouts.write_s
        if sender is not None and sender.blocked_at and now - sender.blocked_at >= write_s:
            self._write_deadline = now
        if self._write_deadline and now >= self._write_deadline:
            log.debug("client %s stopped reading; dropping it", self.peer.address)
            self.abort()  # close() would wait for the unread bytes to flush
        elif self._session is not None:
            self._session.check_deadline(now)
        elif now >= self._idle_until:
            self.close()

    def shutdown(self) -> None:
        """Graceful stop: close now if idle, else once the current response is done.

        A fresh connection's request may be on its way: it is let come (its deadline
        still applies).
        """
        self.close_after = True
        if self._session is not None:
            self._session.shutdown()

    def hand_over(self) -> bool:
        """Close after the next response, so the client reconnects to a less loaded sibling."""
        if self.close_after or self._transport is None:
            return False
        if self._session is not None and not self._session.hand_over():
            return False
        self.close_after = True
        return True
