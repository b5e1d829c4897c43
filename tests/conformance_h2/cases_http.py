"""Cases on HTTP semantics over HTTP/2 (RFC 9113 §8): fields, pseudo-headers, bodies, trailers."""

from __future__ import annotations

from tests.conformance_h2.client import (
    PROTOCOL_ERROR,
    CaseFailed,
    DataFrame,
    Fields,
    H2Client,
    request_fields,
)
from tests.conformance_h2.registry import case

GET = request_fields()


def _malformed(c: H2Client, fields: Fields, end_stream: bool = True) -> None:
    """RFC 9113 §8.1.1: a malformed request is a stream error of type PROTOCOL_ERROR."""
    c.handshake()
    c.send(c.headers(1, fields, end_stream=end_stream))
    c.stream_error(1, PROTOCOL_ERROR)
    c.alive()


def _seen(c: H2Client, fields: Fields, body: bytes | None = None) -> bytes:
    """What the app saw of a request to /headers: its fields, one per line."""
    c.handshake()
    path_fields = [(n, b"/headers" if n == b":path" else v) for n, v in fields]
    c.request(1, path_fields, body)
    response = c.response(1)
    if response.status != 200:
        raise CaseFailed(f"status {response.status} for a valid request")
    return response.body


# -- §8.2: field validity -------------------------------------------------------------


@case("RFC 9113 §8.2.1")
def case_uppercase_field_name(c: H2Client) -> None:
    _malformed(c, [*GET, (b"X-Upper", b"1")])


@case("RFC 9113 §8.2.1")
def case_field_value_with_newline(c: H2Client) -> None:
    _malformed(c, [*GET, (b"x-a", b"1\r\nx-b: 2")])


@case("RFC 9113 §8.2.1")
def case_field_value_with_nul(c: H2Client) -> None:
    _malformed(c, [*GET, (b"x-a", b"1\x002")])


@case("RFC 9113 §8.2.1")
def case_field_value_leading_space(c: H2Client) -> None:
    _malformed(c, [*GET, (b"x-a", b" 1")])


@case("RFC 9113 §8.2.1")
def case_field_name_with_space(c: H2Client) -> None:
    _malformed(c, [*GET, (b"x a", b"1")])


@case("RFC 9113 §8.2.2")
def case_connection_header(c: H2Client) -> None:
    _malformed(c, [*GET, (b"connection", b"keep-alive")])


@case("RFC 9113 §8.2.2")
def case_keep_alive_header(c: H2Client) -> None:
    _malformed(c, [*GET, (b"keep-alive", b"timeout=5")])


@case("RFC 9113 §8.2.2")
def case_transfer_encoding_header(c: H2Client) -> None:
    _malformed(c, [*request_fields(b"POST"), (b"transfer-encoding", b"chunked")], False)


@case("RFC 9113 §8.2.2")
def case_upgrade_header(c: H2Client) -> None:
    _malformed(c, [*GET, (b"upgrade", b"websocket")])


@case("RFC 9113 §8.2.2")
def case_proxy_connection_header(c: H2Client) -> None:
    _malformed(c, [*GET, (b"proxy-connection", b"close")])


@case("RFC 9113 §8.2.2")
def case_te_other_than_trailers(c: H2Client) -> None:
    _malformed(c, [*GET, (b"te", b"gzip")])


@case("RFC 9113 §8.2.2")
def case_te_trailers_accepted(c: H2Client) -> None:
    if b"te: trailers" not in _seen(c, [*GET, (b"te", b"trailers")]):
        raise CaseFailed("TE: trailers was refused or dropped")


@case("RFC 9113 §8.2.3")
def case_cookie_crumbs_joined(c: H2Client) -> None:
    body = _seen(c, [*GET, (b"cookie", b"a=1"), (b"x-b", b"2"), (b"cookie", b"c=3")])
    if body.count(b"cookie:") != 1 or b"cookie: a=1; c=3" not in body:
        raise CaseFailed(f"cookie crumbs not joined into one field: {body!r}")


# -- §8.3: pseudo-headers -------------------------------------------------------------


@case("RFC 9113 §8.3.1")
def case_missing_method(c: H2Client) -> None:
    _malformed(c, [f for f in GET if f[0] != b":method"])


@case("RFC 9113 §8.3.1")
def case_missing_scheme(c: H2Client) -> None:
    _malformed(c, [f for f in GET if f[0] != b":scheme"])


@case("RFC 9113 §8.3.1")
def case_missing_path(c: H2Client) -> None:
    _malformed(c, [f for f in GET if f[0] != b":path"])


@case("RFC 9113 §8.3.1")
def case_empty_path(c: H2Client) -> None:
    _malformed(c, [(n, b"" if n == b":path" else v) for n, v in GET])


@case("RFC 9113 §8.3.1")
def case_absolute_form_path(c: H2Client) -> None:
    _malformed(c, [(n, b"http://test/" if n == b":path" else v) for n, v in GET])


@case("RFC 9113 §8.3")
def case_duplicate_pseudo_header(c: H2Client) -> None:
    _malformed(c, [*GET[:-1], (b":path", b"/"), (b":path", b"/again")])


@case("RFC 9113 §8.3")
def case_pseudo_header_after_regular(c: H2Client) -> None:
    _malformed(c, [*GET[:-1], (b"x-a", b"1"), (b":path", b"/")])


