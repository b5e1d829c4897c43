"""A deploy that cannot boot never takes a serving server down (HUP, --reload, USR2)."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import httpx

from tests.conftest import ServeFactory
from tests.harness import Server, wait_until
from tests.integration.test_signals import steady_load

GOOD = """
import os

def app(environ, start_response):
    pid = environ["PATH_INFO"] == "/pid"
    body = (str(os.getpid()) if pid else "{version}").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""
BROKEN = 'raise RuntimeError("broken deploy: DATABASE_URL is not set")\n'
EXITS = 'import sys\nsys.exit("DATABASE_URL is not set")\n'
ENV = {"PYTHONDONTWRITEBYTECODE": "1"}


def deploy(app_dir: Path, source: str) -> None:
    """Replace the app's source the way a deploy tool does: write aside, then rename."""
    staged = app_dir / "deployed_app.py.new"
    staged.write_text(source)
    os.replace(staged, app_dir / "deployed_app.py")


def version(server: Server) -> str:
    return httpx.get(server.url + "/", timeout=5).text


def metrics(server: Server, path: str = "/metrics") -> httpx.Response:
    match = server.wait_for(r"Metrics at (http://\S+)/metrics")
    return httpx.get(match[1] + path, timeout=5)


def start(serve: ServeFactory, app_dir: Path, *extra: str) -> Server:
    deploy(app_dir, GOOD.format(version="v1"))
    return serve(
        "deployed_app:app",
        "--app-dir",
        str(app_dir),
        "--metrics-bind",
        "127.0.0.1:0",
        *extra,
        cwd=app_dir,
        env=ENV,
    )


def test_hup_with_code_that_fails_to_import_keeps_the_old_generation_serving(
    serve: ServeFactory, tmp_path: Path
) -> None:
    server = start(serve, tmp_path, "-w", "2", "--threads", "4")
    old = set(server.worker_pids())
    with steady_load(server) as load:
        assert wait_until(lambda: load.ok >= 5, 10), "the load is running"
        deploy(tmp_path, BROKEN)
        mark = len(server.lines)
        server.send_signal(signal.SIGHUP)
        server.wait_for(r"Reload failed: generation 2 cannot boot", after=mark)
        assert "broken deploy: DATABASE_URL is not set" in "\n".join(server.lines[mark:])
        after = load.ok
        assert wait_until(lambda: load.ok >= after + 10, 20), "the old generation serves on"
    assert load.failed == [], load.failed[:5]
    assert load.pids <= old, "only the old generation answered"
    assert set(server.worker_pids()) == old
    log = "\n".join(server.lines[mark:])
    assert log.count("Reload failed") == 1
    assert "Stopping now" not in log and "killed by" not in log
    assert version(server) == "v1"

    ready = metrics(server, "/readyz")
    assert ready.status_code == 200
    assert "last reload failed: generation 2" in ready.text
    text = metrics(server).text
    assert 'hybridserve_reloads_total{result="failed"} 1' in text
    assert "hybridserve_last_reload_failed 1" in text

    # The next HUP tries again, and a deploy that imports is served.
    deploy(tmp_path, GOOD.format(version="v2"))
    mark = len(server.lines)
    server.send_signal(signal.SIGHUP)
    server.wait_for(r"Ready: 2 workers \(generation 3\)", after=mark)
    assert wait_until(lambda: version(server) == "v2", 10)
    assert wait_until(lambda: not old & set(server.worker_pids()), 10)
    text = metrics(server).text
    assert 'hybridserve_reloads_total{result="ok"} 1' in text
    assert "hybridserve_last_reload_failed 0" in text
    assert metrics(server, "/readyz").text == "ready\n"


def test_hup_with_an_app_that_calls_sys_exit_is_retired_with_its_message(
    serve: ServeFactory, tmp_path: Path
) -> None:
    server = start(serve, tmp_path, "-w", "1")
    deploy(tmp_path, EXITS)
    mark = len(server.lines)
    server.send_signal(signal.SIGHUP)
    server.wait_for(r"Reload failed: generation 2 cannot boot", after=mark, timeout_s=20)
    assert version(server) == "v1"
    assert server.proc is not None and server.proc.poll() is None


def test_a_worker_replaced_after_the_code_broke_retries_while_siblings_serve(
    serve: ServeFactory, tmp_path: Path
) -> None:
    server = start(serve, tmp_path, "-w", "2")
    victim, survivor = server.worker_pids()
    deploy(tmp_path, BROKEN)
    mark = len(server.lines)
    os.kill(victim, signal.SIGKILL)
    server.wait_for(r"could not load the app: error while importing", after=mark)
    server.wait_for(r"could not load the app \(the same error\); retrying in", after=mark)
    said = "\n".join(server.lines[mark:]).count("RuntimeError: broken deploy")
    assert said == 1, "the message is said once"
    assert server.proc is not None and server.proc.poll() is None, "a serving master stays"
    for _ in range(5):
        assert version(server) == "v1"
    deploy(tmp_path, GOOD.format(version="v2"))
    assert wait_until(lambda: len(server.worker_pids()) == 2, 20)
    assert wait_until(lambda: "v2" in {version(server) for _ in range(6)}, 20)
    assert survivor in server.worker_pids()


def test_reload_survives_a_save_that_does_not_import(serve: ServeFactory, tmp_path: Path) -> None:
    server = start(serve, tmp_path, "-w", "1", "--reload", "--reload-dir", str(tmp_path))
    server.wait_for("Watching")
    with steady_load(server, clients=2) as load:
        mark = len(server.lines)
        (tmp_path / "deployed_app.py").write_text("def app(:\n")  # a syntax error mid-edit
        server.wait_for("Reload failed: generation 2 cannot boot", after=mark, timeout_s=15)
        assert version(server) == "v1"
        mark = len(server.lines)
        (tmp_path / "deployed_app.py").write_text(GOOD.format(version="v2"))
        server.wait_for(r"Ready: 1 worker \(generation 3\)", after=mark, timeout_s=15)
        assert wait_until(lambda: version(server) == "v2", 10)
    assert load.failed == [], load.failed[:5]


def test_usr2_new_master_that_cannot_boot_exits_and_the_old_one_serves_on(
    serve: ServeFactory, tmp_path: Path
) -> None:
    server = start(serve, tmp_path, "-w", "2")
    old = set(server.worker_pids())
    with steady_load(server) as load:
        assert wait_until(lambda: load.ok >= 5, 10), "the load is running"
        deploy(tmp_path, BROKEN)
        mark = len(server.lines)
        server.send_signal(signal.SIGUSR2)
        server.wait_for(r"New master \d+ exited \(3\); this one keeps serving", after=mark)
        after = load.ok
        assert wait_until(lambda: load.ok >= after + 5, 20), "the old master serves on"
    assert load.failed == [], load.failed[:5]
    assert set(server.worker_pids()) == old
    assert version(server) == "v1"


def test_first_boot_of_a_broken_app_still_exits_3(serve: ServeFactory, tmp_path: Path) -> None:
    deploy(tmp_path, BROKEN)
    server = Server("deployed_app:app", "--app-dir", str(tmp_path), cwd=tmp_path, env=ENV)
    server.start(ready=False)
    assert server.wait() == 3
    assert len(re.findall("RuntimeError: broken deploy", server.log)) == 1, server.log
