"""Metrics and health from the master, checked after a known number of requests."""

from __future__ import annotations

import re
import signal
import socket

import httpx

from tests.conftest import ServeFactory
from tests.harness import Server, wait_until


def metrics_url(server: Server) -> str:
    return "http://" + server.wait_for(r"Metrics at http://([\d.:]+)/metrics")[1]


def value(text: str, line_start: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(line_start):
            total += float(line.rsplit(" ", 1)[1])
    return total


def published(url: str, expected: dict[str, float], timeout_s: float = 5) -> str:
    """The metrics text once every line start sums to its expected value (workers publish
    their counters once a second), or the last text seen if that never happens."""
    text = ""

    def reached() -> bool:
        nonlocal text
        text = httpx.get(url).text
        return all(value(text, start) == total for start, total in expected.items())

    wait_until(reached, timeout_s)
    return text


def test_metrics_count_requests_by_class_and_time(serve: ServeFactory) -> None:
    server = serve("-w", "2", "--metrics-bind", "127.0.0.1:0")
    base = metrics_url(server)
    with httpx.Client() as client:
        for _ in range(7):
            assert client.get(server.url + "/").status_code == 200
        for _ in range(3):
            assert client.get(server.url + "/status/404").status_code == 404
        client.get(server.url + "/status/503")
    count = 'hybridserve_request_duration_seconds_count{interface="wsgi"}'
    text = published(base + "/metrics", {count: 11})  # all 11 are in
    assert value(text, 'hybridserve_requests_total{class="2xx",interface="wsgi"}') == 7
    assert value(text, 'hybridserve_requests_total{class="4xx",interface="wsgi"}') == 3
    assert value(text, 'hybridserve_requests_total{class="5xx",interface="wsgi"}') == 1
    assert value(text, 'hybridserve_request_duration_seconds_count{interface="wsgi"}') == 11
    assert (
        value(text, 'hybridserve_request_duration_seconds_bucket{interface="wsgi",le="+Inf"}') == 11
    )
    assert value(text, 'hybridserve_workers{state="ready"}') == 2
    assert value(text, "hybridserve_connections_accepted_total") >= 1
    assert re.search(r'hybridserve_event_loop_lag_seconds\{worker="\d+"\}', text)
    assert "# TYPE hybridserve_request_duration_seconds histogram" in text


def test_counters_survive_a_worker_restart(serve: ServeFactory) -> None:
    server = serve("-w", "1", "--metrics-bind", "127.0.0.1:0", "--max-requests", "5")
    base = metrics_url(server)
    with httpx.Client(headers={"Connection": "close"}) as client:
        for _ in range(8):
            assert client.get(server.url + "/").status_code == 200
    ok = 'hybridserve_requests_total{class="2xx"'
    restarts = 'hybridserve_worker_restarts_total{reason="max_requests"}'
    text = published(base + "/metrics", {ok: 8, restarts: 1})
    assert value(text, ok) == 8
    assert value(text, restarts) == 1


def test_health_and_readiness_flip_when_the_drain_begins(serve: ServeFactory) -> None:
    server = serve("-w", "1", "--metrics-bind", "127.0.0.1:0", "--drain-delay", "1")
    base = metrics_url(server)
    assert httpx.get(base + "/healthz").status_code == 200
    assert httpx.get(base + "/readyz").status_code == 200
    server.send_signal(signal.SIGTERM)
    server.wait_for("Readiness now fails")
    assert httpx.get(base + "/readyz").status_code == 503
    assert httpx.get(server.url + "/").status_code == 200  # still serving during the delay
    assert server.wait() == 0


def test_a_stalled_metrics_client_does_not_block_the_master(serve: ServeFactory) -> None:
    server = serve("-w", "1", "--metrics-bind", "127.0.0.1:0")
    base = metrics_url(server)
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as stalled:
        stalled.sendall(b"GET /metr")
        assert httpx.get(base + "/healthz", timeout=5).status_code == 200
    assert httpx.get(base + "/nope").status_code == 404


def test_metrics_path_on_the_app_port_only_when_asked(serve: ServeFactory) -> None:
    metrics = ("--metrics-path", "/internal/metrics", "--metrics-bind", "127.0.0.1:0")
    server = serve("-w", "1", *metrics, "--max-requests", "4")
    ok = 'hybridserve_requests_total{class="2xx"'
    restarts = 'hybridserve_worker_restarts_total{reason="max_requests"}'
    with httpx.Client(headers={"Connection": "close"}) as client:
        for _ in range(6):  # the worker restarts after 4: its counters must not be lost
            assert client.get(server.url + "/").status_code == 200
        # Wait on the master's port: a request to the app's port counts as one more.
        published(metrics_url(server) + "/metrics", {ok: 6, restarts: 1})
        text = client.get(server.url + "/internal/metrics").text
    assert value(text, ok) == 6
    assert value(text, restarts) == 1
    plain = serve("-w", "1")
    assert httpx.get(plain.url + "/internal/metrics").status_code == 404  # the demo's 404
