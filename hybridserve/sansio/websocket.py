"""WebSockets without I/O: the opening handshake (RFC 6455 §4.2, RFC 7692) and the frames.

``read_handshake`` checks what the client asked for, ``negotiate_deflate`` picks the
compression we agree to, ``accept_head`` writes the 101, and ``accept`` does both and opens
the ``WebSocketConnection``, which owns wsproto, the message size limit and the close state:
bytes in, events out, bytes to send. ``Deadlines`` says when to ping and how long to wait for
a pong or the peer's Close. The ASGI mapping lives in ``apps/websocket.py``; the worker owns
the socket and the clock: no clock is read here, ``now_s`` comes from the worker's sweep.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass, field

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.utilities import generate_accept_token

from hybridserve.errors import ProtocolError, ResponseError
from hybridserve.sansio.events import Headers, Request
from hybridserve.sansio.writer import STATUS_LINES, header_line

OWN_HEADERS = {b"upgrade", b"connection", b"sec-websocket-accept", b"sec-websocket-extensions"}


def valid_close_code(code: object) -> bool:
    """Whether an app may send ``code`` in a Close frame (RFC 6455 §7.4, IANA registry)."""
    return isinstance(code, int) and (
        1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999
    )


@dataclass(frozen=True, slots=True)
class Handshake:
    """What a valid opening handshake asked for (RFC 6455 §4.2.1)."""

    key: bytes
    subprotocols: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)  # offers, as sent


def _tokens(value: bytes) -> list[str]:
    return [t for t in (p.strip() for p in value.decode("latin-1").split(",")) if t]


def read_handshake(request: Request) -> Handshake:
    """Check a client's opening handshake; raises ProtocolError (400, or 426 + version)."""
    if request.method != b"GET" or request.http_version != b"1.1":
        raise ProtocolError("a WebSocket handshake is an HTTP/1.1 GET", 400)
    key = version = None
    subprotocols: list[str] = []
    extensions: list[str] = []
    for name, value in request.headers:
        if name == b"sec-websocket-key":
            key = value.strip()
        elif name == b"sec-websocket-version":
            version = value.strip()
        elif name == b"sec-websocket-protocol":
            subprotocols += _tokens(value)
        elif name == b"sec-websocket-extensions":
            extensions += _tokens(value)
    if version != b"13":
        raise ProtocolError("unsupported Sec-WebSocket-Version", 426 if version else 400)
    if key is None or not _valid_key(key):
        raise ProtocolError("missing or invalid Sec-WebSocket-Key", 400)
    return Handshake(key, subprotocols, extensions)


def refusal_headers(status: int) -> Headers:
    """What a refusal of the handshake with ``status`` adds: a 426 names the version we
    speak (RFC 6455 §4.4)."""
    return [(b"sec-websocket-version", b"13")] if status == 426 else []


def _valid_key(key: bytes) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False


def negotiate_deflate(offers: list[str]) -> tuple[list[Extension], bytes | None]:
    """The first permessage-deflate offer we can take: its extension and response header.

    An offer asking for ``*_no_context_takeover`` gets it (RFC 7692 §7.1.1); a malformed
    offer is skipped rather than failing the handshake.
    """
    for offer in offers:
        name, _, params = offer.partition(";")
        if name.strip() != PerMessageDeflate.name:
            continue
        asked = {param.split("=")[0].strip() for param in params.split(";")}
        deflate = PerMessageDeflate(
            client_no_context_takeover="client_no_context_takeover" in asked,
            server_no_context_takeover="server_no_context_takeover" in asked,
        )
        try:
            accepted = deflate.accept(offer)
        except ValueError:
            continue
        if isinstance(accepted, str):
            header = PerMessageDeflate.name + ("; " + accepted if accepted else "")
            return [deflate], header.encode("ascii")
    return [], None


def accept_head(
    handshake: Handshake, subprotocol: str | None, extensions: bytes | None, headers: Headers
) -> bytes:
    """The 101 response; raises ResponseError for a subprotocol or header we can't send."""
    lines = [
        STATUS_LINES[101],
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n",
        b"Sec-WebSocket-Accept: %s\r\n" % generate_accept_token(handshake.key),
    ]
    if subprotocol is not None:
        if subprotocol not in handshake.subprotocols:
            raise ResponseError(f"subprotocol {subprotocol!r} was not offered by the client")
        lines.append(header_line(b"Sec-WebSocket-Protocol", subprotocol.encode("latin-1"))[0])
    if extensions:
        lines.append(b"Sec-WebSocket-Extensions: %s\r\n" % extensions)
    for name, value in headers:
        lowered = name.lower()
        if lowered in OWN_HEADERS or (subprotocol and lowered == b"sec-websocket-protocol"):
            continue
        lines.append(header_line(name, value)[0])
    lines.append(b"\r\n")
    return b"".join(lines)


