"""HTTPProtocol: thin glue between an asyncio transport, a ServerConnection and a Cycle.

It owns the transport-level state of one connection: whether reading is paused, the one
deadline the worker's per-second sweep checks, and the request cycle in progress. It is
the ``Channel`` the app adapters write through, and the one place that turns a
``ProtocolError`` into an error response.
"""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter
from typing import TYPE_CHECKING, cast

from hybridserve.apps.asgi import ASGIAdapter
from hybridserve.apps.types import Address, Cycle, TLSInfo
from hybridserve.apps.websocket import WebSocketSession
from hybridserve.errors import ProtocolError
from hybridserve.sansio import proxy_protocol
from hybridserve.sansio.connection import ServerConnection
from hybridserve.sansio.events import Body, EndOfRequest, Event, Headers, Request
from hybridserve.sansio.writer import error_response
from hybridserve.worker.access import AccessLog, Entry
from hybridserve.worker.exposition import PROMETHEUS, StaticCycle
from hybridserve.worker.preface import PROXY_HEADER_MAX_BYTES, Preface
from hybridserve.worker.tls import ServerTLS

if TYPE_CHECKING:
    from hybridserve.worker.state import WorkerState

log = logging.getLogger("hybridserve.error")
access_log = logging.getLogger("hybridserve.access")

# What the main deadline of a connection currently means.
NO_DEADLINE, IDLE, HEAD, BODY = 0, 1, 2, 3
METRICS_HEADERS = [(b"content-type", PROMETHEUS.encode())]


