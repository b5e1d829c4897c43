"""``--config gunicorn.conf.py``: a gunicorn config file, run as gunicorn runs it.

How it works: the file is executed as a module, as gunicorn does, and its module-level
names are read. A gunicorn setting we share becomes our setting (``keepalive`` is
``keep-alive``, ``preload_app`` is ``preload``; a few convert, ``umask = 0o22`` becomes
``"022"``); a gunicorn setting we lack is named in one warning each, never dropped in
silence; a hook with a gunicorn name becomes a hook (``hooks.py``). Our own settings may be
set too, in Python spelling (``max_worker_memory = 512``). Other names (imports, helper
variables) are the file's own business, as in gunicorn, unless one looks like a misspelt
setting, which gets a warning.

No conversion to our types happens here: ``sources.py`` does that (with ``catalog.py``)
for every file alike.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import sys
import types
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybridserve.errors import ConfigError
from hybridserve.hooks import ARITY, Hooks

SAME = {  # gunicorn's name: our key, for values that mean the same thing
    "wsgi_app": "app",
    "bind": "bind",
    "backlog": "backlog",
    "workers": "workers",
    "threads": "threads",
    "worker_connections": "limit-connections",
    "max_requests": "max-requests",
    "max_requests_jitter": "max-requests-jitter",
    "timeout": "timeout",
    "graceful_timeout": "graceful-timeout",
    "keepalive": "keep-alive",
    "limit_request_line": "limit-request-line",
    "limit_request_fields": "limit-request-fields",
    "limit_request_field_size": "limit-request-field-size",
    "reload": "reload",
    "preload_app": "preload",
    "chdir": "chdir",
    "pidfile": "pid",
    "user": "user",
    "group": "group",
    "accesslog": "access-log",
    "errorlog": "error-log",
    "loglevel": "log-level",
    "access_log_format": "access-log-format",
    "proxy_protocol": "proxy-protocol",
    "keyfile": "keyfile",
    "certfile": "certfile",
    "ca_certs": "ca-certs",
    "cert_reqs": "cert-reqs",
    "ciphers": "ssl-ciphers",
}
WHY_NOT = {  # gunicorn settings we lack, with what to do instead where there is something
    "daemon": "run it under systemd, a container or a supervisor",
    "raw_env": "set the variables in the service's environment",
    "proc_name": "the process title is 'hybridserve: master [APP]'",
    "default_proc_name": "the process title is 'hybridserve: master [APP]'",
    "statsd_host": "use --metrics-bind for Prometheus metrics",
    "statsd_prefix": "use --metrics-bind for Prometheus metrics",
    "dogstatsd_tags": "use --metrics-bind for Prometheus metrics",
    "reuse_port": "",
    "sendfile": "",
    "worker_tmp_dir": "heartbeats go through shared memory, no file",
    "secure_scheme_headers": "--forwarded-allow-ips decides whose X-Forwarded-Proto counts",
    "proxy_allow_ips": "--forwarded-allow-ips",
    "logconfig_dict": "use --log-config FILE (.json or .toml)",
    "logconfig_json": "use --log-config FILE (.json or .toml)",
    "reload_extra_files": "--reload-dir DIR",
    "reload_engine": "",
    "pre_exec": "",
    "ssl_context": "",
}
GUNICORN_ONLY = [
    "config",
    "spew",
    "check_config",
    "print_config",
    "initgroups",
    "tmp_upload_dir",
    "capture_output",
    "disable_redirect_access_to_syslog",
    "logger_class",
    "syslog",
    "syslog_addr",
    "syslog_prefix",
    "syslog_facility",
    "enable_stdio_inheritance",
    "paste",
    "raw_paste_global_conf",
    "ssl_version",
    "suppress_ragged_eofs",
    "do_handshake_on_connect",
    "strip_header_spaces",
    "permit_obsolete_folding",
    "permit_unconventional_http_method",
    "permit_unconventional_http_version",
    "casefold_http_method",
    "forwarder_headers",
    "header_map",
    "tolerate_dangerous_framing",
]
ASGI_WORKERS = ("uvicorn", "asgi")  # worker_class names that mean an ASGI app
WSGI_WORKERS = ("sync", "gthread")


@dataclass(slots=True)
class PythonConfig:
    """What a Python config file said: raw values by our key, hooks, warnings."""

    values: dict[str, tuple[str, Any]] = field(default_factory=dict)  # key: (name, value)
    hooks: Hooks = field(default_factory=Hooks)
    warnings: list[str] = field(default_factory=list)


def execute(path: Path, label: str) -> dict[str, Any]:
    """Run the file as a module named ``__config__`` (gunicorn's name) and return its names."""
    spec = importlib.util.spec_from_file_location("__config__", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"config file {label}: cannot be read as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules["__config__"] = module
    try:
        spec.loader.exec_module(module)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {label}: cannot read it: {exc.strerror}") from None
    except (Exception, SystemExit) as exc:
        raise ConfigError(f"config file {label}: raised {type(exc).__name__}: {exc}") from None
    return {name: value for name, value in vars(module).items() if not name.startswith("_")}


def read(path: Path, label: str, known: Collection[str]) -> PythonConfig:
    """Our settings, hooks and warnings from the gunicorn-style file at ``path``.

    ``known`` are our settings' keys (``keep-alive``), for names given in our spelling.
    """
    result = PythonConfig()
    hooks: dict[str, Callable[..., Any]] = {}
    where = f"config file {label}"
    for name, value in execute(path, label).items():
        if name in ARITY and callable(value):
            hooks[name] = _checked_hook(name, value, where)
        elif name in SAME:
            result.values[SAME[name]] = (name, _plain(value))
        elif name in CONVERTED:
            converted = CONVERTED[name](value)
            if isinstance(converted, str):
                result.warnings.append(f"{where}: {name} = {value!r} ignored: {converted}")
            else:
                result.values[converted[0]] = (name, converted[1])
        elif name in WHY_NOT or name in GUNICORN_ONLY:
            why = WHY_NOT.get(name, "")
            result.warnings.append(
                f"{where}: gunicorn setting {name!r} is not supported; ignored"
                + (f" ({why})" if why else "")
            )
        elif name.replace("_", "-") in known:
            result.values[name.replace("_", "-")] = (name, _plain(value))
        elif not isinstance(value, (types.ModuleType, type)) and not callable(value):
            close = difflib.get_close_matches(name, [*SAME, *CONVERTED, *ARITY], n=1, cutoff=0.8)
            if close:
                result.warnings.append(f"{where}: {name!r} ignored; did you mean {close[0]!r}?")
    result.hooks = Hooks(hooks)
    return result


def _plain(value: Any) -> Any:
    """Python's tuples as TOML's lists, so one converter serves both kinds of file."""
    return list(value) if isinstance(value, tuple) else value


def _checked_hook(name: str, function: Callable[..., Any], where: str) -> Callable[..., Any]:
    """The hook, if it takes gunicorn's arguments (post_request may take 2 to 4, as there)."""
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return function
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return function
    count = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    if name == "post_request" and 2 <= count < 4:
        return lambda *args: function(*args[:count])
    if count != ARITY[name]:
        raise ConfigError(f"{where}: hook {name} must take {ARITY[name]} arguments, not {count}")
    return function


# -- settings whose values change shape on the way -----------------------------------------
Converted = tuple[str, Any] | str  # (our key, value), or why it is ignored


def _umask(value: Any) -> Converted:
    return ("umask", f"{value:03o}") if isinstance(value, int) else ("umask", value)


def _forwarded(value: Any) -> Converted:
    if isinstance(value, (list, tuple)):
        value = ",".join(str(item) for item in value)
    return ("forwarded-allow-ips", value)


def _worker_class(value: Any) -> Converted:
    text = str(value).lower()
    if any(word in text for word in ASGI_WORKERS):
        return ("interface", "asgi")
    if text.rpartition(".")[2].removesuffix("worker") in WSGI_WORKERS:
        return ("interface", "wsgi")
    return "workers here are asyncio processes (WSGI apps run on --threads)"


def _pythonpath(value: Any) -> Converted:
    parts = [part.strip() for part in str(value).split(",") if part.strip()]
    if len(parts) == 1:
        return ("app-dir", parts[0])
    return "only one directory is supported, as --app-dir"


def _logconfig(value: Any) -> Converted:
    if str(value).endswith((".json", ".toml")):
        return ("log-config", value)
    return "--log-config takes a dictConfig in .json or .toml, not an ini file"


def _zero_is_unlimited(key: str) -> Callable[[Any], Converted]:
    """gunicorn's 0 means no limit where ours must be at least 1: 0 keeps our default."""

    def convert(value: Any) -> Converted:
        return "0 (no limit) keeps hybridserve's default" if value == 0 else (key, value)

    return convert


CONVERTED: dict[str, Callable[[Any], Converted]] = {
    "umask": _umask,
    "forwarded_allow_ips": _forwarded,
    "worker_class": _worker_class,
    "pythonpath": _pythonpath,
    "logconfig": _logconfig,
}
for _name in ("timeout", "limit_request_line", "limit_request_field_size"):
    CONVERTED[_name] = _zero_is_unlimited(SAME.pop(_name))
