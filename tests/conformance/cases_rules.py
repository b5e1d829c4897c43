"""More RFC 9112 / RFC 9110 cases, one group per rule of issue #11, and the whole list.

``ALL_CASES`` is what both runners use: ``cases.CASES`` (framing, line endings, limits,
keep-alive) plus these (request-target forms, Host, versions, lists, field values, chunk
extensions, methods, empty lines, and heads behind big bodies).
"""

from __future__ import annotations

from tests.conformance.cases import CASES, CHUNKED, GET, Case, H, post, req


def line(request_line: str, headers: str = H) -> bytes:
    """A body-less request: ``request_line`` then ``headers`` (each ending in CRLF)."""
    return req(f"{request_line}\r\n{headers}")


def get_host(value: str) -> bytes:
    return req(f"GET / HTTP/1.1\r\nHost: {value}\r\n")


def chunked(body: bytes) -> bytes:
    return post(CHUNKED, body)


def echo_header(raw: str) -> bytes:
    return req(f"GET /echo HTTP/1.1\r\n{H}{raw}\r\n")


def head_of(size: int) -> bytes:
    """A GET head whose bytes before the final CRLF CRLF number exactly ``size``."""
    fields = H
    while len(fields) < size - 14:  # 16 bytes of request line, less the last CRLF
        fill = min(1000, size - 14 - len(fields) - 8) - 7  # "X-F: " and the CRLF
        fields += f"X-F: {'v' * max(fill, 1)}\r\n"
    return line("GET / HTTP/1.1", fields)


def line_of(size: int) -> bytes:
    """A GET whose request line (before its CRLF) is ``size`` bytes long (a 404 path)."""
    return line("GET /" + "a" * (size - 14) + " HTTP/1.1")


T = "RFC 9112 §3.2"
T_ABS = "RFC 9112 §3.2.2"
HOST = "RFC 9110 §7.2"
EXT = "RFC 9112 §7.1.1"
HELLO = b"5\r\nhello\r\n0\r\n\r\n"
BIG = b"x" * 100_000
FIELDS_40K = "".join(f"X-F{i}: {'v' * 4000}\r\n" for i in range(10))

