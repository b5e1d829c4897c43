"""A chunked request body, walked on the wire before any backend sees it (RFC 9112 §7.1).

The walker checks every chunk-size line and trailer line against the grammar, knows where
the body ends (so what follows is the next request, judged by the same head rules), and
hands the backend the canonical framing: ``SIZE CRLF data CRLF``, with chunk extensions
and trailer fields dropped (we act on neither). Both backends then read the same bytes, so
they cannot disagree about extensions, whitespace after a size, or a stray CR; the one a
proxy in front reads differently is refused here (a request-smuggling vector).
"""

from __future__ import annotations

import re

from hybridserve.errors import ProtocolError

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
# chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
_SIZE_LINE = re.compile(
    rb"0*([0-9A-Fa-f]{1,15})((?:[ \t]*;[ \t]*"
    + _TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:"
    + _TOKEN
    + rb"|"
    + _QUOTED
    + rb"))?)*)\r\n\Z"
)
_PLAIN_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,15})\r\n")  # most size lines: no extension
_FIELD_LINE = re.compile(_TOKEN + rb":[\t\x20-\x7e\x80-\xff]*\r\n\Z")
SIZE, DATA, DATA_END, TRAILER, DONE = range(5)


class ChunkedBody:
    """The framing state of one chunked body; ``feed`` returns what the backend gets."""

    __slots__ = ("_left", "_line", "_line_max", "_state", "_trailer_bytes", "_trailer_max")

    def __init__(self, line_max: int, trailer_max: int) -> None:
        self._state = SIZE
        self._line = b""  # a size or trailer line that has not ended yet
        self._left = 0  # chunk data bytes still to come, or CRLF bytes after it
        self._line_max = line_max
        self._trailer_max = trailer_max
        self._trailer_bytes = 0

    @property
    def done(self) -> bool:
        return self._state == DONE

    def feed(self, data: bytes) -> tuple[bytes, int]:
        """Walk ``data``: the canonical bytes for the backend, and how much was body."""
        out: list[bytes] = []
        at, size = 0, len(data)
        while at < size and self._state != DONE:
            state = self._state
            if state == DATA:
                take = min(self._left, size - at)
                out.append(data[at : at + take])
                at += take
                self._left -= take
                if not self._left:
                    self._state, self._left = DATA_END, 2
            elif state == DATA_END:
                expected = b"\r\n"[2 - self._left :]
                got = data[at : at + len(expected)]
                if not expected.startswith(got):
                    raise ProtocolError("chunk data not followed by CRLF", 400)
                at += len(got)
                self._left -= len(got)
                if not self._left:
                    out.append(b"\r\n")
                    self._state = SIZE
            elif self._line or (plain := _PLAIN_SIZE_LINE.match(data, at)) is None:
                at = self._take_line(data, at, out)
            elif state == SIZE:
                self._left = int(plain.group(1), 16)
                out.append(plain.group())
                at = plain.end()
                self._state = DATA if self._left else TRAILER
            else:  # a trailer line can't look like a size line: let _take_line say so
                at = self._take_line(data, at, out)
        return b"".join(out), at

    def _take_line(self, data: bytes, at: int, out: list[bytes]) -> int:
        end = data.find(b"\n", at)
        if end < 0:
            self._line += data[at:]
            if len(self._line) > self._line_max:
                raise ProtocolError("chunk line too long", 400)
            return len(data)
        line = self._line + data[at : end + 1] if self._line else data[at : end + 1]
        self._line = b""
        if len(line) > self._line_max:
            raise ProtocolError("chunk line too long", 400)
        if self._state == SIZE:
            self._size_line(line, out)
        else:
            self._trailer_line(line, out)
        return end + 1

    def _size_line(self, line: bytes, out: list[bytes]) -> None:
        match = _SIZE_LINE.match(line)
        if match is None:  # also a size of 16 hex digits or more: out of range
            raise ProtocolError("malformed chunk size line", 400)
        digits = match.group(1)
        self._left = int(digits, 16)
        out.append(line if len(digits) + 2 == len(line) else digits + b"\r\n")
        self._state = DATA if self._left else TRAILER

    def _trailer_line(self, line: bytes, out: list[bytes]) -> None:
        if line == b"\r\n":
            out.append(line)
            self._state = DONE
            return
        self._trailer_bytes += len(line)
        if self._trailer_bytes > self._trailer_max:
            raise ProtocolError("trailer section too large", 431)
        if _FIELD_LINE.match(line) is None:
            raise ProtocolError("malformed trailer field", 400)
