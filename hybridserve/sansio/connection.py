"""ServerConnection: the HTTP/1.1 state of one TCP connection, with no I/O.

How it works: ``receive(data)`` feeds the parser backend and returns the events of the
current request cycle, after applying our limits to them. A cycle ends when the response is
complete (``send_head``/``send_body(end=True)``); if the connection is kept alive,
``next_cycle()`` returns the events of whatever the client pipelined meanwhile. Requests
are therefore handed out strictly one at a time, and answered in order.

Keep-alive is decided here for every backend: the request must allow it, the response must
be framed (no close-delimited body), the whole request body must have arrived, and the
caller must not have asked to close (draining, max requests).
"""

from __future__ import annotations

from hybridserve.config_groups import Limits
from hybridserve.errors import ProtocolError, ResponseError
from hybridserve.sansio.chunked import ChunkedBody
from hybridserve.sansio.events import Body, EndOfRequest, Event, Headers, Request
from hybridserve.sansio.head_rules import (
    CHUNKED,
    check_head,
    check_partial,
    request_line,
    valid_host,
)
from hybridserve.sansio.parsers import ParserBackend, make_backend
from hybridserve.sansio.writer import Framing, build_head, header_line

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
HEAD, BODY, REST = range(3)  # what the next bytes of the current cycle are


def _connection_tokens(value: bytes) -> set[bytes]:
    return {token.strip().lower() for token in value.split(b",")}


def _authority_is_host(request: Request) -> None:
    """RFC 9112 §3.2.2: with an absolute-form target, its authority is the host, whatever
    the Host field says; the app reads the host from the Host field, so that is rewritten."""
    authority = request.target.split(b"://", 1)[1].partition(b"/")[0].partition(b"?")[0]
    request.headers = [
        (name, authority if name == b"host" else value) for name, value in request.headers
    ]


