"""The master's control socket (``--control-socket PATH``): ask it, or tell it what to do.

How it works: a Unix stream socket (mode 0600: whoever can use it can stop the server) that
the master's select loop drives exactly like the metrics endpoint, with no thread. A client
sends one request as a line of JSON, ``{"command": "workers"}`` or ``{"command": "add",
"n": 2}``, and gets one line back, ``{"ok": true, "result": ...}`` or ``{"ok": false,
"error": "..."}``; then the master ends the connection. Each client is bounded: a request
longer than ``MAX_REQUEST_BYTES`` gets an error answer, an exchange not over within
``CLIENT_DEADLINE_S`` is dropped; past ``MAX_CLIENTS`` new ones are answered "too many" at once (and
past twice that, closed); answers are written as the
socket takes them, so a client that never reads costs a buffer, never a blocked master.

Commands that change something (reload, add, remove, reopen, stop) only queue work for the
master loop, as its signal handlers do; the answer says it was accepted.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hybridserve.errors import ConfigError

CLIENT_DEADLINE_S = 2.0  # a local tool answers in milliseconds; anything slower is stuck
MAX_REQUEST_BYTES = 4096  # the longest real request is ~40 bytes
MAX_CLIENTS = 16  # `top` needs one at a time; a flood must not grow the master's fd table
COMMANDS = ("status", "workers", "reload", "add", "remove", "reopen", "stop")
COUNTED = ("add", "remove")  # commands that take a number of workers
ACTS_AS = {  # a command that changes something does what this signal does
    "reload": signal.SIGHUP,
    "add": signal.SIGTTIN,
    "remove": signal.SIGTTOU,
    "reopen": signal.SIGUSR1,
    "stop": signal.SIGTERM,
}


class ControlError(Exception):
    """A request the master refuses; its message is the error answer."""


@dataclass(frozen=True, slots=True)
class Request:
    command: str
    n: int = 0


Handler = Callable[[Request], Any]


def parse_request(line: bytes) -> Request:
    """One JSON line as a Request; ControlError says what is wrong with it."""
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ControlError("not a JSON object") from None
    if not isinstance(data, dict):
        raise ControlError("not a JSON object")
    command = data.get("command")
    if command not in COMMANDS:
        raise ControlError(f"unknown command {command!r}; one of: {', '.join(COMMANDS)}")
    if command not in COUNTED:
        return Request(command)
    n = data.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ControlError(f"{command}: n must be a whole number of workers, at least 1")
    return Request(command, n)


def plan(request: Request, target: int, *, most: int) -> tuple[int, str, int]:
    """The signal a changing request acts as, its words for the log, and how many times.

    ``target`` is the worker count now, ``most`` the largest the master can hold.
    """
    n = request.n
    if request.command == "add" and target + n > most:
        raise ControlError(f"add {n}: {target} workers now, at most {most}")
    if request.command == "remove" and target - n < 1:
        raise ControlError(f"remove {n}: {target} workers now, at least 1 must stay")
    if request.command in COUNTED:
        return ACTS_AS[request.command], f"{request.command} {n}", n
    return ACTS_AS[request.command], request.command, 1


def answer(handler: Handler, line: bytes) -> bytes:
    """The response line to one request line."""
    try:
        result = {"ok": True, "result": handler(parse_request(line))}
    except ControlError as exc:
        result = {"ok": False, "error": str(exc)}
    return json.dumps(result, separators=(",", ":")).encode() + b"\n"


def bind(path: str) -> socket.socket:
    """A listening Unix socket at ``path`` that only this user can use.

    A socket file nobody answers on is stale and replaced; a live one is another server's,
    unless that server is our parent: a master started by USR2 takes its parent's over (the
    parent leaves a socket file that is no longer its own in place when it exits).
    """
    if os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise ConfigError(f"--control-socket {path}: exists and is not a socket")
        owner = _owner(path)
        if owner is not None and owner != os.getppid():
            raise ConfigError(f"--control-socket {path}: another server is listening there")
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # created 0600: no moment when others could connect
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--control-socket {path}: {exc.strerror or exc}") from None
    finally:
        os.umask(old)
    sock.listen(MAX_CLIENTS)
    sock.setblocking(False)
    return sock


def _owner(path: str) -> int | None:
    """The pid of the master answering at ``path``; None if nobody does (0: not known)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:
            return None
        try:
            probe.sendall(b'{"command": "status"}\n')
            answer = json.loads(probe.makefile("rb").readline(MAX_REQUEST_BYTES * 64))
            return int(answer["result"]["pid"])
        except (OSError, ValueError, TypeError, KeyError):
            return 0


