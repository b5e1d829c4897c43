"""Stops and restarts that must lose nothing and say the right reason."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import httpx

from tests.conftest import ServeFactory
from tests.harness import LISTENING, Server, get, read_response, wait_until


def test_term_while_the_worker_boots_serves_what_waits_in_the_backlog(tmp_path: Path) -> None:
    marker = tmp_path / "booting"
    server = Server(
        "slow_boot_app:app",
        "-w",
        "1",
        env={"BOOT_DELAY_S": "1.5", "BOOT_MARKER": str(marker)},
    )
    server.start(ready=False)
    try:
        match = server.wait_for(LISTENING)
        with socket.create_connection((match["host"], int(match["port"])), timeout=10) as sock:
            sock.sendall(get("/"))  # waits in the backlog: no worker accepts yet
            assert wait_until(marker.exists, 10), "the worker is importing the app"
            server.send_signal(signal.SIGTERM)
            response = read_response(sock)
        assert response.status == 200
        assert response.body == b"booted"
        assert server.wait() == 0
        assert "killed by" not in server.log
    finally:
        server.stop()


def test_restart_reasons_say_what_happened(serve: ServeFactory) -> None:
    server = serve("-w", "1", "--metrics-bind", "127.0.0.1:0")
    metrics_url = server.wait_for(r"Metrics at (http://\S+)")[1]
    (victim,) = server.worker_pids()
    os.kill(victim, signal.SIGTERM)  # someone TERMs the worker itself, not the master
    assert wait_until(lambda: victim not in server.worker_pids(), 10)
    assert wait_until(lambda: len(server.worker_pids()) == 1, 10)

    def restarts() -> str:
        return httpx.get(metrics_url, timeout=5).text

    assert wait_until(lambda: 'worker_restarts_total{reason="signal"} 1' in restarts(), 10)
    assert "max_requests" not in restarts()
