"""Cases on the connection: preface, frame format and sizes, stream states and identifiers."""

from __future__ import annotations

from hyperframe.frame import PriorityFrame

from tests.conformance_h2.client import (
    FRAME_SIZE_ERROR,
    PREFACE,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    STREAM_CLOSED,
    CaseFailed,
    DataFrame,
    GoAwayFrame,
    H2Client,
    HeadersFrame,
    PingFrame,
    Response,
    RstStreamFrame,
    SettingsFrame,
    frame_bytes,
    raw_headers,
    request_fields,
)
from tests.conformance_h2.registry import case

REQUEST = request_fields()


# -- RFC 9113 §3.4: the connection preface --------------------------------------------


@case("RFC 9113 §3.4")
def case_server_preface_is_settings(c: H2Client) -> None:
    c.handshake()
    c.alive()


@case("RFC 9113 §3.4")
def case_preface_byte_by_byte(c: H2Client) -> None:
    for byte in PREFACE + SettingsFrame(0).serialize():
        c.send(bytes([byte]))
    first = c.read_frame()
    if not isinstance(first, SettingsFrame):
        raise CaseFailed("no SETTINGS after a preface sent one byte at a time")
    c.send(SettingsFrame(0, flags=["ACK"]))
    c.alive()


@case("RFC 9113 §3.4", live=False)
def case_invalid_preface(c: H2Client) -> None:
    c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SettingsFrame(0).serialize())
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §3.4")
def case_preface_not_followed_by_settings(c: H2Client) -> None:
    c.send(PREFACE, PingFrame(0, opaque_data=b"12345678"))
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §6.5.3")
def case_client_settings_acknowledged(c: H2Client) -> None:
    c.handshake({3: 50})
    frames = c.sync()
    if not any(isinstance(f, SettingsFrame) and "ACK" in f.flags for f in frames):
        raise CaseFailed("the client's SETTINGS was not acknowledged")


# -- RFC 9113 §4: frame format and sizes ------------------------------------------------


@case("RFC 9113 §4.1")
def case_unknown_frame_type_ignored(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0xFA, 0, 0, b"hello"), frame_bytes(0xFB, 0xFF, 1, b""))
    c.alive()


@case("RFC 9113 §4.1")
def case_unknown_flags_ignored(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0x6, 0xF0, 0, b"abcdefgh"))  # PING with undefined flags
    for frame in c.sync():
        if isinstance(frame, PingFrame) and frame.opaque_data == b"abcdefgh":
            return
    raise CaseFailed("a PING with unknown flags was not answered")


@case("RFC 9113 §4.1")
def case_reserved_bit_ignored(c: H2Client) -> None:
    c.handshake()
    c.send(raw_headers(1 | 0x80000000, c.block(REQUEST)))
    if c.response(1).status != 200:
        raise CaseFailed("the reserved bit of the stream id was not ignored")


@case("RFC 9113 §4.2")
def case_data_over_max_frame_size(c: H2Client) -> None:
    c.handshake()
    c.send(c.headers(1, request_fields(b"POST"), end_stream=False))
    c.send(frame_bytes(0x0, 0x1, 1, b"x" * 16385))
    c.stream_error(1, FRAME_SIZE_ERROR, connection_ok=True)


@case("RFC 9113 §4.2")
def case_headers_over_max_frame_size(c: H2Client) -> None:
    c.handshake()
    big = c.block([*REQUEST, (b"x-pad", b"~" * 17000)])  # "~" grows under Huffman: sent raw
    c.send(raw_headers(1, big))
    c.goaway(FRAME_SIZE_ERROR)


@case("RFC 9113 §4.2")
def case_settings_over_max_frame_size(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0x4, 0, 0, b"\x00\x63\x00\x00\x00\x01" * 2731))
    c.goaway(FRAME_SIZE_ERROR)


# -- RFC 9113 §5.1: stream states and identifiers -------------------------------------


