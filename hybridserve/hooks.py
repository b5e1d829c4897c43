"""Server hooks with gunicorn's names and arguments, from a gunicorn-style Python config.

How it works: ``pyconfig.py`` finds the hook functions in the config file; they ride in the
Config (``Config.hooks``), so they reach the master and, through the fork, each worker.
``Hooks.call`` runs one by name: a hook that raises is logged with its name and the
traceback, and the caller carries on, so a broken hook never takes a master or worker down.

Where each runs (gunicorn's choice unless said):

- master: ``on_starting(server)``, ``when_ready(server)`` (once the first workers are
  ready, not before any is forked: the moment "ready" means here), ``on_reload(server)``,
  ``pre_fork(server, worker)``, ``child_exit(server, worker)``,
  ``nworkers_changed(server, new_value, old_value)``, ``on_exit(server)``.
- worker: ``post_fork(server, worker)``, ``post_worker_init(worker)`` (the app is loaded),
  ``worker_int(worker)`` (SIGINT or SIGQUIT), ``worker_abort(worker)`` (SIGABRT from the
  timeout watchdog), ``pre_request(worker, req)``, ``post_request(worker, req, environ,
  resp)`` (for ASGI apps ``environ`` is the scope), ``worker_exit(server, worker)``.

``server`` and ``worker`` carry the attributes hooks commonly use: ``log``, ``pid``,
``cfg`` (our Config), ``server.num_workers``, ``worker.age`` (gunicorn's: how many workers
the master had spawned before this one), ``worker.ppid``.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("hybridserve.error")

MASTER_HOOKS = (
    "on_starting",
    "when_ready",
    "on_reload",
    "pre_fork",
    "child_exit",
    "nworkers_changed",
    "on_exit",
)
WORKER_HOOKS = (
    "post_fork",
    "post_worker_init",
    "worker_int",
    "worker_abort",
    "pre_request",
    "post_request",
    "worker_exit",
)
NAMES = MASTER_HOOKS + WORKER_HOOKS
ARITY = {  # positional arguments each hook gets, as gunicorn checks them
    **dict.fromkeys(("on_starting", "when_ready", "on_reload", "on_exit"), 1),
    **dict.fromkeys(("post_worker_init", "worker_int", "worker_abort"), 1),
    **dict.fromkeys(("pre_fork", "post_fork", "pre_request", "child_exit", "worker_exit"), 2),
    "nworkers_changed": 3,
    "post_request": 4,
}


@dataclass(slots=True)
class ServerInfo:
    """What a hook sees as gunicorn's ``server`` (the arbiter)."""

    pid: int
    cfg: Any
    num_workers: int
    log: logging.Logger = log


@dataclass(slots=True)
class WorkerInfo:
    """What a hook sees as gunicorn's ``worker``."""

    age: int  # gunicorn's meaning: the spawn counter, not a duration
    ppid: int
    cfg: Any
    pid: int | None = None  # known once forked
    log: logging.Logger = log
    alive: bool = True


class Hooks:
    """The hooks a config file defined, by gunicorn's names; none by default.

    Not a dataclass: the sources treat dataclass fields of Config as groups of settings.
    """

    __slots__ = ("functions",)

    def __init__(self, functions: Mapping[str, Callable[..., Any]] | None = None) -> None:
        self.functions: Mapping[str, Callable[..., Any]] = dict(functions or {})

    def __bool__(self) -> bool:
        return bool(self.functions)

    def has(self, name: str) -> bool:
        return name in self.functions

    def call(self, name: str, *args: Any) -> None:
        """Run hook ``name`` if defined; log (with its name) anything it raises."""
        function = self.functions.get(name)
        if function is None:
            return
        try:
            function(*args)
        except (Exception, SystemExit):
            log.exception("Hook %s raised; carrying on", name)


# -- pre_request / post_request: a wrapper around the app ---------------------------------


