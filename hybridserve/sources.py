"""Where settings come from: flags, ``HYBRIDSERVE_*`` variables, a TOML file, the defaults.

How this works: every Config field with flag metadata is a Setting, which all sources know
by one key, its flag without the dashes (``keep-alive``, ``limit-request-line``; the
positional APP is ``app``). Each source turns its raw values into ``{key: (value, origin)}``,
converted to the field's declared type, and names itself in any error. Later sources win:
defaults < file < env < cli. The merged values build the nested Config once, so every
check on values stays in ``config.py``.

One file at most is read: ``--config FILE`` when given, else ``[tool.hybridserve]`` in
``./pyproject.toml`` when there is one. An explicit file replaces the project's table rather
than merging with it, so a deployment file is never quietly topped up by whatever
pyproject.toml happens to sit in the directory the server was started from.

``load_config(argv, cwd=...)`` reads every source again, which is what SIGHUP needs.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from hybridserve import __version__
from hybridserve.config import Config
from hybridserve.errors import ConfigError

ENV_PREFIX = "HYBRIDSERVE_"
# Variables hybridserve sets for itself (master/sockets.py INHERIT_ENV, for a USR2 re-exec);
# they share the prefix but are not settings.
INTERNAL_ENV = frozenset({"HYBRIDSERVE_INHERITED_FDS"})

EPILOG = """settings also come from HYBRIDSERVE_<FLAG> environment variables (lists comma-separated)
and from --config FILE or [tool.hybridserve] in ./pyproject.toml (keys are the flag names);
flags win over the environment, which wins over the file.

signals to the master:
  TERM  graceful stop       INT   graceful, a second INT stops now     QUIT  stop now
  HUP   reload workers      TTIN  one worker more    TTOU  one worker fewer

exit codes: 0 clean stop, 1 error, 2 bad usage, 3 app failed to load or boot"""


@dataclasses.dataclass(frozen=True, slots=True)
class Setting:
    """One Config field as the sources name it."""

    key: str  # the flag without dashes: file key, env suffix, --print-config row
    group: str  # the nested dataclass field holding it ("timeouts"), "" at top level
    name: str  # the dataclass field
    kind: type  # bool, int, float, str, or tuple (of str)
    optional: bool  # None is a valid value too
    default: Any
    meta: Mapping[str, Any]

    @property
    def dest(self) -> str:
        return f"{self.group}.{self.name}" if self.group else self.name

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper().replace("-", "_")


@dataclasses.dataclass(frozen=True, slots=True)
class Origin:
    """Where one value came from: ``default``, ``cli``, ``file PATH`` or ``env VAR``."""

    source: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.source} {self.name}" if self.name else self.source


DEFAULT = Origin("default")
CLI = Origin("cli")
Layer = dict[str, tuple[Any, Origin]]
Env = Mapping[str, str] | None  # None: this process's os.environ


def _kind(hint: Any, name: str) -> tuple[type, bool]:
    """The base type a source converts to, and whether None is allowed."""
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (types.UnionType, typing.Union) and type(None) in args
    if optional:
        rest = [arg for arg in args if arg is not type(None)]
        hint = rest[0] if len(rest) == 1 else hint
    if hint in (bool, int, float, str):
        return hint, optional
    if typing.get_origin(hint) is tuple and typing.get_args(hint) == (str, ...):
        return tuple, optional
    raise TypeError(f"setting {name}: no source can read a {hint!r}")


def _is_group(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _walk(cls: type, group: str = "") -> Iterator[Setting]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if _is_group(hint):
            yield from _walk(hint, f.name)
        elif f.metadata:
            default = f.default
            if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            kind, optional = _kind(hint, f.name)
            key = str(f.metadata["flag"]).lstrip("-")
            yield Setting(key, group, f.name, kind, optional, default, f.metadata)


SETTINGS: tuple[Setting, ...] = tuple(_walk(Config))
GROUPS: dict[str, type] = {
    name: hint for name, hint in typing.get_type_hints(Config).items() if _is_group(hint)
}
BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}


# -- the command line ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class CommandLine:
    """What the flags said: settings by key, and the flags that are not settings."""

    values: Mapping[str, Any]
    config_file: str | None = None
    print_config: bool = False
    check_config: bool = False


class _Parser(argparse.ArgumentParser):
    """Raises instead of exiting, so a master re-reading its flags on HUP keeps running."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def _metavar(s: Setting) -> str:
    if s.name.endswith("_s"):
        return "SECONDS"
    if s.name.endswith("_bytes"):
        return "BYTES"
    if s.kind is int:
        return "N"
    return s.name.upper().removesuffix("S") if s.kind is tuple else "VALUE"


