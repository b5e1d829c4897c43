"""A WSGI app that reports what the server gave it, one PEP 3333 corner per path.

Iterables record their ``close()`` calls in ``EVENTS`` under the ``id`` query parameter;
``/events?id=X`` reads them back, so a test can check what happened after its response
ended (served by one worker: ``-w 1``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from io import BytesIO
from typing import Any
from urllib.parse import parse_qs

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], None]]
Handler = Callable[[Environ, StartResponse], Any]

JSON = [("Content-Type", "application/json")]
TEXT = [("Content-Type", "text/plain")]
EVENTS: dict[str, list[str]] = {}
EVENTS_LOCK = threading.Lock()


def record(key: str, event: str) -> None:
    with EVENTS_LOCK:
        EVENTS.setdefault(key, []).append(event)


def query(environ: Environ) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}


def as_json(start_response: StartResponse, data: object, status: str = "200 OK") -> list[bytes]:
    start_response(status, JSON)
    return [json.dumps(data).encode()]


def rss_kib() -> int:
    for line in open("/proc/self/status").read().splitlines():  # noqa: SIM115  # tiny file
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Recorded:
    """An iterable whose iteration and ``close()`` are recorded under ``key``."""

    def __init__(self, key: str, chunks: Iterable[bytes], *, fail_after: int = -1) -> None:
        self.key = key
        self.chunks = chunks
        self.fail_after = fail_after

    def __iter__(self) -> Iterator[bytes]:
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_after:
                record(self.key, "raised")
                raise RuntimeError("failed mid-iteration")
            yield chunk

    def close(self) -> None:
        record(self.key, "closed")


# -- environ and wsgi.input --------------------------------------------------------
def environ_report(environ: Environ, start_response: StartResponse) -> list[bytes]:
    report: dict[str, Any] = {}
    for key, value in environ.items():
        if isinstance(value, str | bool | int) or value is None:
            report[key] = value
        elif isinstance(value, tuple):
            report[key] = list(value)
    errors = environ["wsgi.errors"]
    errors.write("")
    errors.flush()
    report["errors_ok"] = callable(errors.writelines)
    report["input_type"] = type(environ["wsgi.input"]).__name__
    report["file_wrapper_callable"] = callable(environ["wsgi.file_wrapper"])
    report["pid"] = os.getpid()
    return as_json(start_response, report)


def read_methods(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """Read the body with the method ``?how=`` names; report the pieces as latin-1."""
    stream = environ["wsgi.input"]
    how = query(environ).get("how", "read")
    pieces: list[bytes]
    if how == "read":
        pieces = [stream.read()]
    elif how == "read_n":
        pieces = []
        while data := stream.read(4):
            pieces.append(data)
    elif how == "readline":
        pieces = []
        while line := stream.readline():
            pieces.append(line)
    elif how == "readline_n":
        pieces = []
        while line := stream.readline(3):
            pieces.append(line)
    elif how == "readlines":
        pieces = stream.readlines()
    elif how == "iter":
        pieces = list(stream)
    else:
        pieces = [stream.readline(), stream.read(2), stream.read()]
    pieces.append(stream.read())  # EOF stays EOF
    return as_json(start_response, [p.decode("latin-1") for p in pieces])


def upload(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """Read the body in 64 KiB pieces, sampling this worker's RSS as it goes."""
    stream = environ["wsgi.input"]
    start_rss = peak_rss = rss_kib()
    total = reads = biggest = 0
    try:
        while data := stream.read(64 * 1024):
            total += len(data)
            reads += 1
            biggest = max(biggest, len(data))
            if reads % 16 == 0:
                peak_rss = max(peak_rss, rss_kib())
            del data
    except OSError as exc:  # the client went away mid-body
        record(query(environ).get("id", "upload"), f"{type(exc).__name__} after {total}")
        raise
    report = {"bytes": total, "reads": reads, "biggest": biggest}
    report["rss_growth_kib"] = peak_rss - start_rss
    return as_json(start_response, report)


# -- start_response, write() and iterables -----------------------------------------
def exc_info_before_head(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [*TEXT, ("X-Discarded", "yes")])
    try:
        raise ValueError("changed my mind")
    except ValueError:
        start_response("503 Service Unavailable", [("X-Replaced", "yes")], sys.exc_info())
    return [b"replaced"]


