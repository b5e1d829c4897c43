"""Http2Connection, sans-IO: bytes in, our events out, on every installed backend."""

from __future__ import annotations

import pytest
from hpack import Decoder, Encoder
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridserve.config_groups import Limits
from hybridserve.sansio.h2backend import H2Settings, available_backends, make_backend
from hybridserve.sansio.h2events import (
    ConnectionEnded,
    ErrorCode,
    H2Event,
    StreamData,
    StreamEnded,
    StreamRequest,
    StreamReset,
    WindowOpened,
)
from hybridserve.sansio.h2frames import FrameScanner
from hybridserve.sansio.h2guard import FloodLimits, RateWindow
from hybridserve.sansio.http2 import PREFACE, Http2Connection

BACKENDS = available_backends()
GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a.test"), (b":path", b"/x")]
POST = [(b":method", b"POST"), *GET[1:]]


def frames(data: bytes) -> list[Frame]:
    found = []
    while len(data) >= 9:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9 : 9 + length]))
        found.append(frame)
        data = data[9 + length :]
    return found


class Client:
    """Just enough of a client to write frames (one HPACK encoder for the connection)."""

    def __init__(self) -> None:
        self.encoder = Encoder()

    def start(self, settings: dict[int, int] | None = None) -> bytes:
        return PREFACE + SettingsFrame(0, settings=settings or {}).serialize()

    def headers(self, sid: int, fields: list[tuple[bytes, bytes]], end: bool = True) -> bytes:
        flags = ["END_HEADERS", *(["END_STREAM"] if end else [])]
        return HeadersFrame(sid, self.encoder.encode(fields), flags=flags).serialize()


def connect(backend: str, **kwargs: object) -> tuple[Http2Connection, Client]:
    conn = Http2Connection(Limits(), backend=backend, **kwargs)  # type: ignore[arg-type]
    conn.data_to_send()
    client = Client()
    conn.receive(client.start(), 0.0)
    conn.data_to_send()
    return conn, client


@pytest.mark.parametrize("backend", BACKENDS)
def test_bodiless_request_ends_at_once(backend: str) -> None:
    conn, client = connect(backend)
    events = conn.receive(client.headers(1, GET), 0.0)
    request, ended = events
    assert isinstance(request, StreamRequest) and request.end_stream
    assert request.request.method == b"GET" and request.request.target == b"/x"
    assert request.request.http_version == b"2" and request.scheme == b"https"
    assert request.request.headers == [(b"host", b"a.test")]
    assert ended == StreamEnded(1, [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_body_then_one_end(backend: str) -> None:
    conn, client = connect(backend)
    data = client.headers(1, POST, end=False) + DataFrame(1, b"abc").serialize()
    data += DataFrame(1, b"de", flags=["END_STREAM"]).serialize()
    events = conn.receive(data, 0.0)
    assert [type(e) for e in events] == [StreamRequest, StreamData, StreamData, StreamEnded]
    assert b"".join(e.data for e in events if isinstance(e, StreamData)) == b"abcde"


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=8))
def test_every_read_cut_gives_the_same_events(backend: str, cuts: list[int]) -> None:
    client = Client()
    data = client.start() + client.headers(1, POST, end=False)
    data += DataFrame(1, b"hello", flags=["END_STREAM"]).serialize() + client.headers(3, GET)
    conn = Http2Connection(Limits(), backend=backend)
    events: list[H2Event] = []
    at = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        events += conn.receive(data[at:cut], 0.0) if cut > at else []
        at = max(at, cut)
    kinds = [(type(e).__name__, getattr(e, "stream_id", 0)) for e in events]
    kinds = [k for k in kinds if k[0] != "WindowOpened"]
    data_bytes = b"".join(e.data for e in events if isinstance(e, StreamData))
    assert kinds[0] == ("StreamRequest", 1) and kinds[-2:] == [
        ("StreamRequest", 3),
        ("StreamEnded", 3),
    ]
    assert ("StreamEnded", 1) in kinds and data_bytes == b"hello"


