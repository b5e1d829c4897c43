"""Cases on header compression (RFC 7541) and header blocks (RFC 9113 §4.3)."""

from __future__ import annotations

from tests.conformance_h2.client import (
    COMPRESSION_ERROR,
    PROTOCOL_ERROR,
    CaseFailed,
    H2Client,
    PingFrame,
    frame_bytes,
    raw_headers,
    request_fields,
)
from tests.conformance_h2.registry import case

REQUEST = request_fields()


# -- RFC 7541 and RFC 9113 §4.3: header compression -----------------------------------


def _hpack_error(c: H2Client, block: bytes) -> None:
    c.handshake()
    c.send(raw_headers(1, block))
    c.goaway(COMPRESSION_ERROR)


@case("RFC 7541 §6.1")
def case_hpack_index_zero(c: H2Client) -> None:
    _hpack_error(c, b"\x80")


@case("RFC 7541 §2.3.3")
def case_hpack_index_past_tables(c: H2Client) -> None:
    _hpack_error(c, b"\x82\x86\xc6")  # :method GET, :scheme http, then index 70


@case("RFC 7541 §4.2")
def case_hpack_table_size_over_setting(c: H2Client) -> None:
    _hpack_error(c, b"\x3f\xe1\x3f\x82\x86\x84")  # size update to 8192 > 4096


@case("RFC 7541 §4.2")
def case_hpack_table_size_update_after_field(c: H2Client) -> None:
    _hpack_error(c, b"\x82\x20\x86\x84")


@case("RFC 7541 §5.2")
def case_hpack_huffman_eos(c: H2Client) -> None:
    _hpack_error(c, b"\x82\x86\x04\x84\xff\xff\xff\xff")  # :path with EOS in Huffman


@case("RFC 7541 §5.2")
def case_hpack_huffman_bad_padding(c: H2Client) -> None:
    _hpack_error(c, b"\x82\x86\x04\x81\x00")  # padding must be the EOS prefix (all ones)


@case("RFC 7541 §5.1")
def case_hpack_integer_overflow(c: H2Client) -> None:
    _hpack_error(c, b"\xff" + b"\xff" * 10 + b"\x01")


@case("RFC 7541 §4.3")
def case_hpack_truncated_block(c: H2Client) -> None:
    _hpack_error(c, b"\x82\x86\x04")  # a literal whose value never comes


@case("RFC 7541 §2.3.2")
def case_hpack_dynamic_table_across_requests(c: H2Client) -> None:
    c.handshake()
    fields = request_fields(path=b"/headers", extra=[(b"x-token", b"abc123")])
    c.request(1, fields)
    c.request(3, fields)  # the encoder now refers to its dynamic table
    if b"x-token: abc123" not in c.response(3).body:
        raise CaseFailed("an indexed field from the dynamic table was lost")


@case("RFC 9113 §4.3")
def case_header_block_split_over_continuation(c: H2Client) -> None:
    c.handshake()
    block = c.block(request_fields(path=b"/headers", extra=[(b"x-a", b"1" * 300)]))
    c.send(
        frame_bytes(0x1, 0x1, 1, block[:5]),
        frame_bytes(0x9, 0x0, 1, block[5:100]),
        frame_bytes(0x9, 0x4, 1, block[100:]),
    )
    if b"x-a: " + b"1" * 300 not in c.response(1).body:
        raise CaseFailed("a header block split over CONTINUATION frames was not rebuilt")


@case("RFC 9113 §4.3")
def case_other_frame_inside_header_block(c: H2Client) -> None:
    c.handshake()
    block = c.block(REQUEST)
    c.send(frame_bytes(0x1, 0x1, 1, block[:3]), PingFrame(0, opaque_data=b"x" * 8))
    c.goaway(PROTOCOL_ERROR)
