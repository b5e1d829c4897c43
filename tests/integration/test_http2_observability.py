"""HTTP/2 in the metrics and the access log, through a real server and raw frames.

Stream resets are counted by who sent them and their error code, summed over the workers;
the streams the connection refuses itself (431, 413, RST_STREAM) are logged and counted as
HTTP/1.1's parser-level refusals are; SETTINGS_MAX_CONCURRENT_STREAMS never promises more
streams than the worker can run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hyperframe.frame import DataFrame, RstStreamFrame

from tests.conformance_h2.client import (
    CANCEL,
    INTERNAL_ERROR,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    H2Client,
    request_fields,
)
from tests.conformance_h2.socket_driver import SocketDriver
from tests.conftest import ServeFactory
from tests.harness import Server
from tests.integration.test_metrics import metrics_url, published, value

APP = "h2_apps:app"
RESETS = "hybridserve_http2_stream_resets_total"


def resets(by: str, code: str) -> str:
    return f'{RESETS}{{by="{by}",code="{code}"}}'


@contextmanager
def h2(server: Server) -> Iterator[H2Client]:
    """A raw HTTP/2 connection to ``server``, past the preface and SETTINGS exchange."""
    driver = SocketDriver(server.host, server.port)
    try:
        client = H2Client(driver)
        client.handshake()
        yield client
    finally:
        driver.close()


def reset_by_server(client: H2Client, stream_id: int) -> int:
    """Read until the server resets ``stream_id`` (after its head, maybe); its error code."""
    while (frame := client.read_frame()) is not None:
        if isinstance(frame, RstStreamFrame) and frame.stream_id == stream_id:
            return int(frame.error_code)
    raise AssertionError(f"stream {stream_id} was not reset")


def test_resets_are_counted_by_sender_and_code(serve: ServeFactory) -> None:
    server = serve("-w", "2", "--metrics-bind", "127.0.0.1:0", APP)
    for _ in range(2):  # the client cancels an open stream (either worker may hold it)
        with h2(server) as client:
            client.send(client.headers(1, request_fields(b"POST", b"/"), end_stream=False))
            client.sync()  # the stream is open in the server
            client.send(RstStreamFrame(1, error_code=CANCEL))
            client.sync()  # the server has read it
    with h2(server) as client:
        client.request(1, request_fields(path=b"/fail-after"))  # the app fails after its head
        assert reset_by_server(client, 1) == INTERNAL_ERROR
        client.send(client.headers(3, [*request_fields(), (b"connection", b"close")]))
        client.stream_error(3, PROTOCOL_ERROR)  # malformed (RFC 9113 §8.2.2)
        client.request(5)
        assert client.response(5).status == 200  # the connection went on
    expected: dict[str, float] = {
        resets("client", "CANCEL"): 2,
        resets("server", "INTERNAL_ERROR"): 1,
        resets("server", "PROTOCOL_ERROR"): 1,
    }
    text = published(metrics_url(server) + "/metrics", expected)
    assert {line: value(text, line) for line in expected} == expected
    assert value(text, RESETS) == 4  # nothing else was reset
    assert f"# TYPE {RESETS} counter" in text


def test_refused_streams_are_logged_and_counted(serve: ServeFactory) -> None:
    server = serve(
        *("-w", "1", "--access-log", "-", "--metrics-bind", "127.0.0.1:0"),
        *("--http2-max-concurrent-streams", "1", "--limit-request-head", "4096"),
        *("--limit-request-body", "100", APP),
    )
    with h2(server) as client:
        client.request(1, request_fields(path=b"/big", extra=[(b"x-big", b"b" * 6000)]))
        assert client.response(1).status == 431
        upload = request_fields(b"POST", b"/up", extra=[(b"content-length", b"1000")])
        client.send(client.headers(3, upload, end_stream=False))
        assert client.response(3).status == 413
        client.send(client.headers(5, [*request_fields(path=b"/bad"), (b"connection", b"x")]))
        client.stream_error(5, PROTOCOL_ERROR)
        client.send(client.headers(7, request_fields(b"POST", b"/"), end_stream=False))
        client.send(client.headers(9, request_fields(path=b"/over")))  # one stream too many
        client.stream_error(9, REFUSED_STREAM)
        client.send(DataFrame(7, b"abc", flags=["END_STREAM"]))
        assert client.response(7).body == b"POST / 3"  # the connection went on
    assert server.wait_for(r'"GET /big HTTP/2\.0" 431 - "-" "-"$')
    assert server.wait_for(r'"POST /up HTTP/2\.0" 413 - "-" "-"$')
    # libnghttp2 drops a malformed head itself: what is left to say is the protocol
    assert server.wait_for(r'"(- -|GET /bad) HTTP/2\.0" RST:PROTOCOL_ERROR - "-" "-"$')
    assert server.wait_for(r'"GET /over HTTP/2\.0" RST:REFUSED_STREAM - "-" "-"$')
    expected: dict[str, float] = {
        'hybridserve_requests_total{class="4xx",interface="asgi"}': 2,
        'hybridserve_requests_total{class="2xx",interface="asgi"}': 1,
        resets("server", "REFUSED_STREAM"): 1,
        resets("server", "PROTOCOL_ERROR"): 1,
    }
    text = published(metrics_url(server) + "/metrics", expected)
    assert {line: value(text, line) for line in expected} == expected


def announced(server: Server) -> int:
    with h2(server) as client:
        return client.server_settings[0x3]  # SETTINGS_MAX_CONCURRENT_STREAMS


def test_streams_announced_are_bounded_by_what_the_worker_runs(serve: ServeFactory) -> None:
    wsgi = serve("-w", "1", "--threads", "2", "h2_apps:wsgi_app")
    limited = serve("-w", "1", "--limit-concurrency", "3", APP)
    flagged = serve("-w", "1", "--http2-max-concurrent-streams", "5", APP)
    assert [announced(s) for s in (wsgi, limited, flagged)] == [2, 3, 5]
    with h2(wsgi) as client:  # two streams hold both threads; a third is refused, not queued
        for sid in (1, 3):
            client.send(client.headers(sid, request_fields(b"POST", b"/"), end_stream=False))
        client.send(client.headers(5, request_fields()))
        client.stream_error(5, REFUSED_STREAM)
        client.send(DataFrame(1, b"ab", flags=["END_STREAM"]))
        assert client.response(1).body == b"HTTP/2 2"
