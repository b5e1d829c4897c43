"""HTTP semantics of an HTTP/2 header block (RFC 9113 §8), checked the same for every backend.

A request head becomes the ``Request`` an HTTP/1.1 connection would give: pseudo-headers
out, ``host`` from ``:authority``, cookie crumbs joined. A malformed block is a stream error
(``MalformedError``); one over our size limits is answered with a 431 instead (``TooLarge``).
"""

from __future__ import annotations

import re

from hybridserve.config_groups import Limits
from hybridserve.sansio.events import Headers, Request

# RFC 9113 §8.2.2: fields that describe a hop, meaningless and forbidden in HTTP/2.
CONNECTION_SPECIFIC = frozenset(
    (b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade")
)
REQUEST_PSEUDO = frozenset((b":method", b":scheme", b":authority", b":path"))
# §8.2.1: no NUL, CR, LF in a value, and no whitespace at either end.
_BAD_VALUE = re.compile(rb"[\x00\r\n]|^[ \t]|[ \t]$")
# §8.2.1: no control, space, upper-case or non-ASCII byte in a name.
_BAD_NAME = re.compile(rb"[\x00-\x20A-Z\x7f-\xff]")
FIELD_OVERHEAD = 32  # RFC 9113 §6.5.2: each field counts name + value + 32 bytes


class MalformedError(Exception):
    """RFC 9113 §8.1.1: a malformed message is a stream error of type PROTOCOL_ERROR."""


class TooLarge(Exception):
    """The head is valid but over our limits: answer 431 (RFC 6585 §5) on the stream."""


def check_syntax(headers: Headers) -> None:
    """Names, values and hop-by-hop fields (§8.2), where the backend has not checked them."""
    for name, value in headers:
        if _BAD_NAME.search(name) or not name:
            raise MalformedError(f"invalid header name {name[:40]!r}")
        if _BAD_VALUE.search(value):
            raise MalformedError(f"invalid value in header {name[:40]!r}")
        if name in CONNECTION_SPECIFIC:
            raise MalformedError(f"connection-specific header {name.decode()!r}")
        if name == b"te" and value.lower() != b"trailers":
            raise MalformedError("TE other than 'trailers'")


def check_sizes(headers: Headers, limits: Limits) -> None:
    """Our limits on one field block; over them the answer is 431, not an error."""
    if len(headers) > limits.max_header_count:
        raise TooLarge(f"more than {limits.max_header_count} header fields")
    total = 0
    field_limit = limits.max_header_field_bytes
    for name, value in headers:
        size = len(name) + len(value)
        if size > field_limit:
            raise TooLarge(f"header field {name[:40]!r} is {size} bytes")
        total += size
    if total + FIELD_OVERHEAD * len(headers) > limits.max_head_bytes:
        raise TooLarge(f"header list of {total} bytes")


def _split_pseudo(block: Headers) -> tuple[dict[bytes, bytes], Headers]:
    """Pseudo-headers (all first, each once, known ones only) and the regular fields."""
    pseudo: dict[bytes, bytes] = {}
    at = 0
    for name, value in block:
        if not name.startswith(b":"):
            break
        if name not in REQUEST_PSEUDO:
            raise MalformedError(f"unknown or response pseudo-header {name.decode()!r}")
        if name in pseudo:
            raise MalformedError(f"repeated pseudo-header {name.decode()!r}")
        pseudo[name] = value
        at += 1
    regular = block[at:]
    for name, _ in regular:
        if name.startswith(b":"):
            raise MalformedError(f"pseudo-header {name.decode()!r} after a regular field")
    return pseudo, regular


def _target(pseudo: dict[bytes, bytes]) -> tuple[bytes, bytes]:
    """(method, target) from the pseudo-headers, per RFC 9113 §8.3.1 and §8.5 (CONNECT)."""
    method = pseudo.get(b":method")
    if not method:
        raise MalformedError("missing :method")
    if method == b"CONNECT":
        if b":scheme" in pseudo or b":path" in pseudo or not pseudo.get(b":authority"):
            raise MalformedError("CONNECT takes :authority only")
        return method, pseudo[b":authority"]
    path = pseudo.get(b":path")
    if not pseudo.get(b":scheme") or not path:
        raise MalformedError("missing :scheme or :path")
    if not path.startswith(b"/") and not (path == b"*" and method == b"OPTIONS"):
        raise MalformedError("invalid :path")
    return method, path


def build_request(block: Headers, limits: Limits, checked: bool) -> tuple[Request, bytes]:
    """The ``Request`` and scheme for a request header block, or MalformedError/TooLarge.

    ``checked``: the backend already refused bad pseudo-headers, names, values and hop-by-hop
    fields; else they are checked here first. Then one pass does the rest (the hot path).
    """
    if not checked:
        _, regular = _split_pseudo(block)
        check_syntax(regular)
    if len(block) > limits.max_header_count + 4:
        check_sizes(block, limits)  # raises with the count
    pseudo, headers, host, expect_continue, accepts_trailers = _collect(block, limits)
    method, target = _target(pseudo)
    authority = pseudo.get(b":authority")
    if authority is not None:
        if host is None:
            headers.insert(0, (b"host", authority))
        elif host.lower() != authority.lower():  # §8.3.1: they name the same origin
            raise MalformedError("Host differs from :authority")
    request = Request(
        method=method,
        target=target,
        http_version=b"2",
        headers=headers,
        keep_alive=True,
        expect_continue=expect_continue,
        accepts_trailers=accepts_trailers,
    )
    return request, pseudo.get(b":scheme", b"")


class Refusal(Exception):
    """A request head refused before any app sees it: ``status`` (431, 413) answers it, 0
    resets the stream (PROTOCOL_ERROR); ``request`` is what the access log can show."""

    def __init__(self, status: int, request: Request) -> None:
        super().__init__(status)
        self.status = status
        self.request = request


def admit(
    block: Headers, limits: Limits, checked: bool, end_stream: bool
) -> tuple[Request, bytes, int | None]:
    """The request a head makes, its scheme and its announced length; raises Refusal."""
    try:
        request, scheme = build_request(block, limits, checked)
        expected = content_length(request.headers)
    except MalformedError:
        raise Refusal(0, seen_request(block)) from None
    except TooLarge:
        raise Refusal(431, seen_request(block)) from None
    if end_stream and expected:  # RFC 9113 §8.1.1: the body it announces never came
        raise Refusal(0, request)
    limit = limits.max_body_bytes
    if limit and expected is not None and expected > limit:
        raise Refusal(413, request)
    return request, scheme, expected


def _collect(
    block: Headers, limits: Limits
) -> tuple[dict[bytes, bytes], Headers, bytes | None, bool, bool]:
    """One pass over a head: (pseudo-headers, regular fields with the cookie crumbs joined
    at the end, Host, expects 100-continue, accepts trailers); TooLarge over our limits."""
    pseudo: dict[bytes, bytes] = {}
    headers: Headers = []
    cookies: list[bytes] = []
    host: bytes | None = None
    accepts_trailers = expect_continue = False
    total = 0
    field_limit = limits.max_header_field_bytes
    for name, value in block:
        if name[:1] == b":":
            pseudo[name] = value
            continue
        size = len(name) + len(value)
        if size > field_limit:
            raise TooLarge(f"header field {name[:40]!r} is {size} bytes")
        total += size + FIELD_OVERHEAD
        if name == b"cookie":
            cookies.append(value)  # §8.2.3: crumbs become one field again
            continue
        if name == b"host":
            host = value
        elif name == b"te":
            accepts_trailers = True
        elif name == b"expect":
            expect_continue = value.lower() == b"100-continue"
        headers.append((name, value))
    if total > limits.max_head_bytes or len(headers) + len(cookies) > limits.max_header_count:
        raise TooLarge(f"header list of {total} bytes in {len(block)} fields")
    if cookies:
        headers.append((b"cookie", b"; ".join(cookies)))
    return pseudo, headers, host, expect_continue, accepts_trailers


def seen_request(block: Headers) -> Request:
    """What the access log may show of a request refused before an app saw it: its method
    and path as sent (``-`` where missing) and its regular fields, checked or not."""
    pseudo = {name: value for name, value in block if name[:1] == b":"}
    target = pseudo.get(b":path") or pseudo.get(b":authority") or b"-"
    return Request(
        method=pseudo.get(b":method") or b"-",
        target=target,
        http_version=b"2",
        headers=[(name, value) for name, value in block if name[:1] != b":"],
        keep_alive=True,
    )


def check_trailers(block: Headers, limits: Limits) -> Headers:
    """Trailer fields: no pseudo-headers (RFC 9113 §8.1), the same field rules as a head."""
    for name, _ in block:
        if name.startswith(b":"):
            raise MalformedError(f"pseudo-header {name.decode()!r} in trailers")
    check_sizes(block, limits)
    check_syntax(block)
    return block


def content_length(headers: Headers) -> int | None:
    """The declared body length; repeated different values or non-digits are malformed."""
    found: int | None = None
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit():
                raise MalformedError("invalid content-length")
            if found is not None and found != int(value):
                raise MalformedError("conflicting content-length values")
            found = int(value)
    return found
