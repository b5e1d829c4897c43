"""Cases on DATA frames and flow control (RFC 9113 §5.2, §6.1, §6.9)."""

from __future__ import annotations

from tests.conformance_h2.client import (
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    PROTOCOL_ERROR,
    CaseFailed,
    DataFrame,
    H2Client,
    HeadersFrame,
    SettingsFrame,
    WindowUpdateFrame,
    frame_bytes,
    request_fields,
)
from tests.conformance_h2.registry import case

POST = request_fields(b"POST")


def _open(c: H2Client, path: bytes = b"/", stream_id: int = 1) -> None:
    c.handshake()
    c.send(c.headers(stream_id, request_fields(b"POST", path), end_stream=False))


def _window_update(stream_id: int, increment: int) -> bytes:
    return frame_bytes(0x8, 0, stream_id, increment.to_bytes(4, "big"))


# -- RFC 9113 §6.1: DATA --------------------------------------------------------------


@case("RFC 9113 §6.1")
def case_data_on_stream_zero(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0x0, 0, 0, b"x"))
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §6.1")
def case_data_pad_length_too_long(c: H2Client) -> None:
    _open(c)
    c.send(frame_bytes(0x0, 0x8 | 0x1, 1, b"\x05abc"))  # 5 bytes of padding in 3
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §6.1")
def case_padded_data_delivered(c: H2Client) -> None:
    _open(c)
    c.send(frame_bytes(0x0, 0x8 | 0x1, 1, b"\x04abc" + b"\x00" * 4))
    if c.response(1).body != b"POST / 3":
        raise CaseFailed("padding was taken as body, or the body was lost")


@case("RFC 9113 §6.1")
def case_empty_data_with_end_stream_ends_request(c: H2Client) -> None:
    _open(c)
    c.send(DataFrame(1, b"hello"), DataFrame(1, b"", flags=["END_STREAM"]))
    if c.response(1).body != b"POST / 5":
        raise CaseFailed("an empty DATA with END_STREAM did not end the request")


@case("RFC 9113 §6.1")
def case_body_over_many_frames(c: H2Client) -> None:
    _open(c)
    for _ in range(9):
        c.send(DataFrame(1, b"y" * 1000))
    c.send(DataFrame(1, b"y" * 1000, flags=["END_STREAM"]))
    if c.response(1).body != b"POST / 10000":
        raise CaseFailed("a body in ten frames was not delivered whole")


@case("RFC 9113 §6.1")
def case_data_after_trailers(c: H2Client) -> None:
    _open(c, b"/hold")
    c.send(c.headers(1, [(b"x-t", b"1")], end_stream=True))
    c.send(DataFrame(1, b"late"))
    c.stream_error(1, 0x5, connection_ok=True)


@case("RFC 9113 §6.2")
def case_padded_headers_accepted(c: H2Client) -> None:
    c.handshake()
    block = c.block(request_fields())
    c.send(frame_bytes(0x1, 0x8 | 0x4 | 0x1, 1, b"\x03" + block + b"\x00" * 3))
    if c.response(1).status != 200:
        raise CaseFailed("a padded HEADERS frame was refused")


@case("RFC 9113 §6.2")
def case_headers_pad_length_too_long(c: H2Client) -> None:
    c.handshake()
    block = c.block(request_fields())
    c.send(frame_bytes(0x1, 0x8 | 0x4 | 0x1, 1, bytes([len(block) + 5]) + block))
    c.goaway(PROTOCOL_ERROR)


# -- RFC 9113 §6.9: WINDOW_UPDATE and flow control -------------------------------------


@case("RFC 9113 §6.9")
def case_window_update_zero_on_connection(c: H2Client) -> None:
    c.handshake()
    c.send(_window_update(0, 0))
    c.goaway(PROTOCOL_ERROR)


@case("RFC 9113 §6.9")
def case_window_update_zero_on_stream(c: H2Client) -> None:
    _open(c, b"/hold")
    c.send(_window_update(1, 0))
    c.stream_error(1, PROTOCOL_ERROR, connection_ok=True)


@case("RFC 9113 §6.9")
def case_window_update_wrong_length(c: H2Client) -> None:
    c.handshake()
    c.send(frame_bytes(0x8, 0, 0, b"\x00\x00\x01"))
    c.goaway(FRAME_SIZE_ERROR)


@case("RFC 9113 §6.9.1")
def case_connection_window_overflow(c: H2Client) -> None:
    c.handshake()
    c.send(_window_update(0, (1 << 31) - 1))
    c.goaway(FLOW_CONTROL_ERROR)


@case("RFC 9113 §6.9.1")
def case_stream_window_overflow(c: H2Client) -> None:
    _open(c, b"/hold")
    c.send(_window_update(1, (1 << 31) - 1))
    c.stream_error(1, FLOW_CONTROL_ERROR, connection_ok=True)


