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

import re
from collections.abc import Callable

from hybridserve.config import Limits
from hybridserve.errors import ProtocolError, ResponseError
from hybridserve.sansio.events import Body, EndOfRequest, Event, Headers, Request
from hybridserve.sansio.parsers import ParserBackend, make_backend
from hybridserve.sansio.writer import Framing, build_head, header_line

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_MAYBE_FRAMING = re.compile(rb"(?i)\n(?:content-length|transfer-encoding)")
_FRAMING = re.compile(rb"\r\n(content-length|transfer-encoding)[ \t]*:([^\r\n]*)")
_REQUEST_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^ \x00-\x20\x7f]+ HTTP/[0-9]\.[0-9]\r")


def _connection_tokens(value: bytes) -> set[bytes]:
    return {token.strip().lower() for token in value.split(b",")}


TAIL_MAX_BYTES = 64 * 1024  # pipelined bytes kept for the raw checks of the next head


def _chunked_length(data: bytearray) -> int | None:
    """Wire length of a whole chunked body at the start of ``data``; None if unknown."""
    at = 0
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return None
        try:
            size = int(bytes(data[at:line_end]).split(b";", 1)[0].strip(), 16)
        except ValueError:
            return None
        at = line_end + 2
        if size == 0:
            break
        at += size + 2
    while True:  # trailer fields, then the empty line
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return None
        if line_end == at:
            return at + 2
        at = line_end + 2


def _check_framing(head: bytes) -> None:
    """Body framing as the raw (lower-cased) head says it, before a parser can normalize it.

    h11 folds repeated Content-Length lines into one, and llhttp answers an unknown
    coding with its own 400: seen here, both backends refuse the same way.
    """
    lengths = 0
    coding: bytes | None = None
    for name, value in _FRAMING.findall(head):
        if name == b"content-length":
            lengths += 1
            if lengths > 1 or not value.strip(b" \t").isdigit():
                raise ProtocolError("invalid or repeated Content-Length", 400)
        else:
            coding = value if coding is None else coding + b"," + value
    if coding is not None:
        version = head[head.find(b"\r\n") - 3 : head.find(b"\r\n")]
        _check_transfer_coding(coding, version, lengths)


def _check_transfer_coding(coding: bytes, version: bytes, lengths: int) -> None:
    """Only a lone ``chunked`` frames a request body (RFC 9112 §6.1): what smuggling needs
    (both lengths, other codings, chunked on HTTP/1.0) is refused."""
    if lengths:
        raise ProtocolError("both Transfer-Encoding and Content-Length", 400)
    if version != b"1.1":
        raise ProtocolError("Transfer-Encoding in an HTTP/1.0 request", 400)
    if coding.strip(b" \t").lower() != b"chunked":
        raise ProtocolError("unsupported Transfer-Encoding", 501)


