"""The control socket and ``hybridserve ctl`` against a real master."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from hybridserve.ctl import CtlError, request
from tests.conftest import ServeFactory
from tests.harness import APPS, wait_until


def ctl(
    *args: str, env: dict[str, str] | None = None, cwd: Path = APPS
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hybridserve", "ctl", *args],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def ctl_json(path: Path, *args: str) -> Any:
    done = ctl("--control-socket", str(path), "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def raw(path: Path, payload: bytes) -> dict[str, Any]:
    """One exchange on the socket, without the ctl client's checks."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(payload)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    answer: dict[str, Any] = json.loads(data)
    return answer


def test_status_and_workers_human_and_json(serve: ServeFactory, tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    server = serve("-w", "2", "--control-socket", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for _ in range(3):
        assert httpx.get(server.url + "/").status_code == 200
    # Workers publish their counters once a second: wait for the third request to show.
    assert wait_until(lambda: ctl_json(path, "status")["requests_total"] == 3, 10)
    status = ctl_json(path, "status")
    assert status["pid"] == server.pid
    assert status["target_workers"] == 2 and status["ready_workers"] == 2
    assert status["listeners"] == [server.url]
    rows = ctl_json(path, "workers")
    assert sorted(row["pid"] for row in rows) == sorted(server.worker_pids())
    for row in rows:
        assert row["state"] == "ready" and row["generation"] == 1
        assert row["rss_bytes"] > 1024 * 1024
    assert sum(row["requests"] for row in rows) == 3
    human = ctl("--control-socket", str(path), "workers")
    assert human.returncode == 0
    header, *lines = human.stdout.splitlines()
    assert header.split()[:4] == ["PID", "GEN", "STATE", "AGE"]
    assert {int(line.split()[0]) for line in lines} == set(server.worker_pids())
    text = ctl("--control-socket", str(path), "status").stdout
    assert f"master pid       {server.pid}" in text and "2 ready of 2" in text
    assert server.stop() == 0
    assert not path.exists(), "the master removes its socket file"


def test_add_remove_reload_reopen_stop(serve: ServeFactory, tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    server = serve("-w", "1", "--control-socket", str(path))
    assert ctl_json(path, "add", "2") == {"accepted": "add 2"}
    server.wait_for("Ready: 3 workers")
    assert wait_until(lambda: len(server.worker_pids()) == 3, 10)
    assert ctl("--control-socket", str(path), "remove", "1").stdout == "remove 1: accepted\n"
    assert wait_until(lambda: len(ctl_json(path, "workers")) == 2, 10)
    old = set(server.worker_pids())
    mark = len(server.lines)
    ctl_json(path, "reload")
    server.wait_for("Ready: 2 workers \\(generation 2\\)", after=mark)
    assert wait_until(lambda: {r["generation"] for r in ctl_json(path, "workers")} == {2}, 10)
    assert not old & set(server.worker_pids())
    mark = len(server.lines)
    ctl_json(path, "reopen")
    server.wait_for("Reopened \\d+ log files", after=mark)
    assert ctl_json(path, "stop") == {"accepted": "stop"}
    assert server.wait() == 0


def test_bad_requests_get_an_error_answer(serve: ServeFactory, tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    server = serve("-w", "1", "--control-socket", str(path))
    assert raw(path, b"hello\n") == {"ok": False, "error": "not a JSON object"}
    unknown = raw(path, b'{"command": "explode"}\n')
    assert unknown["ok"] is False and "unknown command 'explode'" in unknown["error"]
    assert "at least 1" in raw(path, b'{"command": "add", "n": 0}\n')["error"]
    assert "longer than" in raw(path, b"x" * 10000)["error"]
    refused = ctl("--control-socket", str(path), "remove", "1")
    assert refused.returncode == 1
    assert "1 workers now, at least 1 must stay" in refused.stderr
    assert ctl("--control-socket", str(path), "add").returncode == 2
    assert ctl("--control-socket", str(path), "launch").returncode == 2
    assert len(server.worker_pids()) == 1


def test_stalled_clients_never_block_the_master(serve: ServeFactory, tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    server = serve("-w", "1", "--control-socket", str(path))
    stalled = []
    for _ in range(16):  # the most it keeps; each sends half a request and waits
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(b'{"command": "sta')
        stalled.append(sock)
    try:
        busy = raw(path, b'{"command": "status"}\n')
        assert busy == {"ok": False, "error": "too many control clients; try again"}
        assert httpx.get(server.url + "/", timeout=5).status_code == 200  # serving meanwhile
        for sock in stalled:
            assert sock.recv(100) == b"", "a stalled client is dropped after the deadline"
    finally:
        for sock in stalled:
            sock.close()
    assert ctl_json(path, "status")["ready_workers"] == 1


def test_socket_path_from_environment_and_config_file(serve: ServeFactory, tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    conf = tmp_path / "hs.toml"
    conf.write_text(f'control-socket = "{path}"\nworkers = 1\n')
    server = serve("--config", str(conf))
    from_file = ctl("--config", str(conf), "--json", "status")
    assert json.loads(from_file.stdout)["pid"] == server.pid
    from_env = ctl("status", env={"HYBRIDSERVE_CONTROL_SOCKET": str(path)})
    assert from_env.returncode == 0 and str(server.pid) in from_env.stdout
    missing = ctl("status", cwd=tmp_path)
    assert missing.returncode == 2 and "no control socket" in missing.stderr
    gone = ctl("--control-socket", str(tmp_path / "nothing.sock"), "status")
    assert gone.returncode == 1 and "cannot reach the server" in gone.stderr


def test_stale_socket_is_replaced_and_a_live_one_is_not(
    serve: ServeFactory, tmp_path: Path
) -> None:
    path = tmp_path / "c.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: a crashed server's leftover
    first = serve("-w", "1", "--control-socket", str(path))
    assert ctl_json(path, "status")["pid"] == first.pid
    second = serve("-w", "1", "--control-socket", str(path), ready=False)
    assert second.wait() == 1
    assert "another server is listening there" in second.log
    assert ctl_json(path, "status")["pid"] == first.pid


def master_at(path: Path) -> int | None:
    try:
        return int(request(str(path), "status", timeout_s=2)["pid"])
    except CtlError:
        return None


def test_usr2_new_master_takes_the_socket_over(serve: ServeFactory, tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    old = serve("-w", "1", "--control-socket", str(path))
    old.send_signal(signal.SIGUSR2)
    new_pid = int(old.wait_for(r"Started a new master (\d+)")[1])
    try:
        assert wait_until(lambda: master_at(path) == new_pid, 15)
        old.send_signal(signal.SIGTERM)
        assert old.wait() == 0
        assert master_at(path) == new_pid, "the old master left the new one's socket alone"
    finally:
        os.kill(new_pid, signal.SIGTERM)
        assert wait_until(lambda: not Path(f"/proc/{new_pid}").exists(), 15)
    assert not path.exists()


def test_top_without_a_terminal_points_to_ctl(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hybridserve", "top", "--control-socket", str(tmp_path / "c")],
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "top needs a terminal; for scripts use: hybridserve ctl workers --json" in done.stderr
