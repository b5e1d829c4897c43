"""systemd: sd_notify messages on a test socket, and socket activation through LISTEN_FDS."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ServeFactory
from tests.harness import APPS


def receive(sock: socket.socket, want: str, limit: int = 20) -> list[str]:
    """Messages until one containing ``want`` arrives (bounded by count and timeout)."""
    seen = []
    for _ in range(limit):
        message = sock.recv(4096).decode()
        seen.append(message)
        if want in message:
            return seen
    raise AssertionError(f"no {want!r} among {seen}")


def test_notify_ready_reloading_stopping(serve: ServeFactory, tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(15)
        server = serve("-w", "2", env={"NOTIFY_SOCKET": path})
        ready = receive(sock, "READY=1")[-1]
        assert "STATUS=Serving with 2 workers" in ready
        assert f"MAINPID={server.pid}" in ready
        server.send_signal(signal.SIGHUP)
        assert "RELOADING=1" in receive(sock, "RELOADING=1")[-1]
        receive(sock, "READY=1")
        server.send_signal(signal.SIGTERM)
        assert "STOPPING=1" in receive(sock, "STOPPING=1")[-1]
        assert server.wait() == 0


def test_socket_activation_serves_the_passed_socket(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        fd = listener.fileno()
        command = (
            f"exec 3<&{fd}; LISTEN_PID=$$ LISTEN_FDS=1 exec {sys.executable} -m hybridserve "
            "-w 1 --bind 127.0.0.1:1"
        )
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=APPS,
            pass_fds=[fd],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:  # bounded: the server logs Ready or exits
                lines.append(line)
                if "Ready:" in line or proc.poll() is not None:
                    break
            assert any(f"Listening at http://127.0.0.1:{port}" in line for line in lines), lines
            assert httpx.get(f"http://127.0.0.1:{port}/").text == "Hello, world!"
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(20) == 0
            if proc.stdout is not None:
                proc.stdout.close()
