"""A file's response from its validators and the request's conditions (RFC 9110 §13, §14).

How this works: ``plan()`` takes what the worker learnt about one representation (size,
modification time, content coding) and the request's header fields, and returns the whole
answer: status, header fields, and the body as ``pieces``, where bytes are written as they
are and ``(offset, count)`` pairs are ranges of the file, sent without copying them. The
evaluation follows RFC 9110 §13.2.2 in order: If-Match, else If-Unmodified-Since (412);
If-None-Match, else If-Modified-Since (304 for GET and HEAD); then If-Range and Range
(206, multipart/byteranges for several ranges, 416 when none can be satisfied).

No clock and no file system here: the worker stats the file, this module decides.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate, mktime_tz, parsedate_tz
from functools import lru_cache
from itertools import pairwise

from hybridserve.sansio.events import Headers

Piece = bytes | tuple[int, int]  # literal bytes, or (offset, count) of the file
MAX_RANGES = 16  # more ranges than this are answered with the whole file (a cheap DoS)
_ETAG = re.compile(rb'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|\Z)')
_RANGE = re.compile(rb"\s*(\d*)\s*-\s*(\d*)\s*\Z")
_TEXT = b"text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Representation:
    """One file as it would be sent: the plain file or a precompressed sibling."""

    size: int
    mtime_ns: int
    content_type: bytes
    encoding: str | None = None  # "br" or "gzip" for a sibling
    etag: bytes = field(init=False)  # strong: changes with every write to size or mtime
    modified_s: int = field(init=False)
    last_modified: bytes = field(init=False)

    def __post_init__(self) -> None:
        tag = b'"%x-%x' % (self.mtime_ns, self.size)
        tag += (b"-" + self.encoding.encode() if self.encoding else b"") + b'"'
        object.__setattr__(self, "etag", tag)
        modified_s = self.mtime_ns // 1_000_000_000
        object.__setattr__(self, "modified_s", modified_s)
        object.__setattr__(self, "last_modified", _imf_date(modified_s))


@dataclass(frozen=True, slots=True)
class Plan:
    """The response: head fields and body pieces (none for HEAD, 304)."""

    status: int
    headers: Headers
    pieces: list[Piece]

    @property
    def length(self) -> int:
        return sum(len(p) if isinstance(p, bytes) else p[1] for p in self.pieces)


@lru_cache(maxsize=1024)
def _imf_date(seconds: int) -> bytes:
    """The IMF-fixdate of a modification time; files share few, and formatdate is slow."""
    return formatdate(seconds, usegmt=True).encode("ascii")


def http_date(value: bytes) -> int | None:
    """Seconds since the epoch of an HTTP-date (any of its three forms); None if invalid."""
    try:
        parsed = parsedate_tz(value.decode("latin-1"))
    except (ValueError, IndexError):
        return None
    return None if parsed is None else mktime_tz(parsed)


def entity_tags(value: bytes) -> list[tuple[bool, bytes]] | None:
    """``[(weak, opaque-tag)]`` of an If-Match/If-None-Match list; None for ``*``.

    Malformed elements are skipped, so a list of garbage matches nothing.
    """
    if value.strip() == b"*":
        return None
    tags, at = [], 0
    while at < len(value):
        m = _ETAG.match(value, at)
        if m is None:
            nxt = value.find(b",", at)
            if nxt < 0:
                break
            at = nxt + 1
            continue
        tags.append((m.group(1) is not None, m.group(2)))
        at = m.end()
    return tags


def _strong_match(header: bytes, etag: bytes) -> bool:
    tags = entity_tags(header)
    return tags is None or any(not weak and tag == etag for weak, tag in tags)


def _weak_match(header: bytes, etag: bytes) -> bool:
    tags = entity_tags(header)
    return tags is None or any(tag == etag for _, tag in tags)


def parse_ranges(value: bytes, size: int) -> list[tuple[int, int]] | None:
    """Satisfiable ``(offset, count)`` ranges of a Range value, in the order given.

    None means "ignore the field" (another unit, bad syntax); an empty list means no
    range can be satisfied (416).
    """
    unit, eq, specs = value.partition(b"=")
    if not eq or unit.strip().lower() != b"bytes":
        return None
    items = [item for item in specs.split(b",") if item.strip()]
    if not items or len(items) > MAX_RANGES:
        return None
    out = []
    for item in items:
        m = _RANGE.match(item)
        if m is None or not (m.group(1) or m.group(2)):
            return None
        first, last = m.group(1), m.group(2)
        if first:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
            if last and int(last) < start:
                return None
        else:
            start, end = max(0, size - int(last)), size - 1
            if int(last) == 0:
                continue
        if start < size:
            out.append((start, end - start + 1))
    return out


def _overlap(ranges: list[tuple[int, int]]) -> bool:
    spans = sorted(ranges)
    return any(a[0] + a[1] > b[0] for a, b in pairwise(spans))


def _fields(headers: Headers) -> dict[bytes, bytes]:
    """Request fields that matter here, repeated lines joined with commas."""
    out: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in out:
            out[name] += b", " + value
        else:
            out[name] = value
    return out


def precondition(method: bytes, fields: dict[bytes, bytes], rep: Representation) -> int:
    """RFC 9110 §13.2.2 steps 1 to 4: 412, 304, or 0 to go on."""
    if (value := fields.get(b"if-match")) is not None:
        if not _strong_match(value, rep.etag):
            return 412
    elif (value := fields.get(b"if-unmodified-since")) is not None:
        when = http_date(value)
        if when is not None and rep.modified_s > when:
            return 412
    if (value := fields.get(b"if-none-match")) is not None:
        if _weak_match(value, rep.etag):
            return 304 if method in (b"GET", b"HEAD") else 412
    elif method in (b"GET", b"HEAD") and (value := fields.get(b"if-modified-since")) is not None:
        when = http_date(value)
        if when is not None and rep.modified_s <= when:
            return 304
    return 0


def _if_range_holds(value: bytes, rep: Representation) -> bool:
    """If-Range: the Range applies only if the representation is the one the client has."""
    value = value.strip()
    if value.startswith((b'"', b"W/")):
        return value == rep.etag  # a strong comparison; a weak tag never matches
    when = http_date(value)
    return when is not None and when == rep.modified_s


def _ranges_asked(
    method: bytes, fields: dict[bytes, bytes], rep: Representation
) -> list[tuple[int, int]] | None:
    """The ranges a GET asks for, if its If-Range holds; None for the whole representation."""
    range_value = fields.get(b"range")
    if method != b"GET" or range_value is None:
        return None
    if_range = fields.get(b"if-range")
    if if_range is not None and not _if_range_holds(if_range, rep):
        return None
    return parse_ranges(range_value, rep.size)


def plan(
    method: bytes,
    headers: Headers,
    rep: Representation,
    *,
    cache_control: bytes,
    vary: bool,
    boundary: Callable[[], bytes],
) -> Plan:
    """The whole response for a GET or HEAD of ``rep``."""
    fields = _fields(headers)
    common: Headers = [(b"etag", rep.etag), (b"last-modified", rep.last_modified)]
    common.append((b"cache-control", cache_control))
    if vary:
        common.append((b"vary", b"Accept-Encoding"))
    status = precondition(method, fields, rep)
    if status == 304:
        return Plan(304, common, [])
    if status == 412:
        return _text(412, b"precondition failed\n", [])
    head = [(b"content-type", rep.content_type), (b"accept-ranges", b"bytes")]
    if rep.encoding:
        head.append((b"content-encoding", rep.encoding.encode()))
    head += common
    ranges = _ranges_asked(method, fields, rep)
    if ranges is None or (len(ranges) > 1 and _overlap(ranges)):
        return _whole(method, head, rep)
    if not ranges:
        unsatisfied = [(b"content-range", b"bytes */%d" % rep.size)]
        return _text(416, b"range not satisfiable\n", unsatisfied)
    if len(ranges) == 1:
        offset, count = ranges[0]
        span = b"bytes %d-%d/%d" % (offset, offset + count - 1, rep.size)
        head.append((b"content-range", span))
        return _sized(Plan(206, head, [(offset, count)]))
    return _multipart(head, rep, ranges, boundary())


def _whole(method: bytes, head: Headers, rep: Representation) -> Plan:
    pieces: list[Piece] = [(0, rep.size)] if rep.size else []
    if method == b"HEAD":
        head.append((b"content-length", b"%d" % rep.size))
        return Plan(200, head, [])
    return _sized(Plan(200, head, pieces))


def _sized(plan: Plan) -> Plan:
    plan.headers.append((b"content-length", b"%d" % plan.length))
    return plan


def _text(status: int, body: bytes, extra: Headers) -> Plan:
    headers = [(b"content-type", _TEXT), *extra, (b"content-length", b"%d" % len(body))]
    return Plan(status, headers, [body])


def _multipart(
    head: Headers, rep: Representation, ranges: list[tuple[int, int]], boundary: bytes
) -> Plan:
    """multipart/byteranges (RFC 9110 §14.6): each part with its own Content-Range."""
    head = [(n, v) for n, v in head if n != b"content-type"]
    head.insert(0, (b"content-type", b"multipart/byteranges; boundary=" + boundary))
    pieces: list[Piece] = []
    lead = b"--"
    for offset, count in ranges:
        pieces.append(
            b"%s%s\r\nContent-Type: %s\r\nContent-Range: bytes %d-%d/%d\r\n\r\n"
            % (lead, boundary, rep.content_type, offset, offset + count - 1, rep.size)
        )
        pieces.append((offset, count))
        lead = b"\r\n--"
    pieces.append(b"\r\n--" + boundary + b"--\r\n")
    return _sized(Plan(206, head, pieces))


# -- content negotiation ------------------------------------------------------------------

CODINGS = ("br", "gzip")  # preferred first when the client weighs them the same
SUFFIXES = {"br": ".br", "gzip": ".gz"}


def accepted_codings(value: bytes | None) -> dict[str, float]:
    """Accept-Encoding as ``{coding: q}``; ``x-gzip`` is gzip, and ``*`` stands for the rest."""
    weights: dict[str, float] = {}
    if value is None:
        return weights
    for item in value.decode("latin-1").lower().split(","):
        name, _, params = item.partition(";")
        name = name.strip()
        if not name:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, val = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(val.strip())
                except ValueError:
                    q = 0.0
        weights["gzip" if name == "x-gzip" else name] = max(0.0, min(q, 1.0))
    return weights


def choose_coding(value: bytes | None, available: tuple[str, ...]) -> str | None:
    """The sibling to send (``"br"``, ``"gzip"``) or None for the plain file.

    The acceptable coding (``q > 0``) with the highest weight wins, br before gzip on a tie;
    the plain file wins only when the client weighs ``identity`` above it, as nginx's
    gzip_static does: a smaller body for anyone who can decode it.
    """
    weights = accepted_codings(value)
    star = weights.get("*", 0.0)
    best, best_q = None, 0.0
    for coding in CODINGS:
        if coding in available:
            q = weights.get(coding, star)
            if q > best_q:
                best, best_q = coding, q
    if best is not None and best_q >= weights.get("identity", 0.0):
        return best
    return None
