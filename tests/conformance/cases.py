"""RFC 9112 / RFC 9110 conformance cases: raw bytes in, the outcome a client must see.

Each case is data: the bytes (a tuple means separate sends, with a short pause between),
and what must happen. ``statuses`` are the final statuses in order; ``closed`` says the
server must close the connection after them; ``body`` is what the demo app's ``/echo``
reports it read as the body of the first request. A ``reject`` case must get an error (the
given status, else any 4xx), no 2xx at all, and a closed connection: nothing after the error is
served. Every case cites the section it follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

H = "Host: t\r\n"


@dataclass(frozen=True)
class Case:
    name: str
    rfc: str
    data: bytes | tuple[bytes, ...]
    statuses: tuple[int, ...] = ()
    reject: int | None = None  # 0: any 4xx
    closed: bool | None = None
    body: str | None = None
    per_backend: dict[str, tuple[int, ...]] = field(default_factory=dict)
    eof: bool = False  # the client closes its side after sending (an aborted request)
    method: str | None = None  # the method the app sees in the first request
    header: tuple[str, str] | None = None  # a (name, value) the app sees in the first request

    @property
    def parts(self) -> tuple[bytes, ...]:
        return self.data if isinstance(self.data, tuple) else (self.data,)


def req(head: str, body: bytes = b"") -> bytes:
    return head.encode("latin-1") + b"\r\n" + body


def post(headers: str, body: bytes) -> bytes:
    return req(f"POST /echo HTTP/1.1\r\n{H}{headers}", body)


GET = req(f"GET / HTTP/1.1\r\n{H}")
CHUNKED = "Transfer-Encoding: chunked\r\n"

CASES: list[Case] = [
    # -- message framing: Content-Length (RFC 9112 §6.3, RFC 9110 §8.6) -----------------
    Case(
        "content-length body",
        "RFC 9112 §6.3 (5)",
        post("Content-Length: 5\r\n", b"hello"),
        (200,),
        body="hello",
    ),
    Case(
        "content-length zero",
        "RFC 9112 §6.3 (5)",
        post("Content-Length: 0\r\n", b""),
        (200,),
        body="",
    ),
    Case("no length means no body", "RFC 9112 §6.3 (6)", post("", b"") + GET, (200, 200), body=""),
    Case(
        "duplicate equal content-length",
        "RFC 9110 §8.6",
        post("Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
        reject=400,
    ),
    Case(
        "conflicting content-length",
        "RFC 9112 §6.3 (5)",
        post("Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"),
        reject=400,
    ),
    Case(
        "content-length list",
        "RFC 9112 §6.3 (5)",
        post("Content-Length: 5, 5\r\n", b"hello"),
        reject=400,
    ),
    Case(
        "negative content-length", "RFC 9110 §8.6", post("Content-Length: -5\r\n", b""), reject=400
    ),
    Case(
        "plus-signed content-length",
        "RFC 9110 §8.6",
        post("Content-Length: +5\r\n", b"hello"),
        reject=400,
    ),
    Case(
        "hex content-length", "RFC 9110 §8.6", post("Content-Length: 0x5\r\n", b"hello"), reject=400
    ),
    Case(
        "content-length with inner space",
        "RFC 9110 §8.6",
        post("Content-Length: 1 2\r\n", b"x" * 12),
        reject=400,
    ),
    Case(
        "content-length overflow",
        "RFC 9110 §8.6",
        post("Content-Length: 99999999999999999999999\r\n", b""),
        reject=0,
    ),
    Case(
        "content-length letters", "RFC 9110 §8.6", post("Content-Length: five\r\n", b""), reject=400
    ),
    Case("empty content-length", "RFC 9110 §8.6", post("Content-Length: \r\n", b""), reject=400),
    Case(
        "body shorter than content-length then close",
        "RFC 9112 §8",
        post("Content-Length: 10\r\n", b"short"),
        statuses=(),
        closed=True,
        eof=True,
    ),
    Case(
        "body longer than content-length is the next request",
        "RFC 9112 §6.3 (5)",
        post("Content-Length: 3\r\n", b"abcGET / HTTP/1.1\r\nHost: t\r\n\r\n"),
        (200, 200),
        body="abc",
    ),
    # -- chunked (RFC 9112 §7.1) --------------------------------------------------------
    Case(
        "chunked body",
        "RFC 9112 §7.1",
        post(CHUNKED, b"5\r\nhello\r\n0\r\n\r\n"),
        (200,),
        body="hello",
    ),
    Case(
        "chunked in several chunks",
        "RFC 9112 §7.1",
        post(CHUNKED, b"2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"),
        (200,),
        body="hello",
    ),
    Case(
        "chunk size in upper-case hex",
        "RFC 9112 §7.1",
        post(CHUNKED, b"A\r\n0123456789\r\n0\r\n\r\n"),
        (200,),
        body="0123456789",
    ),
    Case(
        "chunk size with leading zeros",
        "RFC 9112 §7.1",
        post(CHUNKED, b"005\r\nhello\r\n0\r\n\r\n"),
        (200,),
        body="hello",
    ),
    Case(
        "chunk extension accepted",
        "RFC 9112 §7.1.1",
        post(CHUNKED, b"5;name=value\r\nhello\r\n0\r\n\r\n"),
        (200,),
        body="hello",
    ),
    Case(
        "quoted chunk extension accepted",
        "RFC 9112 §7.1.1",
        post(CHUNKED, b'5;name="v a"\r\nhello\r\n0\r\n\r\n'),
        (200,),
        body="hello",
    ),
    Case(
        "trailer fields accepted",
        "RFC 9112 §7.1.2",
        post(CHUNKED, b"5\r\nhello\r\n0\r\nX-Trailer: yes\r\n\r\n"),
        (200,),
        body="hello",
    ),
    Case(
        "non-hex chunk size", "RFC 9112 §7.1", post(CHUNKED, b"g\r\nhello\r\n0\r\n\r\n"), reject=400
    ),
    Case(
        "negative chunk size",
        "RFC 9112 §7.1",
        post(CHUNKED, b"-5\r\nhello\r\n0\r\n\r\n"),
        reject=400,
    ),
    Case(
        "chunk size overflow",
        "RFC 9112 §7.1",
        post(CHUNKED, b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
        reject=400,
    ),
    Case(
        "chunk data longer than its size",
        "RFC 9112 §7.1",
        post(CHUNKED, b"3\r\nhello\r\n0\r\n\r\n"),
        reject=400,
    ),
    Case(
        "chunk without CRLF after data",
        "RFC 9112 §7.1",
        post(CHUNKED, b"5\r\nhelloXX0\r\n\r\n"),
        reject=400,
    ),
    Case(
        "chunk size with bare LF",
        "RFC 9112 §7.1 (CVE-2025-43859)",
        post(CHUNKED, b"5\nhello\r\n0\r\n\r\n"),
        reject=400,
    ),
    Case(
        "chunk data ending in bare LF",
        "RFC 9112 §7.1 (CVE-2025-43859)",
        post(CHUNKED, b"5\r\nhello\n0\r\n\r\n"),
        reject=400,
    ),
    Case(
        "missing last chunk then close",
        "RFC 9112 §8",
        post(CHUNKED, b"5\r\nhello\r\n"),
        statuses=(),
        closed=True,
        eof=True,
    ),
    Case(
        "chunked split in every piece",
        "RFC 9112 §7.1",
        (post(CHUNKED, b"5\r\nhe"), b"llo\r", b"\n0\r\n", b"\r\n"),
        (200,),
        body="hello",
    ),
    # -- Transfer-Encoding and Content-Length together, and other codings (§6.1) --------
    Case(
        "te and cl together",
        "RFC 9112 §6.1",
        post("Content-Length: 3\r\n" + CHUNKED, b"5\r\nhello\r\n0\r\n\r\n"),
        reject=400,
    ),
    Case(
        "cl and te together (other order)",
        "RFC 9112 §6.1",
        post(CHUNKED + "Content-Length: 30\r\n", b"5\r\nhello\r\n0\r\n\r\nGET /smuggled"),
        reject=400,
    ),
    Case(
        "transfer-encoding gzip only",
        "RFC 9112 §6.1",
        post("Transfer-Encoding: gzip\r\n", b"hello"),
        reject=501,
    ),
    Case(
        "chunked not last",
        "RFC 9112 §6.1",
        post("Transfer-Encoding: chunked, gzip\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
        reject=501,
    ),
    Case(
        "transfer-encoding identity",
        "RFC 9112 §6.1",
        post("Transfer-Encoding: identity\r\n", b"hello"),
        reject=501,
    ),
    Case(
        "chunked twice",
        "RFC 9112 §6.1",
        post("Transfer-Encoding: chunked, chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
        reject=501,
    ),
    Case(
        "transfer-encoding with junk token",
        "RFC 9112 §6.1",
        post("Transfer-Encoding: xchunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
        reject=501,
    ),
    Case(
        "transfer-encoding on HTTP/1.0",
        "RFC 9112 §6.1",
        req("POST /echo HTTP/1.0\r\n" + CHUNKED, b"5\r\nhello\r\n0\r\n\r\n"),
        reject=400,
    ),
    Case(
        "transfer-encoding with space before colon",
        "RFC 9112 §5.1",
        post("Transfer-Encoding : chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
        reject=400,
    ),
    # -- line endings and control bytes (RFC 9112 §2.2, RFC 9110 §5.5) ------------------
    Case("bare LF line endings", "RFC 9112 §2.2", b"GET / HTTP/1.1\nHost: t\n\n", reject=400),
    Case(
        "bare CR in request line",
        "RFC 9112 §2.2",
        b"GET /\r HTTP/1.1\r\nHost: t\r\n\r\n",
        reject=400,
    ),
    Case(
        "bare CR in a header value",
        "RFC 9112 §2.2",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n",
        reject=400,
    ),
    Case(
        "NUL in a header value",
        "RFC 9110 §5.5",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n",
        reject=400,
    ),
    Case(
        "NUL in the target", "RFC 9112 §3.2", b"GET /a\x00b HTTP/1.1\r\nHost: t\r\n\r\n", reject=400
    ),
    Case(
        "control byte in a header name",
        "RFC 9110 §5.1",
        b"GET / HTTP/1.1\r\nHost: t\r\nX\x01A: b\r\n\r\n",
        reject=400,
    ),
    Case(
        "escape byte in a header value",
        "RFC 9110 §5.5",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: \x1b[31m\r\n\r\n",
        reject=400,
    ),
    Case(
        "obs-text in a header value accepted",
        "RFC 9110 §5.5",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: caf\xe9\r\n\r\n",
        (200,),
    ),
    Case(
        "tab in a header value accepted",
        "RFC 9110 §5.5",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\tb\r\n\r\n",
        (200,),
    ),
    Case(
        "whitespace before the colon",
        "RFC 9112 §5.1",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A : b\r\n\r\n",
        reject=400,
    ),
    Case(
        "empty header name",
        "RFC 9110 §5.1",
        b"GET / HTTP/1.1\r\nHost: t\r\n: b\r\n\r\n",
        reject=400,
    ),
    Case(
        "header line without colon",
        "RFC 9112 §5",
        b"GET / HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n",
        reject=400,
    ),
    Case(
        "obs-fold",
        "RFC 9112 §5.2",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n",
        reject=400,
    ),
    Case(
        "whitespace line before first header",
        "RFC 9112 §2.2",
        b"GET / HTTP/1.1\r\n X-A: b\r\nHost: t\r\n\r\n",
        reject=400,
    ),
    # -- Host (RFC 9112 §3.2) -------------------------------------------------------------
    Case("missing host on HTTP/1.1", "RFC 9112 §3.2", b"GET / HTTP/1.1\r\n\r\n", reject=400),
    Case(
        "two host headers",
        "RFC 9112 §3.2",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        reject=400,
    ),
    Case(
        "missing host on HTTP/1.0 is fine",
        "RFC 9112 §3.2",
        b"GET / HTTP/1.0\r\n\r\n",
        (200,),
        closed=True,
    ),
    Case("empty host value", "RFC 9112 §3.2", b"GET / HTTP/1.1\r\nHost:\r\n\r\n", (200,)),
    # -- request line: method, target, version (RFC 9112 §3) -----------------------------
    Case(
        "lower-case method is another method",
        "RFC 9110 §9.1",
        b"get /echo HTTP/1.1\r\nHost: t\r\n\r\n",
        (200,),
        method="get",
    ),
    Case(
        "method with invalid byte",
        "RFC 9112 §3.1",
        b"G(T / HTTP/1.1\r\nHost: t\r\n\r\n",
        reject=400,
    ),
    Case(
        "two spaces after method", "RFC 9112 §3", b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n", reject=400
    ),
    Case("missing version", "RFC 9112 §3", b"GET /\r\nHost: t\r\n\r\n", reject=400),
    Case(
        "HTTP/2.0 on an HTTP/1 connection",
        "RFC 9112 §2.3",
        b"GET / HTTP/2.0\r\nHost: t\r\n\r\n",
        reject=505,
    ),
    Case("garbage version", "RFC 9112 §2.3", b"GET / HTTP/x.y\r\nHost: t\r\n\r\n", reject=400),
    Case(
        "lower-case protocol name",
        "RFC 9112 §2.3",
        b"GET / http/1.1\r\nHost: t\r\n\r\n",
        reject=400,
    ),
    Case(
        "absolute-form target",
        "RFC 9112 §3.2.2",
        b"GET http://t/echo?x=1 HTTP/1.1\r\nHost: t\r\n\r\n",
        (200,),
    ),
    Case(
        "asterisk-form OPTIONS", "RFC 9112 §3.2.4", b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", (404,)
    ),
    Case(
        "target with a space", "RFC 9112 §3.2", b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n", reject=400
    ),
    Case(
        "leading empty line ignored",
        "RFC 9112 §2.2",
        b"\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
        (200,),
    ),
    Case(
        "request line too long",
        "RFC 9112 §3 (--limit-request-line)",
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
        reject=414,
    ),
    Case(
        "request line too long, in pieces",
        "RFC 9112 §3 (--limit-request-line)",
        (b"GET /" + b"a" * 5000, b"a" * 5000, b" HTTP/1.1\r\nHost: t\r\n\r\n"),
        reject=414,
    ),
    Case(
        "too many header fields",
        "RFC 6585 §5 (--limit-request-fields)",
        b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X-A: b\r\n" * 101 + b"\r\n",
        reject=431,
    ),
    Case(
        "header field too large",
        "RFC 6585 §5 (--limit-request-field-size)",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: " + b"b" * 9000 + b"\r\n\r\n",
        reject=431,
    ),
    Case(
        "whole head too large",
        "RFC 6585 §5 (--limit-request-head)",
        b"GET / HTTP/1.1\r\nHost: t\r\n"
        + b"X-A: "
        + b"b" * 8000
        + b"\r\n" * 1
        + (b"X-B: " + b"c" * 8000 + b"\r\n") * 9
        + b"\r\n",
        reject=431,
    ),
    # -- keep-alive and pipelining (RFC 9112 §9) -----------------------------------------
    Case("keep-alive by default on 1.1", "RFC 9112 §9.3", GET + GET, (200, 200)),
    Case(
        "connection close honoured",
        "RFC 9112 §9.6",
        req(f"GET / HTTP/1.1\r\n{H}Connection: close\r\n") + GET,
        (200,),
        closed=True,
    ),
    Case(
        "pipelined requests answered in order",
        "RFC 9112 §9.3.2",
        req(f"GET /status/201 HTTP/1.1\r\n{H}")
        + req(f"GET /status/202 HTTP/1.1\r\n{H}")
        + req(f"GET /status/203 HTTP/1.1\r\n{H}"),
        (201, 202, 203),
    ),
    Case(
        "pipelining after an error stops",
        "RFC 9112 §9.3.2",
        b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n" + GET,
        reject=400,
    ),
    Case(
        "pipelined post then get",
        "RFC 9112 §9.3.2",
        post("Content-Length: 3\r\n", b"abc") + GET,
        (200, 200),
        body="abc",
    ),
    Case(
        "request split byte by byte",
        "RFC 9112 §2.1",
        tuple(bytes([b]) for b in b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"),
        (200,),
    ),
    Case(
        "HTTP/1.0 closes by default",
        "RFC 9112 §9.3",
        b"GET / HTTP/1.0\r\n\r\n" + GET,
        (200,),
        closed=True,
    ),
    Case(
        "HTTP/1.0 keep-alive",
        "RFC 9112 §C.2.2 (optional)",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + b"GET / HTTP/1.0\r\n\r\n",
        per_backend={"h11": (200,), "httptools": (200, 200)},
        closed=True,
    ),
    Case(
        "connection header token list",
        "RFC 9110 §7.6.1",
        req(f"GET / HTTP/1.1\r\n{H}Connection: foo, close\r\n") + GET,
        (200,),
        closed=True,
    ),
    # -- Expect (RFC 9110 §10.1.1) --------------------------------------------------------
    Case(
        "expect 100-continue",
        "RFC 9110 §10.1.1",
        (post("Content-Length: 5\r\nExpect: 100-continue\r\n", b""), b"hello"),
        (200,),
        body="hello",
    ),
    Case(
        "unknown expectation ignored or refused",
        "RFC 9110 §10.1.1",
        post("Content-Length: 5\r\nExpect: something\r\n", b"hello"),
        (200,),
    ),
    # -- methods and bodies ---------------------------------------------------------------
    Case("HEAD has no body", "RFC 9110 §9.3.2", req(f"HEAD / HTTP/1.1\r\n{H}") + GET, (200, 200)),
    Case(
        "GET with a body is read, not a new request",
        "RFC 9110 §9.3.1",
        req(f"GET /echo HTTP/1.1\r\n{H}Content-Length: 5\r\n", b"hello") + GET,
        (200, 200),
        body="hello",
    ),
    Case(
        "unknown method reaches the app",
        "RFC 9110 §9.1",
        b"PURGE /status/204 HTTP/1.1\r\nHost: t\r\n\r\n",
        (204,),
    ),
]
