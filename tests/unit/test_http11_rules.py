"""Regression tests for issue #11's bugs, sans-IO, on both backends.

The conformance cases pin each rule at every read cut; these pin the bugs that needed
particular sizes, limits or a look inside: the httptools double count of head bytes, the
64 KiB tail blind spot, which limit speaks first, llhttp's method list, the response side.
"""

from __future__ import annotations

import httptools
import pytest

from hybridserve.config_groups import Limits
from hybridserve.errors import ProtocolError
from hybridserve.sansio.connection import ServerConnection
from hybridserve.sansio.head_rules import LLHTTP_METHODS
from hybridserve.sansio.writer import build_head, error_response
from tests.conformance.sansio import DATE, run

BACKENDS = ["h11", "httptools"]
SERVER = b"Server: hybridserve\r\n"


def head_of(size: int) -> bytes:
    """A GET head of exactly ``size`` bytes (filler fields of 1,000 bytes or less)."""
    start = b"GET / HTTP/1.1\r\nHost: t\r\n"
    fields = b""
    left = size - len(start) - 2
    i = 0
    while left > 0:
        filler = min(1000, left) - len(b"X-%d: \r\n" % i)
        fields += b"X-%d: %s\r\n" % (i, b"v" * max(filler, 0))
        left = size - len(start) - 2 - len(fields)
        i += 1
    return start + fields + b"\r\n"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_head_cut_near_its_end_is_counted_once(backend: str) -> None:
    """Issue #11 (10): httptools counted head bytes twice, refusing a 6,567-byte head cut
    3 bytes before its end with a 10,000-byte limit."""
    head = head_of(6567)
    assert len(head) == 6567
    limits = Limits(max_head_bytes=10_000)
    outcome = run(backend, [head[:-3], head[-3:]], limits=limits)
    assert outcome.statuses == (200,), outcome


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", [33_000, 60_000, 65_536])
def test_big_heads_in_two_reads_pass_under_the_default_limit(backend: str, size: int) -> None:
    head = head_of(size)
    for cut in (len(head) // 2, len(head) - 1):
        assert run(backend, [head[:cut], head[cut:]]).statuses == (200,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_head_limit_is_the_same_wherever_the_head_is_cut(backend: str) -> None:
    """The limit counts the head up to its last field's CRLF, whatever the reads."""
    limits = Limits(max_head_bytes=10_000)
    for size, expected in ((10_004, 200), (10_005, 431)):  # 10,000 and 10,001 bytes
        head = head_of(size)
        for cut in range(len(head) - 8, len(head) + 1):
            outcome = run(backend, [head[:cut], head[cut:]], limits=limits)
            assert outcome.statuses == (expected,), (size, cut, outcome)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fields_without_a_space_count_as_sent(backend: str) -> None:
    """The httptools backstop counted 4 bytes of framing per field, so a head at the limit
    made of ``A:b`` lines was 431 there and 200 on h11."""
    limits = Limits(max_head_bytes=1000, max_header_count=1000)
    head = b"GET / HTTP/1.1\r\nHost:t\r\n" + b"A:b\r\n" * 194
    head += b"X:" + b"v" * (998 - len(head)) + b"\r\n\r\n"
    assert head.index(b"\r\n\r\n") == 1000
    assert run(backend, [head], limits=limits).statuses == (200,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_line_limit_is_the_same_wherever_the_line_is_cut(backend: str) -> None:
    limits = Limits(max_request_line_bytes=100)
    for length, expected in ((100, 404), (101, 414)):  # 404: the demo has no /aaa…
        data = b"GET /" + b"a" * (length - 14) + b" HTTP/1.1\r\nHost: t\r\n\r\n"
        assert data.index(b"\r\n") == length
        for cut in range(length - 4, length + 4):
            outcome = run(backend, [data[:cut], data[cut:]], limits=limits)
            assert outcome.statuses == (expected,), (length, cut, outcome)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("body_size", [70_000, 300_000])
def test_pipelined_heads_are_judged_behind_any_body(backend: str, body_size: int) -> None:
    """Issue #11 (10): after 64 KiB of buffered tail the raw checks switched off, and
    llhttp alone lets a double space through."""
    post = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % body_size
    data = post + b"x" * body_size + b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n"
    for piece in (1000, 65_536):
        pieces = [data[i : i + piece] for i in range(0, len(data), piece)]
        assert run(backend, pieces).statuses == (200, 400)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_line_limit_speaks_before_the_head_limit(backend: str) -> None:
    """Issue #11 (3): 414, not 431, when a line overflows both limits."""
    limits = Limits(max_request_line_bytes=1000, max_head_bytes=1000)
    data = b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: t\r\n\r\n"
    for cut in (100, 1001, 1500, 2010, len(data)):
        assert run(backend, [data[:cut], data[cut:]], limits=limits).statuses == (414,)


def test_every_method_we_hand_llhttp_as_is_is_one_it_parses() -> None:
    """Issue #11 (8): a method outside this list is given to llhttp as GET; one inside
    must parse natively, or the httptools backend would refuse it."""
    for method in LLHTTP_METHODS:
        parser = httptools.HttpRequestParser(object())
        parser.feed_data(method + b" / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert parser.get_method() == method
    with pytest.raises(httptools.HttpParserInvalidMethodError):
        httptools.HttpRequestParser(object()).feed_data(b"FROB / HTTP/1.1\r\n\r\n")


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_method_reaches_the_app_as_sent(backend: str) -> None:
    data = b"".join(b"%s / HTTP/1.1\r\nHost: t\r\n\r\n" % m for m in (b"get", b"FROB", b"GET"))
    outcome = run(backend, [data])
    assert outcome.methods == (b"get", b"FROB", b"GET"), outcome


@pytest.mark.parametrize("backend", BACKENDS)
def test_field_values_lose_surrounding_whitespace(backend: str) -> None:
    """Issue #11 (6): llhttp kept trailing SP and HTAB in values."""
    data = b"GET / HTTP/1.1\r\nHost: t \r\nX-A: \t a b \t\r\nX-B:\t \r\n\r\n"
    headers = run(backend, [data]).headers
    assert headers == ((b"host", b"t"), (b"x-a", b"a b"), (b"x-b", b"")), headers


@pytest.mark.parametrize("backend", BACKENDS)
def test_refused_requests_keep_what_can_be_logged(backend: str) -> None:
    conn = ServerConnection(Limits(), backend)
    with pytest.raises(ProtocolError):
        conn.receive(b"GET /x HTTP/1.1\r\nHost: a b\r\n\r\n")
    seen = conn.refused_request()
    assert (seen.method, seen.target, seen.http_version) == (b"GET", b"/x", b"1.1")
    conn = ServerConnection(Limits(), backend)
    with pytest.raises(ProtocolError):
        conn.receive(b"GET /a\x1bb HTTP/1.1\r\nHost: t\r\n\r\n")
    seen = conn.refused_request()
    assert (seen.method, seen.target, seen.http_version) == (b"-", b"-", b"-")


@pytest.mark.parametrize("status", [100, 103, 204])
def test_no_content_length_on_1xx_and_204(status: int) -> None:
    """Issue #11 (11), RFC 9110 §8.6."""
    head, framing, _ = build_head(
        status,
        [(b"Content-Length", b"12"), (b"X-A", b"b")],
        method=b"GET",
        http_version=b"1.1",
        keep_alive=True,
        body_length=None,
        date_line=DATE,
        server_line=SERVER,
    )
    assert b"content-length" not in head.lower() and b"X-A: b\r\n" in head
    assert framing.no_body and not framing.chunked


def test_304_keeps_the_apps_content_length() -> None:
    head, _, _ = build_head(
        304,
        [(b"Content-Length", b"12")],
        method=b"GET",
        http_version=b"1.1",
        keep_alive=True,
        body_length=None,
        date_line=DATE,
        server_line=SERVER,
    )
    assert b"Content-Length: 12\r\n" in head


def test_error_responses_carry_date_and_server() -> None:
    response = error_response(400, "bad", DATE, SERVER)
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert DATE in response and SERVER in response
    assert response.endswith(b"Connection: close\r\n\r\nbad\n")