@pytest.mark.parametrize("backend", BACKENDS)
def test_window_reopens_only_as_the_app_consumes(backend: str) -> None:
    conn, client = connect(backend)
    body = b"".join(DataFrame(1, b"x" * 16000).serialize() for _ in range(3))
    conn.receive(client.headers(1, POST, end=False) + body, 0.0)
    assert not [f for f in frames(conn.data_to_send()) if isinstance(f, WindowUpdateFrame)]
    conn.ack_consumed(1, 48000)
    credited = {
        f.stream_id: f.window_increment
        for f in frames(conn.data_to_send())
        if isinstance(f, WindowUpdateFrame)
    }
    assert credited.get(1, 0) >= 32000


@pytest.mark.parametrize("backend", BACKENDS)
def test_writer_sees_pending_bytes_until_the_window_opens(backend: str) -> None:
    conn, client = connect(backend)
    conn.receive(client.headers(1, GET), 0.0)
    conn.send_head(1, 200, [(b"Content-Type", b"text/plain")])
    conn.send_data(1, b"y" * 100_000, end_stream=True)
    sent = sum(len(f.data) for f in frames(conn.data_to_send()) if isinstance(f, DataFrame))
    assert sent == 65_535 and conn.pending_bytes(1) == 100_000 - 65_535
    assert conn.send_window(1) == 0
    update = WindowUpdateFrame(0, window_increment=50_000).serialize()
    update += WindowUpdateFrame(1, window_increment=50_000).serialize()
    assert WindowOpened(1) in conn.receive(update, 0.0)
    rest = sum(len(f.data) for f in frames(conn.data_to_send()) if isinstance(f, DataFrame))
    assert rest == 100_000 - 65_535 and conn.pending_bytes(1) == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_response_fields_lowercased_without_hop_by_hop(backend: str) -> None:
    conn, client = connect(backend)
    conn.receive(client.headers(1, GET), 0.0)
    conn.send_head(1, 204, [(b"X-Thing", b"1"), (b"Connection", b"close")], end_stream=True)
    head = next(f for f in frames(conn.data_to_send()) if isinstance(f, HeadersFrame))
    from hpack import Decoder

    assert Decoder().decode(bytes(head.data), raw=True) == [
        (b":status", b"204"),
        (b"x-thing", b"1"),
    ]
    assert conn.open_streams == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_client_reset_is_a_disconnect_for_that_stream(backend: str) -> None:
    conn, client = connect(backend)
    conn.receive(client.headers(1, POST, end=False) + client.headers(3, POST, end=False), 0.0)
    events = conn.receive(RstStreamFrame(1, error_code=ErrorCode.CANCEL).serialize(), 1.0)
    assert events == [StreamReset(1, ErrorCode.CANCEL, remote=True)]
    assert conn.open_streams == 1
    conn.send_data(1, b"late", end_stream=True)  # the app did not know yet: ignored
    assert not [f for f in frames(conn.data_to_send()) if isinstance(f, DataFrame)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_streams_opened_and_reset_in_one_read_never_reach_the_app(backend: str) -> None:
    conn, client = connect(backend)
    data = b"".join(
        client.headers(sid, GET, end=False) + RstStreamFrame(sid, error_code=8).serialize()
        for sid in range(1, 40, 2)
    )
    assert [e for e in conn.receive(data, 0.0) if not isinstance(e, WindowOpened)] == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_resets_spread_over_windows_are_no_flood(backend: str) -> None:
    conn, client = connect(backend, floods=FloodLimits(resets=10, window_s=1.0))
    sid = 1
    for second in range(5):
        for _ in range(8):
            data = (
                client.headers(sid, POST, end=False) + RstStreamFrame(sid, error_code=8).serialize()
            )
            conn.receive(data, float(second))
            sid += 2
    assert not conn.failed
    data = b"".join(
        client.headers(s, POST, end=False) + RstStreamFrame(s, error_code=8).serialize()
        for s in range(sid, sid + 30, 2)
    )
    events = conn.receive(data, 5.0)
    assert conn.failed and isinstance(events[-1], ConnectionEnded)
    assert events[-1].error_code == ErrorCode.ENHANCE_YOUR_CALM
    goaway = [f for f in frames(conn.data_to_send()) if isinstance(f, GoAwayFrame)]
    assert [g.error_code for g in goaway] == [ErrorCode.ENHANCE_YOUR_CALM]
    assert conn.receive(client.headers(sid + 40, GET), 6.0) == []  # no input after failing


@pytest.mark.parametrize("backend", BACKENDS)
def test_close_sends_goaway_and_refuses_newer_streams(backend: str) -> None:
    conn, client = connect(backend)
    conn.receive(client.headers(1, POST, end=False), 0.0)
    conn.close()
    goaway = [f for f in frames(conn.data_to_send()) if isinstance(f, GoAwayFrame)]
    assert [(g.last_stream_id, g.error_code) for g in goaway] == [(1, 0)]
    events = conn.receive(client.headers(3, GET), 0.0)
    assert not [e for e in events if isinstance(e, StreamRequest)]
    events = conn.receive(DataFrame(1, b"end", flags=["END_STREAM"]).serialize(), 0.0)
    assert StreamEnded(1, []) in events and conn.closing and conn.open_streams == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_body_over_limit_answered_413(backend: str) -> None:
    conn = Http2Connection(Limits(max_body_bytes=10), backend=backend)
    client = Client()
    conn.receive(client.start(), 0.0)
    conn.data_to_send()
    events = conn.receive(client.headers(1, [*POST, (b"content-length", b"11")], end=False), 0.0)
    assert not [e for e in events if isinstance(e, StreamRequest)]
    head = next(f for f in frames(conn.data_to_send()) if isinstance(f, HeadersFrame))
    assert Decoder().decode(bytes(head.data), raw=True) == [(b":status", b"413")]


def test_rate_window_rolls_over() -> None:
    window = RateWindow(limit=2, window_s=1.0)
    assert [window.hit(0.0), window.hit(0.5), window.hit(0.9)] == [False, False, True]
    assert window.hit(1.0) is False  # a new window


def test_frame_scanner_follows_frames_across_cuts() -> None:
    data = SettingsFrame(0).serialize() + DataFrame(1, b"x" * 30).serialize()
    data += b"\x00\x00\x05\x02\x00\x00\x00\x00\x00" + b"\x00" * 5  # PRIORITY on stream 0
    for cut in range(1, len(data)):
        scanner = FrameScanner()
        found = [scanner.scan(data[:cut]), scanner.scan(data[cut:])]
        assert [f for f in found if f] == ["PRIORITY on stream 0"], cut


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown HTTP/2 backend"):
        make_backend("nope", H2Settings())


@pytest.mark.parametrize("backend", BACKENDS)
def test_body_of_an_answered_stream_still_credits_the_connection(backend: str) -> None:
    conn, client = connect(backend)
    conn.receive(client.headers(1, POST, end=False), 0.0)
    conn.send_head(1, 200, [], end_stream=True)  # answered before its body: RST NO_ERROR
    resets = [f for f in frames(conn.data_to_send()) if isinstance(f, RstStreamFrame)]
    assert [(r.stream_id, r.error_code) for r in resets] == [(1, 0)]
    late = DataFrame(1, b"z" * 16_000).serialize()
    credited = 0
    sent = 0
    window = H2Settings().connection_window_bytes
    while sent < 2 * window:  # more than the window: without credit the client would stall
        conn.receive(late, 0.0)
        sent += 16_000
        out = frames(conn.data_to_send())
        credited += sum(f.window_increment for f in out if isinstance(f, WindowUpdateFrame))
    assert not conn.failed and credited >= sent - window  # the connection window did not leak
