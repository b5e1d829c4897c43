"""``--static`` mounts: requests under a mount are answered by the worker, never the app.

The path is vetted without I/O (``sansio/static.py``); the file is opened and stat'ed in a
thread (``Offload``), never on the loop; the answer (conditions, ranges, codings) comes
from ``sansio/conditional.py``; the body goes out through the channel's ``send_file``,
zero-copy on plain TCP.

Containment: after opening, the thread asks the kernel where the opened file really is
(``/proc/self/fd``, else ``realpath``) and refuses anything outside the mount's real root,
so a symlink that leads out is a 404, while one that stays inside works. Checking the
opened descriptor rather than the name leaves no gap between the check and the use.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass

from hybridserve.apps.types import Channel, FileBody
from hybridserve.config_groups import Static
from hybridserve.config_values import parse_static_mount
from hybridserve.errors import ConfigError
from hybridserve.sansio.conditional import (
    CODINGS,
    SUFFIXES,
    Representation,
    choose_coding,
    plan,
)
from hybridserve.sansio.events import Headers, Request
from hybridserve.sansio.static import Found, Mount, Mounts, Refused, compressible, content_type
from hybridserve.worker.offload import Offload

log = logging.getLogger("hybridserve.error")

INDEX = b"index.html"
# Files up to this size are read in the lookup's thread and written with their head in one
# write: for them a second syscall (sendfile) and a second packet cost more than the copy.
INLINE_MAX_BYTES = 16 * 1024
TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
ALLOW = (b"allow", b"GET, HEAD")


def check_mounts(config: Static, chdir: str | None) -> None:
    """Every mount's directory exists (relative ones under ``--chdir``); ConfigError if not."""
    for spec in config.mounts:
        _, directory = parse_static_mount(spec)
        if not os.path.isdir(os.path.join(chdir or ".", directory)):
            raise ConfigError(f"--static {spec!r}: {directory!r} is not a directory")


@dataclass(frozen=True, slots=True)
class Opened:
    """A regular file inside the root, open, with what the response needs to know."""

    fd: int  # -1 when ``data`` holds the whole file
    rep: Representation
    vary: bool
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class Missing:
    status: int  # 403 or 404


@dataclass(frozen=True, slots=True)
class Redirect:
    """A directory named without its trailing slash (with index files on)."""


Lookup = Opened | Missing | Redirect


def _open_inside(path: bytes, root: bytes) -> tuple[int, os.stat_result]:
    """Open ``path`` if it really is under ``root``; FileNotFoundError if it is not."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        try:
            real = os.readlink(b"/proc/self/fd/%d" % fd)
        except OSError:  # no /proc: ask the name instead (a narrow race, outside Linux)
            real = os.path.realpath(path)
        if real != root and not real.startswith(root + b"/"):
            raise FileNotFoundError(errno.ENOENT, "outside the static root")
        return fd, os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise


def lookup(found: Found, accept_encoding: bytes | None, index: bool) -> Lookup:
    """In a thread: the file a vetted path names, opened, and the coding to send it in."""
    root = found.mount.root
    path = root + b"/" + found.relative if found.parts else root
    try:
        fd, st = _open_inside(path, root)
        if stat.S_ISDIR(st.st_mode):
            os.close(fd)
            if not index:
                return Missing(404)
            if not found.directory:
                return Redirect()
            path += b"/" + INDEX
            fd, st = _open_inside(path, root)
    except PermissionError:
        return Missing(403)
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
            raise
        return Missing(404)  # absent, not a directory, a loop, a name too long...
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return Missing(404)
    kind = content_type(path).encode("latin-1")
    rep = Representation(st.st_size, st.st_mtime_ns, kind)
    if accept_encoding is None or not compressible(kind.decode("latin-1")):
        # No Accept-Encoding: the plain file, and no sibling lookups. Without Vary a
        # shared cache may keep it for everyone, which is safe (it is always decodable).
        return _inline(Opened(fd, rep, vary=False))
    siblings = tuple(c for c in CODINGS if os.path.isfile(path + SUFFIXES[c].encode()))
    coding = choose_coding(accept_encoding, siblings)
    if coding is not None:
        try:
            sibling_fd, sibling = _open_inside(path + SUFFIXES[coding].encode(), root)
        except OSError:
            pass  # gone meanwhile, or led outside: the plain file it is
        else:
            os.close(fd)
            fd, rep = sibling_fd, Representation(sibling.st_size, sibling.st_mtime_ns, kind, coding)
    return _inline(Opened(fd, rep, vary=bool(siblings)))


def _inline(opened: Opened) -> Opened:
    """A small file's bytes instead of its descriptor (unless it changed since fstat)."""
    if opened.rep.size > INLINE_MAX_BYTES:
        return opened
    try:
        data = os.pread(opened.fd, opened.rep.size + 1, 0)
    finally:
        os.close(opened.fd)
    if len(data) != opened.rep.size:
        raise OSError(errno.EAGAIN, "the file changed while it was read")
    return Opened(-1, opened.rep, opened.vary, data)


