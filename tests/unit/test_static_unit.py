"""Static files without I/O: path vetting, conditions, ranges and codings (RFC 9110)."""

from __future__ import annotations

import pytest

from hybridserve.config_groups import Limits, Static
from hybridserve.config_values import parse_static_mount
from hybridserve.errors import ConfigError, ResponseError
from hybridserve.sansio.conditional import (
    Plan,
    Representation,
    accepted_codings,
    choose_coding,
    entity_tags,
    http_date,
    parse_ranges,
    plan,
)
from hybridserve.sansio.connection import ServerConnection
from hybridserve.sansio.events import Headers
from hybridserve.sansio.static import Found, Mount, Mounts, Refused, compressible, content_type

MOUNTS = Mounts([Mount(b"/static", b"/srv/s"), Mount(b"/static/deep", b"/srv/d")])
REP = Representation(1000, 1_700_000_000_123_456_789, b"text/plain; charset=utf-8")
LAST_MODIFIED = b"Tue, 14 Nov 2023 22:13:20 GMT"  # REP's mtime, whole seconds


def found(target: bytes) -> Found:
    result = MOUNTS.match(target)
    assert isinstance(result, Found), result
    return result


def refused(target: bytes) -> int:
    result = MOUNTS.match(target)
    assert isinstance(result, Refused), result
    return result.status


# -- paths ------------------------------------------------------------------------------
def test_targets_outside_every_mount_go_to_the_app() -> None:
    for target in (b"/", b"/staticx/a.css", b"/api/static/a", b"/stati", b"/%zz"):
        assert MOUNTS.match(target) is None


def test_the_longest_prefix_wins_and_segments_come_back_vetted() -> None:
    assert found(b"/static/css/app.css?v=3").parts == (b"css", b"app.css")
    assert found(b"/static/deep/x.js").mount.root == b"/srv/d"
    assert found(b"http://example.com/static/a.txt").parts == (b"a.txt",)


def test_the_path_is_decoded_exactly_once() -> None:
    assert found(b"/static/a%20b.txt").parts == (b"a b.txt",)
    assert found(b"/static/%252e%252e/x").parts == (b"%2e%2e", b"x")  # a name, not ..
    assert found(b"/stat%69c/a.txt").parts == (b"a.txt",)


@pytest.mark.parametrize(
    "target",
    [
        b"/static/../secret.txt",
        b"/static/%2e%2e/secret.txt",
        b"/static/%2E%2E%2Fsecret.txt",
        b"/static/..%2fsecret.txt",
        b"/static%2f..%2fsecret.txt",
        b"/static/a/./b",
        b"/static/..\\secret.txt",
        b"/static/%5c..%5csecret.txt",
        b"/static/a%00.txt",
        b"/static/a\x00.txt",
        b"/static/%zz",
        b"/static/%4",
    ],
)
def test_traversal_and_ambiguous_bytes_are_bad_requests(target: bytes) -> None:
    assert refused(target) == 400


def test_dotfiles_are_hidden_and_empty_segments_stay_under_the_root() -> None:
    assert refused(b"/static/.env") == 404
    assert refused(b"/static/.git/config") == 404
    assert found(b"/static//etc/passwd").parts == (b"etc", b"passwd")
    assert found(b"/static/sub/").directory
    assert found(b"/static").directory and found(b"/static").parts == ()


def test_mount_specs_are_checked() -> None:
    assert parse_static_mount("/static/=./files") == ("/static", "./files")
    assert parse_static_mount("/=public") == ("", "public")
    for bad in ("static=./x", "/s", "/s=", "=./x", "/a/../b=x", "/a%2f=x", "/a?b=x"):
        with pytest.raises(ValueError):
            parse_static_mount(bad)
    with pytest.raises(ConfigError, match=r"^--static "):
        Static(mounts=("nope",))
    with pytest.raises(ConfigError, match="static-max-age"):
        Static(max_age_s=-1)


def test_content_types_carry_a_charset_for_text_only() -> None:
    assert content_type(b"app.CSS") == "text/css; charset=utf-8"
    assert content_type(b"a.js") == "text/javascript; charset=utf-8"
    assert content_type(b"logo.png") == "image/png"
    assert content_type(b"README") == "application/octet-stream"
    assert compressible("text/css; charset=utf-8") and compressible("image/svg+xml")
    assert not compressible("image/png")


# -- validators and conditions ----------------------------------------------------------
def answer(*fields: tuple[bytes, bytes], method: bytes = b"GET", rep: Representation = REP) -> Plan:
    headers: Headers = list(fields)
    return plan(
        method, headers, rep, cache_control=b"no-cache", vary=False, boundary=lambda: b"BOUND"
    )