def accept(
    handshake: Handshake,
    subprotocol: str | None,
    headers: Headers,
    *,
    deflate: bool,
    max_size_bytes: int,
) -> tuple[bytes, WebSocketConnection]:
    """The 101 and the connection it opens, compressed if ``deflate`` and the client offers.

    Raises ResponseError, before anything is opened, for a subprotocol or header we can't send.
    """
    extensions: list[Extension] = []
    offer = None
    if deflate and handshake.extensions:
        extensions, offer = negotiate_deflate(handshake.extensions)
    head = accept_head(handshake, subprotocol, offer, headers)
    return head, WebSocketConnection(extensions, max_size_bytes)


# -- after the handshake ---------------------------------------------------------------
DEFLATE_SLICE_BYTES = 4096  # inflate <= ~4 MiB per step: zlib's worst ratio is ~1:1032
OPEN, CLOSING, CLOSED = "open", "closing", "closed"
TOO_BIG = 1009


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A whole message; ``size`` counts its bytes (UTF-8 for text) for flow control."""

    data: str | bytes
    size: int


@dataclass(frozen=True, slots=True)
class PongReceived:
    """The peer answered a ping: it is alive."""


@dataclass(frozen=True, slots=True)
class Closing:
    """We began the closing handshake (a message too big): the app hears ``code`` now."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Ended:
    """The WebSocket is over (both Close frames crossed, or the peer broke the protocol):
    send what is left, then close TCP."""

    code: int
    reason: str


WebSocketEvent = MessageReceived | PongReceived | Closing | Ended


class WebSocketConnection:
    """One WebSocket after its 101: frames in, events out, frames to send.

    States only move forward: OPEN, CLOSING (we sent a Close and wait for the peer's),
    CLOSED. After our Close the peer's data is parsed only to be thrown away (RFC 6455
    §1.4), and not even that beyond ``max_size_bytes``: inflating it costs us, not them.
    """

    def __init__(self, extensions: list[Extension], max_size_bytes: int) -> None:
        self._ws = Connection(ConnectionType.SERVER, extensions)
        self._slice = DEFLATE_SLICE_BYTES if extensions else 0
        self._max = max_size_bytes
        self.state = OPEN
        self._out: list[bytes] = []
        self._pong_owed: bytes | None = None  # only the latest ping needs a pong (§5.5.3)
        self._text: list[str] = []  # the parts of the message being received
        self._binary: list[bytes] = []
        self._size = 0
        self._discarded = 0

    # -- in --------------------------------------------------------------------------
    def receive(self, data: bytes) -> list[WebSocketEvent]:
        events: list[WebSocketEvent] = []
        step = self._slice or len(data) or 1
        for start in range(0, len(data), step):
            if self.state == CLOSED or self._ws.state is ConnectionState.CLOSED:
                break
            self._ws.receive_data(data[start : start + step])
            for event in self._ws.events():
                if isinstance(event, TextMessage | BytesMessage):
                    self._on_data(event.data, event.message_finished, events)
                elif isinstance(event, Ping):
                    self._pong_owed = event.payload
                elif isinstance(event, Pong):
                    events.append(PongReceived())
                elif isinstance(event, CloseConnection):
                    self._on_close(event, events)
        return events

    def _on_data(
        self, data: str | bytes | bytearray, finished: bool, events: list[WebSocketEvent]
    ) -> None:
        if self.state != OPEN:
            self._discarded += len(data)
            if self._discarded > self._max and self.state != CLOSED:
                self.state = CLOSED
                events.append(Ended(TOO_BIG, "message too big"))
            return
        if isinstance(data, str):
            self._size += len(data) if data.isascii() else len(data.encode())
            self._text.append(data)
        else:
            self._size += len(data)
            self._binary.append(bytes(data))
        if self._size > self._max:
            self._text.clear()
            self._binary.clear()
            self._size = 0
            self.close(TOO_BIG, "message too big")
            events.append(Closing(TOO_BIG, "message too big"))
            return
        if finished:
            whole = "".join(self._text) if isinstance(data, str) else b"".join(self._binary)
            events.append(MessageReceived(whole, self._size))
            self._text.clear()
            self._binary.clear()
            self._size = 0

    def _on_close(self, event: CloseConnection, events: list[WebSocketEvent]) -> None:
        code, reason = int(event.code), event.reason or ""
        if self._ws.state is ConnectionState.OPEN:  # not a Close frame: the peer broke the rules
            self.close(code, reason)
        elif self._ws.state is ConnectionState.REMOTE_CLOSING:  # the peer closed first
            self._out.append(self._ws.send(event.response()))
        self.state = CLOSED
        events.append(Ended(code, reason))

    # -- out -------------------------------------------------------------------------
    def send_message(self, data: str | bytes) -> None:
        message = TextMessage(data) if isinstance(data, str) else BytesMessage(data)
        self._out.append(self._ws.send(message))

    def ping(self, payload: bytes) -> None:
        self._out.append(self._ws.send(Ping(payload)))

    def close(self, code: int, reason: str) -> None:
        """Send our Close; only an OPEN connection can."""
        if self.state == OPEN:
            self.state = CLOSING
            self._out.append(self._ws.send(CloseConnection(code, reason)))

    def data_to_send(self, *, pong: bool = True) -> bytes:
        """What to write now; ``pong=False`` keeps an owed pong while writing is paused."""
        if pong and self._pong_owed is not None and self._ws.state is ConnectionState.OPEN:
            self._out.append(self._ws.send(Pong(self._pong_owed)))
            self._pong_owed = None
        data = b"".join(self._out)
        self._out.clear()
        return data


