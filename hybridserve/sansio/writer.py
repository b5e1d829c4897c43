"""Response framing: status line, validated headers, and body bytes in the chosen framing.

One writer serves every parser backend and both app interfaces. Header lines are validated
once and cached by ``(name, value)``: apps send the same few headers over and over, so the
common case costs one dict lookup per header instead of two regex scans and a lower().
"""

from __future__ import annotations

import re
from http import HTTPStatus

from hybridserve.errors import ResponseError
from hybridserve.sansio.events import Headers

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

# Header kinds the writer must act on; everything else is passed through as written.
PLAIN, CONTENT_LENGTH, TRANSFER_ENCODING, CONNECTION, DATE, SERVER = range(6)
_SPECIAL = {
    b"content-length": CONTENT_LENGTH,
    b"transfer-encoding": TRANSFER_ENCODING,
    b"connection": CONNECTION,
    b"date": DATE,
    b"server": SERVER,
}
_LINE_CACHE: dict[tuple[bytes, bytes], tuple[bytes, int]] = {}
_LINE_CACHE_MAX = 2048


def _status_line(code: int) -> bytes:
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    return b"HTTP/1.1 %d %s\r\n" % (code, phrase.encode("ascii"))


STATUS_LINES = {code: _status_line(code) for code in range(100, 600)}


def header_line(name: bytes, value: bytes) -> tuple[bytes, int]:
    """The validated ``name: value\\r\\n`` line and its kind; raises ResponseError if invalid."""
    key = (name, value)
    hit = _LINE_CACHE.get(key)
    if hit is not None:
        return hit
    if _TOKEN.match(name) is None:
        raise ResponseError(f"invalid response header name {name!r}")
    stripped = value.strip(b" \t")
    if _BAD_VALUE.search(stripped) is not None:
        raise ResponseError(f"invalid value for response header {name.decode('latin-1')!r}")
    result = (name + b": " + stripped + b"\r\n", _SPECIAL.get(name.lower(), PLAIN))
    if len(_LINE_CACHE) >= _LINE_CACHE_MAX:
        _LINE_CACHE.clear()
    _LINE_CACHE[key] = result
    return result


class Framing:
    """How body bytes go on the wire for one response, and whether they added up."""

    __slots__ = ("chunked", "no_body", "remaining")

    def __init__(self, *, chunked: bool, no_body: bool, remaining: int | None) -> None:
        self.chunked = chunked
        self.no_body = no_body
        self.remaining = remaining  # bytes still owed under Content-Length, None if unknown

    def frame(self, data: bytes) -> bytes:
        """Frame ``data``; more than a declared Content-Length raises ResponseError."""
        if self.no_body or not data:
            return b""
        if self.remaining is not None:
            if len(data) > self.remaining:
                raise ResponseError("app sent more body than its Content-Length declared")
            self.remaining -= len(data)
            return data
        if self.chunked:
            return b"%x\r\n%b\r\n" % (len(data), data)
        return data

    def end(self) -> bytes:
        """Bytes that end the body; less than a declared Content-Length raises ResponseError."""
        if self.no_body:
            return b""
        if self.remaining:
            raise ResponseError(
                f"app sent {self.remaining} bytes less than its Content-Length declared"
            )
        return b"0\r\n\r\n" if self.chunked else b""


def build_head(
    status: int,
    headers: Headers,
    *,
    method: bytes,
    http_version: bytes,
    keep_alive: bool,
    body_length: int | None,
    date_line: bytes,
    server_line: bytes,
) -> tuple[bytes, Framing, bool]:
    """Serialize a response head; returns it, the body framing, and the final keep-alive.

    ``body_length`` is the whole body's size when the caller already holds all of it, so a
    response without Content-Length still goes out with one instead of chunked framing.
    """
    if not 100 <= status <= 599:
        raise ResponseError(f"invalid response status {status!r}")
    parts = [STATUS_LINES[status]]
    declared, close = _header_lines(parts, headers, status, date_line, server_line)
    keep_alive = keep_alive and not close
    no_body = method == b"HEAD" or status < 200 or status in (204, 304)
    chunked = False
    if declared is None and not no_body:
        if body_length is not None:
            declared = body_length
            parts.append(b"Content-Length: %d\r\n" % body_length)
        elif http_version == b"1.1":
            chunked = True
            parts.append(b"Transfer-Encoding: chunked\r\n")
        else:
            keep_alive = False  # HTTP/1.0 without a length: the close ends the body
    if http_version == b"1.1":
        if not keep_alive:
            parts.append(b"Connection: close\r\n")
    elif keep_alive:
        parts.append(b"Connection: keep-alive\r\n")
    parts.append(b"\r\n")
    framing = Framing(chunked=chunked, no_body=no_body, remaining=None if no_body else declared)
    return b"".join(parts), framing, keep_alive


def _header_lines(
    parts: list[bytes], headers: Headers, status: int, date_line: bytes, server_line: bytes
) -> tuple[int | None, bool]:
    """Append the app's header lines, and ours for Date and Server where it gave none;
    returns its Content-Length (None if none) and whether it asked to close."""
    declared: int | None = None
    has_date = has_server = close = False
    no_length = status < 200 or status == 204  # RFC 9110 §8.6: these never carry one
    cached = _LINE_CACHE.get  # the common case inline: one dict lookup, no call
    for name, value in headers:
        hit = cached((name, value))
        line, kind = hit if hit is not None else header_line(name, value)
        if kind == PLAIN:
            parts.append(line)
        elif kind == CONTENT_LENGTH:
            if no_length:
                continue
            declared = int(value) if value.isdigit() else _content_length(value)
            parts.append(line)
        elif kind == CONNECTION:
            close = close or b"close" in value.lower()
        elif kind == DATE:
            has_date = True
            parts.append(line)
        elif kind == SERVER:
            has_server = True
            parts.append(line)
        # Transfer-Encoding from the app is dropped: the framing is ours to choose.
    if not has_date:
        parts.append(date_line)
    if server_line and not has_server:
        parts.append(server_line)
    return declared, close


def _content_length(value: bytes) -> int:
    """A Content-Length that is not plain digits: what int() takes, or a ResponseError."""
    try:
        declared = int(value)
    except ValueError:
        raise ResponseError(f"invalid Content-Length {value!r}") from None
    if declared < 0:
        raise ResponseError(f"invalid Content-Length {value!r}")
    return declared


def error_response(status: int, message: str, date_line: bytes, server_line: bytes) -> bytes:
    """A whole response for a request we refuse; the connection closes after it.

    It carries the same Date and Server lines as an app's response, so a refusal does not
    tell a scanner more (or less) than a normal answer does.
    """
    body = (message + "\n").encode("latin-1", "replace")
    head = b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n" % len(body)
    close = b"Connection: close\r\n\r\n"
    return STATUS_LINES[status] + head + date_line + server_line + close + body
