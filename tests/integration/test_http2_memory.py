"""Bounded memory over HTTP/2: flow control is the backpressure, both ways.

256 MiB (four times the RSS bound) up to a slow app and down to a slow client, over one h2c
stream; the client keeps to the windows the server gives, as RFC 9113 §6.9 asks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame, RstStreamFrame, WindowUpdateFrame

from tests.conformance_h2.client import H2Client, request_fields
from tests.conformance_h2.socket_driver import SocketDriver
from tests.harness import Server
from tests.integration.test_memory import LIMIT_BYTES, Peak, rss

TOTAL = 256 << 20
FRAME = 16384


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    server = Server(f"memory_app:{request.param}", "-w", "1", "--threads", "2").start()
    yield server
    assert server.stop() == 0


@pytest.fixture
def client(server: Server) -> Iterator[H2Client]:
    driver = SocketDriver(server.host, server.port)
    yield H2Client(driver)
    driver.close()


def take_credit(frame: object, windows: dict[int, int]) -> None:
    if isinstance(frame, WindowUpdateFrame):
        windows[frame.stream_id] = windows.get(frame.stream_id, 0) + frame.window_increment
    elif isinstance(frame, GoAwayFrame | RstStreamFrame):
        raise AssertionError(f"the server gave up: {frame}")


def test_upload_to_a_slow_app_is_held_by_the_window(server: Server, client: H2Client) -> None:
    (worker,) = server.worker_pids()
    baseline, peak = rss(worker), Peak(worker)
    client.handshake({4: 1 << 20})
    windows = {0: 65535, 1: client.server_settings.get(4, 65535)}
    fields = [*request_fields(b"POST", b"/upload"), (b"content-length", b"%d" % TOTAL)]
    client.send(client.headers(1, fields, end_stream=False))
    sent, piece, deadline = 0, b"u" * FRAME, time.monotonic() + 120
    while sent < TOTAL and time.monotonic() < deadline:
        room = min(windows[0], windows[1], TOTAL - sent)
        if room < FRAME and sent + room < TOTAL:
            frame = client.read_frame()  # wait for the app to make room
            take_credit(frame, windows)
            continue
        size = min(FRAME, room)
        client.send(
            DataFrame(1, piece[:size], flags=["END_STREAM"] if sent + size == TOTAL else [])
        )
        sent += size
        windows[0] -= size
        windows[1] -= size
    response = client.response(1)
    growth = peak.stop() - baseline
    assert response.body == str(TOTAL).encode()
    assert growth < LIMIT_BYTES, f"RSS grew {growth >> 20} MiB"


def test_download_by_a_slow_client_waits_for_its_window(server: Server, client: H2Client) -> None:
    (worker,) = server.worker_pids()
    baseline, peak = rss(worker), Peak(worker)
    client.handshake()
    client.send(client.headers(1, request_fields(b"GET", b"/download?%d" % TOTAL)))
    received = frames = 0
    deadline = time.monotonic() + 120
    while received < TOTAL and time.monotonic() < deadline:
        frame = client.read_frame()
        assert frame is not None and not isinstance(frame, GoAwayFrame | RstStreamFrame), frame
        if isinstance(frame, DataFrame) and frame.data:
            received += len(frame.data)
            frames += 1
            credit = len(frame.data)
            client.send(WindowUpdateFrame(0, window_increment=credit))
            client.send(WindowUpdateFrame(1, window_increment=credit))
            if frames % 1024 == 0:
                time.sleep(0.02)  # a slow reader: the behaviour under test
        elif not isinstance(frame, HeadersFrame):
            take_credit(frame, {})
    growth = peak.stop() - baseline
    assert received == TOTAL
    assert growth < LIMIT_BYTES, f"RSS grew {growth >> 20} MiB"
