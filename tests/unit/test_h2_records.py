"""What HTTP/2 leaves in the records: resets counted where they are made, streams the
connection refuses itself reported, and both carried through slots, metrics and the log."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hyperframe.frame import RstStreamFrame, SettingsFrame

from hybridserve.config_groups import Limits
from hybridserve.sansio.events import Request
from hybridserve.sansio.h2backend import H2Settings
from hybridserve.sansio.h2events import RESET_CODES, ErrorCode, H2Event, StreamRefused, code_name
from hybridserve.sansio.http2 import Http2Connection
from hybridserve.worker.access import Entry, compile_format
from hybridserve.worker.exposition import (
    Totals,
    WorkerSample,
    decode_totals,
    encode_totals,
    render,
)
from hybridserve.worker.slots import READY, Counters, Slots
from tests.unit.test_http2_unit import BACKENDS, GET, POST, Client, connect, frames


def refused(events: list[H2Event]) -> list[tuple[int, bytes, bytes, int, int]]:
    return [
        (e.stream_id, e.request.method, e.request.target, e.status, e.error_code)
        for e in events
        if isinstance(e, StreamRefused)
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_resets_are_counted_both_ways_by_code(backend: str) -> None:
    conn, client = connect(backend)
    opened = b"".join(client.headers(sid, POST, end=False) for sid in (1, 3, 5))
    conn.receive(opened, 0.0)
    conn.receive(RstStreamFrame(1, error_code=ErrorCode.CANCEL).serialize(), 0.0)
    conn.receive(RstStreamFrame(5, error_code=0x77).serialize(), 0.0)  # a code of its own
    conn.reset(3, ErrorCode.INTERNAL_ERROR)  # the app failed after its head
    conn.receive(client.headers(7, [*GET, (b"connection", b"close")]), 0.0)  # malformed
    sent = {code_name(i): n for i, n in enumerate(conn.resets.sent) if n}
    received = {code_name(i): n for i, n in enumerate(conn.resets.received) if n}
    assert (sent, received) == (
        {"INTERNAL_ERROR": 1, "PROTOCOL_ERROR": 1},
        {"CANCEL": 1, "OTHER": 1},
    )
    codes = [
        (f.stream_id, f.error_code)
        for f in frames(conn.data_to_send())
        if isinstance(f, RstStreamFrame)
    ]
    assert (3, ErrorCode.INTERNAL_ERROR) in codes and (7, ErrorCode.PROTOCOL_ERROR) in codes


@pytest.mark.parametrize("backend", BACKENDS)
def test_streams_the_connection_refuses_are_reported(backend: str) -> None:
    limits = replace(Limits(), max_head_bytes=1024, max_body_bytes=10)
    conn = Http2Connection(limits, H2Settings(max_concurrent_streams=1), backend=backend)
    client = Client()
    conn.receive(client.start() + SettingsFrame(0, flags=["ACK"]).serialize(), 0.0)
    big = [*GET, (b"x-big", b"b" * 2000)]
    events = conn.receive(client.headers(1, big) + client.headers(3, POST, end=False), 0.0)
    upload = [*POST, (b"content-length", b"11")]
    over = client.headers(5, GET) + client.headers(7, upload, end=False)
    events += conn.receive(over, 0.0)
    assert refused(events) == [
        (1, b"GET", b"/x", 431, 0),
        (5, b"GET", b"/x", 0, ErrorCode.REFUSED_STREAM),  # stream 3 is open: one too many
        (7, b"POST", b"/x", 0, ErrorCode.REFUSED_STREAM),
    ]
    assert not conn.failed  # a stream error (RFC 9113 §5.1.2), not a connection error
    conn.reset(3, ErrorCode.CANCEL)
    events = conn.receive(client.headers(9, upload, end=False), 0.0)
    assert refused(events) == [(9, b"POST", b"/x", 413, 0)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_client_is_told_the_stream_limit_the_library_is_not(backend: str) -> None:
    conn = Http2Connection(Limits(), H2Settings(max_concurrent_streams=7), backend=backend)
    settings = next(f for f in frames(conn.data_to_send()) if isinstance(f, SettingsFrame))
    assert settings.settings[SettingsFrame.MAX_CONCURRENT_STREAMS] == 7


def sample(pid: int, counters: Counters) -> WorkerSample:
    slots = Slots(2)
    slots.write(0, beat=1.0, pid=pid, state=READY, generation=1, counters=counters)
    return WorkerSample(pid, True, False, slots.read(0))


def test_resets_survive_the_slot_and_are_summed_with_gone_workers() -> None:
    one = [0] * RESET_CODES
    one[ErrorCode.CANCEL] = 2
    other = [0] * RESET_CODES
    other[ErrorCode.REFUSED_STREAM] = 1
    other[RESET_CODES - 1] = 4  # codes RFC 9113 does not list
    counters = Counters(resets_sent=tuple(other), resets_received=tuple(one))
    live = sample(11, counters)
    assert live.slot.counters == counters
    gone = Totals()
    gone.retire(sample(12, Counters(resets_received=tuple(one))).slot)
    text = render([live], decode_totals(encode_totals(gone)))
    lines = [line for line in text.splitlines() if line.startswith("hybridserve_http2_")]
    assert lines == [
        'hybridserve_http2_stream_resets_total{by="server",code="REFUSED_STREAM"} 1',
        'hybridserve_http2_stream_resets_total{by="server",code="OTHER"} 4',
        'hybridserve_http2_stream_resets_total{by="client",code="CANCEL"} 4',
    ]


def test_a_stream_answered_by_rst_alone_is_marked_in_the_log() -> None:
    request = Request(method=b"GET", target=b"/x", http_version=b"2", headers=[], keep_alive=True)
    reset = Entry(request, ("127.0.0.1", 5), 0, 0, 0.0, [], "REFUSED_STREAM")
    answered = Entry(request, ("127.0.0.1", 5), 431, 0, 0.0, [])
    line = compile_format('"%(r)s" %(s)s')
    assert [line(reset), line(answered)] == [
        '"GET /x HTTP/2.0" RST:REFUSED_STREAM',
        '"GET /x HTTP/2.0" 431',
    ]
    record = json.loads(compile_format("json")(reset))
    assert (record["status"], record["reset"], record["protocol"]) == (
        None,
        "REFUSED_STREAM",
        "HTTP/2.0",
    )
    assert "reset" not in json.loads(compile_format("json")(answered))
