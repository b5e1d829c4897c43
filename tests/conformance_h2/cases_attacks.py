"""Cases on the known HTTP/2 attacks (RFC 9113 §10.5) and the size limits (§10.5.1).

Every flood must end in GOAWAY ENHANCE_YOUR_CALM (or the code its RFC section names), sent
while the connection is still ours; a limit on one request's size answers that stream only.
"""

from __future__ import annotations

from hyperframe.frame import ContinuationFrame

from tests.conformance_h2.client import (
    COMPRESSION_ERROR,
    ENHANCE_YOUR_CALM,
    PROTOCOL_ERROR,
    CaseFailed,
    DataFrame,
    H2Client,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    frame_bytes,
    request_fields,
)
from tests.conformance_h2.registry import case

FLOOD = 3000  # frames; far over every limit, and quick to build


@case("RFC 9113 §10.5 (CVE-2023-44487 rapid reset)")
def case_rapid_reset(c: H2Client) -> None:
    c.handshake()
    frames = []
    for i in range(FLOOD):
        sid = 2 * i + 1
        frames += [c.headers(sid, request_fields(path=b"/hold")), RstStreamFrame(sid, error_code=8)]
    c.send(*frames)
    c.goaway(ENHANCE_YOUR_CALM)


@case("RFC 9113 §10.5 (CVE-2025-8671 MadeYouReset)")
def case_made_you_reset(c: H2Client) -> None:
    c.handshake()
    frames: list[bytes | HeadersFrame | DataFrame] = []
    post = [*request_fields(b"POST", b"/hold"), (b"content-length", b"1")]
    for i in range(FLOOD):
        sid = 2 * i + 1  # each stream is malformed after it opened: the server must reset it
        frames += [c.headers(sid, post, end_stream=False), DataFrame(sid, b"xy")]
    c.send(*frames)
    c.goaway(ENHANCE_YOUR_CALM, PROTOCOL_ERROR)


@case("RFC 9113 §10.5")
def case_settings_flood(c: H2Client) -> None:
    c.handshake()
    c.send(*[SettingsFrame(0, settings={4: 65535}) for _ in range(FLOOD)])
    c.goaway(ENHANCE_YOUR_CALM)


@case("RFC 9113 §10.5")
def case_ping_flood(c: H2Client) -> None:
    c.handshake()
    c.send(*[PingFrame(0, opaque_data=b"floodING") for _ in range(FLOOD)])
    c.goaway(ENHANCE_YOUR_CALM)


@case("RFC 9113 §10.5")
def case_empty_data_flood(c: H2Client) -> None:
    c.handshake()
    c.send(c.headers(1, request_fields(b"POST"), end_stream=False))
    c.send(*[DataFrame(1, b"") for _ in range(FLOOD)])
    c.goaway(ENHANCE_YOUR_CALM)


@case("RFC 9113 §10.5")
def case_window_update_flood(c: H2Client) -> None:
    c.handshake()
    c.send(*[frame_bytes(0x8, 0, 0, b"\x00\x00\x00\x01") for _ in range(FLOOD)])
    c.goaway(ENHANCE_YOUR_CALM)


@case("RFC 9113 §10.5 (CONTINUATION flood)")
def case_continuation_flood(c: H2Client) -> None:
    c.handshake()
    block = c.block(request_fields())
    frames = [HeadersFrame(1, block, flags=[])]
    frames += [ContinuationFrame(1, b"") for _ in range(FLOOD)]  # type: ignore[misc]
    c.send(*frames)
    c.goaway(ENHANCE_YOUR_CALM, PROTOCOL_ERROR)


@case("RFC 9113 §10.5 (CONTINUATION flood)")
def case_continuation_flood_with_fields(c: H2Client) -> None:
    c.handshake()
    frames: list[bytes] = [frame_bytes(0x1, 0x0, 1, c.block(request_fields()))]
    for i in range(FLOOD):
        frames.append(frame_bytes(0x9, 0x0, 1, c.block([(b"x-f%d" % i, b"v" * 50)])))
    c.send(*frames)
    c.goaway(ENHANCE_YOUR_CALM, PROTOCOL_ERROR, COMPRESSION_ERROR)


@case("RFC 7541 §7.3 (HPACK bomb)")
def case_hpack_bomb(c: H2Client) -> None:
    c.handshake()
    block = c.block([*request_fields(), (b"x-big", b"a" * 4000)])
    block += b"\xbe" * 4000  # 4000 references to the 4 KB entry: 16 MB decoded
    c.send_block(1, block)
    c.goaway(ENHANCE_YOUR_CALM, COMPRESSION_ERROR)


@case("RFC 9113 §10.5.1")
def case_header_list_over_limit_gets_431(c: H2Client) -> None:
    c.handshake()
    fields = [*request_fields(), *[(b"x-f%d" % i, b"v" * 900) for i in range(80)]]
    c.send_block(1, c.block(fields))
    if c.response(1).status != 431:
        raise CaseFailed("a header list over the limit was not answered with 431")
    c.alive()


@case("RFC 9113 §10.5.1")
def case_too_many_fields_gets_431(c: H2Client) -> None:
    c.handshake()
    c.request(1, [*request_fields(), *[(b"x-f%d" % i, b"1") for i in range(150)]])
    if c.response(1).status != 431:
        raise CaseFailed("150 header fields were not answered with 431")
    c.alive()


@case("RFC 9113 §10.5.1")
def case_field_over_limit_gets_431(c: H2Client) -> None:
    c.handshake()
    c.request(1, [*request_fields(), (b"x-long", b"v" * 9000)])
    if c.response(1).status != 431:
        raise CaseFailed("a 9000-byte field was not answered with 431")
    c.alive()
