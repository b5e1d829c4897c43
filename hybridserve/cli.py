"""The ``hybridserve`` command: flags built from Config, then bind, then hand over to the master.

Every failure here is one clear line and an exit code: 2 for bad usage, 3 for an app that
cannot be loaded, 1 for anything else (a port already in use, say).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from hybridserve import __version__
from hybridserve.apps.loader import load_app, prepare_path
from hybridserve.config import TLS, Config, Limits, Timeouts, WebSocket
from hybridserve.errors import EXIT_APP_LOAD, EXIT_ERROR, EXIT_USAGE, AppLoadError, ConfigError
from hybridserve.log import configure
from hybridserve.master import identity, sockets
from hybridserve.master.arbiter import Arbiter
from hybridserve.worker import tls

log = logging.getLogger("hybridserve.error")

_TYPES: dict[str, type] = {
    "int": int,
    "float": float,
    "str": str,
    "str | None": str,
    "int | None": int,
    "tuple[str, ...]": str,
}
_GROUPS: dict[str, type] = {
    "limits": Limits,
    "timeouts": Timeouts,
    "websocket": WebSocket,
    "tls": TLS,
}

EPILOG = """signals to the master:
  TERM  graceful stop       INT   graceful, a second INT stops now     QUIT  stop now
  HUP   reload workers      TTIN  one worker more    TTOU  one worker fewer

exit codes: 0 clean stop, 1 error, 2 bad usage, 3 app failed to load or boot"""


def _fields(cls: type, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field[Any]]]:
    for f in dataclasses.fields(cls):
        if f.name in _GROUPS:
            yield from _fields(_GROUPS[f.name], f.name + ".")
        elif f.metadata:
            yield prefix + f.name, f


def _metavar(dest: str, kind: str) -> str:
    if dest.endswith("_s"):
        return "SECONDS"
    if dest.endswith("_bytes"):
        return "BYTES"
    if kind.startswith("int"):
        return "N"
    return (
        dest.rpartition(".")[2].upper().removesuffix("S") if kind.startswith("tuple") else "VALUE"
    )


def build_parser() -> argparse.ArgumentParser:
    """Flags come from Config's field metadata: each setting is declared once."""
    parser = argparse.ArgumentParser(
        prog="hybridserve",
        description="Serve a WSGI or ASGI app: prefork workers, asyncio loops, WSGI threads.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hybridserve {__version__}")
    for dest, f in _fields(Config):
        meta = f.metadata
        default = f.default
        if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        if meta["flag"] == "app":
            parser.add_argument("app", nargs="?", default=argparse.SUPPRESS, help=meta["help"])
            continue
        names = [n for n in (meta["short"], meta["flag"]) if n]
        kwargs: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS}
        help_text = meta["help"]
        if f.type == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _TYPES[str(f.type)]
            if "choices" in meta:
                kwargs["choices"] = meta["choices"]
            if "choices" not in meta:
                kwargs["metavar"] = _metavar(dest, str(f.type))
            if str(f.type).startswith("tuple"):
                kwargs["action"] = "append"
            help_text += (
                f" [default: {', '.join(default) if isinstance(default, tuple) else default}]"
            )
        parser.add_argument(*names, help=help_text.replace("%", "%%"), **kwargs)
    return parser


def config_from_args(argv: Sequence[str] | None) -> Config:
    """Parse the command line into a Config; exits 2 with one message if anything is off."""
    parser = build_parser()
    values = vars(parser.parse_args(argv))
    top: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {name: {} for name in _GROUPS}
    for key, value in values.items():
        group, _, name = key.rpartition(".")
        if group:
            groups[group][name] = value
        else:
            top[key] = tuple(value) if isinstance(value, list) else value
    try:
        return Config(
            **top,
            limits=Limits(**groups["limits"]),
            timeouts=Timeouts(**groups["timeouts"]),
            websocket=WebSocket(**groups["websocket"]),
            tls=TLS(**groups["tls"]),
        )
    except ConfigError as exc:
        parser.error(str(exc))


def _check_choices(config: Config) -> None:
    """An explicitly chosen backend that is not installed is a usage error, said up front."""
    for name, module in (("http", "httptools"), ("loop", "uvloop")):
        if getattr(config, name) == module:
            try:
                __import__(module)
            except ImportError:
                raise ConfigError(f"--{name} {module}: {module} is not installed") from None


def _fail(code: int, message: str, *args: object) -> NoReturn:
    log.error(message, *args)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    config = config_from_args(argv)
    try:
        configure(
            config.log_level,
            access_log=config.access_log,
            error_log=config.error_log,
            log_config=config.log_config,
        )
    except (OSError, ValueError) as exc:
        print(f"hybridserve: error: cannot set up logging: {exc}", file=sys.stderr)  # noqa: T201
        sys.exit(EXIT_USAGE)
    try:
        _check_choices(config)
        for value in config.bind:
            sockets.parse_bind(value)
        identity.resolve(config)  # resolved again by the Arbiter; checked here for exit 2
        tls.server_context(config.tls)  # built again in each worker; checked here
    except ConfigError as exc:
        print(f"hybridserve: error: {exc}", file=sys.stderr)  # noqa: T201  # before logging
        sys.exit(EXIT_USAGE)
    identity.apply_umask(config)
    try:
        prepare_path(config.app_dir, config.chdir)
        preloaded = (
            load_app(config.app, interface=config.interface, factory=config.factory)
            if config.preload
            else None
        )
    except AppLoadError as exc:
        _fail(EXIT_APP_LOAD, "Cannot load the app: %s", exc)
    inherited = bool(os.environ.get(sockets.INHERIT_ENV))
    try:
        listeners = [sock for _, sock in sockets.open_listeners(config.bind, config.backlog)]
    except OSError as exc:
        reason = str(exc.strerror or exc)
        _fail(EXIT_ERROR, "%s", reason[:1].upper() + reason[1:])
    log.info("hybridserve %s, master pid %d", __version__, os.getpid())
    for sock in listeners:
        log.info("Listening at %s", sockets.describe(sock, tls=config.tls.enabled))
    arbiter = Arbiter(config, listeners, preloaded)
    try:
        code = arbiter.run()
    finally:
        for sock in listeners:
            # A Unix socket file belongs to whoever bound it, unless a new master has it now.
            if sock.family == socket.AF_UNIX and not inherited and not arbiter.handed_over:
                with contextlib.suppress(OSError):
                    os.unlink(sock.getsockname())
            sock.close()
    sys.exit(code)
