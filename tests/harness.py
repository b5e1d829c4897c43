"""Drive a real ``python -m hybridserve`` and talk to it over real sockets.

The server binds ``127.0.0.1:0``; we wait for its ``Listening at`` line to learn the port
and for ``Ready:`` before talking to it, never sleeping and hoping.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"
LISTENING = re.compile(r"Listening at (?P<scheme>https?)://(?P<host>[^\s]+):(?P<port>\d+)")


class Server:
    """One hybridserve process tree started by a test."""

    def __init__(
        self,
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        prefix: Sequence[str] = (),
        pass_fds: Sequence[int] = (),
    ):
        """``prefix`` runs before python (systemd-socket-activate ...); ``pass_fds`` it inherits."""
        self.args = list(args)
        self.prefix = list(prefix)
        self.pass_fds = tuple(pass_fds)
        binds = ("-b", "--bind", "--host", "--port")
        if not any(a in binds or a.startswith("--bind=") for a in self.args):
            self.args += ["--bind", "127.0.0.1:0"]
        self.cwd = cwd or APPS
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.scheme = "http"

    # -- lifecycle ----------------------------------------------------------------
    def start(self, *, ready: bool = True, timeout_s: float = 20) -> Server:
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "hybridserve", *self.args],
            cwd=self.cwd,
            pass_fds=self.pass_fds,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if ready:
            match = self.wait_for(LISTENING, timeout_s)
            self.host, self.port = match["host"], int(match["port"])
            self.scheme = match["scheme"]
            self.wait_for("Ready: ", timeout_s)
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with self.proc.stdout as stream:
            for line in stream:
                with self._cond:
                    self.lines.append(line.rstrip("\n"))
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout_s: float = 10, *, after: int = 0
    ) -> re.Match[str]:
        """Wait for a log line matching ``pattern`` (searched from line ``after``)."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout_s
        seen = after
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self._exited():
                    raise AssertionError(f"no log line matching {regex.pattern!r}:\n{self.log}")
                self._cond.wait(min(left, 0.1))

    def wait_entered(self, target: str, timeout_s: float = 10, *, after: int = 0) -> None:
        """Wait until ``announce_app`` says a request for ``target`` (path?query) is in it."""
        self.wait_for(re.escape(f"app entered {target}") + "$", timeout_s, after=after)

    def _exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    @property
    def log(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout_s: float = 20) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout_s)
        if self._reader is not None:  # it ends at EOF: when no process holds the pipe
            self._reader.join(1)  # a new master (USR2) may hold it: then its lines so far
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20) -> int:
        """Stop the server (by its pid) and return its exit code; kill it if it hangs."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.send_signal(sig)
            try:
                return self.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(5)
                raise AssertionError(f"server did not stop in {timeout_s}s:\n{self.log}") from None
        return self.proc.returncode

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def __enter__(self) -> Server:
        return self if self.proc is not None else self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()

    # -- clients ------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def connect(self, timeout_s: float = 10) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout_s)

    def exchange(self, raw: bytes, timeout_s: float = 10) -> bytes:
        """Send ``raw`` on a new connection and read until the server closes it."""
        with self.connect(timeout_s) as sock:
            sock.sendall(raw)
            return read_until_close(sock)


def wait_until(predicate: Callable[[], object], timeout_s: float) -> bool:
    """Poll ``predicate`` every 20 ms until it is true (True) or time runs out (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def read_until_close(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


@dataclass
class Response:
    """A parsed HTTP/1.1 response read from a raw socket."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes = b""
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class SocketReader:
    """Reads responses one at a time from a socket, keeping what it read ahead."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("connection closed mid-response")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("connection closed mid-body")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, *, head_request: bool = False) -> Response:
        while True:
            status_line = self._line()
            head = [status_line]
            headers = []
            while line := self._line():
                head.append(line)
                name, _, value = line.decode("latin-1").partition(":")
                headers.append((name.strip(), value.strip()))
            status = int(status_line.split()[1])
            if status >= 200 or status == 101:
                break
        response = Response(status, headers, b"", b"\r\n".join(head))
        te = (response.header("transfer-encoding") or "").lower()
        length = response.header("content-length")
        if head_request or status in (204, 304) or status < 200:
            return response
        if te == "chunked":
            parts = []
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while trailer := self._line():
                        name, _, value = trailer.decode("latin-1").partition(":")
                        response.trailers.append((name.strip(), value.strip()))
                    break
                parts.append(self._exact(size))
                self._exact(2)
            response.body = b"".join(parts)
        elif length is not None:
            response.body = self._exact(int(length))
        else:
            while self._fill():
                pass
            response.body, self.buf = self.buf, b""
        return response


def read_response(sock: socket.socket) -> Response:
    return SocketReader(sock).read_response()


def get(path: str = "/", *, host: str = "test", headers: str = "", version: str = "1.1") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: {host}\r\n{headers}\r\n".encode("latin-1")


def start_on_free_port(
    name: str, launch: Callable[[int], subprocess.Popen[bytes]], probe: Callable[[int], object]
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server that cannot bind port 0 (nginx, HAProxy): try a few random loopback
    ports, each until ``probe(port)`` stops raising OSError (at most 5 s) or it exits."""
    for _ in range(10):
        port = random.randint(20000, 60000)
        proc = launch(port)
        for _ in range(100):
            if proc.poll() is not None:
                break
            try:
                probe(port)
                return proc, port
            except OSError:
                time.sleep(0.05)  # the poll interval of this bounded wait
        if proc.poll() is None:
            proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()
    raise AssertionError(f"{name} did not start on any of 10 ports")
