"""The command line: flags built from Config's field metadata, grouped for ``--help``.

Each setting is one flag (its key with dashes); a few flags are not settings: ``--config``,
``--print-config``, ``--check-config``, and ``--host``/``--port``, which uvicorn users type
and which become one ``--bind`` address. A mistake raises ConfigError with one line (and a
"did you mean" for a misspelt flag); prefixes of flags are not accepted, so ``--thread 2``
is an error rather than a silent ``--threads 2``.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from hybridserve import __version__
from hybridserve.catalog import SETTINGS, Setting, normalize
from hybridserve.config import Config
from hybridserve.config_fields import APPLICATION, BINDING, CONFIG, GROUP_SECTIONS, OTHER, SECTIONS
from hybridserve.errors import ConfigError
from hybridserve.sources import CMD_ARGS_ENV, Env, load

USAGE = "hybridserve [OPTIONS] [APP]"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000

EPILOG = """settings also come from HYBRIDSERVE_<FLAG> environment variables (lists comma-separated)
and from --config FILE or [tool.hybridserve] in ./pyproject.toml (keys are the flag names);
FILE may also be a gunicorn.conf.py. Flags win over HYBRIDSERVE_CMD_ARGS, then the
environment, then the file.

with --control-socket PATH, a running master answers:
  hybridserve ctl [--json] status|workers|reload|add N|remove N|reopen|stop
  hybridserve top   (a live view of the workers)

signals to the master:
  TERM  graceful stop       INT   graceful, a second INT stops now     QUIT  stop now
  HUP   reload workers      TTIN  one worker more    TTOU  one worker fewer

exit codes: 0 clean stop, 1 error, 2 bad usage, 3 app failed to load or boot"""


@dataclasses.dataclass(frozen=True, slots=True)
class CommandLine:
    """What the flags said: settings by key, and the flags that are not settings."""

    values: Mapping[str, Any]
    config_file: str | None = None
    print_config: bool = False
    check_config: bool = False
    env_values: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # CMD_ARGS_ENV


class _Parser(argparse.ArgumentParser):
    """Raises instead of exiting, so a master re-reading its flags on HUP keeps running."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message + self._suggestion(message))

    def _suggestion(self, message: str) -> str:
        """`` (did you mean --workers?)`` for the first unknown flag close to a real one."""
        if not message.startswith("unrecognized arguments"):
            return ""
        known = list(self._option_string_actions)
        for word in re.findall(r"(?<!\S)(--?[\w-]+)", message):
            close = difflib.get_close_matches(word.partition("=")[0], known, n=1, cutoff=0.6)
            if close:
                return f" (did you mean {close[0]}?)"
        return ""


def section_of(s: Setting) -> str:
    return str(s.meta.get("section") or GROUP_SECTIONS.get(s.group, OTHER))


def _metavar(s: Setting) -> str:
    if "metavar" in s.meta:
        return str(s.meta["metavar"])
    if s.name.endswith("_s"):
        return "SECONDS"
    if s.name.endswith("_bytes"):
        return "BYTES"
    return "N" if s.kind is int else "VALUE"


def _shown_default(s: Setting) -> str:
    """`` (default: X)`` unless the help already says it, or there is nothing to show."""
    if "(default:" in s.meta["help"] or s.default is None or s.default is False:
        return ""
    if s.default in ("", ()):
        return ""
    if s.default is True:
        return " (default: on)"
    if isinstance(s.default, tuple):
        shown = ", ".join(s.default)
    else:
        shown = f"{s.default:g}" if isinstance(s.default, float) else str(s.default)
    return f" (default: {shown})"


def _choice(s: Setting) -> Any:
    """A flag value as the setting's choices spell it: any case, and its aliases."""

    def convert(text: str) -> Any:
        return normalize(s, text)

    convert.__name__ = s.key  # argparse names the type in "invalid ... value" messages
    return convert


def _add_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup, s: Setting) -> None:
    help_text = (s.meta["help"] + _shown_default(s)).replace("%", "%%")
    if s.key == "app":
        parser.add_argument(
            "app", nargs="?", metavar="APP", default=argparse.SUPPRESS, help=help_text
        )
        return
    names = [n for n in (s.meta["short"], s.meta["flag"]) if n]
    kwargs: dict[str, Any] = {"dest": s.dest, "default": argparse.SUPPRESS}
    if s.kind is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif "choices" in s.meta:
        kwargs["type"] = _choice(s)
        kwargs["choices"] = s.meta["choices"]
    else:
        kwargs["type"] = str if s.kind is tuple else s.kind
        kwargs["metavar"] = _metavar(s)
        if s.kind is tuple:
            kwargs["action"] = "append"
    parser.add_argument(*names, help=help_text, **kwargs)