@case("RFC 9113 §6.9.1", live=False)  # a live app reads at once: the window never fills
def case_data_over_stream_window(c: H2Client) -> None:
    _open(c, b"/hold")
    window = c.server_settings.get(4, 65535)
    sent = 0
    while sent <= window:
        c.send(DataFrame(1, b"z" * 16384))
        sent += 16384
    c.stream_error(1, FLOW_CONTROL_ERROR, connection_ok=True)


@case("RFC 9113 §6.9.1")
def case_server_respects_small_window(c: H2Client) -> None:
    c.handshake({4: 100})
    c.request(1, request_fields(path=b"/big/1000"))
    sent = sum(len(f.data) for f in c.head_then_sync(1) if isinstance(f, DataFrame))
    if sent > 100:
        raise CaseFailed(f"the server sent {sent} bytes into a 100-byte window")
    c.send(WindowUpdateFrame(1, window_increment=900))
    rest = sum(len(f.data) for f in c.sync() if isinstance(f, DataFrame))
    if sent + rest != 1000:
        raise CaseFailed(f"after the window opened, {sent + rest} of 1000 bytes came")


@case("RFC 9113 §6.9.2")
def case_initial_window_change_applies_to_open_streams(c: H2Client) -> None:
    c.handshake({4: 0})
    c.request(1, request_fields(path=b"/big/500"))
    if any(isinstance(f, DataFrame) and f.data for f in c.head_then_sync(1)):
        raise CaseFailed("DATA sent into a zero window")
    c.send(SettingsFrame(0, settings={4: 65535}))
    if sum(len(f.data) for f in c.sync() if isinstance(f, DataFrame)) != 500:
        raise CaseFailed("a larger SETTINGS_INITIAL_WINDOW_SIZE did not release the body")


@case("RFC 9113 §6.9.2")
def case_initial_window_shrink_makes_window_negative(c: H2Client) -> None:
    c.handshake({4: 1000})
    c.request(1, request_fields(path=b"/big/3000"))
    first = sum(len(f.data) for f in c.head_then_sync(1) if isinstance(f, DataFrame))
    c.send(SettingsFrame(0, settings={4: 500}))  # window now 500 - 1000 = -500
    c.send(WindowUpdateFrame(1, window_increment=500))  # back to 0: still nothing may come
    more = sum(len(f.data) for f in c.sync() if isinstance(f, DataFrame))
    if first != 1000 or more:
        raise CaseFailed(f"sent {first} then {more} bytes; a negative window allows none")


@case("RFC 9113 §4.2")
def case_server_data_frames_within_max_frame_size(c: H2Client) -> None:
    c.handshake()
    c.request(1, request_fields(path=b"/big/40000"))
    c.response(1)
    # response() checked every frame parsed; hyperframe refuses nothing, so look again:
    c.request(3, request_fields(path=b"/big/40000"))
    sizes = [len(f.data) for f in c.head_then_sync(3) if isinstance(f, DataFrame)]
    if not sizes or max(sizes) > 16384:
        raise CaseFailed(f"DATA frame sizes {sizes} exceed SETTINGS_MAX_FRAME_SIZE")


@case("RFC 9113 §6.9", live=False)
def case_no_window_update_before_app_reads(c: H2Client) -> None:
    _open(c, b"/hold")
    c.send(*[DataFrame(1, b"q" * 10000) for _ in range(4)])
    updates = [f for f in c.sync() if isinstance(f, WindowUpdateFrame) and f.stream_id == 1]
    if updates:
        raise CaseFailed("WINDOW_UPDATE for a body the app has not read")


@case("RFC 9113 §6.9")
def case_window_update_as_app_reads(c: H2Client) -> None:
    _open(c)
    c.send(*[DataFrame(1, b"q" * 10000) for _ in range(4)])
    frames = c.sync()
    credited = sum(
        f.window_increment for f in frames if isinstance(f, WindowUpdateFrame) and f.stream_id
    )
    if credited < 20000:
        raise CaseFailed(f"only {credited} of 40000 consumed bytes credited back")


@case("RFC 9113 §8.1")
def case_early_response_then_rst_no_error(c: H2Client) -> None:
    _open(c, b"/early")
    response = c.response(1)
    if response.body != b"POST /early 0":
        raise CaseFailed("the early response did not come")
    c.send(DataFrame(1, b"rest of the body", flags=["END_STREAM"]))
    c.alive()


@case("RFC 9113 §8.1")
def case_headers_frame_only_response_for_bodiless(c: H2Client) -> None:
    c.handshake()
    c.send(HeadersFrame(1, c.block(request_fields(b"HEAD")), flags=["END_HEADERS", "END_STREAM"]))
    if c.response(1).status != 200:
        raise CaseFailed("a HEAD request was not answered")