TARGETS = [
    Case("asterisk-form with GET", "RFC 9112 §3.2.4", line("GET * HTTP/1.1"), reject=400),
    Case("asterisk-form with HEAD", "RFC 9112 §3.2.4", line("HEAD * HTTP/1.1"), reject=400),
    Case("asterisk then a slash", "RFC 9112 §3.2.4", line("OPTIONS */ HTTP/1.1"), reject=400),
    Case(
        "asterisk-form on HTTP/1.0",
        "RFC 9112 §3.2.4",
        line("OPTIONS * HTTP/1.0", ""),
        (404,),
        closed=True,
    ),
    Case("origin-form needs a slash", "RFC 9112 §3.2.1", line("GET foo/bar HTTP/1.1"), reject=400),
    Case("relative path target", "RFC 9112 §3.2.1", line("GET ./echo HTTP/1.1"), reject=400),
    Case("query-only target", "RFC 9112 §3.2.1", line("GET ?x=1 HTTP/1.1"), reject=400),
    Case("fragment in origin-form", T, line("GET /echo#frag HTTP/1.1"), reject=400),
    Case("fragment after a query", T, line("GET /echo?a=1#f HTTP/1.1"), reject=400),
    Case("fragment in absolute-form", T_ABS, line("GET http://t/echo#f HTTP/1.1"), reject=400),
    Case(
        "userinfo in absolute-form",
        "RFC 9110 §4.2.4",
        line("GET http://user:pw@t/echo HTTP/1.1"),
        reject=400,
    ),
    Case("absolute-form without authority", T_ABS, line("GET http:/echo HTTP/1.1"), reject=400),
    Case("absolute-form, opaque", T_ABS, line("GET http:echo HTTP/1.1"), reject=400),
    Case(
        "absolute-form with empty host",
        "RFC 9110 §4.2.1",
        line("GET http:///echo HTTP/1.1"),
        reject=400,
    ),
    Case("bracket in the host part", T_ABS, line("GET http://t[/echo HTTP/1.1"), reject=400),
    Case("bad IPv6 literal in target", T_ABS, line("GET http://[::g]/ HTTP/1.1"), reject=400),
    Case("invalid scheme character", T_ABS, line("GET ht_tp://t/ HTTP/1.1"), reject=400),
    Case("absolute-form with a port", T_ABS, line("GET http://t:8080/echo HTTP/1.1"), (200,)),
    Case("absolute-form with IPv6", T_ABS, line("GET http://[::1]:80/echo HTTP/1.1"), (200,)),
    Case("absolute-form https", T_ABS, line("GET https://t/echo?q=1 HTTP/1.1"), (200,)),
    Case("absolute-form upper-case scheme", T_ABS, line("GET HTTP://t/echo HTTP/1.1"), (200,)),
    Case(
        "absolute-form authority wins over Host",
        T_ABS,
        line("GET http://other.example:8080/echo?q HTTP/1.1"),
        (200,),
        header=("host", "other.example:8080"),
    ),
    Case(
        "absolute-form without a path",
        T_ABS,
        line("GET http://other.example?q=1 HTTP/1.1"),
        (200,),
    ),
    Case(
        "authority-form outside CONNECT", "RFC 9112 §3.2.3", line("GET t:80 HTTP/1.1"), reject=400
    ),
    Case(
        "CONNECT is refused by an origin server",
        "RFC 9110 §9.3.6",
        line("CONNECT t:443 HTTP/1.1", "Host: t:443\r\n"),
        reject=501,
    ),
    Case("CONNECT with origin-form", "RFC 9112 §3.2.3", line("CONNECT / HTTP/1.1"), reject=400),
    Case("CONNECT without a port", "RFC 9112 §3.2.3", line("CONNECT t HTTP/1.1"), reject=400),
    Case("malformed percent-encoding", "RFC 3986 §2.1", line("GET /a%zz HTTP/1.1"), reject=400),
    Case("truncated percent-encoding", "RFC 3986 §2.1", line("GET /a%2 HTTP/1.1"), reject=400),
    Case("percent-encoding accepted", "RFC 3986 §2.1", line("GET /a%20b HTTP/1.1"), (404,)),
    Case("empty path segments", "RFC 9112 §3.2.1", line("GET //echo HTTP/1.1"), (404,)),
    Case("colon in a path", "RFC 3986 §3.3", line("PUT /: HTTP/1.1"), (404,)),
    Case("slash and ? in a query", "RFC 3986 §3.4", line("GET /echo?a=/?b HTTP/1.1"), (200,)),
    Case(
        "non-ASCII byte in the target", T, b"GET /caf\xe9 HTTP/1.1\r\nHost: t\r\n\r\n", reject=400
    ),
    Case("DEL in the target", T, b"GET /a\x7fb HTTP/1.1\r\nHost: t\r\n\r\n", reject=400),
    Case("tab in the target", T, b"GET /a\tb HTTP/1.1\r\nHost: t\r\n\r\n", reject=400),
]

HOSTS = [
    Case("host with a space", HOST, get_host("a b"), reject=400),
    Case("host with a slash", HOST, get_host("t/x"), reject=400),
    Case("host with a tab inside", HOST, get_host("a\tb"), reject=400),
    Case("host with userinfo", HOST, get_host("u@t"), reject=400),
    Case("host with a letter port", HOST, get_host("t:ab"), reject=400),
    Case("host with two ports", HOST, get_host("t:1:2"), reject=400),
    Case("IPv6 host without brackets", HOST, get_host("::1"), reject=400),
    Case("bad IPv6 literal host", HOST, get_host("[::x]"), reject=400),
    Case("bracket in a reg-name host", HOST, get_host("t[1]"), reject=400),
    Case("host with a port", HOST, get_host("t:8080"), (200,)),
    Case("host with an empty port", HOST, get_host("t:"), (200,)),
    Case("IPv6 literal host", HOST, get_host("[::1]:8000"), (200,)),
    Case("IPvFuture host", HOST, get_host("[v1.x]"), (200,)),
    Case("IPv4 host", HOST, get_host("127.0.0.1:80"), (200,)),
    Case("percent-encoded host", HOST, get_host("t%41"), (200,)),
    Case("host with trailing whitespace", "RFC 9110 §5.5", get_host("t \t"), (200,)),
    Case(
        "absolute-form still needs Host on 1.1",
        "RFC 9112 §3.2",
        line("GET http://t/echo HTTP/1.1", ""),
        reject=400,
    ),
]