@dataclass(slots=True)
class _Client:
    sock: socket.socket
    started: float
    inbox: bytearray
    outbox: bytes = b""
    answered: bool = False


class ControlServer:
    """Answers control requests on its listener from inside the master's select loop."""

    def __init__(self, sock: socket.socket, handler: Handler) -> None:
        self.sock = sock
        self.path = str(sock.getsockname())
        self._inode = os.stat(self.path).st_ino
        self._handler = handler
        self._clients: dict[int, _Client] = {}

    def fds(self) -> list[int]:
        return [self.sock.fileno(), *self._clients]

    def write_fds(self) -> list[int]:
        return [fd for fd, client in self._clients.items() if client.outbox]

    def on_readable(self, fd: int) -> None:
        if fd == self.sock.fileno():
            self._accept()
            return
        client = self._clients.get(fd)
        if client is None:
            return
        try:
            data = client.sock.recv(MAX_REQUEST_BYTES + 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(fd)
            return
        if client.answered:  # past the request: read and drop until the client closes
            return
        client.inbox += data
        line, newline, _ = client.inbox.partition(b"\n")
        if newline:
            self._reply(fd, answer(self._handler, bytes(line)))
        elif len(client.inbox) > MAX_REQUEST_BYTES:
            self._reply(fd, _error(f"request longer than {MAX_REQUEST_BYTES} bytes"))

    def on_writable(self, fd: int) -> None:
        client = self._clients.get(fd)
        if client is not None and client.outbox:
            self._flush(fd)

    def sweep(self) -> None:
        """Drop clients whose exchange is not over in time."""
        now = time.monotonic()
        for fd, client in list(self._clients.items()):
            if now - client.started > CLIENT_DEADLINE_S:
                self._close(fd)

    def close(self) -> None:
        for fd in list(self._clients):
            self._close(fd)
        self.sock.close()
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:  # not yet a newer master's
                os.unlink(self.path)

    def close_in_child(self) -> None:
        """In a forked worker: let go of the descriptors, leave the socket file alone."""
        for client in self._clients.values():
            client.sock.close()
        self.sock.close()

    def _accept(self) -> None:
        try:
            client, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        client.setblocking(False)
        if len(self._clients) >= 2 * MAX_CLIENTS:
            client.close()
            return
        fd = client.fileno()
        self._clients[fd] = _Client(client, time.monotonic(), bytearray())
        if sum(not c.answered for c in self._clients.values()) > MAX_CLIENTS:
            # Turned away with an answer (as many again may wait for theirs to be read).
            self._reply(fd, _error("too many control clients; try again"))

    def _reply(self, fd: int, payload: bytes) -> None:
        client = self._clients[fd]
        client.answered = True
        client.outbox = payload
        self._flush(fd)

    def _flush(self, fd: int) -> None:
        client = self._clients[fd]
        try:
            sent = client.sock.send(client.outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(fd)
            return
        client.outbox = client.outbox[sent:]
        if not client.outbox:
            # Closing with unread input would reset the connection and lose the answer:
            # say we are done and wait for the client to close (or the deadline).
            with contextlib.suppress(OSError):
                client.sock.shutdown(socket.SHUT_WR)

    def _close(self, fd: int) -> None:
        client = self._clients.pop(fd)
        with contextlib.suppress(OSError):
            client.sock.close()


def _error(message: str) -> bytes:
    return json.dumps({"ok": False, "error": message}).encode() + b"\n"
