"""The ``hybridserve`` command: settings from every source, then bind, then the master.

Settings come from flags (``flags.py``), HYBRIDSERVE_* variables and a TOML file
(``sources.py``); ``--print-config`` and ``--check-config`` stop before anything is bound.
Every failure here is one clear line and an exit code: 2 for bad usage (a misspelt flag
also gets the usage line and the closest flag), 3 for an app that cannot be loaded, 1 for
anything else (a port already in use, say).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from hybridserve import __version__
from hybridserve.apps.loader import load_app, prepare_path
from hybridserve.catalog import SETTINGS, Setting
from hybridserve.config import Config
from hybridserve.config_values import resolved_http, resolved_loop
from hybridserve.errors import (
    EXIT_APP_LOAD,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    AppLoadError,
    ConfigError,
)
from hybridserve.flags import USAGE, CommandLine, load_config, parse_command_line
from hybridserve.log import configure
from hybridserve.master import identity, sockets
from hybridserve.master.arbiter import Arbiter
from hybridserve.master.succession import LAUNCH_DIR
from hybridserve.sources import DEFAULT, Loaded, load
from hybridserve.worker import static, tls

log = logging.getLogger("hybridserve.error")
TOOLS = {"ctl": "hybridserve.ctl", "top": "hybridserve.top"}  # subcommands, by module
SECRET_KEYS = frozenset({"keyfile-password"})  # --print-config says that they are set, no more


def _usage_error(message: str, *, usage: bool = False) -> NoReturn:
    """Exit 2 with one line; the usage line only when the flags themselves were wrong."""
    if usage:
        print(f"usage: {USAGE}", file=sys.stderr)  # noqa: T201  # before logging
    print(f"hybridserve: error: {message}", file=sys.stderr)  # noqa: T201
    sys.exit(EXIT_USAGE)


def _load_or_exit(argv: Sequence[str]) -> tuple[CommandLine, Loaded]:
    """Read flags, environment and file; exits 2 with one message naming the bad source."""
    try:
        command = parse_command_line(argv)
    except ConfigError as exc:
        _usage_error(str(exc), usage=True)
    try:
        return command, load(command)
    except ConfigError as exc:
        _usage_error(str(exc))


def config_from_args(argv: Sequence[str] | None) -> Config:
    """The Config from this process's command line, environment and config file."""
    return _load_or_exit(sys.argv[1:] if argv is None else argv)[1].config


def _render(setting: Setting, value: Any) -> str:
    """A value as TOML would spell it, so an empty string and no value look different."""
    if value is None:
        return "(none)"
    if setting.key in SECRET_KEYS:
        return '"***"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(json.dumps(item) for item in value) + "]"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def format_origins(loaded: Loaded) -> str:
    """The --print-config table: one aligned row per setting, in declaration order."""
    rows = [("SETTING", "VALUE", "SOURCE")]
    rows += [(s.key, _render(s, loaded.value(s)), str(loaded.origins[s.key])) for s in SETTINGS]
    key_w = max(len(row[0]) for row in rows)
    value_w = max(len(row[1]) for row in rows)
    return "".join(f"{k:<{key_w}}  {v:<{value_w}}  {o}\n" for k, v, o in rows)


def _check_choices(config: Config) -> None:
    """An explicitly chosen backend that is not installed is a usage error, said up front."""
    for name, module in (("http", "httptools"), ("loop", "uvloop")):
        if getattr(config, name) == module and importlib.util.find_spec(module) is None:
            raise ConfigError(f"--{name} {module}: {module} is not installed")
    if config.reload and importlib.util.find_spec("watchfiles") is None:
        raise ConfigError(
            "--reload needs watchfiles, which is not installed: pip install 'hybridserve[reload]'"
        )


def _check_pid_file(config: Config) -> None:
    """A pid file in a missing or read-only directory: say so now, not in a traceback later."""
    if config.pid_file is None or (config.chdir and not os.path.isabs(config.pid_file)):
        return  # relative to --chdir, which is applied later
    folder = os.path.dirname(config.pid_file) or "."
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--pid {config.pid_file}: cannot write in {folder}")


