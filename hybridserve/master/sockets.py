"""Listening sockets, bound once by the master and inherited by every worker."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from dataclasses import dataclass

from hybridserve.errors import ConfigError
from hybridserve.master import systemd

INHERIT_ENV = "HYBRIDSERVE_INHERITED_FDS"  # set by a master re-executing itself (USR2)


@dataclass(frozen=True, slots=True)
class BindSpec:
    """One parsed ``--bind`` value."""

    family: socket.AddressFamily
    address: str | tuple[str, int] | None  # None for fd://N
    fd: int | None = None


def parse_bind(value: str) -> BindSpec:
    """``HOST:PORT``, ``[IPV6]:PORT``, ``:PORT``, ``unix:PATH`` or ``fd://N``."""
    if value.startswith("unix:"):
        path = value[5:]
        if not path:
            raise ConfigError(f"bind {value!r} needs a path after 'unix:'")
        return BindSpec(socket.AF_UNIX, path)
    if value.startswith("fd://"):
        try:
            fd = int(value[5:])
        except ValueError:
            raise ConfigError(f"bind {value!r}: fd://N needs a number") from None
        return BindSpec(socket.AF_UNSPEC, None, fd)
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        family = socket.AF_INET6
        if not sep:
            raise ConfigError(f"bind {value!r} must look like [IPV6]:PORT")
    else:
        host, sep, port = value.rpartition(":")
        if not sep:
            host, port = value, "8000"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"bind {value!r}: port must be a number from 0 to 65535")
    return BindSpec(family, (host or "0.0.0.0", int(port)))


def bind(spec: BindSpec, backlog: int) -> socket.socket:
    """A listening, non-blocking, inheritable socket; raises OSError with the reason."""
    if spec.fd is not None:
        sock = socket.socket(fileno=spec.fd)
    elif spec.family == socket.AF_UNIX:
        assert isinstance(spec.address, str)
        _remove_stale_unix_socket(spec.address)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(spec.address)
    else:
        assert isinstance(spec.address, tuple)
        sock = socket.socket(spec.family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if spec.family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(spec.address)
        except OSError:
            sock.close()
            raise
    sock.listen(backlog)
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def _remove_stale_unix_socket(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)


def describe(sock: socket.socket, *, tls: bool = False) -> str:
    """The URL a user would type to reach this listener."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{name}"
    scheme = "https" if tls else "http"
    if sock.family == socket.AF_INET6:
        return f"{scheme}://[{name[0]}]:{name[1]}"
    return f"{scheme}://{name[0]}:{name[1]}"


def inherited_fds() -> list[int] | None:
    """Listener fds handed over by the master that started us with USR2, if any."""
    value = os.environ.pop(INHERIT_ENV, None)
    if not value:
        return None
    return [int(fd) for fd in value.split(",")]


def open_listeners(binds: tuple[str, ...], backlog: int) -> list[tuple[str, socket.socket]]:
    """Inherited sockets when re-executed, else bind each address; OSError names the cause.

    Returns ``(bind value, socket)`` pairs in ``binds`` order. Parsing errors raise
    ConfigError before anything is bound.
    """
    specs = [parse_bind(value) for value in binds]
    fds = inherited_fds()
    activated = systemd.listen_fds()
    if activated and fds is None:
        wanted = [spec.fd for spec in specs if spec.fd is not None]
        fds = wanted or activated  # without fd://N binds, serve every activated socket
        binds = tuple(f"fd://{fd}" for fd in fds)
    if fds is not None:
        return [
            (value, bind(BindSpec(socket.AF_UNSPEC, None, fd), backlog))
            for value, fd in zip(binds, fds, strict=False)
        ]
    listeners = []
    for value, spec in zip(binds, specs, strict=True):
        try:
            listeners.append((value, bind(spec, backlog)))
        except OSError as exc:
            for _, sock in listeners:
                sock.close()
            raise OSError(exc.errno, f"cannot listen on {value}: {exc.strerror or exc}") from None
    return listeners
