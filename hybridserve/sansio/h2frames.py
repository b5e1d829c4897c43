"""A walk over the bytes the client sends, before the backend parses the frames.

It checks the connection preface (RFC 9113 §3.4) and the few rules libnghttp2 relaxes (on
purpose, for older peers): the first frame after the preface is SETTINGS (§3.4), and a
PRIORITY frame names a stream (§6.3). Nine bytes per frame are looked at; payloads are
skipped, whatever the read cuts.
"""

from __future__ import annotations

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = 0x4
PRIORITY = 0x2


class FrameScanner:
    """Follows frame boundaries across reads; ``scan`` returns the first broken rule, if any."""

    __slots__ = ("_head", "_preface", "_skip", "first")

    def __init__(self) -> None:
        self._skip = 0  # payload bytes of the current frame still to come
        self._head = b""  # a frame header cut by the read
        self._preface: bytes | None = b""  # the preface so far; None once it is whole
        self.first = True  # no frame seen yet: it must be SETTINGS

    def feed(self, data: bytes) -> tuple[bytes, str | None]:
        """(what the backend may parse now, the first broken rule if any): nothing until the
        preface is whole, then the preface with what followed it, then each read as it is."""
        held = self._preface
        if held is None:
            return data, self.scan(data)
        held += data
        if not PREFACE.startswith(held[: len(PREFACE)]):
            return b"", "invalid connection preface"
        if len(held) < len(PREFACE):
            self._preface = held
            return b"", None
        self._preface = None
        return held, self.scan(held[len(PREFACE) :])

    def scan(self, data: bytes) -> str | None:
        at = self._skip
        size = len(data)
        if self._head:  # then no payload was left to skip
            data = self._head + data
            size = len(data)
            self._head = b""
        while at + 9 <= size:
            length = int.from_bytes(data[at : at + 3], "big")
            kind = data[at + 3]
            if self.first:
                self.first = False
                if kind != SETTINGS:
                    return "preface not followed by SETTINGS"
            if kind == PRIORITY and not int.from_bytes(data[at + 5 : at + 9], "big") & 0x7FFFFFFF:
                return "PRIORITY on stream 0"
            at += 9 + length
        if at > size:
            self._skip = at - size
        else:
            self._skip = 0
            self._head = data[at:]
        return None