class StaticFiles:
    """A worker's mounts, and the cycles that answer requests under them."""

    def __init__(self, config: Static, offload: Offload) -> None:
        mounts = []
        for spec in config.mounts:
            prefix, directory = parse_static_mount(spec)
            root = os.fsencode(os.path.realpath(directory))
            mounts.append(Mount(prefix.encode("utf-8"), root))
        self.mounts = Mounts(mounts)
        self.offload = offload
        self.index = config.index
        max_age = config.max_age_s
        self.cache_control = b"public, max-age=%d" % max_age if max_age else b"no-cache"

    def cycle(
        self, request: Request, channel: Channel, on_end: Callable[[], None]
    ) -> StaticFileCycle | None:
        """The cycle for a request under a mount (``on_end`` runs once when it is over);
        None for the app's requests."""
        found = self.mounts.match(request.target)
        if found is None:
            return None
        return StaticFileCycle(self, request, channel, found, on_end)


class StaticFileCycle:
    """One request under a mount: look up in a thread, then answer on the loop."""

    def __init__(
        self,
        files: StaticFiles,
        request: Request,
        channel: Channel,
        found: Found | Refused,
        on_end: Callable[[], None],
    ) -> None:
        self._files = files
        self._request = request
        self._channel = channel
        self._found = found
        self._gone = False
        self._on_end: Callable[[], None] | None = on_end

    def _end(self, whole: bool = True) -> None:
        """The response is over (sent, cut short, or the client left): say so once."""
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()

    def start(self) -> None:
        found, method = self._found, self._request.method
        if isinstance(found, Refused):
            self._text(found.status, found.reason)
        elif method not in (b"GET", b"HEAD"):
            self._text(405, "only GET and HEAD", [ALLOW])
        else:
            accept = next((v for n, v in self._request.headers if n == b"accept-encoding"), None)
            job: Callable[[], Lookup] = lambda: lookup(found, accept, self._files.index)  # noqa: E731
            self._files.offload.run(job, self._looked_up)

    def _looked_up(self, result: Lookup | Exception) -> None:
        if isinstance(result, Opened) and self._gone and result.fd >= 0:
            os.close(result.fd)
        if self._gone:
            return
        if isinstance(result, Opened):
            self._send(result)
        elif isinstance(result, Missing):
            self._text(result.status, "not found" if result.status == 404 else "forbidden")
        elif isinstance(result, Redirect):
            path, _, query = self._request.target.partition(b"?")
            location = path + b"/" + (b"?" + query if query else b"")
            self._text(301, "moved", [(b"location", location)])
        else:
            log.error("static file lookup failed for %r: %s", self._request.target, result)
            self._text(503, "cannot open files now")

    def _send(self, opened: Opened) -> None:
        files = self._files
        answer = plan(
            self._request.method,
            self._request.headers,
            opened.rep,
            cache_control=files.cache_control,
            vary=opened.vary,
            boundary=lambda: secrets.token_hex(12).encode(),
        )
        data, pieces = opened.data, answer.pieces
        if data is None and any(isinstance(piece, tuple) for piece in pieces):
            body = FileBody(opened.fd, pieces)
            self._channel.send_file(answer.status, answer.headers, body, self._end)
            return
        if data is not None:  # a small file, read with its lookup
            parts = [p if isinstance(p, bytes) else data[p[0] : p[0] + p[1]] for p in pieces]
        else:  # 304, 412, 416, HEAD: nothing from the file
            os.close(opened.fd)
            parts = [p for p in pieces if isinstance(p, bytes)]
        try:
            self._channel.send_head(answer.status, answer.headers, b"".join(parts), True)
        finally:
            self._end()

    def _text(self, status: int, reason: str, extra: Headers | None = None) -> None:
        body = reason.encode() + b"\n" if status != 304 else b""
        try:
            self._channel.send_head(status, TEXT + (extra or []), body, True)
        finally:
            self._end()

    # -- the Cycle protocol: nothing to feed, nothing to stop ----------------------------
    def feed_body(self, data: bytes) -> None:
        """A body sent with GET is of no interest."""

    def feed_end(self) -> None: ...

    def disconnected(self) -> None:
        self._gone = True
        self._end()

    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...
    def expire(self) -> None: ...
    def shutdown(self) -> None:
        """A file response is short-lived: the drain lets it finish."""
