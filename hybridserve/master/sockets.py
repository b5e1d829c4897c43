"""Listening sockets, bound once by the master and inherited by every worker."""

from __future__ import annotations

import contextlib
import errno
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


@dataclass(frozen=True, slots=True)
class Listener:
    """A listening socket; ``created_path`` is a Unix socket file we made (ours to remove)."""

    value: str  # the bind it serves, as a user would write it
    sock: socket.socket
    created_path: str | None = None


def bind(spec: BindSpec, backlog: int) -> socket.socket:
    """A listening, non-blocking, inheritable socket; raises OSError with the reason."""
    if spec.fd is not None:
        return adopt(spec.fd, backlog, keep_backlog=False)
    if spec.family == socket.AF_UNIX:
        assert isinstance(spec.address, str)
        _claim_unix_path(spec.address)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(spec.address)
        except OSError:
            sock.close()
            raise
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
    return _ready(sock, backlog)


def adopt(fd: int, backlog: int, *, keep_backlog: bool) -> socket.socket:
    """A socket someone else opened (systemd, fd://N, the master before a USR2).

    With ``keep_backlog`` (no explicit ``--backlog``) one already listening keeps the backlog
    its opener chose: systemd's 4096 must not shrink to our default.
    """
    sock = socket.socket(fileno=fd)
    if keep_backlog and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.setblocking(False)
        sock.set_inheritable(True)
        return sock
    return _ready(sock, backlog)


def _ready(sock: socket.socket, backlog: int) -> socket.socket:
    sock.listen(backlog)
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def _claim_unix_path(path: str) -> None:
    """Remove a stale socket file; refuse, as TCP would, a path a live server listens on."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return  # not a socket: bind() says "address in use"; never delete a file
    except FileNotFoundError:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # nobody listens: left behind by a server that died
            return
        except BlockingIOError:
            pass  # its backlog is full: very much alive
        except OSError:
            return  # cannot tell (no permission): leave it to bind()
    raise OSError(errno.EADDRINUSE, "Address already in use (a server is listening there)")


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


def open_listeners(
    binds: tuple[str, ...], backlog: int, *, bind_given: bool = True, backlog_given: bool = True
) -> list[Listener]:
    """The sockets to serve: inherited ones, activated ones, then each ``binds`` address.

    A master re-executed by USR2 serves exactly the sockets it was handed. Under systemd
    socket activation (``LISTEN_FDS``) the activated sockets are served, all of them unless
    ``fd://N`` binds pick some (the others are closed), and so is every other address in
    ``binds`` if it was given rather than the default. Adopted sockets keep their backlog
    unless ``backlog_given``. OSError names the bind that failed; nothing stays open then.
    """
    specs = [parse_bind(value) for value in binds]  # ConfigError before anything is bound
    handed = inherited_fds()
    keep = not backlog_given
    if handed is not None:
        return [Listener(f"fd://{fd}", adopt(fd, backlog, keep_backlog=keep)) for fd in handed]
    activated = systemd.listen_fds()
    chosen = list(zip(binds, specs, strict=True)) if bind_given or not activated else []
    picked = {spec.fd for _, spec in chosen if spec.fd is not None}
    listeners: list[Listener] = []
    try:
        if not picked:
            listeners += [
                Listener(f"fd://{fd}", adopt(fd, backlog, keep_backlog=keep)) for fd in activated
            ]
        for value, spec in chosen:
            listeners.append(_open(value, spec, backlog, keep))
    except OSError:
        for listener in listeners:
            listener.sock.close()
        raise
    for fd in activated:
        if picked and fd not in picked:
            with contextlib.suppress(OSError):
                os.close(fd)  # left open, it would queue connections nobody accepts
    return listeners


def _open(value: str, spec: BindSpec, backlog: int, keep: bool) -> Listener:
    try:
        if spec.fd is not None:
            return Listener(value, adopt(spec.fd, backlog, keep_backlog=keep))
        sock = bind(spec, backlog)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {value}: {exc.strerror or exc}") from None
    path = spec.address if isinstance(spec.address, str) else None
    return Listener(value, sock, path)
