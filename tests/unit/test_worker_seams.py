"""The worker's seams without sockets: Capacity's counts, and HTTPProtocol with its HTTP/1.1
session over a fake transport, a fake adapter and the worker's clock set by hand."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hybridserve.apps.types import Channel, Cycle, FileBody
from hybridserve.config import Config
from hybridserve.config_groups import Timeouts
from hybridserve.errors import ResponseError
from hybridserve.sansio.events import Headers, Request
from hybridserve.worker.capacity import FRESH_GRACE_S, Capacity
from hybridserve.worker.http1 import H1Session
from hybridserve.worker.protocol import HTTPProtocol
from hybridserve.worker.state import Record, WorkerState
from hybridserve.worker.stream import FileSent, Stream


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Calls:
    def __init__(self) -> None:
        self.room = 0
        self.load = 0

    def on_room(self) -> None:
        self.room += 1

    def on_load(self) -> None:
        self.load += 1


class Conn:
    """A connection as Capacity sees it."""

    def check_deadline(self, now: float) -> None: ...
    def shutdown(self) -> None: ...
    def abort(self) -> None: ...
    def hand_over(self) -> bool:
        return False


# -- Capacity ---------------------------------------------------------------------------
def capacity(streams: int = 2, connections: int = 0) -> tuple[Capacity, Clock, Calls]:
    clock, calls = Clock(), Calls()
    cap = Capacity(
        streams=streams,
        connections=connections,
        clock=clock,
        on_room=calls.on_room,
        on_load=calls.on_load,
    )
    return cap, clock, calls


def test_young_silent_connections_hold_room_only_for_the_grace_period() -> None:
    cap, clock, _ = capacity(streams=2)
    cap.accepted()
    cap.accepted()
    assert cap.room() == 0  # two requests are surely on their way
    clock.now += FRESH_GRACE_S * 2
    assert cap.room() == 2  # ... or they are slowloris: they no longer hold the worker
    assert cap.young_silent()


def test_room_held_only_by_young_connections_comes_back_by_itself() -> None:
    cap, clock, _ = capacity(streams=2)
    cap.accepted()
    assert not cap.held_by_young()  # room left: nothing to wait for
    cap.accepted()
    assert cap.room() == 0 and cap.held_by_young()  # siblings may wait for us a moment
    cap.first_bytes()
    cap.stream_started()
    cap.first_bytes()
    cap.stream_started()
    assert not cap.held_by_young()  # their requests came: full for real
    clock.now += FRESH_GRACE_S * 2
    assert cap.room() == 0 and not cap.held_by_young()
    no_limit, _, _ = capacity(streams=0)
    no_limit.accepted()
    assert not no_limit.held_by_young()


def test_streams_and_lost_threads_take_room_and_come_back() -> None:
    cap, _, calls = capacity(streams=3)
    conn = Conn()
    cap.accepted()
    cap.connection_opened(conn)
    cap.first_bytes()
    cap.first_request()
    cap.stream_started()
    cap.threads_lost(1)
    assert cap.room() == 1
    assert cap.busy_threads() == (1, 0)
    cap.stream_finished()
    cap.threads_lost(0)
    cap.connection_closed(conn, fresh=False, silent=False)
    assert (cap.room(), cap.in_flight, cap.open, cap.fresh, cap.silent) == (3, 0, 0, 0, 0)
    assert calls.room >= 1 and calls.load == 1
    assert cap.connections == set()


def test_connection_limit_counts_open_and_fresh_and_draining_leaves_no_room() -> None:
    cap, _, calls = capacity(streams=0, connections=2)
    cap.accepted()
    cap.setup_failed()  # a TLS handshake that failed gives its place back
    assert (cap.room(), cap.open, calls.room, calls.load) == (2, 0, 1, 1)
    cap.draining = True
    assert cap.room() == 0


# -- HTTPProtocol + H1Session over a fake transport ---------------------------------------
@dataclass
class FakeTransport:
    written: bytearray = field(default_factory=bytearray)
    paused: int = 0
    resumed: int = 0
    closed: bool = False
    aborted: bool = False

    def get_extra_info(self, name: str) -> object:
        return {"peername": ("192.0.2.1", 4000), "sockname": ("127.0.0.1", 8000)}.get(name)

    def write(self, data: bytes) -> None:
        self.written += data

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        self.resumed += 1

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


class HeldCycle:
    """An app that answers only when the test says so."""

    def __init__(self, request: Request, channel: Channel, log: list[HeldCycle]) -> None:
        self.request, self.channel = request, channel
        self.started = self.ended = self.gone = False
        log.append(self)

    def feed_body(self, data: bytes) -> None: ...
    def feed_end(self) -> None:
        self.ended = True

    def start(self) -> None:
        self.started = True

    def disconnected(self) -> None:
        self.gone = True

    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...
    def expire(self) -> None: ...
    def shutdown(self) -> None: ...

    def answer(self, body: bytes = b"ok") -> None:
        headers = [(b"content-length", str(len(body)).encode())]
        self.channel.send_head(200, headers, body, True)


class HeldAdapter:
    def __init__(self) -> None:
        self.cycles: list[HeldCycle] = []

    def new_cycle(self, request: Request, channel: Channel) -> Cycle:
        return HeldCycle(request, channel, self.cycles)


@dataclass
class Rig:
    protocol: HTTPProtocol
    transport: FakeTransport
    adapter: HeldAdapter
    state: WorkerState


def rig(**settings: object) -> Rig:
    loop = asyncio.get_running_loop()
    config = Config(**settings)  # type: ignore[arg-type]  # test knobs
    adapter = HeldAdapter()
    cap = Capacity(streams=8, connections=0, clock=loop.time, on_room=lambda: None)
    record = Record(None, max_requests=0, on_quota=lambda: None)
    state = WorkerState(
        config, loop, adapter, cap, record, http_backend="h11", render_metrics=lambda: b""
    )
    protocol = HTTPProtocol(state, H1Session)
    transport = FakeTransport()
    cap.accepted()
    protocol.connection_made(transport)  # type: ignore[arg-type]  # a fake transport
    return Rig(protocol, transport, adapter, state)


GET = b"GET /%s HTTP/1.1\r\nHost: t\r\n\r\n"


async def test_a_request_becomes_a_stream_and_its_answer_is_framed_and_recorded() -> None:
    r = rig()
    r.protocol.data_received(GET % b"a")
    (cycle,) = r.adapter.cycles
    assert cycle.started and cycle.ended and r.state.capacity.in_flight == 1
    cycle.answer(b"hello")
    assert r.transport.written.startswith(b"HTTP/1.1 200 ")
    assert r.transport.written.endswith(b"\r\n\r\nhello")
    assert (r.state.capacity.in_flight, r.state.record.requests) == (0, 1)
    assert not r.transport.closed  # keep-alive


async def test_a_pipelined_request_waits_and_reading_resumes_only_when_no_reason_is_left() -> None:
    r = rig()
    r.protocol.data_received(GET % b"a")
    r.protocol.data_received(GET % b"b")  # behind /a: held, reading paused
    assert [c.request.target for c in r.adapter.cycles] == [b"/a"]
    assert r.transport.paused == 1
    first = r.adapter.cycles[0]
    first.channel.pause_reading()  # the app is also behind: a second reason, no second pause
    assert r.transport.paused == 1
    first.answer()
    assert r.transport.resumed == 1  # the response ended both reasons
    assert [c.request.target for c in r.adapter.cycles] == [b"/a", b"/b"]


async def test_a_malformed_request_is_answered_closed_and_counted_without_an_app() -> None:
    r = rig()
    r.protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n")
    assert r.transport.written.startswith(b"HTTP/1.1 400 ")
    assert b"Date: " in r.transport.written and r.transport.closed
    assert r.adapter.cycles == []
    assert r.state.record.status_classes[3] == 1  # a 4xx in the metrics


async def test_a_lost_connection_tells_the_app_and_gives_the_capacity_back() -> None:
    r = rig()
    r.protocol.data_received(GET % b"a")
    r.protocol.connection_lost(None)
    assert r.adapter.cycles[0].gone
    cap = r.state.capacity
    assert (cap.in_flight, cap.open, cap.fresh, cap.silent, cap.connections) == (0, 0, 0, 0, set())


async def test_deadlines_on_the_worker_clock_head_408_and_write_timeout_abort() -> None:
    r = rig()
    now = r.state.clock.now
    r.protocol.data_received(b"GET / HTTP/1.1\r\n")  # a head that never ends
    r.protocol.check_deadline(now + 9)
    assert not r.transport.closed
    r.protocol.check_deadline(now + 10)
    assert r.transport.written.startswith(b"HTTP/1.1 408 ") and r.transport.closed

    r = rig()
    r.protocol.data_received(GET % b"a")
    r.protocol.pause_writing()  # the client stopped reading our answer
    r.protocol.check_deadline(r.state.clock.now + 61)
    assert r.transport.aborted  # dropped at once, not flushed


async def test_a_handed_over_connection_says_close_on_its_next_response() -> None:
    r = rig()
    r.protocol.data_received(GET % b"a")
    assert r.protocol.hand_over()
    assert not r.protocol.hand_over()  # once is enough
    r.adapter.cycles[0].answer()
    assert b"Connection: close\r\n" in r.transport.written and r.transport.closed


async def test_an_answer_after_the_request_timed_out_writes_nothing_and_raises_nothing() -> None:
    r = rig(timeouts=Timeouts(request_s=5))
    r.protocol.data_received(GET % b"a")
    r.protocol.check_deadline(r.state.clock.now + 5)  # --request-timeout: 503, then close
    assert r.transport.written.startswith(b"HTTP/1.1 503 ") and r.transport.closed
    written = bytes(r.transport.written)
    r.adapter.cycles[0].answer()  # a thread delivers its answer before connection_lost
    assert bytes(r.transport.written) == written


# -- Stream.send_file: the file's Content-Length, checked once for every protocol ---------
class FileLink:
    """A Link that records the head of a file response and closes the file."""

    def __init__(self) -> None:
        self.heads: list[Headers] = []

    def write_file(
        self, stream: Stream, status: int, headers: Headers, body: FileBody, sent: FileSent
    ) -> None:
        os.close(body.fd)
        self.heads.append(headers)
        sent(body.length, True)

    def stream_done(self, stream: Stream) -> None: ...


def file_stream(link: FileLink) -> Stream:
    request = Request(b"GET", b"/f", b"1.1", [(b"host", b"t")], True)
    loop = asyncio.new_event_loop()
    loop.close()
    return Stream(link, request, loop, None, None, "http", None, 0.0)  # type: ignore[arg-type]  # a two-method Link


def test_a_file_response_gets_its_length_and_a_wrong_one_is_refused_with_the_fd_closed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"12345")
    link = FileLink()
    done: list[bool] = []
    fd = os.open(path, os.O_RDONLY)
    file_stream(link).send_file(200, [], FileBody(fd, [(0, 5)]), done.append)
    assert link.heads == [[(b"content-length", b"5")]] and done == [True]

    fd = os.open(path, os.O_RDONLY)
    with pytest.raises(ResponseError):
        file_stream(link).send_file(
            200, [(b"content-length", b"9")], FileBody(fd, [(0, 5)]), done.append
        )
    with pytest.raises(OSError):
        os.fstat(fd)  # closed, not leaked
    assert len(link.heads) == 1  # nothing was written
