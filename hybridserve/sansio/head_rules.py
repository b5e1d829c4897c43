"""The rules every request head must keep, judged on its raw bytes whatever the backend.

``check_head`` reads a whole head (request line, fields, the final CRLF) once, refuses
what RFC 9112/9110 say must be refused, and hands back the head the parser backend will
see: unchanged in the common case, or rewritten where a backend would misread a valid
head (a method llhttp does not know, HTTP/1.2, an empty element in Transfer-Encoding).
The backend therefore never decides anything these rules cover, and two backends can
only agree. Costs a regex match and a few C-level scans per request.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from hybridserve.config_groups import Limits
from hybridserve.errors import ProtocolError

CHUNKED = -1  # body framing: chunked, else the Content-Length (0: no body)

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])\r\n")
_MAYBE_FRAMING = re.compile(rb"(?i)\n(?:content-length|transfer-encoding)")
_FRAMING = re.compile(rb"\r\n(content-length|transfer-encoding)[ \t]*:([^\r\n]*)")
_REG_NAME = rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*"
_IP_LITERAL = rb"\[(?:[0-9A-Fa-f:.]+|[vV][0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+)\]"
_PLAIN_HOST_BYTES = (
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:"
)
_HOST = re.compile(rb"(" + _IP_LITERAL + rb"|" + _REG_NAME + rb")(?::[0-9]*)?\Z")
_ABSOLUTE = re.compile(rb"([A-Za-z][A-Za-z0-9+\-.]*)://([^/?#]*)([/?][^#]*)?\Z")
_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
#: Methods llhttp parses (RFC 9110 and the WebDAV/CalDAV/UPnP ones it lists). Any other
#: token is handed to it as GET and given back its own name: the fast path for every method.
LLHTTP_METHODS = frozenset(
    b"DELETE GET HEAD POST PUT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND PROPPATCH "
    b"SEARCH UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE M-SEARCH "
    b"NOTIFY SUBSCRIBE UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK SOURCE QUERY".split()
)


@dataclass(slots=True)
class Head:
    """A head that passed the rules: the bytes for the backend and what we read of it."""

    data: bytes | None  # the whole head, rewritten for the backend; None: as it came
    method: bytes
    body: int  # CHUNKED, or the Content-Length (0: none)
    rewritten_method: bool  # the backend saw GET instead of ``method``


def request_line(head: bytes) -> tuple[bytes, bytes, bytes] | None:
    """Method, target and version of ``head``'s request line, if it is well formed."""
    line = _REQUEST_LINE.match(head)
    if line is None:
        return None
    method, target, major, minor = line.groups()
    return method, target, major + b"." + minor


def valid_host(value: bytes) -> bool:
    """``uri-host [":" port]`` (RFC 9110 §7.2, RFC 3986 §3.2.2); empty is allowed."""
    if not value.translate(None, _PLAIN_HOST_BYTES):  # a reg-name, maybe a port: most hosts
        port = value.partition(b":")[2]
        return not port or port.isdigit()
    match = _HOST.match(value)
    if match is None:
        return False
    host = match.group(1)
    if host[:1] == b"[" and host[1:2] not in (b"v", b"V"):
        try:
            ipaddress.IPv6Address(host[1:-1].decode("ascii"))
        except ValueError:
            return False
    return True


def check_target(method: bytes, target: bytes) -> None:
    """The four request-target forms of RFC 9112 §3.2, each with the method it belongs to."""
    if b"#" in target:
        raise ProtocolError("fragment in the request target", 400)
    if b"%" in target and _BAD_PERCENT.search(target) is not None:
        raise ProtocolError("malformed percent-encoding in the request target", 400)
    if method == b"CONNECT":  # authority-form: an origin server refuses tunnels
        if target[:1] != b"/" and b"/" not in target and valid_host(target) and b":" in target:
            raise ProtocolError("CONNECT is not supported", 501)
        raise ProtocolError("CONNECT needs an authority-form target", 400)
    if target[:1] == b"/":  # origin-form
        return
    if target == b"*":
        if method != b"OPTIONS":
            raise ProtocolError("asterisk-form target outside OPTIONS", 400)
        return
    absolute = _ABSOLUTE.match(target)
    if absolute is None:
        raise ProtocolError("malformed request target", 400)
    authority = absolute.group(2)
    if b"@" in authority:
        raise ProtocolError("userinfo in the request target", 400)
    if not valid_host(authority) or authority[:1] in (b"", b":"):
        raise ProtocolError("malformed host in the request target", 400)