# -- time, on the worker's clock -------------------------------------------------------
CLOSE_TIMEOUT_S = 10.0  # wait this long for the peer's Close (websockets' close_timeout)
NEXT_SWEEP = -1.0  # a deadline counted from the next ``now_s`` the sweep brings


class Due(enum.Enum):
    """What a sweep found due."""

    PING = "ping"  # time to ping the peer
    NO_PONG = "no pong"  # our last ping went unanswered for ping_timeout_s
    NO_CLOSE = "no close"  # the peer did not answer our Close within CLOSE_TIMEOUT_S


class Deadlines:
    """When to ping, and how long to wait for a pong or for the peer's Close.

    The worker's sweep calls ``due`` about once a second; a deadline armed between sweeps
    counts from the next one, so nobody but the worker reads a clock. Pings run only while
    the WebSocket is open: ``closing`` and ``stop`` disarm them. 0 means unarmed.
    """

    def __init__(self, ping_interval_s: float, ping_timeout_s: float) -> None:
        self._interval_s = ping_interval_s  # 0: never ping
        self._timeout_s = ping_timeout_s  # 0: wait for a pong forever
        self._ping_at = 0.0
        self._pong_by = 0.0
        self._close_by = 0.0

    def opened(self) -> None:
        """The handshake is done: the first ping is an interval after the next sweep."""
        if self._interval_s > 0:
            self._ping_at = NEXT_SWEEP

    def pong(self) -> None:
        self._pong_by = 0.0

    def closing(self) -> None:
        """We sent our Close: no more pings, and the peer's Close has CLOSE_TIMEOUT_S."""
        self._ping_at = self._pong_by = 0.0
        self._close_by = NEXT_SWEEP

    def stop(self) -> None:
        self._ping_at = self._pong_by = self._close_by = 0.0

    def due(self, now_s: float) -> Due | None:
        if self._close_by:
            if self._close_by == NEXT_SWEEP:
                self._close_by = now_s + CLOSE_TIMEOUT_S
            elif now_s >= self._close_by:
                self._close_by = 0.0
                return Due.NO_CLOSE
            return None
        if self._pong_by and now_s >= self._pong_by:
            return Due.NO_PONG
        if self._ping_at == NEXT_SWEEP:
            self._ping_at = now_s + self._interval_s
        elif self._ping_at and now_s >= self._ping_at:
            self._ping_at = now_s + self._interval_s
            if self._timeout_s > 0 and not self._pong_by:
                self._pong_by = now_s + self._timeout_s
            return Due.PING
        return None