def header(result: Plan, name: bytes) -> bytes | None:
    return next((v for n, v in result.headers if n == name), None)


def test_a_plain_get_sends_the_whole_file_with_validators() -> None:
    result = answer()
    assert result.status == 200 and result.pieces == [(0, 1000)]
    assert header(result, b"etag") == REP.etag and REP.etag.startswith(b'"')
    assert header(result, b"last-modified") == LAST_MODIFIED
    assert header(result, b"content-length") == b"1000"
    assert header(result, b"accept-ranges") == b"bytes"


def test_head_has_the_length_and_no_body() -> None:
    result = answer(method=b"HEAD")
    assert result.status == 200 and result.pieces == []
    assert header(result, b"content-length") == b"1000"


def test_if_none_match_uses_weak_comparison_lists_and_star() -> None:
    weak = b"W/" + REP.etag
    for value in (REP.etag, weak, b'"other", ' + weak, b"*", b'"a",' + REP.etag):
        result = answer((b"if-none-match", value))
        assert result.status == 304 and result.pieces == []
        assert header(result, b"etag") == REP.etag
    assert answer((b"if-none-match", b'"other"')).status == 200
    assert answer((b"if-none-match", b"garbage")).status == 200


def test_if_none_match_beats_if_modified_since() -> None:
    result = answer((b"if-none-match", b'"other"'), (b"if-modified-since", LAST_MODIFIED))
    assert result.status == 200


def test_if_modified_since_in_each_date_form() -> None:
    for value in (
        LAST_MODIFIED,
        b"Tuesday, 14-Nov-23 22:13:20 GMT",
        b"Tue Nov 14 22:13:20 2023",
        b"Wed, 15 Nov 2023 00:00:00 GMT",
    ):
        assert answer((b"if-modified-since", value)).status == 304, value
    assert answer((b"if-modified-since", b"Tue, 14 Nov 2023 22:13:19 GMT")).status == 200
    assert answer((b"if-modified-since", b"not a date")).status == 200
    assert http_date(b"yesterday") is None


def test_if_match_is_strong_and_if_unmodified_since_is_its_fallback() -> None:
    assert answer((b"if-match", REP.etag)).status == 200
    assert answer((b"if-match", b"*")).status == 200
    assert answer((b"if-match", b"W/" + REP.etag)).status == 412
    assert answer((b"if-match", b'"other"')).status == 412
    early = b"Mon, 13 Nov 2023 00:00:00 GMT"
    assert answer((b"if-unmodified-since", early)).status == 412
    assert answer((b"if-unmodified-since", LAST_MODIFIED)).status == 200
    # If-Match present: If-Unmodified-Since is not evaluated (RFC 9110 §13.2.2 step 2)
    assert answer((b"if-match", REP.etag), (b"if-unmodified-since", early)).status == 200


def test_entity_tag_lists_parse_commas_inside_tags() -> None:
    assert entity_tags(b'"a,b", W/"c"') == [(False, b'"a,b"'), (True, b'"c"')]
    assert entity_tags(b" * ") is None


# -- ranges -----------------------------------------------------------------------------
def test_range_forms() -> None:
    assert parse_ranges(b"bytes=0-99", 1000) == [(0, 100)]
    assert parse_ranges(b"bytes=900-", 1000) == [(900, 100)]
    assert parse_ranges(b"bytes=-100", 1000) == [(900, 100)]
    assert parse_ranges(b"bytes=-5000", 1000) == [(0, 1000)]
    assert parse_ranges(b"bytes=990-5000", 1000) == [(990, 10)]
    assert parse_ranges(b"BYTES = 1-2 , 5-6", 1000) == [(1, 2), (5, 2)]
    assert parse_ranges(b"bytes=1000-", 1000) == []
    assert parse_ranges(b"bytes=-0", 1000) == []
    for ignored in (b"items=0-1", b"bytes=5-1", b"bytes=a-b", b"bytes=", b"bytes=-", b"0-1"):
        assert parse_ranges(ignored, 1000) is None, ignored
    assert parse_ranges(b"bytes=" + b",".join([b"0-0"] * 17), 1000) is None


def test_a_single_range_is_206_with_content_range() -> None:
    result = answer((b"range", b"bytes=10-19"))
    assert result.status == 206 and result.pieces == [(10, 10)]
    assert header(result, b"content-range") == b"bytes 10-19/1000"
    assert header(result, b"content-length") == b"10"
    suffix = answer((b"range", b"bytes=-1"))
    assert header(suffix, b"content-range") == b"bytes 999-999/1000"


