"""Master features on real process trees: USR2 upgrade, pid file, identity, reload, preload."""

from __future__ import annotations

import grp
import os
import pwd
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServeFactory
from tests.harness import Server, get, read_response, wait_until
from tests.integration.test_signals import steady_load


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_usr2_starts_a_new_master_on_the_same_sockets_without_failures(
    serve: ServeFactory, tmp_path: Path
) -> None:
    pid_file = tmp_path / "master.pid"
    old = serve("-w", "2", "--pid", str(pid_file))
    assert pid_file.read_text().strip() == str(old.pid)
    old_workers = set(old.worker_pids())
    with steady_load(old) as load:
        assert wait_until(lambda: load.ok >= 5, 10), "the load is running"
        old.send_signal(signal.SIGUSR2)
        match = old.wait_for(r"Started a new master (\d+)")
        new_pid = int(match[1])
        assert wait_until(lambda: (tmp_path / "master.pid").exists(), 10)
        assert wait_until(lambda: pid_file.read_text().strip() == str(new_pid), 10)
        assert (tmp_path / "master.pid.oldbin").read_text().strip() == str(old.pid)
        new_children = Path(f"/proc/{new_pid}/task/{new_pid}/children")
        assert wait_until(lambda: len(new_children.read_text().split()) == 2, 10)
        new_workers = {int(p) for p in new_children.read_text().split()}
        assert wait_until(lambda: load.pids & new_workers, 10), "both masters serve"
        old.send_signal(signal.SIGTERM)  # the old master drains and goes
        assert old.wait() == 0
        after = load.ok
        assert wait_until(lambda: load.ok >= after + 5, 10), "the new master serves on"
    try:
        assert load.failed == [], load.failed[:5]
        assert load.pids & new_workers, "the new master's workers served"
        assert not old_workers & new_workers
        assert httpx.get(old.url + "/").status_code == 200  # same address, new master
        assert not (tmp_path / "master.pid.oldbin").exists()
    finally:
        os.kill(new_pid, signal.SIGTERM)
        assert wait_until(lambda: not Path(f"/proc/{new_pid}").exists(), 15)


def test_pid_file_and_process_titles(serve: ServeFactory, tmp_path: Path) -> None:
    pid_file = tmp_path / "h.pid"
    server = serve("-w", "1", "--pid", str(pid_file))
    assert int(pid_file.read_text()) == server.pid
    assert cmdline(server.pid).startswith("hybridserve: master [demo]")
    assert cmdline(server.worker_pids()[0]).startswith("hybridserve: worker [demo]")
    assert server.stop() == 0
    assert not pid_file.exists()


def nobody_can_run_python() -> bool:
    """Whether this interpreter's stdlib is readable by 'nobody' (not so under /root)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgid(pwd.getpwnam("nobody").pw_gid)
            os.setuid(pwd.getpwnam("nobody").pw_uid)
            os.listdir(os.path.dirname(os.__file__))
            code = 0
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def proc_ids(pid: int, field: str) -> str:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(line for line in status if line.startswith(field + ":")).split()[1]


@pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root")
def test_workers_run_as_the_given_group_and_umask(serve: ServeFactory, tmp_path: Path) -> None:
    sock_path = tmp_path / "h.sock"
    server = serve(
        "-w",
        "1",
        "--group",
        "nogroup",
        "--umask",
        "077",
        "-b",
        f"unix:{sock_path}",
        "-b",
        "127.0.0.1:0",
    )
    (worker,) = server.worker_pids()
    assert proc_ids(worker, "Gid") == str(grp.getgrnam("nogroup").gr_gid)
    assert proc_ids(server.pid, "Gid") == "0"  # the master keeps its identity
    assert oct(sock_path.stat().st_mode & 0o777) == "0o700"
    assert httpx.get(server.url + "/").status_code == 200


@pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root")
def test_workers_run_as_the_given_user(serve: ServeFactory) -> None:
    if not nobody_can_run_python():
        pytest.skip("this Python lives where 'nobody' cannot read it")
    server = serve("-w", "1", "--user", "nobody")
    (worker,) = server.worker_pids()
    assert proc_ids(worker, "Uid") == str(pwd.getpwnam("nobody").pw_uid)


def test_bad_user_is_a_usage_error(serve: ServeFactory) -> None:
    server = Server("--user", "no-such-user-here").start(ready=False)
    assert server.wait() == 2
    assert "user 'no-such-user-here' does not exist" in server.log


def test_preload_imports_the_app_once_in_the_master(serve: ServeFactory, tmp_path: Path) -> None:
    marker = tmp_path / "imports.txt"
    server = serve("counting_app:app", "-w", "3", "--preload", env={"IMPORT_MARKER": str(marker)})
    assert marker.read_text().split() == [str(server.pid)]
    assert httpx.get(server.url).status_code == 200


def test_without_preload_each_worker_imports_the_app(serve: ServeFactory, tmp_path: Path) -> None:
    marker = tmp_path / "imports.txt"
    server = serve("counting_app:app", "-w", "2", env={"IMPORT_MARKER": str(marker)})
    assert sorted(marker.read_text().split()) == sorted(map(str, server.worker_pids()))


def test_graceful_timeout_cuts_stragglers(serve: ServeFactory) -> None:
    server = serve("announce_app:wsgi", "-w", "1", "--graceful-timeout", "1")
    with server.connect() as sock:
        sock.sendall(get("/delay?ms=20000"))
        server.wait_entered("/delay?ms=20000")
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert server.wait() == 0
    assert time.monotonic() - started < 4


def test_reload_restarts_workers_when_a_source_file_changes(
    serve: ServeFactory, tmp_path: Path
) -> None:
    source = tmp_path / "reload_app.py"
    template = (
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'{}']\n"
    )
    source.write_text(template.format("one"))
    server = serve(
        "reload_app:app",
        "-w",
        "1",
        "--reload",
        "--reload-dir",
        str(tmp_path),
        "--app-dir",
        str(tmp_path),
    )
    server.wait_for("Watching")
    assert httpx.get(server.url).text == "one"
    mark = len(server.lines)
    source.write_text(template.format("two"))
    server.wait_for("Changed: reload_app.py; reloading", after=mark, timeout_s=10)
    server.wait_for("Ready: 1 worker", after=mark, timeout_s=10)
    assert wait_until(lambda: httpx.get(server.url).text == "two", 5)


def test_keep_alive_response_during_drain_says_close(serve: ServeFactory) -> None:
    server = serve("announce_app:wsgi", "-w", "1")
    with server.connect() as sock:
        sock.sendall(get("/delay?ms=500"))
        server.wait_entered("/delay?ms=500")
        server.send_signal(signal.SIGTERM)
        response = read_response(sock)
    assert response.header("connection") == "close"
