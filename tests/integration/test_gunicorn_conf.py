"""A real gunicorn.conf.py, run unchanged: its settings, its warnings and its hooks."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import textwrap
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ServeFactory
from tests.harness import APPS, wait_until
from tests.integration.test_config_sources import clean_env, printed, run_cli

GUNICORN_CONF = textwrap.dedent(
    """\
    # A gunicorn.conf.py as projects write them: computed values, imports, helpers, hooks.
    import json
    import os
    import time

    wsgi_app = "recycle_app:app"
    pythonpath = {apps!r}
    bind = "127.0.0.1:8000"
    workers = 2
    worker_class = "gthread"
    threads = 4
    keepalive = 7
    timeout = 20
    graceful_timeout = 15
    max_requests = 1000
    max_requests_jitter = 50
    loglevel = "info"
    forwarded_allow_ips = ["127.0.0.1", "10.0.0.0/8"]
    umask = 0o027
    proc_name = "myapp"
    daemon = False
    worker_tmp_dir = "/dev/shm"
    max_worker_memory = 512  # hybridserve's own setting, in Python spelling

    EVENTS = os.environ["HOOK_EVENTS"]
    _started = time.time()


    def record(event, **data):
        line = json.dumps({{"event": event, "pid": os.getpid(), **data}})
        with open(EVENTS, "a") as fh:
            fh.write(line + "\\n")


    def on_starting(server):
        record("on_starting", master=server.pid, workers=server.cfg.workers)


    def when_ready(server):
        record("when_ready", num_workers=server.num_workers)
        raise RuntimeError("a broken hook must not take the master down")


    def on_reload(server):
        record("on_reload")


    def pre_fork(server, worker):
        record("pre_fork", age=worker.age)


    def post_fork(server, worker):
        server.log.info("Worker spawned (pid: %s)", worker.pid)
        record("post_fork", worker=worker.pid, age=worker.age, master=server.pid)


    def post_worker_init(worker):
        record("post_worker_init", worker=worker.pid)


    def worker_int(worker):
        record("worker_int", worker=worker.pid)


    def pre_request(worker, req):
        record("pre_request", method=req.method, path=req.path)
        if req.path == "/hook-fails":
            raise ValueError("pre_request broke")


    def post_request(worker, req, environ, resp):
        record("post_request", path=req.path, status=resp.status_code)


    def child_exit(server, worker):
        record("child_exit", worker=worker.pid)


    def worker_exit(server, worker):
        record("worker_exit", worker=worker.pid)


    def nworkers_changed(server, new_value, old_value):
        record("nworkers_changed", new=new_value, old=old_value)


    def on_exit(server):
        record("on_exit")
    """
).format(apps=str(APPS))


def events(path: Path, name: str | None = None) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    found = [json.loads(line) for line in path.read_text().splitlines()]
    return [e for e in found if name is None or e["event"] == name]


def test_a_gunicorn_conf_py_runs_with_its_settings_and_hooks(
    serve: ServeFactory, tmp_path: Path
) -> None:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(GUNICORN_CONF)
    log = tmp_path / "events.jsonl"
    env = {"HOOK_EVENTS": str(log)}
    server = serve("--config", str(conf), cwd=tmp_path, env=env)
    master = server.pid
    workers = server.worker_pids()
    assert len(workers) == 2

    for name in ("proc_name", "daemon", "worker_tmp_dir"):
        warned = [line for line in server.lines if f"setting '{name}' is not supported" in line]
        assert len(warned) == 1, server.log
    server.wait_for("Hook when_ready raised; carrying on")
    assert wait_until(lambda: len(events(log, "post_worker_init")) == 2, 10)
    assert [e["master"] for e in events(log, "on_starting")] == [master]
    assert events(log, "on_starting")[0]["workers"] == 2
    assert [e["num_workers"] for e in events(log, "when_ready")] == [2]
    assert sorted(e["age"] for e in events(log, "pre_fork")) == [1, 2]
    assert {e["worker"] for e in events(log, "post_fork")} == set(workers)
    assert all(e["pid"] == e["worker"] for e in events(log, "post_fork"))

    assert httpx.get(server.url + "/grow?0", timeout=5).status_code == 200
    assert httpx.get(server.url + "/hook-fails", timeout=5).status_code == 200
    assert wait_until(lambda: len(events(log, "post_request")) == 2, 10)
    assert [(e["path"], e["status"]) for e in events(log, "post_request")] == [
        ("/grow", 200),
        ("/hook-fails", 200),
    ]
    server.wait_for("Hook pre_request raised; carrying on")

    server.send_signal(signal.SIGTTIN)
    assert wait_until(lambda: len(events(log, "nworkers_changed")) == 1, 10)
    assert events(log, "nworkers_changed")[0] | {"pid": 0} == {
        "event": "nworkers_changed",
        "pid": 0,
        "new": 3,
        "old": 2,
    }
    server.wait_for("Ready: 3 workers")

    victim = workers[0]
    server.send_signal(signal.SIGHUP)
    assert wait_until(lambda: len(events(log, "on_reload")) == 1, 10)
    server.wait_for(r"Ready: 3 workers \(generation 2\)")
    assert wait_until(lambda: victim in {e["worker"] for e in events(log, "child_exit")}, 15)
    assert victim in {e["worker"] for e in events(log, "worker_exit")}
    assert all(e["pid"] == e["worker"] for e in events(log, "worker_exit"))

    new = server.worker_pids()[0]
    os.kill(new, signal.SIGINT)  # the worker's hook runs, then it drains and is replaced
    assert wait_until(lambda: new in {e["worker"] for e in events(log, "worker_int")}, 10)
    assert wait_until(lambda: new in {e["worker"] for e in events(log, "child_exit")}, 15)
    assert wait_until(lambda: len(server.worker_pids()) == 3, 15)
    assert server.stop() == 0
    assert len(events(log, "on_exit")) == 1
    assert len(events(log, "when_ready")) == 1, "once, for the first ready generation"


def test_settings_map_and_show_where_they_came_from(tmp_path: Path) -> None:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(GUNICORN_CONF)
    env = clean_env(HOOK_EVENTS=str(tmp_path / "e.jsonl"))
    result = run_cli("--config", "gunicorn.conf.py", "--print-config", cwd=tmp_path, env=env)
    rows = printed(result)
    source = "file gunicorn.conf.py"
    assert rows["keep-alive"] == ("7.0", source)
    assert rows["threads"] == ("4", source)
    assert rows["interface"] == ('"wsgi"', source)
    assert rows["app"] == ('"recycle_app:app"', source)
    assert rows["app-dir"] == (json.dumps(str(APPS)), source)
    assert rows["umask"] == ('"027"', source)
    assert rows["forwarded-allow-ips"] == ('"127.0.0.1,10.0.0.0/8"', source)
    assert rows["max-worker-memory"] == ("512", source)
    assert rows["max-requests-jitter"] == ("50", source)
    assert "gunicorn setting 'daemon' is not supported; ignored" in result.stderr


def test_hybridserve_cmd_args_sit_between_the_file_and_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "gunicorn.conf.py").write_text("workers = 2\nkeepalive = 3\nthreads = 5\n")
    env = clean_env(HYBRIDSERVE_CMD_ARGS="--workers 3 --keep-alive 9")
    rows = printed(
        run_cli("--config", "gunicorn.conf.py", "--print-config", "-w", "4", cwd=tmp_path, env=env)
    )
    assert rows["workers"] == ("4", "cli")
    assert rows["keep-alive"] == ("9.0", "env HYBRIDSERVE_CMD_ARGS")
    assert rows["threads"] == ("5", "file gunicorn.conf.py")
    from_env = clean_env(HYBRIDSERVE_CMD_ARGS="--config gunicorn.conf.py")
    rows = printed(run_cli("--print-config", cwd=tmp_path, env=from_env))
    assert rows["threads"] == ("5", "file gunicorn.conf.py")
    bad = run_cli("--print-config", cwd=tmp_path, env=clean_env(HYBRIDSERVE_CMD_ARGS="--wrokers 2"))
    assert bad.returncode == 2
    assert "HYBRIDSERVE_CMD_ARGS" in bad.stderr and "did you mean --workers" in bad.stderr


def test_broken_config_files_are_one_clear_error(tmp_path: Path) -> None:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("workers = 2\nraise SystemExit('no')\n")
    failed = run_cli("--config", "gunicorn.conf.py", "--print-config", cwd=tmp_path)
    assert failed.returncode == 2
    assert "config file gunicorn.conf.py: raised SystemExit: no" in failed.stderr
    conf.write_text("def pre_fork(server):\n    pass\n")
    failed = run_cli("--config", "gunicorn.conf.py", "--print-config", cwd=tmp_path)
    assert failed.returncode == 2
    assert "hook pre_fork must take 2 arguments, not 1" in failed.stderr
    conf.write_text("workers = 'many'\n")
    failed = run_cli("--config", "gunicorn.conf.py", "--print-config", cwd=tmp_path)
    assert failed.returncode == 2
    assert "config file gunicorn.conf.py: workers: expected an integer, got 'many'" in failed.stderr
    conf.write_text("worker = 4\n")
    typo = run_cli("--config", "gunicorn.conf.py", "--print-config", cwd=tmp_path)
    assert typo.returncode == 0 and "'worker' ignored; did you mean 'workers'?" in typo.stderr


def test_worker_abort_runs_when_the_watchdog_fires(serve: ServeFactory, tmp_path: Path) -> None:
    conf = tmp_path / "gunicorn.conf.py"
    mark = tmp_path / "aborted"
    conf.write_text(
        "import os\n\n"
        "def worker_abort(worker):\n"
        f"    open({str(mark)!r}, 'a').write(f'{{worker.pid}}\\n')\n"
    )
    server = serve(
        "hang_app:app", "--config", str(conf), "-w", "1", "--timeout", "2", "--lifespan", "off"
    )
    (stuck,) = server.worker_pids()
    with contextlib.suppress(httpx.HTTPError):
        httpx.get(server.url + "/hang", timeout=8)
    assert wait_until(lambda: mark.exists() and mark.read_text() == f"{stuck}\n", 10)
    server.wait_for("hang_app.py")  # the stack dump still follows the hook