def _add_flag(parser: argparse.ArgumentParser, s: Setting) -> None:
    if s.key == "app":
        parser.add_argument(
            "app", nargs="?", default=argparse.SUPPRESS, help=s.meta["help"].replace("%", "%%")
        )
        return
    names = [n for n in (s.meta["short"], s.meta["flag"]) if n]
    kwargs: dict[str, Any] = {"dest": s.dest, "default": argparse.SUPPRESS}
    help_text = s.meta["help"]
    if s.kind is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        kwargs["type"] = str if s.kind is tuple else s.kind
        if "choices" in s.meta:
            kwargs["choices"] = s.meta["choices"]
        else:
            kwargs["metavar"] = _metavar(s)
        if s.kind is tuple:
            kwargs["action"] = "append"
        shown = ", ".join(s.default) if isinstance(s.default, tuple) else s.default
        help_text += f" [default: {shown}]"
    parser.add_argument(*names, help=help_text.replace("%", "%%"), **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """Flags come from Config's field metadata: each setting is declared once."""
    parser = _Parser(
        prog="hybridserve",
        description="Serve a WSGI or ASGI app: prefork workers, asyncio loops, WSGI threads.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hybridserve {__version__}")
    parser.add_argument(
        "--config",
        dest="config_file",
        metavar="FILE",
        help="Read settings from this TOML file instead of [tool.hybridserve] in ./pyproject.toml.",
    )
    actions = parser.add_mutually_exclusive_group()
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
    for s in SETTINGS:
        _add_flag(parser, s)
    return parser


def parse_command_line(argv: Sequence[str]) -> CommandLine:
    """Read the flags; raises ConfigError (``--help`` and ``--version`` still exit)."""
    found = vars(build_parser().parse_args(list(argv)))
    values = {
        s.key: tuple(found[s.dest]) if s.kind is tuple else found[s.dest]
        for s in SETTINGS
        if s.dest in found
    }
    return CommandLine(values, found["config_file"], found["print_config"], found["check_config"])


# -- converting values --------------------------------------------------------------------

_EXPECTED = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    tuple: "a list of strings",
}
_TOML_TYPE_OK: dict[type, Callable[[object], bool]] = {
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    str: lambda v: isinstance(v, str),
    tuple: lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
}
_BOOLEANS = {
    **dict.fromkeys(("1", "true", "yes", "on"), True),
    **dict.fromkeys(("0", "false", "no", "off"), False),
}


def _expected(s: Setting) -> str:
    if "choices" in s.meta:
        return "one of " + ", ".join(s.meta["choices"])
    return _EXPECTED[s.kind]


def _checked(s: Setting, value: Any, raw: object, where: str) -> Any:
    """``value`` if it is one of the setting's choices (when it has any)."""
    if "choices" in s.meta and value not in s.meta["choices"]:
        raise ConfigError(f"{where}: expected {_expected(s)}, got {raw!r}")
    return value


def from_toml(s: Setting, raw: object, where: str) -> Any:
    """A TOML value as the field's type; a lone string is a one-item list."""
    if s.kind is tuple and isinstance(raw, str):
        raw = [raw]
    if not _TOML_TYPE_OK[s.kind](raw):
        raise ConfigError(f"{where}: expected {_expected(s)}, got {raw!r}")
    value: Any = tuple(raw) if isinstance(raw, list) else raw
    if s.kind is float:
        value = float(value)  # TOML's 5 is an int; a duration of 5 means 5.0
    return _checked(s, value, raw, where)


def from_text(s: Setting, raw: str, where: str) -> Any:
    """An environment value: lists comma-separated; empty means None where None is allowed."""
    text = raw.strip()
    if s.optional and not text:
        return None
    try:
        if s.kind is bool:
            value: Any = _BOOLEANS[text.lower()]
        elif s.kind is tuple:
            value = tuple(part.strip() for part in text.split(",") if part.strip())
        else:
            value = s.kind(text) if s.kind in (int, float) else raw
    except (KeyError, ValueError):
        raise ConfigError(f"{where}: expected {_expected(s)}, got {raw!r}") from None
    return _checked(s, value, raw, where)


def _unknown(where: str, name: str, key: str, spell: Callable[[Setting], str]) -> ConfigError:
    close = difflib.get_close_matches(key, BY_KEY, n=1)
    hint = f" (did you mean {spell(BY_KEY[close[0]])!r}?)" if close else ""
    return ConfigError(f"{where}: unknown setting {name!r}{hint}")


# -- the sources --------------------------------------------------------------------------


