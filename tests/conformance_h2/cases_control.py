"""Cases on the control frames: PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION."""

from __future__ import annotations

from tests.conformance_h2.client import (
    FRAME_SIZE_ERROR,
    PROTOCOL_ERROR,
    CaseFailed,
    DataFrame,
    GoAwayFrame,
    H2Client,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    frame_bytes,
    request_fields,
)
from tests.conformance_h2.registry import case

REQUEST = request_fields()


# -- RFC 9113 §6.3 to §6.8 and §6.10: control frames ---------------------------------


@case("RFC 9113 §6.3")
def case_priority_wrong_length(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0x2, 0, 1, b"\x00" * 4))
    c.stream_error(1, FRAME_SIZE_ERROR, connection_ok=True)


@case("RFC 9113 §6.3")
def case_priority_on_stream_zero(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0x2, 0, 0, b"\x00\x00\x00\x01\x10"))
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §5.3.1")
def case_priority_depends_on_itself(c: H2Client) -> None:
    c.handshake()
    c.send(
        HeadersFrame(
            1,
            c.block(REQUEST),
            flags=["END_HEADERS", "END_STREAM", "PRIORITY"],
            depends_on=1,
            stream_weight=16,
        )
    )
    c.stream_error(1, PROTOCOL_ERROR, connection_ok=True)


@case("RFC 9113 §6.4")
def case_rst_stream_on_stream_zero(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0x3, 0, 0, b"\x00\x00\x00\x08"))
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §6.4")
def case_rst_stream_wrong_length(c: H2Client) -> None:
    c.handshake()
    c.send(c.headers(1, request_fields(b"POST", b"/hold"), end_stream=False))
    c.send(frame_bytes(0x3, 0, 1, b"\x00\x00\x08"))
    c.goaway(FRAME_SIZE_ERROR)


@case("RFC 9113 §6.4")
def case_rst_stream_cancels_only_that_stream(c: H2Client) -> None:
    c.handshake()
    c.send(c.headers(1, request_fields(b"POST", b"/hold"), end_stream=False))
    c.send(RstStreamFrame(1, error_code=8))
    c.alive()


@case("RFC 9113 §6.5")
def case_settings_ack_with_payload(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0x4, 0x1, 0, b"\x00\x03\x00\x00\x00\x10"))
    c.goaway(FRAME_SIZE_ERROR)


@case("RFC 9113 §6.5")
def case_settings_on_stream(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0x4, 0, 1, b""))
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §6.5")
def case_settings_length_not_multiple_of_six(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0x4, 0, 0, b"\x00\x03\x00\x00\x10"))
    c.goaway(FRAME_SIZE_ERROR)


def _bad_setting(c: H2Client, ident: int, value: int, code: int) -> None:
    c.handshake()
    c.send(frame_bytes(0x4, 0, 0, ident.to_bytes(2, "big") + value.to_bytes(4, "big")))
    c.goaway(code)


@case("RFC 9113 §6.5.2")
def case_settings_enable_push_invalid(c: H2Client) -> None:
    _bad_setting(c, 0x2, 2, PROTOCOL_ERROR)


@case("RFC 9113 §6.5.2")
def case_settings_window_too_large(c: H2Client) -> None:
    _bad_setting(c, 0x4, 1 << 31, 0x3)


@case("RFC 9113 §6.5.2")
def case_settings_frame_size_too_small(c: H2Client) -> None:
    _bad_setting(c, 0x5, 16383, PROTOCOL_ERROR)


@case("RFC 9113 §6.5.2")
def case_settings_frame_size_too_large(c: H2Client) -> None:
    _bad_setting(c, 0x5, 1 << 24, PROTOCOL_ERROR)


@case("RFC 9113 §6.5.2")
def case_settings_unknown_ignored(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0x4, 0, 0, b"\x00\xff\x00\x00\x00\x01"))
    if not any(isinstance(f, SettingsFrame) and "ACK" in f.flags for f in c.sync()):
        raise CaseFailed("a SETTINGS with an unknown identifier was not acknowledged")
    c.alive()


@case("RFC 9113 §6.7")
def case_ping_answered(c: H2Client) -> None:
    c.handshake()
    c.send(PingFrame(0, opaque_data=b"87654321"))
    for frame in c.sync():
        if isinstance(frame, PingFrame) and "ACK" in frame.flags:
            if frame.opaque_data != b"87654321":
                raise CaseFailed("PING ACK with another payload")
            return
    raise CaseFailed("PING not answered")


@case("RFC 9113 §6.7")
def case_ping_ack_not_answered(c: H2Client) -> None:
    c.handshake()
    c.send(PingFrame(0, flags=["ACK"], opaque_data=b"unsolic."))
    if any(isinstance(f, PingFrame) and f.opaque_data == b"unsolic." for f in c.sync()):
        raise CaseFailed("a PING ACK was answered")


@case("RFC 9113 §6.7")
def case_ping_on_stream(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0x6, 0, 1, b"x" * 8))
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §6.7")
def case_ping_wrong_length(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0x6, 0, 0, b"x" * 7))
    c.goaway(FRAME_SIZE_ERROR)


@case("RFC 9113 §6.8")
def case_goaway_on_stream(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0x7, 0, 1, b"\x00" * 8))
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §6.8", misses={"h2": "h2 takes no frame after a GOAWAY it received"})
def case_client_goaway_lets_open_stream_finish(c: H2Client) -> None:
    c.handshake()
    c.send(c.headers(1, request_fields(b"POST"), end_stream=False))
    c.send(GoAwayFrame(0, last_stream_id=0, error_code=0))
    c.send(DataFrame(1, b"abc", flags=["END_STREAM"]))
    if c.response(1).body != b"POST / 3":
        raise CaseFailed("an open stream was not finished after the client's GOAWAY")


@case("RFC 9113 §6.10")
def case_continuation_without_headers(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0x9, 0x4, 1, c.block(REQUEST)))
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §6.10")
def case_continuation_after_end_headers(c: H2Client) -> None:
    c.handshake()
    c.send(c.headers(1, request_fields(b"POST", b"/hold"), end_stream=False))
    c.send(frame_bytes(0x9, 0x4, 1, c.block([(b"x-a", b"1")])))
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §6.10")
def case_continuation_on_other_stream(c: H2Client) -> None:
    c.handshake()
    block = c.block(REQUEST)
    c.send(frame_bytes(0x1, 0x1, 1, block[:2]), frame_bytes(0x9, 0x4, 3, block[2:]))
    c.goaway(PROTOCOL_ERROR)