@dataclass(slots=True)
class Request:
    """The request as pre_request sees it (gunicorn's attribute names)."""

    method: str
    path: str
    query: str
    uri: str
    version: tuple[int, int]
    headers: list[tuple[str, str]]
    scheme: str


@dataclass(slots=True)
class Response:
    """The response as post_request sees it."""

    status: str = ""
    status_code: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)


def _version(text: str) -> tuple[int, int]:
    major, _, minor = text.rpartition("/")[2].partition(".")
    return (int(major or 1), int(minor or 0))


def request_from_environ(environ: Mapping[str, Any]) -> Request:
    path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
    headers = [
        (key[5:].replace("_", "-"), str(value))
        for key, value in environ.items()
        if key.startswith("HTTP_")
    ]
    return Request(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=environ.get("SCRIPT_NAME", "") + path,
        query=query,
        uri=environ.get("RAW_URI", path + ("?" + query if query else "")),
        version=_version(environ.get("SERVER_PROTOCOL", "HTTP/1.1")),
        headers=headers,
        scheme=environ.get("wsgi.url_scheme", "http"),
    )


def request_from_scope(scope: Mapping[str, Any]) -> Request:
    query = scope.get("query_string", b"").decode("latin-1")
    path = scope.get("root_path", "") + scope.get("path", "")
    return Request(
        method=scope.get("method", "GET"),
        path=path,
        query=query,
        uri=path + ("?" + query if query else ""),
        version=_version(scope.get("http_version", "1.1")),
        headers=[
            (k.decode("latin-1").upper(), v.decode("latin-1")) for k, v in scope.get("headers", ())
        ],
        scheme=scope.get("scheme", "http"),
    )


def wrap_app(app: Any, interface: str, hooks: Hooks, worker: WorkerInfo) -> Any:
    """``app`` unchanged unless pre_request or post_request is defined."""
    if not (hooks.has("pre_request") or hooks.has("post_request")):
        return app
    return _wrap_asgi(app, hooks, worker) if interface == "asgi" else _wrap_wsgi(app, hooks, worker)


def _wrap_wsgi(app: Any, hooks: Hooks, worker: WorkerInfo) -> Any:
    def hooked(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        req = request_from_environ(environ)
        hooks.call("pre_request", worker, req)
        resp = Response()

        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            resp.status, resp.headers = status, headers
            resp.status_code = int(status.split(None, 1)[0])
            return start_response(status, headers, *exc_info)

        try:
            body = app(environ, start)
        except BaseException:
            hooks.call("post_request", worker, req, environ, resp)
            raise
        return _AfterBody(body, lambda: hooks.call("post_request", worker, req, environ, resp))

    return hooked


class _AfterBody:
    """A WSGI body that runs ``after`` once the server closes it (the response is done)."""

    def __init__(self, body: Iterable[bytes], after: Callable[[], None]) -> None:
        self._body = body
        self._after = after

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._after()


def _wrap_asgi(app: Any, hooks: Hooks, worker: WorkerInfo) -> Any:
    async def hooked(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        req = request_from_scope(scope)
        hooks.call("pre_request", worker, req)
        resp = Response()

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                resp.status_code = int(message["status"])
                resp.status = str(resp.status_code)
                raw = message.get("headers", ())
                resp.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            hooks.call("post_request", worker, req, scope, resp)

    return hooked


def install_abort_hook(hooks: Hooks, worker: WorkerInfo) -> None:
    """worker_abort on SIGABRT (the master's timeout watchdog), then the usual stack dump.

    Only when the hook is defined: it replaces faulthandler's own SIGABRT handler, and a
    Python handler runs only once the stuck code lets the interpreter in, where
    faulthandler's does not wait; the master's SIGKILL follows in either case.
    """
    if not hooks.has("worker_abort"):
        return

    def on_abort(signum: int, frame: types.FrameType | None) -> None:
        hooks.call("worker_abort", worker)
        faulthandler.dump_traceback(all_threads=True)
        signal.signal(signal.SIGABRT, signal.SIG_DFL)
        os.abort()

    signal.signal(signal.SIGABRT, on_abort)
