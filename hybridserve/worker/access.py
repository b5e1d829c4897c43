"""Access log lines: gunicorn's format atoms, or one JSON object per request.

The format is compiled once into a list of pieces, so a request costs one pass over them.
Everything that comes from the client is escaped (control bytes, quotes, backslashes as
``\\xNN``), so a hostile header can neither break a line nor forge one. The line is handed
to the ``hybridserve.access`` logger, whose handlers sit behind a queue in the worker: the
event loop never waits for a disk.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from hybridserve.sansio.events import Headers, Request

log = logging.getLogger("hybridserve.access")

GUNICORN_DEFAULT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
_ATOM = re.compile(r"%\((\{[^}]*\}[ieo]|[a-zA-Z])\)s")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\xff"\\]')


@dataclass(frozen=True, slots=True)
class Entry:
    """What the protocol knows about a finished request."""

    request: Request
    client: tuple[str, int] | None
    status: int
    body_bytes: int  # the response body as the app gave it: no head, no chunk framing
    duration_s: float
    response_headers: Headers
    reset: str = ""  # an HTTP/2 stream answered by RST_STREAM alone: its error code's name


def escape(text: str) -> str:
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _header(headers: Headers, name: str) -> str:
    key = name.lower().encode("latin-1")
    for k, v in headers:
        if k.lower() == key:
            return v.decode("latin-1")
    return "-"


def _atoms(entry: Entry) -> dict[str, str]:
    request = entry.request
    target = request.target.decode("latin-1")
    path, _, query = target.partition("?")
    method = request.method.decode("latin-1")
    version = "HTTP/" + request.http_version.decode("latin-1")
    if version == "HTTP/2":
        version = "HTTP/2.0"  # as nginx and Apache write it
    return {
        "h": entry.client[0] if entry.client else "-",
        "l": "-",
        "u": "-",
        "t": time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
        "r": f"{method} {target} {version}",
        "m": method,
        "U": path,
        "q": query,
        "H": version,
        "s": f"RST:{entry.reset}" if entry.reset else str(entry.status),
        "b": str(entry.body_bytes) if entry.body_bytes else "-",  # as gunicorn: body only
        "B": str(entry.body_bytes),
        "f": _header(request.headers, "referer"),
        "a": _header(request.headers, "user-agent"),
        "T": str(int(entry.duration_s)),
        "D": str(int(entry.duration_s * 1_000_000)),
        "M": str(int(entry.duration_s * 1000)),
        "L": f"{entry.duration_s:.6f}",
        "p": f"<{os.getpid()}>",
    }


def compile_format(spec: str) -> Callable[[Entry], str]:
    """A function turning an Entry into one line, for a gunicorn-style ``spec`` or ``json``."""
    if spec == "json":
        return _json_line
    pieces: list[str] = []
    names: list[str] = []
    last = 0
    for match in _ATOM.finditer(spec):
        pieces.append(spec[last : match.start()].replace("%%", "%"))
        names.append(match.group(1))
        last = match.end()
    tail = spec[last:].replace("%%", "%")

    def line(entry: Entry) -> str:
        atoms = _atoms(entry)
        out = []
        for text, name in zip(pieces, names, strict=True):
            out.append(text)
            out.append(escape(_value(name, atoms, entry)))
        out.append(tail)
        return "".join(out)

    return line


def _value(name: str, atoms: dict[str, str], entry: Entry) -> str:
    if name.startswith("{"):
        key, kind = name[1:-2], name[-1]
        if kind == "i":
            return _header(entry.request.headers, key)
        if kind == "o":
            return _header(entry.response_headers, key)
        return os.environ.get(key, "-")
    return atoms.get(name, "-")


def _json_line(entry: Entry) -> str:
    atoms = _atoms(entry)
    record = {
        "time": atoms["t"][1:-1],
        "remote_addr": atoms["h"],
        "method": atoms["m"],
        "path": atoms["U"],
        "query": atoms["q"],
        "protocol": atoms["H"],
        "status": entry.status,
        "bytes": entry.body_bytes,
        "duration_ms": round(entry.duration_s * 1000, 3),
        "referer": atoms["f"],
        "user_agent": atoms["a"],
        "pid": os.getpid(),
    }
    if entry.reset:  # no status went out: RST_STREAM with this code did
        record["status"] = None
        record["reset"] = entry.reset
    return json.dumps(record, ensure_ascii=True)


class AccessLog:
    """Formats and emits one line per request, when the access log is on."""

    def __init__(self, spec: str) -> None:
        self._line = compile_format(spec)

    def emit(self, entry: Entry) -> None:
        log.info("%s", self._line(entry))
