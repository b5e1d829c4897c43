"""ServerConnection, sans-IO: bytes in, events out; responses in, bytes out."""

from __future__ import annotations

import pytest

from hybridserve.config_groups import Limits
from hybridserve.errors import ProtocolError, ResponseError
from hybridserve.sansio.connection import CONTINUE, ServerConnection
from hybridserve.sansio.events import Body, ConnectionClosed, EndOfRequest, Event, Request

BACKENDS = ["h11", "httptools"]
DATE = b"Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n"


def get(target: str = "/", extra: str = "") -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


def requests(events: list[Event]) -> list[Request]:
    return [e for e in events if isinstance(e, Request)]


def respond(conn: ServerConnection, body: bytes = b"ok") -> bytes:
    return conn.send_head(
        200, [(b"content-type", b"text/plain")], body=body, end=True, date_line=DATE
    )


@pytest.fixture(params=BACKENDS)
def conn(request: pytest.FixtureRequest) -> ServerConnection:
    return ServerConnection(Limits(), request.param)


def test_pipelined_requests_are_delivered_one_at_a_time(conn: ServerConnection) -> None:
    events = conn.receive(get("/a") + get("/b"))
    assert [r.target for r in requests(events)] == [b"/a"]
    assert isinstance(events[-1], EndOfRequest)
    respond(conn)
    assert [r.target for r in requests(conn.next_cycle())] == [b"/b"]


def test_request_fields_are_normalized(conn: ServerConnection) -> None:
    (request, end) = conn.receive(get("/p?q=1", "X-Mixed-Case: Value\r\n"))
    assert isinstance(request, Request)
    assert request.method == b"GET"
    assert request.http_version == b"1.1"
    assert (b"x-mixed-case", b"Value") in request.headers
    assert request.keep_alive
    assert isinstance(end, EndOfRequest)


def test_body_split_across_receives(conn: ServerConnection) -> None:
    raw = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789"
    events: list[Event] = []
    for i in range(len(raw)):
        events += conn.receive(raw[i : i + 1])
    body = b"".join(e.data for e in events if isinstance(e, Body))
    assert body == b"0123456789"
    assert isinstance(events[-1], EndOfRequest)


def test_connection_close_request_is_not_kept_alive(conn: ServerConnection) -> None:
    conn.receive(get("/", "Connection: close\r\n"))
    out = respond(conn)
    assert b"Connection: close\r\n" in out
    assert not conn.keep_alive


def test_small_complete_body_gets_a_content_length(conn: ServerConnection) -> None:
    conn.receive(get())
    out = respond(conn, b"hello")
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 5\r\n" in out
    assert out.endswith(b"\r\n\r\nhello")
    assert conn.keep_alive


def test_streamed_body_is_chunked(conn: ServerConnection) -> None:
    conn.receive(get())
    out = conn.send_head(200, [], date_line=DATE)
    out += conn.send_body(b"abc") + conn.send_body(b"", end=True)
    assert b"Transfer-Encoding: chunked\r\n" in out
    assert out.endswith(b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n")


def test_http10_stream_is_close_delimited(conn: ServerConnection) -> None:
    conn.receive(b"GET / HTTP/1.0\r\n\r\n")
    out = conn.send_head(200, [], date_line=DATE) + conn.send_body(b"abc", end=True)
    assert b"chunked" not in out
    assert out.endswith(b"\r\n\r\nabc")
    assert not conn.keep_alive


def test_head_response_has_no_body(conn: ServerConnection) -> None:
    conn.receive(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
    out = conn.send_head(200, [(b"content-length", b"5")], body=b"", date_line=DATE)
    out += conn.send_body(b"hello", end=True)
    assert out.endswith(b"\r\n\r\n")
    assert b"hello" not in out


def test_content_length_mismatch_is_an_app_error(conn: ServerConnection) -> None:
    conn.receive(get())
    conn.send_head(200, [(b"content-length", b"3")], date_line=DATE)
    with pytest.raises(ResponseError):
        conn.send_body(b"toolong")


def test_short_content_length_is_an_app_error(conn: ServerConnection) -> None:
    conn.receive(get())
    conn.send_head(200, [(b"content-length", b"3")], date_line=DATE)
    with pytest.raises(ResponseError):
        conn.send_body(b"ab", end=True)


@pytest.mark.parametrize(
    ("name", "value"),
    [(b"x-bad", b"a\r\nInjected: yes"), (b"x-nul", b"a\x00b"), (b"bad name", b"v"), (b"", b"v")],
)
def test_invalid_response_headers_are_refused(
    conn: ServerConnection, name: bytes, value: bytes
) -> None:
    conn.receive(get())
    with pytest.raises(ResponseError):
        conn.send_head(200, [(name, value)], date_line=DATE)
    assert not conn.response_started  # the caller can still send a 500


def test_expect_continue_is_sent_only_on_demand(conn: ServerConnection) -> None:
    (request,) = conn.receive(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    )
    assert isinstance(request, Request) and request.expect_continue
    assert conn.continue_bytes() == CONTINUE
    assert conn.continue_bytes() == b""  # only once


def test_unread_body_closes_the_connection(conn: ServerConnection) -> None:
    conn.receive(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
    respond(conn)
    assert not conn.keep_alive


def test_eof_between_requests_is_a_clean_close(conn: ServerConnection) -> None:
    assert conn.receive(b"") == [ConnectionClosed()]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"v" * 9000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ],
)
def test_limits_and_rules_give_the_right_status(
    conn: ServerConnection, raw: bytes, status: int
) -> None:
    with pytest.raises(ProtocolError) as info:
        conn.receive(raw)
    assert info.value.status == status


def test_request_line_limit_applies_before_the_line_ends(conn: ServerConnection) -> None:
    conn.receive(b"GET /" + b"a" * 8000)
    with pytest.raises(ProtocolError) as info:
        conn.receive(b"a" * 500)
    assert info.value.status == 414


def test_body_limit() -> None:
    for backend in BACKENDS:
        conn = ServerConnection(Limits(max_body_bytes=10), backend)
        with pytest.raises(ProtocolError) as info:
            conn.receive(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n")
        assert info.value.status == 413
        chunked = ServerConnection(Limits(max_body_bytes=10), backend)
        chunked.receive(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        with pytest.raises(ProtocolError) as info:
            chunked.receive(b"b\r\n01234567890\r\n")
        assert info.value.status == 413