def _read_toml(path: Path, label: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"config file {label}: cannot read it: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {label}: not valid TOML: {exc}") from None


def _project_table(data: dict[str, Any], label: str) -> dict[str, Any]:
    tool = data.get("tool", {})
    table = tool.get("hybridserve", {}) if isinstance(tool, dict) else None
    if not isinstance(table, dict):
        raise ConfigError(f"config file {label}: [tool.hybridserve] must be a table")
    return table


def file_layer(config_file: str | None, cwd: Path) -> Layer:
    """``--config FILE`` (relative to ``cwd``), else ``./pyproject.toml`` if there is one."""
    if config_file is not None:
        label, path = config_file, cwd / config_file
        table = _read_toml(path, label)
        if path.name == "pyproject.toml":
            table = _project_table(table, label)
    else:
        label, path = "pyproject.toml", cwd / "pyproject.toml"
        if not path.is_file():
            return {}
        table = _project_table(_read_toml(path, label), label)
    origin = Origin("file", label)
    layer: Layer = {}
    for name, raw in table.items():
        key = name.replace("_", "-")
        if key not in BY_KEY:
            raise _unknown(f"config file {label}", name, key, lambda s: s.key)
        if key in layer:
            raise ConfigError(f"config file {label}: {key!r} is set twice, with - and with _")
        layer[key] = (from_toml(BY_KEY[key], raw, f"config file {label}: {name}"), origin)
    return layer


def env_layer(environ: Mapping[str, str]) -> Layer:
    """Every ``HYBRIDSERVE_<FLAG>`` variable; any other name with the prefix is a mistake."""
    layer: Layer = {}
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX) or var in INTERNAL_ENV:
            continue
        key = var.removeprefix(ENV_PREFIX).lower().replace("_", "-")
        if key not in BY_KEY:
            raise _unknown("environment", var, key, lambda s: s.env)
        origin = Origin("env", var)
        layer[key] = (from_text(BY_KEY[key], environ[var], f"environment: {var}"), origin)
    return layer


# -- merging ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Loaded:
    """A Config and, for every setting key, where its value came from."""

    config: Config
    origins: Mapping[str, Origin]

    def value(self, s: Setting) -> Any:
        holder = getattr(self.config, s.group) if s.group else self.config
        return getattr(holder, s.name)


def _blame(exc: ConfigError, origins: Mapping[str, Origin]) -> ConfigError:
    """Prefix a Config check's message with the file or variable that set the value.

    config.py names the setting first in every message, by its field or flag name.
    """
    message = str(exc)
    for s in SETTINGS:
        if any(message.startswith(n + " ") for n in (s.key, s.name.replace("_", "-"))):
            origin = origins[s.key]
            if origin.source == "file":
                return ConfigError(f"config file {origin.name}: {s.key}: {message}")
            if origin.source == "env":
                return ConfigError(f"environment: {origin.name}: {message}")
            break
    return exc


def _build(values: Mapping[str, Any], origins: Mapping[str, Origin]) -> Config:
    fields: dict[str, dict[str, Any]] = {"": {}}
    for s in SETTINGS:
        if s.key in values:
            fields.setdefault(s.group, {})[s.name] = values[s.key]
    top = fields.pop("")
    try:
        nested = {group: GROUPS[group](**kwargs) for group, kwargs in fields.items()}
        return Config(**top, **nested)
    except ConfigError as exc:
        raise _blame(exc, origins) from None


def load(command: CommandLine, *, cwd: Path | str | None = None, environ: Env = None) -> Loaded:
    """Merge defaults < file < environment < flags; raises ConfigError naming the source."""
    base = Path.cwd() if cwd is None else Path(cwd)
    layers = (
        file_layer(command.config_file, base),
        env_layer(os.environ if environ is None else environ),
        {key: (value, CLI) for key, value in command.values.items()},
    )
    values: dict[str, Any] = {}
    origins = {s.key: DEFAULT for s in SETTINGS}
    for layer in layers:
        for key, (value, origin) in layer.items():
            values[key] = value
            origins[key] = origin
    return Loaded(_build(values, origins), origins)


def load_config(
    argv: Sequence[str], *, cwd: Path | str | None = None, environ: Env = None
) -> Config:
    """The Config from every source, read afresh: what the master calls on SIGHUP.

    ``argv`` excludes the program name; ``cwd`` is the directory the server was started in
    (``--chdir`` moves the master later), against which a relative --config and
    ./pyproject.toml are found. Raises ConfigError with one message; never exits.
    """
    return load(parse_command_line(argv), cwd=cwd, environ=environ).config