class ServerConnection:
    """HTTP/1.1 server side of one connection: limits, keep-alive, pipelining, framing."""

    __slots__ = (
        "_backend",
        "_body_bytes",
        "_body_wire",
        "_continue_sent",
        "_deferred",
        "_framing",
        "_head",
        "_head_checked",
        "_keep_alive",
        "_limits",
        "_tail",
        "request",
        "request_complete",
        "response_complete",
        "response_started",
    )

    def __init__(self, limits: Limits, backend: str | ParserBackend = "auto") -> None:
        self._limits = limits
        if isinstance(backend, str):
            backend = make_backend(backend, limits.max_head_bytes)
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
        self._head = b""  # head bytes so far, until it is whole and checked
        self._head_checked = False
        # Raw bytes after this request's head (its body, then maybe the next request), so
        # a pipelined head gets the same raw checks as one that starts a read; None when
        # not tracked (a body too big to keep, or one whose wire length we can't tell).
        self._tail: bytearray | None = None
        self._body_wire: int | None = 0  # Content-Length; None for chunked
        self._deferred: ProtocolError | None = None  # a parser's refusal of a partial head

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
            if self.request is not None or self._head_checked:
                if self._tail is not None:
                    self._tail += data
                    if len(self._tail) > TAIL_MAX_BYTES:
                        self._tail = None
            else:
                self._check_head(data)
        return self._parsed(lambda: self._backend.feed(data), at_eof=not data)

    def next_cycle(self) -> list[Event]:
        """Start the next request on a kept-alive connection; returns its events so far."""
        if not (self.response_complete and self._keep_alive):
            raise RuntimeError("next_cycle() before a kept-alive response completed")
        tail, wire = self._tail, self._body_wire
        self._reset()
        start = None if tail is None else wire if wire is not None else _chunked_length(tail)
        if tail is None or start is None:
            self._head_checked = True  # untracked: this request relies on the parser's checks
        elif len(tail) > start:
            self._check_head(bytes(tail[start:]))  # what was pipelined behind the last one
        return self._parsed(self._backend.next_cycle, at_eof=False)

    def _parsed(self, parse: Callable[[], list[Event]], *, at_eof: bool) -> list[Event]:
        """Parser events, with the raw head checks always judged first.

        A parser may refuse a head before it is whole, depending on where the reads were
        cut; its error waits until the head is whole (or the client is gone), so the raw
        checks, which need the whole head, speak first whatever the cuts.
        """
        if self._deferred is not None:
            if self._head_checked or at_eof:
                raise self._deferred
            return []
        try:
            return self._check(parse())
        except ProtocolError as exc:
            if self._head_checked or at_eof or self.request is not None:
                raise
            self._deferred = exc
            return []

    def _check_head(self, data: bytes) -> None:
        """The rules both backends must keep, checked on the raw head as it arrives.

        A request line longer than the limit is answered 414 before it ends, so a huge line
        costs no more than the limit. Once the head is whole: a strict request line (one SP
        between parts, a version), CRLF line ends only, no obs-fold (RFC 9112 §2.2, §3,
        §5.2), no empty line before it. h11 alone lets bare LF and obs-fold through,
        llhttp alone lets double spaces and a missing version through. This runs once per
        request, so it keeps to a few C-level scans of the head (about 1 µs).
        """
        head = self._head + data if self._head else data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if head.count(b"\n") != head.count(b"\r\n"):
                raise ProtocolError("bare LF in the request head", 400)
            line_end = head.find(b"\n")
            if line_end < 0 and len(head) > self._limits.max_request_line_bytes:
                raise ProtocolError("request line too long", 414)
            if len(head) > self._limits.max_head_bytes:
                raise ProtocolError("request head too large", 431)
            self._head = head
            return
        self._head_checked = True
        self._head = b""
        stop = end + 2  # the head's last CRLF, not the empty line after it
        self._tail = bytearray(head[stop + 2 :]) if len(head) > stop + 2 else bytearray()
        if end > self._limits.max_head_bytes:
            raise ProtocolError("request head too large", 431)
        line_end = head.find(b"\r\n")
        if line_end > self._limits.max_request_line_bytes:
            raise ProtocolError("request line too long", 414)
        if _REQUEST_LINE.match(head, 0, line_end + 1) is None:
            raise ProtocolError("malformed request line", 400)
        if head.count(b"\n", 0, stop) != head.count(b"\r\n", 0, stop):
            raise ProtocolError("bare LF in the request head", 400)
        if head.find(b"\n ", 0, stop) >= 0 or head.find(b"\n\t", 0, stop) >= 0:
            raise ProtocolError("obs-fold in the request head", 400)
        # Framing headers in any letter case; most heads have neither, so look cheaply first.
        if _MAYBE_FRAMING.search(head, 0, stop) is not None:
            _check_framing(head[:stop].lower())

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
        line = len(request.method) + len(request.target) + 10
        if line > limits.max_request_line_bytes:
            raise ProtocolError("request line too long", 414)
        if len(request.headers) > limits.max_header_count:
            raise ProtocolError("too many header fields", 431)
        version = request.http_version
        if version != b"1.1" and version != b"1.0":
            raise ProtocolError("HTTP version not supported", 505)
        keep_alive = version == b"1.1"
        hosts = lengths = length = 0
        coding: bytes | None = None
        for name, value in request.headers:
            if len(name) + len(value) + 2 > limits.max_header_field_bytes:
                raise ProtocolError("header field too large", 431)
            if name == b"host":
                hosts += 1
            elif name == b"connection":
                tokens = _connection_tokens(value)
                if b"close" in tokens:
                    keep_alive = False
                elif b"keep-alive" in tokens and self._backend.http10_keep_alive:
                    keep_alive = True
                if b"upgrade" in tokens:
                    request.upgrade = b""
            elif name == b"te":
                request.accepts_trailers = b"trailers" in value.lower()
            elif name == b"expect":
                if value.lower() == b"100-continue" and request.http_version == b"1.1":
                    request.expect_continue = True
            elif name == b"content-length":
                lengths += 1
                if not value.isdigit() or lengths > 1:
                    raise ProtocolError("invalid or repeated Content-Length", 400)
                length = int(value)
                if limits.max_body_bytes and length > limits.max_body_bytes:
                    raise ProtocolError("request body too large", 413)
            elif name == b"transfer-encoding":
                coding = value if coding is None else coding + b"," + value
        self._body_wire = None if coding is not None else length
        if hosts > 1 or (hosts == 0 and version == b"1.1"):
            raise ProtocolError("exactly one Host header is required", 400)
        if coding is not None:
            _check_transfer_coding(coding, version, lengths)
        if request.upgrade is not None:
            request.upgrade = next(
                (v.strip().lower() for n, v in request.headers if n == b"upgrade"), None
            )
        request.keep_alive = keep_alive
        self.request = request
        self._keep_alive = keep_alive

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