def test_an_unsatisfiable_range_is_416_with_the_size() -> None:
    result = answer((b"range", b"bytes=5000-6000"))
    assert result.status == 416
    assert header(result, b"content-range") == b"bytes */1000"
    empty = Representation(0, REP.mtime_ns, REP.content_type)
    assert answer((b"range", b"bytes=0-"), rep=empty).status == 416


def test_several_ranges_are_multipart_byteranges() -> None:
    result = answer((b"range", b"bytes=0-9, 5000-6000, 20-29"))
    assert result.status == 206
    assert header(result, b"content-type") == b"multipart/byteranges; boundary=BOUND"
    assert [p for p in result.pieces if isinstance(p, tuple)] == [(0, 10), (20, 10)]
    literal = b"".join(p for p in result.pieces if isinstance(p, bytes))
    assert literal.startswith(b"--BOUND\r\nContent-Type: text/plain; charset=utf-8\r\n")
    assert b"Content-Range: bytes 20-29/1000\r\n\r\n" in literal
    assert literal.endswith(b"\r\n--BOUND--\r\n")
    assert header(result, b"content-length") == b"%d" % result.length


def test_overlapping_ranges_get_the_whole_file() -> None:
    result = answer((b"range", b"bytes=0-99, 50-149"))
    assert result.status == 200 and result.pieces == [(0, 1000)]


def test_range_is_ignored_for_head_and_when_if_range_fails() -> None:
    assert answer((b"range", b"bytes=0-1"), method=b"HEAD").status == 200
    ranged = (b"range", b"bytes=0-1")
    assert answer(ranged, (b"if-range", REP.etag)).status == 206
    assert answer(ranged, (b"if-range", LAST_MODIFIED)).status == 206
    assert answer(ranged, (b"if-range", b'"old"')).status == 200
    assert answer(ranged, (b"if-range", b"W/" + REP.etag)).status == 200  # weak never
    assert answer(ranged, (b"if-range", b"Mon, 13 Nov 2023 00:00:00 GMT")).status == 200


# -- codings ----------------------------------------------------------------------------
def test_accept_encoding_weights() -> None:
    assert accepted_codings(b"gzip;q=0.5, br, x-gzip;q=0.2") == {"gzip": 0.2, "br": 1.0}
    assert accepted_codings(b"br;q=oops") == {"br": 0.0}


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, None),
        (b"gzip, deflate, br", "br"),
        (b"gzip", "gzip"),
        (b"br;q=0, gzip", "gzip"),
        (b"br;q=0.5, gzip;q=0.8", "gzip"),
        (b"*", "br"),
        (b"*;q=0", None),
        (b"gzip;q=0, br;q=0", None),
        (b"identity", None),
        (b"gzip;q=0.5, identity", None),
        (b"deflate", None),
    ],
)
def test_the_sibling_follows_the_client_weights(accept: bytes | None, chosen: str | None) -> None:
    assert choose_coding(accept, ("br", "gzip")) == chosen


def test_a_sibling_has_its_own_etag_and_content_encoding() -> None:
    sibling = Representation(300, REP.mtime_ns, REP.content_type, "br")
    assert sibling.etag != REP.etag and sibling.etag.endswith(b'-br"')
    result = plan(b"GET", [], sibling, cache_control=b"x", vary=True, boundary=lambda: b"B")
    assert header(result, b"content-encoding") == b"br"
    assert header(result, b"vary") == b"Accept-Encoding"
    assert header(result, b"content-length") == b"300"


# -- the connection's side of a file body -------------------------------------------------
def file_response(method: bytes, length: bytes = b"10") -> ServerConnection:
    conn = ServerConnection(Limits(), "h11")
    conn.receive(method + b" /f HTTP/1.1\r\nHost: t\r\n\r\n")
    conn.send_head(200, [(b"content-length", length)], date_line=b"")
    return conn


def test_a_file_body_is_counted_against_content_length() -> None:
    conn = file_response(b"GET")
    assert conn.send_file_body(10) is True
    assert conn.send_body(b"", end=True) == b"" and conn.keep_alive
    with pytest.raises(ResponseError):
        file_response(b"GET").send_file_body(11)


def test_a_head_response_takes_no_file_body() -> None:
    conn = file_response(b"HEAD")
    assert conn.send_file_body(10) is False
    assert conn.send_body(b"", end=True) == b""