@case("RFC 9113 §5.1")
def case_data_on_idle_stream(c: H2Client) -> None:
    c.handshake()
    c.send(DataFrame(1, b"x"))
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §5.1")
def case_rst_stream_on_idle_stream(c: H2Client) -> None:
    c.handshake()
    c.send(RstStreamFrame(1, error_code=8))
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §5.1")
def case_window_update_on_idle_stream(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0x8, 0, 1, (1000).to_bytes(4, "big")))
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §5.1")
def case_priority_on_idle_stream_allowed(c: H2Client) -> None:
    c.handshake()
    c.send(PriorityFrame(5, depends_on=0, stream_weight=16))
    c.request(7)
    if c.response(7).status != 200:
        raise CaseFailed("PRIORITY on an idle stream broke the connection")


@case("RFC 9113 §5.1")
def case_data_after_end_stream(c: H2Client) -> None:
    c.handshake()
    c.send(c.headers(1, request_fields(b"POST", b"/hold"), end_stream=True))
    c.send(DataFrame(1, b"late"))
    c.stream_error(1, STREAM_CLOSED, connection_ok=True)


@case("RFC 9113 §5.1")
def case_headers_after_end_stream(c: H2Client) -> None:
    c.handshake()
    c.send(c.headers(1, request_fields(b"POST", b"/hold"), end_stream=True))
    c.send(c.headers(1, [(b"x-late", b"1")], end_stream=True))
    c.stream_error(1, STREAM_CLOSED, connection_ok=True)


@case("RFC 9113 §5.1.1")
def case_even_stream_id(c: H2Client) -> None:
    c.handshake()
    c.send(c.headers(2, REQUEST))
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §5.1.1")
def case_decreasing_stream_id_not_served(c: H2Client) -> None:
    """Stream 3 was closed implicitly by 5; its HEADERS may be a late frame of a reset
    stream, so libnghttp2 ignores it rather than closing the connection. Never served."""
    c.handshake()
    c.request(5)
    c.response(5)
    c.send(c.headers(3, REQUEST))
    for frame in c.sync():
        if isinstance(frame, HeadersFrame) and frame.stream_id == 3:
            raise CaseFailed("a request on a lower stream id than one already used was served")
        if isinstance(frame, GoAwayFrame) and frame.error_code in (PROTOCOL_ERROR, STREAM_CLOSED):
            return
    c.alive()


@case("RFC 9113 §6.2")
def case_headers_on_stream_zero(c: H2Client) -> None:
    c.handshake()
    c.send(raw_headers(0, c.block(REQUEST)))
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §5.1.2")
def case_streams_over_max_concurrent_refused(c: H2Client) -> None:
    c.handshake()
    limit = c.server_settings.get(3, 100)
    for i in range(limit + 1):
        c.send(c.headers(2 * i + 1, request_fields(b"POST", b"/hold"), end_stream=False))
    c.stream_error(2 * limit + 1, REFUSED_STREAM, PROTOCOL_ERROR, connection_ok=True)


@case("RFC 9113 §5")
def case_multiplexed_streams_all_answered(c: H2Client) -> None:
    c.handshake()
    for sid in range(1, 21, 2):
        c.request(sid, request_fields(path=b"/n%d" % sid))
    got: dict[int, Response] = {}
    for sid in range(1, 21, 2):
        response = got[sid] if sid in got and got[sid].ended else c.response(sid, got)
        if not response.body.endswith(b"/n%d 0" % sid):
            raise CaseFailed(f"stream {sid} got another stream's answer")


@case("RFC 9113 §5.4.2")
def case_stream_error_leaves_others(c: H2Client) -> None:
    c.handshake()
    c.send(c.headers(1, [*REQUEST, (b"connection", b"close")]))
    c.stream_error(1, PROTOCOL_ERROR)
    c.alive()


@case("RFC 9113 §5.4.1")
def case_connection_error_closes(c: H2Client) -> None:
    c.handshake()
    c.send(DataFrame(1, b"x"))
    c.goaway(PROTOCOL_ERROR)
    if c.read_frame() is not None or not c.driver.closed():
        raise CaseFailed("the server went on after a connection error")