VERSIONS = [
    Case("HTTP/1.2 is served as 1.1", "RFC 9112 §2.3", line("GET / HTTP/1.2") + GET, (200, 200)),
    Case("HTTP/1.9 is served as 1.1", "RFC 9112 §2.3", line("GET / HTTP/1.9"), (200,)),
    Case(
        "HTTP/1.2 chunked body",
        "RFC 9112 §2.3",
        req(f"POST /echo HTTP/1.2\r\n{H}{CHUNKED}", HELLO),
        (200,),
        body="hello",
    ),
    Case("HTTP/3.0 in a request line", "RFC 9112 §2.3", line("GET / HTTP/3.0"), reject=505),
    Case("HTTP/2.1 in a request line", "RFC 9112 §2.3", line("GET / HTTP/2.1"), reject=505),
    Case("HTTP/0.9 version string", "RFC 9112 §2.3", line("GET / HTTP/0.9"), reject=505),
    Case("two-digit minor version", "RFC 9112 §2.3", line("GET / HTTP/1.10"), reject=400),
    Case("version without minor", "RFC 9112 §2.3", line("GET / HTTP/1"), reject=400),
]

LISTS = [
    Case(
        "empty element before chunked",
        "RFC 9110 §5.6.1",
        post("Transfer-Encoding: , chunked\r\n", HELLO),
        (200,),
        body="hello",
    ),
    Case(
        "empty elements around chunked",
        "RFC 9110 §5.6.1",
        post("Transfer-Encoding: ,,chunked,\r\n", HELLO),
        (200,),
        body="hello",
    ),
    Case(
        "OWS around chunked",
        "RFC 9110 §5.6.1",
        post("Transfer-Encoding: \t chunked \t\r\n", HELLO),
        (200,),
        body="hello",
    ),
    Case(
        "chunked in capitals",
        "RFC 9112 §7",
        post("Transfer-Encoding: CHUNKED\r\n", HELLO),
        (200,),
        body="hello",
    ),
    Case(
        "empty transfer-encoding line then chunked",
        "RFC 9110 §5.6.1",
        post("Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n", HELLO),
        (200,),
        body="hello",
    ),
    Case(
        "transfer-encoding in two lines",
        "RFC 9112 §6.1",
        post("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", HELLO),
        reject=501,
    ),
    Case(
        "only empty transfer-encoding elements",
        "RFC 9112 §6.1",
        post("Transfer-Encoding: ,\r\n", HELLO),
        reject=501,
    ),
    Case(
        "OWS around content-length",
        "RFC 9110 §5.6.1",
        post("Content-Length: \t5 \t\r\n", b"hello"),
        (200,),
        body="hello",
    ),
    Case(
        "connection list with empty elements",
        "RFC 9110 §5.6.1",
        line("GET / HTTP/1.1", f"{H}Connection: , close,\r\n") + GET,
        (200,),
        closed=True,
    ),
    Case(
        "connection in two lines",
        "RFC 9110 §5.3",
        line("GET / HTTP/1.1", f"{H}Connection: foo\r\nConnection: close\r\n") + GET,
        (200,),
        closed=True,
    ),
]

VALUES = [
    Case(
        "trailing spaces are not the value",
        "RFC 9110 §5.5",
        echo_header("X-A: b  "),
        (200,),
        header=("x-a", "b"),
    ),
    Case(
        "trailing tabs are not the value",
        "RFC 9110 §5.5",
        echo_header("X-A: b\t\t"),
        (200,),
        header=("x-a", "b"),
    ),
    Case(
        "leading whitespace is not the value",
        "RFC 9110 §5.5",
        echo_header("X-A: \t b"),
        (200,),
        header=("x-a", "b"),
    ),
    Case(
        "inner whitespace is kept",
        "RFC 9110 §5.5",
        echo_header("X-A: a \t b "),
        (200,),
        header=("x-a", "a \t b"),
    ),
    Case(
        "whitespace-only value is empty",
        "RFC 9110 §5.5",
        echo_header("X-A: \t "),
        (200,),
        header=("x-a", ""),
    ),
    Case(
        "no space after the colon",
        "RFC 9112 §5.1",
        echo_header("X-A:b"),
        (200,),
        header=("x-a", "b"),
    ),
]