def exc_info_after_head(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    key = query(environ)["id"]
    start_response("200 OK", TEXT)
    yield b"first"
    try:
        raise ValueError("too late")
    except ValueError:
        try:
            start_response("500 Internal Server Error", TEXT, sys.exc_info())
        except ValueError:
            record(key, "re-raised")
            raise


def write_callable(environ: Environ, start_response: StartResponse) -> list[bytes]:
    write = start_response("200 OK", TEXT)
    write(b"one,")
    write(b"")
    write(b"two,")
    return [b"three"]


def closing(environ: Environ, start_response: StartResponse) -> Recorded:
    q = query(environ)
    start_response("200 OK", TEXT)
    return Recorded(q["id"], [b"a", b"b", b"c"], fail_after=int(q.get("fail_after", "-1")))


def endless(environ: Environ, start_response: StartResponse) -> Recorded:
    """Streams until the client goes away; the server must still close() the iterable."""

    def chunks() -> Iterator[bytes]:
        while True:
            yield b"x" * 1024
            time.sleep(0.005)

    start_response("200 OK", TEXT)
    return Recorded(query(environ)["id"], chunks())


def file_wrapper(environ: Environ, start_response: StartResponse) -> Any:
    key = query(environ)["id"]

    class Tracked(BytesIO):
        def close(self) -> None:
            record(key, "file closed")
            super().close()

    start_response("200 OK", TEXT)
    return environ["wsgi.file_wrapper"](Tracked(b"0123456789" * 10_000), 4096)


def events(environ: Environ, start_response: StartResponse) -> list[bytes]:
    with EVENTS_LOCK:
        seen = list(EVENTS.get(query(environ)["id"], []))
    return as_json(start_response, seen)


# -- failures ----------------------------------------------------------------------
def raise_before(environ: Environ, start_response: StartResponse) -> list[bytes]:
    raise RuntimeError("boom before the response")


def raise_after(environ: Environ, start_response: StartResponse) -> Recorded:
    q = query(environ)
    start_response("200 OK", TEXT)
    return Recorded(q["id"], [b"partial-", b"more-", b"never"], fail_after=2)


def not_iterable(environ: Environ, start_response: StartResponse) -> Any:
    start_response("200 OK", TEXT)
    return 42


def start_twice(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", TEXT)
    start_response("201 Created", TEXT)
    return [b"never"]


def wrong_length(environ: Environ, start_response: StartResponse) -> Any:
    start_response("200 OK", [*TEXT, ("Content-Length", "3")])
    if query(environ).get("stream"):
        return iter([b"hello", b"world"])
    return [b"hello"]


def bad_status(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    start_response("999 Nope", TEXT)
    yield b"a"
    yield b"b"


# -- timing ------------------------------------------------------------------------
def sleep(environ: Environ, start_response: StartResponse) -> list[bytes]:
    q = query(environ)
    record(q.get("id", "sleep"), "sleeping")
    time.sleep(float(q.get("s", "1")))
    start_response("200 OK", TEXT)
    return [b"slept"]


def hello(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", TEXT)
    return [b"hello"]


def pid(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", TEXT)
    return [str(os.getpid()).encode()]


ROUTES: dict[str, Handler] = {
    "/environ": environ_report,
    "/read": read_methods,
    "/upload": upload,
    "/exc-info-before-head": exc_info_before_head,
    "/exc-info-after-head": exc_info_after_head,
    "/write": write_callable,
    "/closing": closing,
    "/endless": endless,
    "/file": file_wrapper,
    "/events": events,
    "/raise-before": raise_before,
    "/raise-after": raise_after,
    "/not-iterable": not_iterable,
    "/start-twice": start_twice,
    "/wrong-length": wrong_length,
    "/bad-status": bad_status,
    "/sleep": sleep,
    "/pid": pid,
    "/": hello,
}


def app(environ: Environ, start_response: StartResponse) -> Any:
    handler = ROUTES.get(environ["PATH_INFO"])
    if handler is None:  # any other path, e.g. under --root-path: what the app was told
        return environ_report(environ, start_response)
    return handler(environ, start_response)
