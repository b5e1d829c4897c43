"""Metrics and health from the master, checked after a known number of requests."""

from __future__ import annotations

import re
import signal
import socket
import time

import httpx

from tests.conftest import ServeFactory
from tests.harness import Server


def metrics_url(server: Server) -> str:
    return "http://" + server.wait_for(r"Metrics at http://([\d.:]+)/metrics")[1]


def value(text: str, line_start: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(line_start):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_by_class_and_time(serve: ServeFactory) -> None:
    server = serve("-w", "2", "--metrics-bind", "127.0.0.1:0")
    base = metrics_url(server)
    with httpx.Client() as client:
        for _ in range(7):
            assert client.get(server.url + "/").status_code == 200
        for _ in range(3):
            assert client.get(server.url + "/status/404").status_code == 404
        client.get(server.url + "/status/503")
    time.sleep(1.3)  # workers publish their counters once a second
    text = httpx.get(base + "/metrics").text
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
    time.sleep(1.3)
    text = httpx.get(base + "/metrics").text
    assert value(text, 'hybridserve_requests_total{class="2xx"') == 8
    assert value(text, 'hybridserve_worker_restarts_total{reason="max_requests"}') == 1


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
    server = serve("-w", "1", "--metrics-path", "/internal/metrics", "--max-requests", "4")
    with httpx.Client(headers={"Connection": "close"}) as client:
        for _ in range(6):  # the worker restarts after 4: its counters must not be lost
            assert client.get(server.url + "/").status_code == 200
        time.sleep(1.3)
        text = client.get(server.url + "/internal/metrics").text
    assert value(text, 'hybridserve_requests_total{class="2xx"') == 6
    assert value(text, 'hybridserve_worker_restarts_total{reason="max_requests"}') == 1
    plain = serve("-w", "1")
    assert httpx.get(plain.url + "/internal/metrics").status_code == 404  # the demo's 404