def _fail(code: int, message: str, *args: object) -> NoReturn:
    log.error(message, *args)
    sys.exit(code)


def _validate(config: Config) -> None:
    """Checks that need more than the Config itself; exits 2 naming what is wrong."""
    try:
        _check_choices(config)
        for value in config.bind:
            sockets.parse_bind(value)
        _check_pid_file(config)
        identity.resolve(config)  # resolved again by the Arbiter; checked here for exit 2
        tls.server_context(config.tls)  # built again in each worker; checked here
        static.check_mounts(config.static, config.chdir)
    except ConfigError as exc:
        _usage_error(str(exc))


def _configure_logging(config: Config) -> None:
    """A log file that cannot be opened or a broken --log-config is bad usage: exit 2."""
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


def _check_app(config: Config) -> NoReturn:
    """--check-config: import the app as a worker would, say what it speaks, and exit."""
    try:
        prepare_path(config.app_dir, config.chdir)
        _, interface = load_app(config.app, interface=config.interface, factory=config.factory)
    except AppLoadError as exc:
        print(f"hybridserve: error: cannot load the app: {exc}", file=sys.stderr)  # noqa: T201
        sys.exit(EXIT_APP_LOAD)
    name = config.app or "(the demo app)"
    sys.stdout.write(f"hybridserve: config OK; app {name} loads as {interface}\n")
    sys.exit(EXIT_OK)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    args = tuple(sys.argv[1:] if argv is None else argv)
    if args and args[0] in TOOLS:  # an APP always has a colon, so these names are free
        importlib.import_module(TOOLS[args[0]]).main(args[1:])
    command, loaded = _load_or_exit(args)
    config = loaded.config
    if command.print_config:
        for warning in loaded.warnings:
            print(f"hybridserve: warning: {warning}", file=sys.stderr)  # noqa: T201
        sys.stdout.write(format_origins(loaded))
        sys.exit(EXIT_OK)
    _validate(config)
    _configure_logging(config)
    for warning in loaded.warnings:
        log.warning("%s", warning)
    if command.check_config:
        _check_app(config)
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
    _serve(config, preloaded, functools.partial(load_config, args, cwd=LAUNCH_DIR), loaded)


def banner(config: Config) -> str:
    """What is served and how, as far as the master knows before any worker imports the app.

    The interface and the lifespan's state come from the workers' own ``serving`` line.
    """
    app = config.app or f"the demo app ({'asgi' if config.interface == 'asgi' else 'wsgi'})"
    return (
        f"app {app}, interface {config.interface}, lifespan {config.lifespan}, "
        f"{config.workers} worker{'s' if config.workers != 1 else ''} "
        f"x {config.threads} threads, loop {resolved_loop(config.loop)}, "
        f"HTTP {resolved_http(config.http)}"
    )


def _serve(
    config: Config,
    preloaded: tuple[Any, str] | None,
    reread: Callable[[], Config],
    loaded: Loaded,
) -> NoReturn:
    """Bind, hand over to the master, and close the listeners after it returns."""
    try:
        opened = sockets.open_listeners(
            config.bind,
            config.backlog,
            bind_given=loaded.origins["bind"] != DEFAULT,
            backlog_given=loaded.origins["backlog"] != DEFAULT,
        )
    except OSError as exc:
        reason = str(exc.strerror or exc)
        _fail(EXIT_ERROR, "%s", reason[:1].upper() + reason[1:])
    log.info("hybridserve %s, master pid %d: %s", __version__, os.getpid(), banner(config))
    listeners = [listener.sock for listener in opened]
    for sock in listeners:
        log.info("Listening at %s", sockets.describe(sock, tls=config.tls.enabled))
    # Only socket files we created are removed on exit, never systemd's or a USR2 parent's.
    created = [listener.created_path for listener in opened if listener.created_path]
    arbiter = Arbiter(config, listeners, preloaded, reload_config=reread, unix_paths=created)
    try:
        code = arbiter.run()
    finally:
        for sock in listeners:
            sock.close()
    sys.exit(code)
