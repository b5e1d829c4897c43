"""What a WSGI app is given (PEP 3333): the environ, ``wsgi.input`` fed by the loop and read
by the app's thread, and ``wsgi.file_wrapper``.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterator
from typing import IO
from urllib.parse import unquote_to_bytes

from hybridserve.apps.types import Address, Environ, TLSInfo
from hybridserve.errors import ClientDisconnected
from hybridserve.sansio.events import Headers, Request

INPUT_HIGH_BYTES = 256 * 1024  # unread request body that pauses reading the socket


class WSGIInput:
    """``wsgi.input``: a stream fed by the loop, read by the app's thread."""

    def __init__(self, loop_resume: Callable[[], None]) -> None:
        self._buf = bytearray()
        self._eof = False
        self._gone = False
        self._paused = False
        self._cond = threading.Condition(threading.Lock())
        self._loop_resume = loop_resume  # thread-safe: schedules resume_reading on the loop

    # -- loop thread --------------------------------------------------------------
    def feed(self, data: bytes) -> bool:
        """Add body bytes; returns True when the reader is behind and reading should pause."""
        with self._cond:
            self._buf += data
            self._cond.notify()
            # Only the reader un-pauses: clearing the flag here could leave the socket
            # paused with nobody left to resume it.
            self._paused = self._paused or len(self._buf) > INPUT_HIGH_BYTES
            return self._paused

    def feed_eof(self, *, disconnected: bool = False) -> None:
        with self._cond:
            self._eof = True
            self._gone = disconnected
            self._cond.notify()

    # -- app thread ---------------------------------------------------------------
    def _wait(self, ready: Callable[[], bool]) -> None:
        """Block until ``ready()`` or EOF; un-pause the socket first so bytes can come."""
        while not self._eof and not ready():
            if self._paused:
                self._paused = False
                self._loop_resume()
            self._cond.wait()

    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        if self._paused and len(self._buf) <= INPUT_HIGH_BYTES // 2:
            self._paused = False
            self._loop_resume()
        return data

    def read(self, size: int | None = -1) -> bytes:
        with self._cond:
            if size is None or size < 0:
                self._wait(lambda: False)
                size = len(self._buf)
            else:
                want = size
                self._wait(lambda: len(self._buf) >= want)
            if self._gone and not self._buf:
                raise ClientDisconnected("client disconnected while sending the body")
            return self._take(min(size, len(self._buf)))

    def readline(self, size: int | None = -1) -> bytes:
        limit = sys.maxsize if size is None or size < 0 else size
        with self._cond:
            self._wait(lambda: b"\n" in self._buf or len(self._buf) >= limit)
            end = self._buf.find(b"\n")
            return self._take(min(len(self._buf) if end < 0 else end + 1, limit))

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class FileWrapper:
    """``wsgi.file_wrapper``: iterate a file in blocks and close it when done.

    A wrapper around a regular file with a descriptor never gets iterated: the worker
    sends the file from the descriptor, zero-copy on plain TCP (``WSGICycle._file_body``).
    """

    def __init__(self, filelike: IO[bytes], blksize: int = 64 * 1024) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        while data := self.filelike.read(self.blksize):
            yield data


def _path_and_query(target: bytes, root_path: str) -> tuple[str, bytes]:
    """PATH_INFO (decoded once, without the root path) and the raw query string."""
    if not target.startswith(b"/") and b"://" in target:  # absolute-form
        target = b"/" + target.split(b"://", 1)[1].partition(b"/")[2]
    raw_path, _, query = target.partition(b"?")
    path = unquote_to_bytes(raw_path).decode("latin-1")
    if root_path and (path == root_path or path.startswith(root_path + "/")):
        path = path[len(root_path) :]
    return path, query


def build_environ(
    request: Request,
    *,
    client: Address,
    server: Address,
    scheme: str,
    root_path: str,
    body: WSGIInput | io.BytesIO,
    multiprocess: bool,
    tls: TLSInfo | None = None,
) -> Environ:
    """The PEP 3333 environ. Strings are latin-1, as the PEP requires for native strings."""
    path, query = _path_and_query(request.target, root_path)
    # A Unix socket has no host or port, but PEP 3333 wants both non-empty (as waitress).
    server_name, server_port = server if server else ("localhost", 443 if scheme == "https" else 80)
    environ: Environ = {
        "REQUEST_METHOD": request.method.decode("latin-1"),
        "SCRIPT_NAME": root_path,
        "PATH_INFO": path,
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": "HTTP/" + request.http_version.decode("latin-1"),
        "REMOTE_ADDR": client[0] if client else "",
        "REMOTE_PORT": str(client[1]) if client else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": body,
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
    }
    _add_headers(environ, request.headers)
    if tls is not None:
        environ.update(ssl_variables(tls))
    return environ


def _add_headers(environ: Environ, headers: Headers) -> None:
    """``HTTP_*`` keys (and CONTENT_*, and SERVER_NAME/PORT from Host), joined as PEP 3333
    and RFC 9110 §5.3 say: by commas, cookies by semicolons."""
    for name, value in headers:
        if b"_" in name:
            continue  # would alias a dashed header in the environ (header spoofing)
        text = value.decode("latin-1")
        if name == b"content-type":
            environ["CONTENT_TYPE"] = text
        elif name == b"content-length":
            environ["CONTENT_LENGTH"] = text
        elif name == b"host":
            environ["HTTP_HOST"] = text
            host, colon, port = text.rpartition(":")
            if not (colon and port.isdigit()):  # no port: "10.0.0.1", "[::1]"
                host, port = text, ""
            if host:  # an empty Host must not empty SERVER_NAME (PEP 3333 requires it)
                environ["SERVER_NAME"] = host
            if port:
                environ["SERVER_PORT"] = port
        else:
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
            if key in environ:
                sep = "; " if key == "HTTP_COOKIE" else ","
                environ[key] += sep + text
            else:
                environ[key] = text


def ssl_variables(tls: TLSInfo) -> dict[str, str]:
    """mod_ssl's names for the TLS session (what gunicorn and mod_wsgi users read)."""
    variables = {
        "HTTPS": "on",
        "SSL_PROTOCOL": tls.protocol,
        "SSL_CIPHER": tls.cipher,
        "SSL_CLIENT_VERIFY": "SUCCESS" if tls.client_cert_chain else "NONE",
    }
    if tls.client_cert_chain:
        variables["SSL_CLIENT_CERT"] = tls.client_cert_chain[0]
        for i, pem in enumerate(tls.client_cert_chain[1:]):
            variables[f"SSL_CLIENT_CERT_CHAIN_{i}"] = pem
    if tls.client_cert_name is not None:
        variables["SSL_CLIENT_S_DN"] = tls.client_cert_name
    return variables