CHUNK_EXTENSIONS = [
    Case("bare chunk extension", EXT, chunked(b"5;a\r\nhello\r\n0\r\n\r\n"), (200,), body="hello"),
    Case(
        "bare and valued extensions",
        EXT,
        chunked(b"5;a;b=c\r\nhello\r\n0\r\n\r\n"),
        (200,),
        body="hello",
    ),
    Case("BWS before ;", EXT, chunked(b"5 ;a\r\nhello\r\n0\r\n\r\n"), (200,), body="hello"),
    Case("BWS after ;", EXT, chunked(b"5; a\r\nhello\r\n0\r\n\r\n"), (200,), body="hello"),
    Case("BWS around =", EXT, chunked(b"5;a = b\r\nhello\r\n0\r\n\r\n"), (200,), body="hello"),
    Case("tabs as BWS", EXT, chunked(b"5\t;\ta\t=\tb\r\nhello\r\n0\r\n\r\n"), (200,), body="hello"),
    Case(
        "BWS everywhere, several extensions",
        EXT,
        chunked(b'5 ; a ; b = c ; d = "q"\r\nhello\r\n0\r\n\r\n'),
        (200,),
        body="hello",
    ),
    Case(
        "quoted extension with escaped quote",
        EXT,
        chunked(b'5;a="x\\"y"\r\nhello\r\n0\r\n\r\n'),
        (200,),
        body="hello",
    ),
    Case(
        "extension on the last chunk",
        EXT,
        chunked(b"5\r\nhello\r\n0;a=b\r\n\r\n"),
        (200,),
        body="hello",
    ),
    Case("space after size, no extension", EXT, chunked(b"5 \r\nhello\r\n0\r\n\r\n"), reject=400),
    Case("tab after size, no extension", EXT, chunked(b"5\t\r\nhello\r\n0\r\n\r\n"), reject=400),
    Case("extension without a name", EXT, chunked(b"5;\r\nhello\r\n0\r\n\r\n"), reject=400),
    Case("extension that is only =value", EXT, chunked(b"5;=x\r\nhello\r\n0\r\n\r\n"), reject=400),
    Case("extension with = and no value", EXT, chunked(b"5;a=\r\nhello\r\n0\r\n\r\n"), reject=400),
    Case("bare CR in an extension", EXT, chunked(b"5;a\rb\r\nhello\r\n0\r\n\r\n"), reject=400),
    Case(
        "control byte in an extension", EXT, chunked(b"5;a=\x01\r\nhello\r\n0\r\n\r\n"), reject=400
    ),
    Case(
        "NUL in a quoted extension", EXT, chunked(b'5;a="\x00"\r\nhello\r\n0\r\n\r\n'), reject=400
    ),
    Case(
        "unterminated quoted extension", EXT, chunked(b'5;a="x\r\nhello\r\n0\r\n\r\n'), reject=400
    ),
    Case(
        "space inside an extension name", EXT, chunked(b"5;a b\r\nhello\r\n0\r\n\r\n"), reject=400
    ),
    Case(
        "chunk size with a plus sign",
        "RFC 9112 §7.1",
        chunked(b"+5\r\nhello\r\n0\r\n\r\n"),
        reject=400,
    ),
    Case("chunk size with 0x", "RFC 9112 §7.1", chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), reject=400),
    Case("empty chunk size line", "RFC 9112 §7.1", chunked(b"\r\nhello\r\n0\r\n\r\n"), reject=400),
    Case(
        "many leading zeros in a size",
        "RFC 9112 §7.1",
        chunked(b"0000000000000000000005\r\nhello\r\n0\r\n\r\n"),
        (200,),
        body="hello",
    ),
    Case(
        "bare LF after the last chunk", "RFC 9112 §7.1", chunked(b"5\r\nhello\r\n0\n\n"), reject=400
    ),
    Case("bare CR in a trailer", "RFC 9112 §7.1.2", chunked(b"0\r\nX: a\rb\r\n\r\n"), reject=400),
    Case(
        "obs-fold in a trailer", "RFC 9112 §7.1.2", chunked(b"0\r\nX: a\r\n b\r\n\r\n"), reject=400
    ),
    Case(
        "trailer without a colon", "RFC 9112 §7.1.2", chunked(b"0\r\nNoColon\r\n\r\n"), reject=400
    ),
    Case(
        "space before a trailer colon",
        "RFC 9112 §7.1.2",
        chunked(b"0\r\nX : a\r\n\r\n"),
        reject=400,
    ),
    Case(
        "trailers then a pipelined request",
        "RFC 9112 §7.1.2",
        chunked(b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n") + GET,
        (200, 200),
        body="hello",
    ),
    Case(
        "chunked then a pipelined request",
        "RFC 9112 §7.1",
        chunked(HELLO) + GET,
        (200, 200),
        body="hello",
    ),
]