def check_partial(head: bytes, limits: Limits) -> None:
    """What can be refused before the head is whole: bare LF and the two size limits.

    The request line limit is judged first (414, RFC 9112 §3), so a long line is 414
    even when it also overflows the head limit. Each limit allows for the CR (or CRLF CR)
    that may end what came so far: a cut must not change the answer.
    """
    if head.count(b"\n") != head.count(b"\r\n"):
        raise ProtocolError("bare LF in the request head", 400)
    line_end = head.find(b"\r\n")
    if line_end > limits.max_request_line_bytes or (
        line_end < 0 and len(head) > limits.max_request_line_bytes + 1
    ):
        raise ProtocolError("request line too long", 414)
    if len(head) > limits.max_head_bytes + 3:
        raise ProtocolError("request head too large", 431)


def check_head(head: bytes, stop: int, limits: Limits) -> Head:
    """Judge the whole head ``head[:stop]`` (it ends in its last CRLF, before the empty
    line); the request line is matched and scanned in place, with no copy."""
    line_end = head.find(b"\r\n")
    if line_end > limits.max_request_line_bytes:
        raise ProtocolError("request line too long", 414)
    if stop - 2 > limits.max_head_bytes:
        raise ProtocolError("request head too large", 431)
    line = _REQUEST_LINE.match(head, 0, stop)
    if line is None:
        raise ProtocolError("malformed request line", 400)
    if head.count(b"\n", 0, stop) != head.count(b"\r\n", 0, stop):
        raise ProtocolError("bare LF in the request head", 400)
    if head.find(b"\n ", 0, stop) >= 0 or head.find(b"\n\t", 0, stop) >= 0:
        raise ProtocolError("obs-fold in the request head", 400)
    method, target, major, minor = line.groups()
    if major != b"1":  # RFC 9112 §2.3: 2.0 and up are for other connections
        raise ProtocolError("HTTP version not supported", 505)
    if target[0] != 47 or b"#" in target or b"%" in target or method == b"CONNECT":
        check_target(method, target)  # all but the plainest origin-form ("/...")
    rewrite_method = method not in LLHTTP_METHODS
    data = None
    if rewrite_method or minor > b"1":  # HTTP/1.2+ is processed as HTTP/1.1
        version = b"1.0" if minor == b"0" else b"1.1"
        data = b"GET " + target + b" HTTP/" + version + head[line.end() - 2 : stop] + b"\r\n"
    body = 0
    # Framing fields in any letter case; most heads have neither, so look cheaply first.
    if _MAYBE_FRAMING.search(head, 0, stop) is not None:
        whole = data if data is not None else head[: stop + 2]
        body, framed = _framing(whole, minor == b"0")
        data = framed if framed is not whole else data
    return Head(data, method, body, rewrite_method)


def _framing(head: bytes, http10: bool) -> tuple[int, bytes]:
    """Body framing as the raw head says it, before a parser can normalize it.

    h11 folds repeated Content-Length lines into one, llhttp answers an unknown coding
    with its own 400, and each reads list syntax its own way: judged here, both agree.
    A Transfer-Encoding that means chunked but is not spelled ``chunked`` (``, chunked``,
    trailing OWS, several lines) is rewritten to that, so both backends read it so.
    """
    lowered = head.lower()
    length: int | None = None
    codings: list[bytes] = []
    te_lines: list[tuple[int, int]] = []
    for match in _FRAMING.finditer(lowered):
        name, value = match.groups()
        if name == b"content-length":
            value = value.strip(b" \t")
            if length is not None or not value.isdigit():
                raise ProtocolError("invalid or repeated Content-Length", 400)
            length = int(value)
        else:
            te_lines.append(match.span())
            codings += [c.strip(b" \t") for c in value.split(b",")]
    if not te_lines:
        return length or 0, head
    # RFC 9112 §6.1: only a lone ``chunked`` frames a request body; what smuggling needs
    # (both lengths, other codings, chunked on HTTP/1.0) is refused.
    if length is not None:
        raise ProtocolError("both Transfer-Encoding and Content-Length", 400)
    if http10:
        raise ProtocolError("Transfer-Encoding in an HTTP/1.0 request", 400)
    if [c for c in codings if c] != [b"chunked"]:
        raise ProtocolError("unsupported Transfer-Encoding", 501)
    start, end = te_lines[0]
    if len(te_lines) > 1 or lowered[start:end].partition(b":")[2] != b" chunked":
        head = _one_chunked_line(head, te_lines)
    return CHUNKED, head


def _one_chunked_line(head: bytes, spans: list[tuple[int, int]]) -> bytes:
    """``head`` with its Transfer-Encoding lines replaced by one ``: chunked`` line."""
    parts = []
    at = 0
    for i, (start, end) in enumerate(spans):
        parts.append(head[at:start])
        if i == 0:
            parts.append(b"\r\nTransfer-Encoding: chunked")
        at = end
    parts.append(head[at:])
    return b"".join(parts)