@case("RFC 9113 §8.3")
def case_unknown_pseudo_header(c: H2Client) -> None:
    _malformed(c, [*GET, (b":foo", b"bar")])


@case("RFC 9113 §8.3.2")
def case_response_pseudo_header_in_request(c: H2Client) -> None:
    _malformed(c, [(b":status", b"200"), *GET])


@case("RFC 9113 §8.3.1")
def case_authority_becomes_host(c: H2Client) -> None:
    if b"host: example.org:8080" not in _seen(c, request_fields(authority=b"example.org:8080")):
        raise CaseFailed(":authority did not reach the app as Host")


@case("RFC 9113 §8.3.1")
def case_host_without_authority(c: H2Client) -> None:
    fields = [f for f in GET if f[0] != b":authority"] + [(b"host", b"only-host")]
    if b"host: only-host" not in _seen(c, fields):
        raise CaseFailed("Host without :authority was lost")


@case("RFC 9113 §8.3.1")
def case_host_differs_from_authority(c: H2Client) -> None:
    _malformed(c, [*GET, (b"host", b"elsewhere")])


@case("RFC 9113 §8.3.1")
def case_options_asterisk(c: H2Client) -> None:
    c.handshake()
    c.request(1, request_fields(b"OPTIONS", b"*"))
    if c.response(1).status != 200:
        raise CaseFailed("OPTIONS * refused")


@case("RFC 9113 §8.5")
def case_connect_without_authority(c: H2Client) -> None:
    _malformed(c, [(b":method", b"CONNECT")], end_stream=False)


@case("RFC 9113 §8.5")
def case_connect_with_path(c: H2Client) -> None:
    _malformed(c, [(b":method", b"CONNECT"), (b":authority", b"x:443"), (b":path", b"/")], False)


# -- §8.1: message framing, content-length and trailers ------------------------------


@case("RFC 9113 §8.1")
def case_bodiless_get_answered(c: H2Client) -> None:
    c.handshake()
    c.request(1)
    response = c.response(1)
    if response.body != b"GET / 0" or not response.ended:
        raise CaseFailed("a bodiless GET did not complete")


@case("RFC 9113 §8.1.1")
def case_content_length_over_data(c: H2Client) -> None:
    c.handshake()
    post = [*request_fields(b"POST"), (b"content-length", b"10")]
    c.send(c.headers(1, post, end_stream=False), DataFrame(1, b"abc", flags=["END_STREAM"]))
    c.stream_error(1, PROTOCOL_ERROR)
    c.alive()


@case("RFC 9113 §8.1.1")
def case_content_length_under_data(c: H2Client) -> None:
    c.handshake()
    post = [*request_fields(b"POST"), (b"content-length", b"2")]
    c.send(c.headers(1, post, end_stream=False), DataFrame(1, b"abc", flags=["END_STREAM"]))
    c.stream_error(1, PROTOCOL_ERROR)
    c.alive()


@case("RFC 9113 §8.1.1")
def case_content_length_without_data(c: H2Client) -> None:
    _malformed(c, [*request_fields(b"POST"), (b"content-length", b"5")], end_stream=True)


@case("RFC 9113 §8.1.1")
def case_content_length_matches(c: H2Client) -> None:
    c.handshake()
    c.request(1, [*request_fields(b"POST"), (b"content-length", b"3")], b"abc")
    if c.response(1).body != b"POST / 3":
        raise CaseFailed("a body matching its content-length was refused")


@case("RFC 9113 §8.1", live=False)  # ASGI and WSGI have no request trailers to show
def case_trailers_delivered(c: H2Client) -> None:
    c.handshake()
    c.send(c.headers(1, request_fields(b"POST", b"/headers"), end_stream=False))
    c.send(DataFrame(1, b"abc"), c.headers(1, [(b"x-sum", b"3")], end_stream=True))
    if b"trailer x-sum: 3" not in c.response(1).body:
        raise CaseFailed("request trailers did not reach the app")


@case("RFC 9113 §8.1")
def case_pseudo_header_in_trailers(c: H2Client) -> None:
    c.handshake()
    c.send(c.headers(1, request_fields(b"POST"), end_stream=False), DataFrame(1, b"abc"))
    c.send(c.headers(1, [(b":path", b"/x")], end_stream=True))
    c.stream_error(1, PROTOCOL_ERROR)


@case("RFC 9113 §8.1")
def case_trailers_without_end_stream(c: H2Client) -> None:
    c.handshake()
    c.send(c.headers(1, request_fields(b"POST"), end_stream=False), DataFrame(1, b"abc"))
    c.send(c.headers(1, [(b"x-t", b"1")], end_stream=False))
    c.stream_error(1, PROTOCOL_ERROR)


@case("RFC 9113 §8.1")
def case_response_trailers_sent(c: H2Client) -> None:
    c.handshake()
    c.request(1, request_fields(b"POST", b"/trailers", extra=[(b"te", b"trailers")]), b"abcd")
    response = c.response(1)
    if response.trailers != [(b"x-checksum", b"4")]:
        raise CaseFailed(f"response trailers {response.trailers!r}")


@case("RFC 9113 §8.2.2")
def case_response_has_no_connection_fields(c: H2Client) -> None:
    c.handshake()
    c.request(1)
    response = c.response(1)
    names = [name for name, _ in response.headers]
    if b"connection" in names or any(name != name.lower() for name in names):
        raise CaseFailed(f"response fields not fit for HTTP/2: {names}")
