"""Response framing details that don't need a connection."""

from __future__ import annotations

import pytest

from hybridserve.errors import ResponseError
from hybridserve.sansio.writer import STATUS_LINES, Framing, build_head, header_line

DATE = b"Date: x\r\n"


def head(
    status: int = 200, headers: list[tuple[bytes, bytes]] | None = None, **kw: object
) -> bytes:
    options: dict[str, object] = {
        "method": b"GET",
        "http_version": b"1.1",
        "keep_alive": True,
        "body_length": None,
        "date_line": DATE,
        "server_line": b"Server: s\r\n",
    }
    options.update(kw)
    out, _, _ = build_head(status, headers or [], **options)  # type: ignore[arg-type]
    return out


def test_status_lines_are_prebuilt() -> None:
    assert STATUS_LINES[200] == b"HTTP/1.1 200 OK\r\n"
    assert STATUS_LINES[599] == b"HTTP/1.1 599 \r\n"


def test_app_date_and_server_win_over_ours() -> None:
    out = head(headers=[(b"Date", b"app"), (b"Server", b"app")])
    assert b"Date: app\r\n" in out and DATE not in out
    assert b"Server: app\r\n" in out and b"Server: s" not in out


def test_app_transfer_encoding_is_replaced_by_our_framing() -> None:
    out = head(headers=[(b"Transfer-Encoding", b"gzip")])
    assert b"gzip" not in out
    assert out.count(b"Transfer-Encoding: chunked") == 1


def test_204_and_304_have_no_framing_headers_added() -> None:
    for status in (204, 304):
        out = head(status)
        assert b"Transfer-Encoding" not in out and b"Content-Length" not in out


def test_invalid_status_is_refused() -> None:
    with pytest.raises(ResponseError):
        head(99)


def test_app_connection_close_is_honoured() -> None:
    _, _, keep_alive = build_head(
        200,
        [(b"Connection", b"close")],
        method=b"GET",
        http_version=b"1.1",
        keep_alive=True,
        body_length=0,
        date_line=DATE,
        server_line=b"",
    )
    assert not keep_alive


def test_header_lines_are_cached_and_stripped() -> None:
    assert header_line(b"X-A", b"  v  ") == (b"X-A: v\r\n", 0)
    assert header_line(b"X-A", b"  v  ") is header_line(b"X-A", b"  v  ")


def test_framing_chunks_and_ends() -> None:
    framing = Framing(chunked=True, no_body=False, remaining=None)
    assert framing.frame(b"") == b""
    assert framing.frame(b"a" * 16) == b"10\r\n" + b"a" * 16 + b"\r\n"
    assert framing.end() == b"0\r\n\r\n"
