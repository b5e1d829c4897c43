"""Hung and failing workers: the heartbeat timeout and boot-failure backoff."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

from tests.conftest import ServeFactory
from tests.harness import APPS, get


def test_a_blocked_event_loop_is_killed_with_a_stack_dump_and_replaced(
    serve: ServeFactory,
) -> None:
    server = serve("hang_app:app", "-w", "1", "--timeout", "2", "--lifespan", "off")
    (hung,) = server.worker_pids()
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(get("/hang"))
        started = time.monotonic()
        server.wait_for(f"Worker {hung} silent for", timeout_s=10)
        detected_s = time.monotonic() - started
        assert sock.recv(1) == b""  # the hung worker died with the connection
    server.wait_for(r"Worker \d+ serving", after=len(server.lines) - 1, timeout_s=10)
    server.wait_for(f"Worker {hung} was killed by SIG(ABRT|KILL)")
    assert "hang_app.py" in server.log  # faulthandler's dump names the blocking frame
    assert int(httpx.get(server.url + "/").text) != hung
    assert 2 <= detected_s < 4.5
    print(f"hung loop detected after {detected_s:.2f}s with --timeout 2")  # noqa: T201


def test_workers_dying_while_booting_back_off_then_stop_with_exit_3() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "hybridserve", "hang_app:app", "-w", "2", "--bind", "127.0.0.1:0"],
        cwd=APPS,
        env={"DIE_WHILE_BOOTING": "1", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3
    assert "retrying in 0.1s" in result.stderr
    assert "retrying in 0.8s" in result.stderr
    assert "Workers keep dying while booting" in result.stderr
    assert time.monotonic() - started < 15
