"""Unix socket files: ours are removed on exit, others' never; a live one is not taken over."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServeFactory
from tests.harness import Server, get, read_until_close, wait_until


def ask(path: Path) -> bytes:
    """One request over the Unix socket at ``path``; the whole response."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(get("/", headers="Connection: close\r\n"))
        return read_until_close(sock)


def test_socket_file_we_created_is_removed_on_exit(serve: ServeFactory, tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    server = serve("-w", "1", "-b", f"unix:{path}", "-b", "127.0.0.1:0")
    assert b"Hello, world!" in ask(path)
    assert server.stop() == 0
    assert not path.exists()


def test_second_server_on_a_live_socket_fails_and_the_first_keeps_it(
    serve: ServeFactory, tmp_path: Path
) -> None:
    path = tmp_path / "app.sock"
    first = serve("-w", "1", "-b", f"unix:{path}", "-b", "127.0.0.1:0")
    second = Server("-w", "1", "-b", f"unix:{path}").start(ready=False)
    assert second.wait() == 1
    assert f"Cannot listen on unix:{path}: Address already in use" in second.log
    assert "Traceback" not in second.log
    assert b"Hello, world!" in ask(path)  # the first server still owns the path
    assert httpx.get(first.url).status_code == 200


def test_stale_socket_file_is_replaced(serve: ServeFactory, tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))  # a server that died without removing its file
    assert path.is_socket()
    serve("-w", "1", "-b", f"unix:{path}", "-b", "127.0.0.1:0")
    assert b"Hello, world!" in ask(path)


def test_a_file_that_is_not_a_socket_is_never_removed(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    path.write_text("precious")
    server = Server("-w", "1", "-b", f"unix:{path}").start(ready=False)
    assert server.wait() == 1
    assert "Address already in use" in server.log
    assert path.read_text() == "precious"


def test_socket_passed_as_fd_is_served_and_left_in_place(tmp_path: Path) -> None:
    path = tmp_path / "passed.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(16)
        fd = listener.fileno()
        with Server("-w", "1", "-b", f"fd://{fd}", "-b", "127.0.0.1:0", pass_fds=[fd]) as server:
            server.wait_for(f"Listening at unix:{path}")
            assert b"Hello, world!" in ask(path)
            assert server.stop() == 0
        assert path.is_socket()  # not ours: whoever bound it removes it


@pytest.mark.parametrize(("umask", "mode"), [("007", 0o770), ("077", 0o700)])
def test_umask_decides_who_may_connect(
    serve: ServeFactory, tmp_path: Path, umask: str, mode: int
) -> None:
    """--umask 007 lets the socket's group (nginx's, say) connect; see examples/nginx.conf."""
    path = tmp_path / "app.sock"
    serve("-w", "1", "--umask", umask, "-b", f"unix:{path}", "-b", "127.0.0.1:0")
    assert path.stat().st_mode & 0o777 == mode


def test_usr2_rollback_leaves_the_socket_to_the_old_master(
    serve: ServeFactory, tmp_path: Path
) -> None:
    """The new master inherited the socket; stopped (a rollback), it must not remove it."""
    path = tmp_path / "app.sock"
    old = serve("-w", "1", "-b", f"unix:{path}", "-b", "127.0.0.1:0")
    old.send_signal(signal.SIGUSR2)
    new_pid = int(old.wait_for(r"Started a new master (\d+)")[1])
    children = Path(f"/proc/{new_pid}/task/{new_pid}/children")
    assert wait_until(lambda: children.exists() and children.read_text().split(), 15)
    os.kill(new_pid, signal.SIGTERM)
    old.wait_for(f"New master {new_pid} exited", 20)
    assert path.is_socket()
    assert b"Hello, world!" in ask(path)  # the old master serves on, at the same path
    assert old.stop() == 0
    assert not path.exists()  # and, having created it, removes it
