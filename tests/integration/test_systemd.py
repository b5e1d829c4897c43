"""systemd: sd_notify messages on a test socket, and socket activation through LISTEN_FDS."""

from __future__ import annotations

import random
import re
import shutil
import signal
import socket
import struct
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServeFactory
from tests.harness import Server, get, read_until_close
from tests.integration.test_unix_sockets import ask


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


ACTIVATE = shutil.which("systemd-socket-activate")
needs_activate = pytest.mark.skipif(
    ACTIVATE is None, reason="systemd-socket-activate is missing (make system-deps installs it)"
)


def activated(*args: str, sockets: list[str]) -> Server:
    """hybridserve under systemd-socket-activate listening on a random free loopback port
    (it cannot use port 0) plus ``sockets``; the port is in ``server.port``. It starts
    hybridserve on the first connection, as systemd does."""
    assert ACTIVATE is not None
    for _ in range(10):  # bounded: another random port if this one is taken
        port = random.randint(20000, 60000)
        listen = [f"--listen=127.0.0.1:{port}", *(f"--listen={s}" for s in sockets)]
        server = Server(*args, prefix=[ACTIVATE, *listen]).start(ready=False)
        try:
            server.wait_for(f"Listening on 127.0.0.1:{port} as 3", 10)
        except AssertionError:
            server.stop()
            continue
        server.port = port
        return server
    raise AssertionError("systemd-socket-activate found no free port in 10 tries")


def first_request(port: int) -> bytes:
    """The connection that starts the service: it waits in the backlog until served."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(get("/", headers="Connection: close\r\n"))
        return read_until_close(sock)


@needs_activate
def test_activated_sockets_and_explicit_binds_are_all_served(tmp_path: Path) -> None:
    path = tmp_path / "activated.sock"
    with activated("-w", "2", "-b", "127.0.0.1:0", sockets=[str(path)]) as server:
        assert b"Hello, world!" in first_request(server.port)
        server.wait_for("Ready: ")
        ports = {int(p) for p in re.findall(r"Listening at http://127\.0\.0\.1:(\d+)", server.log)}
        assert server.port in ports and len(ports) == 2, server.log
        (explicit,) = ports - {server.port}
        assert httpx.get(f"http://127.0.0.1:{explicit}/").text == "Hello, world!"
        assert b"Hello, world!" in ask(path)
        assert server.stop() == 0
    assert path.is_socket(), "the .socket unit's file must outlive the service"


@needs_activate
def test_fd_bind_serves_that_socket_and_closes_the_others(tmp_path: Path) -> None:
    path = tmp_path / "unused.sock"
    with activated("-w", "2", "-b", "fd://3", sockets=[str(path)]) as server:
        assert b"Hello, world!" in first_request(server.port)
        server.wait_for("Ready: ")
        assert "Listening at unix:" not in server.log
        with pytest.raises(ConnectionRefusedError):  # no process holds it open any more
            ask(path)
        assert server.stop() == 0


def listen_backlog(sock: socket.socket) -> int:
    """A listening TCP socket's backlog, as Linux reports it in tcp_info.tcpi_sacked."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return int(struct.unpack_from("I", info, 28)[0])


def emulated_activation(listener: socket.socket, *args: str) -> Server:
    """What systemd does, by hand: the socket as fd 3, LISTEN_FDS=1, LISTEN_PID=our pid."""
    fd = listener.fileno()
    exe = f"exec 3<&{fd}; LISTEN_PID=$$ LISTEN_FDS=1 exec"
    return Server(*args, prefix=["bash", "-c", f'{exe} "$@"', "bash"], pass_fds=[fd]).start()


@pytest.mark.parametrize(("flags", "expected"), [((), 777), (("--backlog", "100"), 100)])
def test_activated_socket_keeps_its_backlog_unless_told(
    flags: tuple[str, ...], expected: int
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(777)
        port = listener.getsockname()[1]
        with emulated_activation(listener, "-w", "1", "-b", "fd://3", *flags) as server:
            assert server.port == port
            assert httpx.get(f"http://127.0.0.1:{port}/").text == "Hello, world!"
            assert listen_backlog(listener) == expected