def _add_config_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument("-h", "--help", action="help", help="Show this help and exit.")
    group.add_argument(
        "--version",
        action="version",
        version=f"hybridserve {__version__}",
        help="Print the version and exit.",
    )
    group.add_argument(
        "--config",
        dest="config_file",
        metavar="FILE",
        help="Read settings from this TOML file instead of [tool.hybridserve] in ./pyproject.toml.",
    )
    actions = group.add_mutually_exclusive_group()
    actions.add_argument(
        "--print-config",
        action="store_true",
        help="Print every setting, its value and where it came from, then exit.",
    )
    actions.add_argument(
        "--check-config",
        action="store_true",
        help="Check the settings and import the app, without serving (exit 0, 2 or 3).",
    )


def build_parser() -> argparse.ArgumentParser:
    """Flags come from Config's field metadata: each setting is declared once."""
    parser = _Parser(
        prog="hybridserve",
        usage=USAGE,
        description="Serve a WSGI or ASGI app: prefork workers, asyncio loops, WSGI threads.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        add_help=False,
    )
    groups = {name: parser.add_argument_group(name) for name in SECTIONS}
    for s in SETTINGS:
        _add_flag(groups[APPLICATION if s.key == "app" else section_of(s)], s)
    binding = groups[BINDING]
    binding.add_argument(
        "--host",
        help=f"With --port, instead of --bind, as uvicorn spells it (default: {DEFAULT_HOST}).",
    )
    binding.add_argument(
        "--port",
        type=int,
        metavar="N",
        help=f"With --host, instead of --bind (default: {DEFAULT_PORT}).",
    )
    _add_config_flags(groups[CONFIG])
    for group in groups.values():
        if not group._group_actions:  # a section no setting uses (yet)
            parser._action_groups.remove(group)
    return parser


def _host_port(found: dict[str, Any]) -> tuple[str, ...] | None:
    """``--host``/``--port`` as one bind address; None when neither was given."""
    host, port = found.get("host"), found.get("port")
    if host is None and port is None:
        return None
    if "bind" in found:
        raise ConfigError("--host/--port and --bind do not mix: give --bind HOST:PORT")
    host = host or DEFAULT_HOST
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return (f"{host}:{DEFAULT_PORT if port is None else port}",)


def parse_command_line(argv: Sequence[str], environ: Env = None) -> CommandLine:
    """Read the flags, and those in HYBRIDSERVE_CMD_ARGS; raises ConfigError.

    ``--help`` and ``--version`` still exit. As gunicorn's GUNICORN_CMD_ARGS, the variable
    holds flags that rank below the real command line and above everything else, and may
    name the ``--config`` file.
    """
    command = _parse(argv)
    extra = (os.environ if environ is None else environ).get(CMD_ARGS_ENV, "").strip()
    if not extra:
        return command
    try:
        from_env = _parse(shlex.split(extra))
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"environment: {CMD_ARGS_ENV}: {exc}") from None
    return dataclasses.replace(
        command,
        config_file=command.config_file or from_env.config_file,
        env_values=from_env.values,
    )


def _parse(argv: Sequence[str]) -> CommandLine:
    found = vars(build_parser().parse_args(list(argv)))
    values = {
        s.key: normalize(s, tuple(found[s.dest]) if s.kind is tuple else found[s.dest])
        for s in SETTINGS
        if s.dest in found
    }
    bind = _host_port(found)
    if bind is not None:
        values["bind"] = bind
    return CommandLine(values, found["config_file"], found["print_config"], found["check_config"])


def load_config(
    argv: Sequence[str], *, cwd: Path | str | None = None, environ: Env = None
) -> Config:
    """The Config from every source, read afresh: what the master calls on SIGHUP.

    ``argv`` excludes the program name; ``cwd`` is the directory the server was started in
    (``--chdir`` moves the master later), against which a relative --config and
    ./pyproject.toml are found. Raises ConfigError with one message; never exits.
    """
    return load(parse_command_line(argv, environ), cwd=cwd, environ=environ).config
