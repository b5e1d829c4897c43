"""Static mounts without I/O: which mount a request target falls under, and which file.

How this works: a target's path is split from its query, percent-decoded exactly once, and
matched against the mounts by whole segments (longest prefix first). What follows the
prefix is checked segment by segment and returned as a relative ``bytes`` path, so the
worker never joins a string it has not vetted. Anything that could step outside the root
or be read two ways is refused here, before any file system call:

- ``..`` and ``.`` segments, in plain or encoded form (the decoding happens once, so
  ``%2e%2e`` is ``..``, and ``%252e`` stays a file named ``%2e``): 400;
- backslashes and NUL bytes, in plain or encoded form: 400; invalid percent-escapes: 400;
- dotfiles and dot-directories (``.env``, ``.git/``): 404, as if absent;
- empty segments (``a//b``) are dropped, so an "absolute" path after the prefix stays
  under the root.

Symlinks cannot be judged without I/O; the worker checks where the opened file really is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True, slots=True)
class Mount:
    """One ``--static PREFIX=DIR``: ``prefix`` without a trailing slash ("" for "/"), and
    ``root``, the directory's real path."""

    prefix: bytes
    root: bytes


@dataclass(frozen=True, slots=True)
class Found:
    """A target under a mount: ``parts`` are the vetted segments below its root."""

    mount: Mount
    parts: tuple[bytes, ...]
    directory: bool  # the target ended with "/" (or named the mount itself)

    @property
    def relative(self) -> bytes:
        return b"/".join(self.parts)


@dataclass(frozen=True, slots=True)
class Refused:
    """A target under a mount that no file can answer."""

    status: int  # 400 or 404
    reason: str


def target_path(target: bytes) -> bytes:
    """The raw path of an origin-form or absolute-form request target."""
    if not target.startswith(b"/") and b"://" in target:
        target = b"/" + target.split(b"://", 1)[1].partition(b"/")[2]
    return target.partition(b"?")[0].partition(b"#")[0]


def unquote_once(raw: bytes) -> bytes | None:
    """Percent-decode ``raw`` once; None if an escape is malformed."""
    if b"%" not in raw:
        return raw
    if _BAD_ESCAPE.search(raw):
        return None
    return _ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)), raw)


class Mounts:
    """The static mounts of a worker, longest prefix first."""

    def __init__(self, mounts: list[Mount]) -> None:
        self._mounts = sorted(mounts, key=lambda m: len(m.prefix), reverse=True)

    def __bool__(self) -> bool:
        return bool(self._mounts)

    def match(self, target: bytes) -> Found | Refused | None:
        """Where ``target`` leads; None when no mount claims it (the app answers)."""
        path = unquote_once(target_path(target))
        if path is None:
            if not any(_under(target_path(target), m.prefix) for m in self._mounts):
                return None
            return Refused(400, "malformed percent-escape")
        for mount in self._mounts:
            if _under(path, mount.prefix):
                return _vet(mount, path[len(mount.prefix) :])
        return None


def _under(path: bytes, prefix: bytes) -> bool:
    return path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == 47)


def _vet(mount: Mount, rest: bytes) -> Found | Refused:
    if b"\\" in rest or b"\0" in rest:
        return Refused(400, "backslash or NUL in the path")
    parts = tuple(part for part in rest.split(b"/") if part)
    for part in parts:
        if part in (b".", b".."):
            return Refused(400, "dot segment in the path")
        if part.startswith(b"."):
            return Refused(404, "hidden file")
    return Found(mount, parts, directory=not parts or rest.endswith(b"/"))


# -- media types --------------------------------------------------------------------------

TEXT_CHARSET = "; charset=utf-8"
DEFAULT_TYPE = "application/octet-stream"
# By extension, for what static directories hold; a fixed table rather than the system's
# mime.types, so every machine answers the same. Types that are text get a charset.
_TYPES = {
    "html": "text/html",
    "htm": "text/html",
    "css": "text/css",
    "js": "text/javascript",
    "mjs": "text/javascript",
    "json": "application/json",
    "map": "application/json",
    "webmanifest": "application/manifest+json",
    "txt": "text/plain",
    "md": "text/markdown",
    "csv": "text/csv",
    "xml": "text/xml",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
    "ico": "image/vnd.microsoft.icon",
    "bmp": "image/bmp",
    "woff": "font/woff",
    "woff2": "font/woff2",
    "ttf": "font/ttf",
    "otf": "font/otf",
    "eot": "application/vnd.ms-fontobject",
    "wasm": "application/wasm",
    "pdf": "application/pdf",
    "zip": "application/zip",
    "gz": "application/gzip",
    "tar": "application/x-tar",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
}
# Worth a precompressed sibling: text, and the few binary types that compress well.
_COMPRESSIBLE = frozenset({"application/json", "application/manifest+json", "image/svg+xml"})
_COMPRESSIBLE_EXTRA = frozenset({"application/wasm", "font/ttf", "font/otf", "image/bmp"})


def content_type(name: bytes) -> str:
    """The Content-Type for a file name, with ``charset=utf-8`` for text."""
    _, dot, ext = name.rpartition(b".")
    kind = _TYPES.get(ext.decode("latin-1").lower(), DEFAULT_TYPE) if dot else DEFAULT_TYPE
    return kind + TEXT_CHARSET if kind.startswith("text/") else kind


def compressible(kind: str) -> bool:
    """Whether a ``.br``/``.gz`` sibling is worth looking for."""
    base = kind.partition(";")[0]
    return base.startswith("text/") or base in _COMPRESSIBLE or base in _COMPRESSIBLE_EXTRA
