"""The fast parser backend: llhttp through httptools, with h11's strictness added back.

httptools parses everything it is given in one call, and calls back with events that wait
in a queue until their cycle asks for them. ``ServerConnection`` feeds one request at a
time (a whole, judged head, then its body), so the queue rarely holds more than that.
"""

from __future__ import annotations

from collections import deque

import httptools

from hybridserve.errors import ProtocolError
from hybridserve.sansio.events import (
    CONNECTION_CLOSED,
    END_OF_REQUEST,
    Body,
    EndOfRequest,
    Event,
    Request,
)


class _ParkedError:
    """A parse error that belongs to a request after the current one."""

    __slots__ = ("error",)

    def __init__(self, error: ProtocolError) -> None:
        self.error = error


class HttptoolsBackend:
    """ParserBackend on httptools.HttpRequestParser."""

    name = "httptools"
    http10_keep_alive = True

    def __init__(self, max_head_bytes: int) -> None:
        self._max_head_bytes = max_head_bytes
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[Event | _ParkedError] = deque()
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._upgraded = False
        self._after_upgrade = b""
        self._failed = False
        self._eof = False
        self._current_done = False  # the current cycle's EndOfRequest was handed out

    # -- httptools callbacks ------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)
        self._check_head()

    def on_header(self, name: bytes, value: bytes) -> None:
        if value and value[-1] in b" \t":  # llhttp keeps trailing OWS (RFC 9110 §5.5)
            value = value.rstrip(b" \t")
        self._headers.append((name.lower(), value))
        # A backstop only (the connection judged the raw head): never count more than the
        # line can be, ":" and CRLF, or a head the rules took could be refused here.
        self._head_bytes += len(name) + len(value) + 3
        self._check_head()

    def on_headers_complete(self) -> None:
        parser = self._parser
        self._queue.append(
            Request(
                method=parser.get_method(),
                target=self._url,
                http_version=parser.get_http_version().encode("ascii"),
                headers=self._headers,
                keep_alive=False,
            )
        )

    def on_body(self, body: bytes) -> None:
        self._queue.append(Body(body))

    def on_message_complete(self) -> None:
        self._queue.append(END_OF_REQUEST)

    def _check_head(self) -> None:
        if self._head_bytes > self._max_head_bytes:
            raise ProtocolError("request head too large", 431)

    # -- ParserBackend ------------------------------------------------------------
    def feed(self, data: bytes) -> list[Event]:
        if not data:
            self._eof = True
            self._queue.append(CONNECTION_CLOSED)
        elif self._upgraded:
            self._after_upgrade += data
        elif not self._failed:
            self._parse(data)
        return [] if self._current_done else self._take()

    def next_cycle(self) -> list[Event]:
        self._current_done = False
        if self._upgraded:  # upgrade refused: what followed is plain HTTP again
            self._upgraded = False
            self._parser = httptools.HttpRequestParser(self)
            rest, self._after_upgrade = self._after_upgrade, b""
            if rest:
                self._parse(rest)
        return self._take()

    def _parse(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args and isinstance(exc.args[0], int) else len(data)
            self._upgraded = True
            self._after_upgrade = data[offset:]
        except ProtocolError as exc:
            self._fail(exc)
        except httptools.HttpParserCallbackError as exc:  # our own check, from a callback
            cause = exc.__context__
            self._fail(cause if isinstance(cause, ProtocolError) else ProtocolError(str(exc)))
        except httptools.HttpParserInvalidMethodError as exc:
            self._fail(ProtocolError(f"invalid method: {exc}", 400))
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"malformed request: {exc}", 400))

    def _fail(self, error: ProtocolError) -> None:
        self._failed = True
        self._queue.append(_ParkedError(error))

    def _take(self) -> list[Event]:
        out: list[Event] = []
        queue = self._queue
        while queue:
            item = queue.popleft()
            if isinstance(item, _ParkedError):
                raise item.error
            out.append(item)
            if type(item) is EndOfRequest:
                self._current_done = True
                break
            if item is CONNECTION_CLOSED:
                break
        return out
