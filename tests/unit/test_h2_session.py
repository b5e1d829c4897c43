"""HTTPProtocol + H2Session over a fake transport: streams, capacity, resets, drain."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hpack import Encoder
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
)

from hybridserve.config import Config
from hybridserve.sansio.http2 import PREFACE
from hybridserve.worker.capacity import Capacity
from hybridserve.worker.h2session import H2Session
from hybridserve.worker.http1 import H1Session
from hybridserve.worker.protocol import HTTPProtocol
from hybridserve.worker.sessions import Undecided, make_session
from hybridserve.worker.state import Record, WorkerState
from tests.unit.test_worker_seams import FakeTransport, HeldAdapter

POST = [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"t"), (b":path", b"/p")]


@dataclass
class EofTransport(FakeTransport):
    eof_written: bool = False

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True


@dataclass
class H2Rig:
    protocol: HTTPProtocol
    transport: EofTransport
    adapter: HeldAdapter
    state: WorkerState
    encoder: Encoder

    def headers(self, sid: int, end: bool = False) -> bytes:
        flags = ["END_HEADERS", *(["END_STREAM"] if end else [])]
        return HeadersFrame(sid, self.encoder.encode(POST), flags=flags).serialize()

    def frames(self) -> list[Frame]:
        data, found = bytes(self.transport.written), []
        self.transport.written.clear()
        while len(data) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(data[:9]))
            frame.parse_body(memoryview(data[9 : 9 + length]))
            found.append(frame)
            data = data[9 + length :]
        return found


def h2_rig() -> H2Rig:
    loop = asyncio.get_running_loop()
    adapter = HeldAdapter()
    cap = Capacity(streams=0, connections=0, clock=loop.time, on_room=lambda: None)
    record = Record(None, max_requests=0, on_quota=lambda: None)
    state = WorkerState(
        Config(), loop, adapter, cap, record, http_backend="h11", render_metrics=lambda: b""
    )
    protocol = HTTPProtocol(state, make_session)
    transport = EofTransport()
    cap.accepted()
    protocol.connection_made(transport)  # type: ignore[arg-type]  # a fake transport
    rig = H2Rig(protocol, transport, adapter, state, Encoder())
    protocol.data_received(PREFACE + SettingsFrame(0).serialize())
    return rig


async def test_first_bytes_pick_the_session() -> None:
    wire = h2_rig().protocol
    picked = {first: type(make_session(wire, first)) for first in (b"PRI", b"PR", b"POST")}
    assert picked == {b"PRI": H2Session, b"PR": Undecided, b"POST": H1Session}


async def test_each_stream_is_a_cycle_and_capacity_counts_streams() -> None:
    r = h2_rig()
    assert isinstance(r.frames()[0], SettingsFrame)  # the server's preface
    r.protocol.data_received(r.headers(1) + r.headers(3))
    first, second = r.adapter.cycles
    assert first.started and second.started and r.state.capacity.in_flight == 2
    assert first.request.http_version == b"2"
    r.protocol.data_received(DataFrame(1, b"x", flags=["END_STREAM"]).serialize())
    assert first.ended and not second.ended
    first.answer(b"hello")
    await asyncio.sleep(0)  # the answers of one loop turn go out in one write, at its end
    sent = [f for f in r.frames() if isinstance(f, HeadersFrame | DataFrame)]
    assert [f.stream_id for f in sent] == [1, 1]
    assert r.state.capacity.in_flight == 1 and r.state.record.requests == 1


async def test_client_reset_disconnects_only_that_stream() -> None:
    r = h2_rig()
    r.protocol.data_received(r.headers(1) + r.headers(3))
    r.protocol.data_received(RstStreamFrame(1, error_code=8).serialize())
    first, second = r.adapter.cycles
    assert first.gone and not second.gone
    assert r.state.capacity.in_flight == 1
    first.answer()  # too late: nothing goes out for it
    await asyncio.sleep(0)
    assert not [f for f in r.frames() if isinstance(f, HeadersFrame)]


async def test_drain_sends_goaway_and_closes_after_the_last_stream() -> None:
    r = h2_rig()
    r.protocol.data_received(r.headers(1, end=True))
    r.protocol.shutdown()
    goaway = [f for f in r.frames() if isinstance(f, GoAwayFrame)]
    assert [(g.last_stream_id, g.error_code) for g in goaway] == [(1, 0)]
    assert not r.transport.closed
    r.adapter.cycles[0].answer()
    assert r.transport.closed


async def test_connection_error_lingers_behind_its_goaway() -> None:
    r = h2_rig()
    r.protocol.data_received(DataFrame(1, b"x").serialize())  # DATA on an idle stream
    assert [f.error_code for f in r.frames() if isinstance(f, GoAwayFrame)] == [1]
    assert r.transport.eof_written and not r.transport.closed  # reads on until the client closes


async def test_a_stalled_body_gets_408_on_its_stream_only() -> None:
    r = h2_rig()
    r.protocol.data_received(r.headers(1) + r.headers(3, end=True))
    stalled, done = r.adapter.cycles
    r.frames()
    late = r.state.clock.now + r.state.config.timeouts.body_read_s + 1
    r.protocol.check_deadline(late)
    heads = [f for f in r.frames() if isinstance(f, HeadersFrame)]
    assert [h.stream_id for h in heads] == [1] and stalled.gone and not done.gone
    assert r.state.capacity.in_flight == 1 and not r.transport.closed