METHODS = [
    Case("PROPFIND", "RFC 9110 §9.1", line("PROPFIND /echo HTTP/1.1"), (200,), method="PROPFIND"),
    Case("M-SEARCH", "RFC 9110 §9.1", line("M-SEARCH /echo HTTP/1.1"), (200,), method="M-SEARCH"),
    Case("QUERY", "RFC 9110 §9.1", line("QUERY /echo HTTP/1.1"), (200,), method="QUERY"),
    Case("custom method", "RFC 9110 §9.1", line("FROB /echo HTTP/1.1"), (200,), method="FROB"),
    Case("mixed-case method", "RFC 9110 §9.1", line("GeT /echo HTTP/1.1"), (200,), method="GeT"),
    Case(
        "method that starts as HEAD",
        "RFC 9110 §9.1",
        line("HEADX /echo HTTP/1.1"),
        (200,),
        method="HEADX",
    ),
    Case(
        "method of tchar symbols",
        "RFC 9110 §9.1",
        line("X!#$%&'*+.^_`|~ /echo HTTP/1.1"),
        (200,),
        method="X!#$%&'*+.^_`|~",
    ),
    Case(
        "custom method with a body",
        "RFC 9110 §9.1",
        req(f"FROB /echo HTTP/1.1\r\n{H}Content-Length: 5\r\n", b"hello"),
        (200,),
        body="hello",
        method="FROB",
    ),
    Case(
        "custom method with a chunked body",
        "RFC 9110 §9.1",
        req(f"FROB /echo HTTP/1.1\r\n{H}{CHUNKED}", b"5;x=y\r\nhello\r\n0\r\n\r\n"),
        (200,),
        body="hello",
        method="FROB",
    ),
    Case(
        "custom methods pipelined",
        "RFC 9110 §9.1",
        line("FROB /echo HTTP/1.1") + line("get /status/201 HTTP/1.1"),
        (200, 201),
        method="FROB",
    ),
    Case(
        "custom method on HTTP/1.0",
        "RFC 9110 §9.1",
        line("FROB /echo HTTP/1.0", ""),
        (200,),
        closed=True,
        method="FROB",
    ),
    Case("colon in a method", "RFC 9110 §9.1", line("GE:T / HTTP/1.1"), reject=400),
    Case("empty method", "RFC 9112 §3", line(" / HTTP/1.1"), reject=400),
]

EMPTY_LINES = [
    Case("several empty lines first", "RFC 9112 §2.2", b"\r\n\r\n\r\n" + GET, (200,)),
    Case("empty line between pipelined requests", "RFC 9112 §2.2", GET + b"\r\n" + GET, (200, 200)),
    Case(
        "empty line after a body",
        "RFC 9112 §2.2",
        post("Content-Length: 5\r\n", b"hello") + b"\r\n" + GET,
        (200, 200),
        body="hello",
    ),
    Case("bare LF before the request line", "RFC 9112 §2.2", b"\n" + GET, reject=400),
    Case("bare CR before the request line", "RFC 9112 §2.2", b"\r" + GET, reject=400),
    Case("space before the request line", "RFC 9112 §2.2", b" " + GET, reject=400),
]

LIMITS_AND_TAILS = [
    Case("request line at the limit", "RFC 9112 §3 (--limit-request-line)", line_of(8190), (404,)),
    Case(
        "request line one byte over",
        "RFC 9112 §3 (--limit-request-line)",
        line_of(8191),
        reject=414,
    ),
    Case("head at the limit", "RFC 6585 §5 (--limit-request-head)", head_of(65536), (200,)),
    Case("head one byte over", "RFC 6585 §5 (--limit-request-head)", head_of(65537), reject=431),
    Case(
        "long request line and long head: 414",
        "RFC 9112 §3 (--limit-request-line)",
        line("GET /" + "a" * 9000 + " HTTP/1.1", H + FIELDS_40K * 2),
        reject=414,
    ),
    Case(
        "head over 32 KiB in two reads",
        "RFC 9112 §2.1 (--limit-request-head)",
        (line("GET / HTTP/1.1", H + FIELDS_40K)[:-3], b"\n\r\n"),
        (200,),
    ),
    Case(
        "bad head behind a 100 KB body",
        "RFC 9112 §9.3.2",
        post("Content-Length: 100000\r\n", BIG) + b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
        (200, 400),
        closed=True,
    ),
    Case(
        "bad head behind a 100 KB chunked body",
        "RFC 9112 §9.3.2",
        chunked(b"186a0\r\n" + BIG + b"\r\n0\r\n\r\n") + b"GET / HTTP/1.1\nHost: t\r\n\r\n",
        (200, 400),
        closed=True,
    ),
    Case(
        "good head behind a 100 KB body",
        "RFC 9112 §9.3.2",
        post("Content-Length: 100000\r\n", BIG) + GET,
        (200, 200),
    ),
]

RULE_CASES = (
    TARGETS + HOSTS + VERSIONS + LISTS + VALUES + CHUNK_EXTENSIONS + METHODS + EMPTY_LINES
) + LIMITS_AND_TAILS
ALL_CASES = CASES + RULE_CASES
