"""gunicorn.conf.py reading and the hooks, without a server."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from hybridserve.catalog import BY_KEY
from hybridserve.errors import ConfigError
from hybridserve.hooks import Hooks, WorkerInfo, wrap_app
from hybridserve.pyconfig import read


def conf(tmp_path: Path, text: str) -> Any:
    (tmp_path / "g.py").write_text(text)
    return read(tmp_path / "g.py", "g.py", BY_KEY)


def test_shared_settings_map_and_others_warn_once_each(tmp_path: Path) -> None:
    found = conf(
        tmp_path,
        "import os\nbind = ('127.0.0.1:1', 'unix:/tmp/s')\nkeepalive = 2\nworker_class = "
        "'uvicorn.workers.UvicornWorker'\numask = 0o22\ntimeout = 0\nsyslog = True\n"
        "pythonpath = 'a,b'\nlogconfig = 'log.ini'\nhelper = 3\n",
    )
    assert found.values == {
        "bind": ("bind", ["127.0.0.1:1", "unix:/tmp/s"]),
        "keep-alive": ("keepalive", 2),
        "interface": ("worker_class", "asgi"),
        "umask": ("umask", "022"),
    }
    assert [w.split(": ", 1)[1].split(" ")[0] for w in found.warnings] == [
        "timeout",
        "gunicorn",
        "pythonpath",
        "logconfig",
    ]
    assert "'syslog' is not supported" in found.warnings[1]


@pytest.mark.parametrize(
    ("worker_class", "interface"),
    [("sync", "wsgi"), ("gthread", "wsgi"), ("uvicorn_worker.UvicornWorker", "asgi")],
)
def test_worker_classes_name_the_interface(
    tmp_path: Path, worker_class: str, interface: str
) -> None:
    found = conf(tmp_path, f"worker_class = {worker_class!r}\n")
    assert found.values["interface"] == ("worker_class", interface)


def test_gevent_workers_are_named_as_unsupported(tmp_path: Path) -> None:
    found = conf(tmp_path, "worker_class = 'gevent'\n")
    assert "interface" not in found.values
    assert "worker_class = 'gevent' ignored: workers here are asyncio" in found.warnings[0]


def test_hooks_are_checked_like_gunicorn_checks_them(tmp_path: Path) -> None:
    found = conf(tmp_path, "def on_starting(server): pass\ndef post_request(w, r): pass\n")
    assert found.hooks.has("on_starting") and found.hooks.has("post_request")
    found.hooks.call("post_request", 1, 2, 3, 4)  # two of four arguments are fine
    with pytest.raises(ConfigError, match="hook on_exit must take 1 arguments, not 0"):
        conf(tmp_path, "def on_exit(): pass\n")


def test_a_hook_that_raises_is_logged_by_name(caplog: pytest.LogCaptureFixture) -> None:
    def broken(server: object) -> None:
        raise RuntimeError("boom")

    hooks = Hooks({"on_starting": broken})
    with caplog.at_level(logging.ERROR, "hybridserve.error"):
        hooks.call("on_starting", object())
        hooks.call("when_ready", object())  # not defined: nothing happens
    assert [r.getMessage() for r in caplog.records] == ["Hook on_starting raised; carrying on"]


def test_request_hooks_wrap_a_wsgi_app() -> None:
    seen: list[tuple[Any, ...]] = []
    hooks = Hooks(
        {
            "pre_request": lambda w, req: seen.append(("pre", req.method, req.path, req.query)),
            "post_request": lambda w, req, env, resp: seen.append(("post", resp.status_code)),
        }
    )

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("201 Created", [("X", "1")])
        return [b"ok"]

    wrapped = wrap_app(app, "wsgi", hooks, WorkerInfo(age=1, ppid=1, cfg=None))
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/a", "QUERY_STRING": "x=1"}
    body = wrapped(environ, lambda status, headers, *exc: None)
    assert seen == [("pre", "POST", "/a", "x=1")]
    assert list(body) == [b"ok"]
    body.close()
    assert seen[-1] == ("post", 201)
    assert wrap_app(app, "wsgi", Hooks(), WorkerInfo(age=1, ppid=1, cfg=None)) is app


def test_request_hooks_wrap_an_asgi_app() -> None:
    seen: list[tuple[Any, ...]] = []
    hooks = Hooks(
        {
            "pre_request": lambda w, req: seen.append(("pre", req.path, req.headers)),
            "post_request": lambda w, req, scope, resp: seen.append(("post", resp.status_code)),
        }
    )

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.disconnect"}

    wrapped = wrap_app(app, "asgi", hooks, WorkerInfo(age=1, ppid=1, cfg=None))
    scope = {"type": "http", "method": "GET", "path": "/b", "headers": [(b"host", b"h")]}
    asyncio.run(wrapped(scope, receive, send))
    assert seen == [("pre", "/b", [("HOST", "h")]), ("post", 404)]
    assert len(sent) == 2