class ServerConnection:
    """HTTP/1.1 server side of one connection: limits, keep-alive, pipelining, framing.

    The backend sees one request at a time, and only once we judged it: a head when it is
    whole and passed ``head_rules``, then its body (chunked framing walked and made
    canonical by ``chunked``), never the bytes behind it. Those wait in ``_pending`` for
    ``next_cycle()``, where they are judged as if they had started a read. So where the
    reads were cut, and which backend runs, cannot change the answer.
    """

    __slots__ = (
        "_backend",
        "_body_bytes",
        "_body_left",
        "_chunks",
        "_continue_sent",
        "_framing",
        "_head",
        "_keep_alive",
        "_limits",
        "_method",
        "_pending",
        "_seen",
        "_seen_request",
        "_stage",
        "request",
        "request_complete",
        "response_complete",
        "response_started",
    )

    def __init__(self, limits: Limits, backend: str | ParserBackend = "auto") -> None:
        self._limits = limits
        if isinstance(backend, str):  # the backend's own head limit is a backstop only
            backend = make_backend(backend, limits.max_head_bytes + 4)
        self._backend = backend
        self._reset()

    def _reset(self) -> None:
        self.request: Request | None = None
        self.request_complete = False
        self.response_started = False
        self.response_complete = False
        self._framing: Framing | None = None
        self._keep_alive = False
        self._body_bytes = 0
        self._continue_sent = False
        self._stage = HEAD
        self._head = b""  # head bytes so far, until it is whole
        self._method: bytes | None = None  # the method, when the backend saw another one
        self._body_left = 0  # Content-Length bytes the backend is still owed
        self._chunks: ChunkedBody | None = None
        self._pending = b""  # bytes after this request: the next one, judged in its turn
        self._seen = b""  # a head refused before it became a Request, for the logs
        self._seen_request: Request | None = None  # the Request, even if we refused it

    @property
    def backend_name(self) -> str:
        return self._backend.name

    @property
    def keep_alive(self) -> bool:
        """Whether the connection stays open after the current response."""
        return self._keep_alive

    def receive(self, data: bytes) -> list[Event]:
        """Feed bytes from the client (``b""`` at EOF); raises ProtocolError on bad input."""
        if data:
            stage = self._stage
            if stage == REST:
                self._pending += data
                return []
            data = self._take_head(data) if stage == HEAD else self._take_body(data)
            if not data:
                return []
        return self._check(self._backend.feed(data))

    def next_cycle(self) -> list[Event]:
        """Start the next request on a kept-alive connection; returns its events so far."""
        if not (self.response_complete and self._keep_alive):
            raise RuntimeError("next_cycle() before a kept-alive response completed")
        pending = self._pending
        self._reset()
        events = self._check(self._backend.next_cycle())
        return events + self.receive(pending) if pending else events

    def _take_head(self, data: bytes) -> bytes:
        """Collect the head; once whole, judge it and return what the backend gets.

        Empty lines before the request line are dropped (RFC 9112 §2.2). A request line
        longer than its limit is refused before it ends, so it costs no more than that.
        """
        head = self._head + data if self._head else data
        if head.startswith(b"\r"):
            stripped = head.lstrip(b"\r\n")
            pairs = (len(head) - len(stripped)) // 2
            if head[: 2 * pairs] == b"\r\n" * pairs:
                head = head[2 * pairs :]
        end = head.find(b"\r\n\r\n")
        try:
            if end < 0:
                check_partial(head, self._limits)
                self._head = head
                return b""
            self._head = b""
            judged = check_head(head, end + 2, self._limits)
        except ProtocolError:
            self._seen = head
            raise
        self._method = judged.method if judged.rewritten_method else None
        self._stage = BODY
        limits = self._limits
        if limits.max_body_bytes and judged.body > limits.max_body_bytes:
            raise ProtocolError("request body too large", 413)
        if judged.body == CHUNKED:
            self._chunks = ChunkedBody(limits.max_header_field_bytes, limits.max_head_bytes)
        else:
            self._body_left = judged.body
        rest = head[end + 4 :]
        body = self._take_body(rest)
        if judged.data is None and body is rest:  # the read was this request and no more
            return head
        return (head[: end + 4] if judged.data is None else judged.data) + body

    def _take_body(self, data: bytes) -> bytes:
        """The part of ``data`` that is this request's body; the rest waits its turn."""
        chunks = self._chunks
        if chunks is not None:
            body, used = chunks.feed(data)
            if chunks.done:
                self._stage = REST
                self._pending = data[used:]
            return body
        left = self._body_left
        if len(data) < left:
            self._body_left = left - len(data)
            return data
        self._body_left = 0
        self._stage = REST
        self._pending = data[left:]
        return data[:left]

    def _check(self, events: list[Event]) -> list[Event]:
        limits = self._limits
        for event in events:
            kind = type(event)
            if kind is Body:
                self._body_bytes += len(event.data)  # type: ignore[union-attr]  # kind
                if limits.max_body_bytes and self._body_bytes > limits.max_body_bytes:
                    raise ProtocolError("request body too large", 413)
            elif kind is Request:
                self._accept_request(event)  # type: ignore[arg-type]  # kind
            elif kind is EndOfRequest:
                self.request_complete = True
        return events

    def _accept_request(self, request: Request) -> None:
        limits = self._limits
        self._seen_request = request
        if self._method is not None:
            request.method = self._method
        if len(request.headers) > limits.max_header_count:
            raise ProtocolError("too many header fields", 431)
        version = request.http_version
        if version != b"1.1" and version != b"1.0":
            raise ProtocolError("HTTP version not supported", 505)
        keep_alive = version == b"1.1"
        hosts = 0
        host = b""
        for name, value in request.headers:
            if len(name) + len(value) + 2 > limits.max_header_field_bytes:
                raise ProtocolError("header field too large", 431)
            if name == b"host":
                hosts += 1
                host = value
            elif name == b"connection":
                keep_alive = self._connection_field(request, value, keep_alive)
            elif name == b"te":
                request.accepts_trailers = b"trailers" in value.lower()
            elif name == b"expect" and version == b"1.1":
                request.expect_continue = value.lower() == b"100-continue"
        if hosts > 1 or (hosts == 0 and version == b"1.1"):
            raise ProtocolError("exactly one Host header is required", 400)
        if host and not valid_host(host):  # RFC 9110 §7.2: uri-host [":" port]
            raise ProtocolError("invalid Host header", 400)
        if request.target[:1] != b"/" and b"://" in request.target:
            _authority_is_host(request)
        if request.upgrade is not None:
            request.upgrade = next(
                (v.strip().lower() for n, v in request.headers if n == b"upgrade"), None
            )
        request.keep_alive = keep_alive
        self.request = request
        self._keep_alive = keep_alive

    def _connection_field(self, request: Request, value: bytes, keep_alive: bool) -> bool:
        """The keep-alive a Connection field leaves (``close`` wins; ``keep-alive`` counts
        for HTTP/1.0 where the backend honours it), and whether it announces an upgrade."""
        tokens = _connection_tokens(value)
        if b"upgrade" in tokens:
            request.upgrade = b""
        if b"close" in tokens:
            return False
        if b"keep-alive" in tokens and self._backend.http10_keep_alive:
            return True
        return keep_alive

    def refused_request(self) -> Request:
        """What the access log may show of a request refused before an app saw it.

        Its parsed head if it got that far, else its request line if that one was well
        formed (tokens and visible ASCII only), else ``-`` for each part.
        """
        if self._seen_request is not None:
            return self._seen_request
        parts = request_line(self._seen)
        method, target, version = parts if parts is not None else (b"-", b"-", b"-")
        return Request(
            method=method, target=target, http_version=version, headers=[], keep_alive=False
        )

    def continue_bytes(self) -> bytes:
        """``100 Continue`` if the client waits for it and it is still useful, else ``b""``."""
        request = self.request
        if (
            request is None
            or not request.expect_continue
            or self._continue_sent
            or self.response_started
            or self.request_complete
        ):
            return b""
        self._continue_sent = True
        return CONTINUE

    def send_head(
        self,
        status: int,
        headers: Headers,
        *,
        body: bytes = b"",
        end: bool = False,
        close: bool = False,
        date_line: bytes,
        server_line: bytes = b"",
    ) -> bytes:
        """Bytes of the response head, plus ``body`` (and the end of it when ``end``)."""
        request = self.request
        if request is None or self.response_started:
            raise ResponseError("response started twice")
        keep_alive = self._keep_alive and not close
        if request.expect_continue and not self._continue_sent and not self.request_complete:
            keep_alive = False  # the body never sent would be read as the next request
        head, framing, keep_alive = build_head(
            status,
            headers,
            method=request.method,
            http_version=request.http_version,
            keep_alive=keep_alive,
            body_length=len(body) if end else None,
            date_line=date_line,
            server_line=server_line,
        )
        self.response_started = True
        self._framing = framing
        self._keep_alive = keep_alive
        if body or end:
            return head + self.send_body(body, end=end)
        return head

    def send_body(self, data: bytes, *, end: bool = False) -> bytes:
        """Framed body bytes; ``end`` completes the response."""
        framing = self._framing
        if framing is None or self.response_complete:
            raise ResponseError("body sent outside a response")
        out = framing.frame(data) if data else b""
        if end:
            out += framing.end()
            self.response_complete = True
            if not self.request_complete:
                self._keep_alive = False  # unread body bytes would look like a request
        return out

    def send_file_body(self, length: int) -> bool:
        """Count ``length`` body bytes the caller writes itself (a file, by sendfile).

        Returns False when the response has no body (HEAD, 304): send none. The caller
        ends the response with ``send_body(b"", end=True)`` once the bytes are out.
        """
        framing = self._framing
        if framing is not None and framing.no_body and not self.response_complete:
            return False
        if framing is None or self.response_complete or framing.remaining is None:
            raise ResponseError("a file body needs a response with a Content-Length")
        if framing.remaining != length:
            raise ResponseError(f"file body of {length} bytes; Content-Length disagrees")
        framing.remaining = 0
        return True

    def send_trailers(self, trailers: Headers) -> bytes:
        """End a chunked response with trailer fields (dropped if it is not chunked)."""
        framing = self._framing
        if framing is None or self.response_complete:
            raise ResponseError("trailers sent outside a response")
        if not framing.chunked or framing.no_body:
            return self.send_body(b"", end=True)
        lines = b"".join(header_line(name, value)[0] for name, value in trailers)
        self.response_complete = True
        if not self.request_complete:
            self._keep_alive = False
        return b"0\r\n" + lines + b"\r\n"

    def abandon(self) -> None:
        """The response cannot be completed; the connection must close."""
        self._keep_alive = False
        self.response_complete = True