def _address(info: object) -> Address:
    if isinstance(info, tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None


class HTTPProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection in a worker."""

    def __init__(
        self, state: WorkerState, tls: ServerTLS | None = None, preface: Preface | None = None
    ) -> None:
        self._state = state
        self._tls = tls
        self._preface = preface  # the PROXY header, when read before the TLS handshake
        self.loop = state.loop
        self._transport: asyncio.Transport | None = None
        self._conn = ServerConnection(state.config.limits, state.http_backend)
        self._cycle: Cycle | None = None
        self._upgraded: WebSocketSession | None = None  # owns the connection after a 101
        self._cycle_started = False
        self._reading_paused = False
        self._fresh = True  # counted in state.fresh until its first request
        self._silent = True  # counted in state.silent until its first bytes
        self.connected = False  # connection_made ran (its counters are ours to settle)
        self._close_after = False  # draining: close once the current response is done
        self._request: Request | None = None
        self._status = 0
        self._body_bytes = 0  # for the access log's %(b)s: body only, as gunicorn counts
        self._body_sent = False  # whether this response has a body on the wire (not HEAD, 304)
        self._response_headers: Headers = []
        self._started_at = 0.0
        self.deadline = 0.0
        self._deadline_kind = NO_DEADLINE
        self.client: Address = None
        self.server: Address = None
        self.scheme = self._peer_scheme = "http"
        self.tls: TLSInfo | None = None
        self._peer: Address = None
        self._proxied = False  # the peer is a trusted proxy: believe its headers
        self._write_deadline = 0.0  # set while the client leaves our output unread
        self._request_deadline = 0.0  # --request-timeout for the request in progress
        self._proxy_header: bytearray | None = None  # a PROXY header still to come

    # -- asyncio callbacks --------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._transport = transport
        self.connected = True
        self.client = self._peer = _address(transport.get_extra_info("peername"))
        self.server = _address(transport.get_extra_info("sockname"))
        if self._tls is not None:
            self.scheme = self._peer_scheme = "https"
            self.tls = self._tls.describe(transport.get_extra_info("ssl_object"))
        if self._preface is not None and self._preface.source is not None:
            self.client = self._peer = self._preface.source
        self._trust_peer()
        if self._state.config.proxy_protocol and self._preface is None:
            self._proxy_header = bytearray()
        self._state.connections.add(self)
        self._close_after = self._state.draining  # accepted before the drain: serve one
        self._set_deadline(IDLE, self._state.config.timeouts.keep_alive_s)

    def _trust_peer(self) -> None:
        proxies = self._state.proxies
        self._proxied = proxies is not None and proxies.trusts(
            self._peer[0] if self._peer else None
        )

    def data_received(self, data: bytes) -> None:
        if self._silent:
            self._silent = False
            self._state.silent -= 1
            self._dispatch(data)
            # No longer held in reserve (its request, if whole, now counts in flight):
            # the worker may take the next connection now rather than in 20 ms.
            self._state.capacity_freed()
        else:
            self._dispatch(data)

    def _dispatch(self, data: bytes) -> None:
        if self._proxy_header is not None:
            data = self._take_proxy_header(data)
            if not data:
                return
        if self._upgraded is not None:
            self._upgraded.data_received(data)
            return
        if self._cycle is None:
            if self._deadline_kind == IDLE:
                self._set_deadline(HEAD, self._state.config.timeouts.request_head_s)
        elif self._conn.request_complete:
            # A pipelined request behind the one in progress: hold it, read no further.
            self.pause_reading()
        elif self._deadline_kind == BODY:
            self.deadline = self._state.now + self._state.config.timeouts.body_read_s
        try:
            events = self._conn.receive(data)
        except ProtocolError as exc:
            self._reject(exc)
            return
        if events:
            self._handle(events)

    def _take_proxy_header(self, data: bytes) -> bytes:
        """Collect the PROXY header; returns the bytes after it once it is complete."""
        assert self._proxy_header is not None and self._transport is not None
        self._proxy_header += data
        try:
            parsed = proxy_protocol.parse(bytes(self._proxy_header))
        except ProtocolError as exc:
            log.debug("bad PROXY header from %s: %s", self._peer, exc)
            self._transport.close()
            return b""
        if parsed is None:
            if len(self._proxy_header) > PROXY_HEADER_MAX_BYTES:
                self._transport.close()
            return b""
        consumed, source = parsed
        rest = bytes(self._proxy_header[consumed:])
        self._proxy_header = None
        if source is not None:
            self.client = self._peer = source
            self._trust_peer()
        return rest

    def eof_received(self) -> bool:
        if self._upgraded is not None:
            return self._upgraded.eof_received()
        try:
            events = self._conn.receive(b"")
        except ProtocolError:
            events = []
        if events:
            self._handle(events)
        # The client is gone, as uvicorn and hypercorn read an EOF too: close, so the
        # cycle hears of it (http.disconnect, or a WSGI response cut short).
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        state = self._state
        state.connections.discard(self)
        self._transport = None
        if self._fresh:
            self._fresh = False
            state.fresh -= 1
        if self._silent:
            self._silent = False
            state.silent -= 1
        cycle = self._cycle
        if cycle is not None:
            self._cycle = None
            state.in_flight -= 1
            cycle.disconnected()
        upgraded = self._upgraded
        if upgraded is not None:
            self._upgraded = None
            state.in_flight -= 1
            upgraded.connection_lost()
        state.note_close()
        state.capacity_freed()

    def pause_writing(self) -> None:
        self._write_deadline = self._state.now + self._state.config.timeouts.write_s
        if self._upgraded is not None:
            self._upgraded.pause_writing()
        elif self._cycle is not None:
            self._cycle.pause_writing()

    def resume_writing(self) -> None:
        self._write_deadline = 0.0
        if self._upgraded is not None:
            self._upgraded.resume_writing()
        elif self._cycle is not None:
            self._cycle.resume_writing()

    # -- request dispatch ---------------------------------------------------------
    def _handle(self, events: list[Event]) -> None:
        for event in events:
            kind = type(event)
            if kind is Body:
                if self._cycle is not None:
                    self._cycle.feed_body(event.data)  # type: ignore[union-attr]  # kind
            elif kind is Request:
                self._begin(event)  # type: ignore[arg-type]  # narrowed by kind
            elif kind is EndOfRequest:
                if self._deadline_kind == BODY:
                    self._deadline_kind = NO_DEADLINE
                if self._cycle is not None:
                    self._cycle.feed_end()
            elif self._transport is not None:  # ConnectionClosed
                if self._cycle is None:
                    self._transport.close()
                elif not self._conn.request_complete:  # gone in the middle of its body
                    self.abort()
        if self._cycle is not None and not self._cycle_started:
            self._cycle_started = True
            self._cycle.start()

    def _begin(self, request: Request) -> None:
        state = self._state
        if self._fresh:
            self._fresh = False
            state.fresh -= 1
        limit = state.config.limit_concurrency
        if limit and state.in_flight >= limit:
            self._reject(ProtocolError("worker at --limit-concurrency", 503))
            return
        state.in_flight += 1
        self._set_deadline(BODY, state.config.timeouts.body_read_s)
        request_s = state.config.timeouts.request_s
        self._request_deadline = state.now + request_s if request_s else 0.0
        self._request = request
        self._status = 0
        self._body_bytes = 0
        self._started_at = perf_counter()  # uvloop's loop.time() has 1 ms steps
        if self._proxied:
            self._apply_proxy_headers(request)
        if state.metrics_path is not None and request.target.partition(b"?")[0] == (
            state.metrics_path
        ):
            self._cycle = StaticCycle(self, 200, METRICS_HEADERS, state.render_metrics())
            return
        adapter = state.adapter
        if (
            request.upgrade == b"websocket"
            and isinstance(adapter, ASGIAdapter)
            and state.config.websocket.backend != "none"
        ):
            self._cycle = WebSocketSession(adapter, request, self, state.config.websocket)
        else:
            self._cycle = adapter.new_cycle(request, self)

    def _apply_proxy_headers(self, request: Request) -> None:
        """Client, scheme and Host as the trusted proxy reports them, for this request."""
        assert self._state.proxies is not None
        seen = self._state.proxies.read(self._peer, request.headers)
        self.client = seen.client if seen and seen.client else self._peer
        self.scheme = seen.scheme if seen and seen.scheme else self._peer_scheme
        if seen and seen.host:
            request.headers = [
                (name, seen.host if name == b"host" else value) for name, value in request.headers
            ]

    def _reject(self, exc: ProtocolError) -> None:
        log.debug("bad request from %s: %s (%d)", self.client, exc, exc.status)
        transport = self._transport
        if transport is None:
            return
        state = self._state
        if not self._conn.response_started:
            data = error_response(exc.status, str(exc), state.date_line, state.server_line)
            transport.write(data)
            if self._cycle is None and self._upgraded is None:  # no app saw it: count it here
                state.record(exc.status, 0.0)
                if state.access_log is not None:
                    request = self._conn.refused_request()
                    state.access_log.emit(
                        Entry(request, self.client, exc.status, len(data), 0.0, [])
                    )
        self._conn.abandon()
        transport.close()

    # -- Channel: what the app adapters call --------------------------------------
    def send_head(self, status: int, headers: Headers, body: bytes, end: bool) -> None:
        if self._transport is None:
            return
        state = self._state
        data = self._conn.send_head(
            status,
            headers,
            body=body,
            end=end,
            close=self._close_after or state.draining,
            date_line=state.date_line,
            server_line=state.server_line,
        )
        self._status = status
        self._response_headers = headers
        request = self._request
        head_only = request is None or request.method == b"HEAD"
        self._body_sent = not head_only and status >= 200 and status not in (204, 304)
        self._count_body(body)
        self._write(data)
        if end:
            self._finish()

    def send_body(self, data: bytes, end: bool) -> None:
        if self._transport is None:
            return
        self._count_body(data)
        self._write(self._conn.send_body(data, end=end))
        if end:
            self._finish()

    def send_trailers(self, trailers: Headers) -> None:
        if self._transport is None:
            return
        self._write(self._conn.send_trailers(trailers))
        self._finish()

    def send_continue(self) -> None:
        if self._transport is not None:
            self._write(self._conn.continue_bytes())

    def abort(self) -> None:
        self._conn.abandon()
        if self._transport is not None:
            self._transport.close()

    def pause_reading(self) -> None:
        if not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()
            if self._deadline_kind == BODY:  # we stopped reading: the client isn't late
                self._deadline_kind = NO_DEADLINE

    def resume_reading(self) -> None:
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()
            if self._cycle is not None and not self._conn.request_complete:
                self._set_deadline(BODY, self._state.config.timeouts.body_read_s)

    # -- after a WebSocket handshake: the session writes its frames itself -------------
    def switch_protocols(self, session: WebSocketSession, head: bytes) -> None:
        """Write the 101; the request is done, and the connection (still in flight) is the
        session's from now on."""
        state = self._state
        self._status = 101
        self._response_headers = []
        self._write(head)
        self._conn.abandon()
        self._cycle = None
        self._cycle_started = False
        self._upgraded = session
        self._deadline_kind = NO_DEADLINE
        self._request_deadline = 0.0  # a WebSocket lives as long as it is used
        state.record(101, perf_counter() - self._started_at)
        state.request_done()
        if state.access_log is not None:
            self._log_access(state.access_log)
        self.resume_reading()
        if self._close_after or state.draining:
            session.shutdown()

    def write(self, data: bytes) -> None:
        self._write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def reset(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _count_body(self, data: bytes) -> None:
        if self._body_sent:
            self._body_bytes += len(data)

    def _write(self, data: bytes) -> None:
        if data and self._transport is not None:
            self._transport.write(data)

    def _finish(self) -> None:
        """The response is complete: close, or start the next pipelined request."""
        state = self._state
        self._cycle = None
        self._cycle_started = False
        state.in_flight -= 1
        state.record(self._status, perf_counter() - self._started_at)
        state.request_done()
        if state.access_log is not None:
            self._log_access(state.access_log)
        transport = self._transport
        if transport is None:
            return
        if not self._conn.keep_alive or self._close_after or state.draining:
            transport.close()
            state.capacity_freed()
            return
        self.resume_reading()
        self._set_deadline(IDLE, state.config.timeouts.keep_alive_s)
        try:
            events = self._conn.next_cycle()
        except ProtocolError as exc:
            self._reject(exc)
            events = []
        if events:
            self._handle(events)
        state.capacity_freed()

    def _log_access(self, access: AccessLog) -> None:
        if self._request is not None:
            access.emit(
                Entry(
                    self._request,
                    self.client,
                    self._status,
                    self._body_bytes,
                    perf_counter() - self._started_at,
                    self._response_headers,
                )
            )

    # -- deadlines and draining, driven by the worker -----------------------------
    def _set_deadline(self, kind: int, seconds: float) -> None:
        self._deadline_kind = kind
        self.deadline = self._state.now + seconds

    def check_deadline(self, now: float) -> None:
        """Called once a second by the worker's sweep."""
        if self._transport is None:
            return
        if self._write_deadline and now >= self._write_deadline:
            log.debug("client %s stopped reading; dropping the connection", self.client)
            self._conn.abandon()
            self._transport.abort()  # close() would wait for the unread bytes to flush
            return
        if self._upgraded is not None:
            self._upgraded.check_deadline(now)
            return
        if self._request_deadline and now >= self._request_deadline:
            self._expire()
            return
        kind = self._deadline_kind
        if kind == NO_DEADLINE or now < self.deadline:
            return
        self._deadline_kind = NO_DEADLINE
        if kind == HEAD:
            self._reject(ProtocolError("request head not received in time", 408))
        elif kind == BODY:
            self._reject(ProtocolError("request body not received in time", 408))
        else:
            self._transport.close()

    def _expire(self) -> None:
        """The request ran past --request-timeout: 503 if we still can, then close."""
        self._request_deadline = 0.0
        cycle, request = self._cycle, self._request
        if cycle is None or request is None or self._transport is None:
            return
        log.error(
            "%s %s ran past --request-timeout (%.0fs)",
            request.method.decode("latin-1"),
            request.target.decode("latin-1"),
            self._state.config.timeouts.request_s,
        )
        cycle.expire()
        self._status = 503
        self._reject(ProtocolError("the request took too long", 503))

    def hand_over(self) -> bool:
        """Close after the next response, so the client reconnects to a less loaded sibling."""
        if self._close_after or self._upgraded is not None or self._transport is None:
            return False
        self._close_after = True
        return True

    def shutdown(self) -> None:
        """Graceful stop: close now if idle, else once the current response is done."""
        self._close_after = True
        if self._upgraded is not None:
            self._upgraded.shutdown()
            return
        if self._cycle is not None:
            self._cycle.shutdown()
        # A fresh connection's request may be on its way: let it come (its deadline still
        # applies). Only an idle keep-alive connection is closed at once.
        elif not self._fresh and self._transport is not None:
            self._transport.close()
