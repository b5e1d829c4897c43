"""Where settings come from: flags, ``HYBRIDSERVE_*`` variables, a TOML file, the defaults.

How this works: every Config field with flag metadata is a Setting, which all sources know
by one key, its flag without the dashes (``keep-alive``, ``limit-request-line``; the
positional APP is ``app``). Each source turns its raw values into ``{key: (value, origin)}``,
converted to the field's declared type, and names itself in any error. Later sources win:
defaults < ``WEB_CONCURRENCY`` < file < env < cli. The merged values build the nested Config
once, so every check on values stays in ``config.py``.

One file at most is read: ``--config FILE`` when given, else ``[tool.hybridserve]`` in
``./pyproject.toml`` when there is one. An explicit file replaces the project's table rather
than merging with it, so a deployment file is never quietly topped up by whatever
pyproject.toml happens to sit in the directory the server was started from.

Every source spells a value the same way after ``normalize``: choices in any case (and
``warn`` for ``warning``), a bare port number as a bind address.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from hybridserve import pyconfig
from hybridserve.config import Config
from hybridserve.config_fields import SettingError
from hybridserve.errors import ConfigError
from hybridserve.hooks import Hooks

ENV_PREFIX = "HYBRIDSERVE_"
# Variables hybridserve sets for itself (master/sockets.py INHERIT_ENV, for a USR2 re-exec);
# they share the prefix but are not settings.
WEB_CONCURRENCY = "WEB_CONCURRENCY"  # the platforms' (Heroku, Render...) worker count
CMD_ARGS_ENV = "HYBRIDSERVE_CMD_ARGS"  # flags, as GUNICORN_CMD_ARGS (flags.py reads it)
INTERNAL_ENV = frozenset({"HYBRIDSERVE_INHERITED_FDS", CMD_ARGS_ENV})


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


BY_FLAG: dict[str, Setting] = {("APP" if s.key == "app" else s.meta["flag"]): s for s in SETTINGS}


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
BARE_PORT_HOST = "127.0.0.1"  # `-b 8080`: the default bind's host, so never public by surprise


def _bind_address(text: str) -> str:
    return f"{BARE_PORT_HOST}:{text}" if text.isdigit() else text


def normalize(s: Setting, value: Any) -> Any:
    """One spelling per value: choices in any case or by alias, a bare port as an address."""
    if "choices" in s.meta and isinstance(value, str):
        lowered = value.lower()
        return s.meta.get("aliases", {}).get(lowered, lowered)
    if s.key == "bind" and isinstance(value, tuple):
        return tuple(_bind_address(item) for item in value)
    return value


def _expected(s: Setting) -> str:
    if "choices" in s.meta:
        return "one of " + ", ".join(s.meta["choices"])
    return _EXPECTED[s.kind]


def _checked(s: Setting, value: Any, raw: object, where: str) -> Any:
    """``value``, normalized, if it is one of the setting's choices (when it has any)."""
    value = normalize(s, value)
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


def _closest(key: str) -> Setting | None:
    close = difflib.get_close_matches(key, BY_KEY, n=1)
    return BY_KEY[close[0]] if close else None


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


def _settings_table(data: dict[str, Any], label: str) -> dict[str, Any]:
    """A --config file's settings: top-level keys, plus a pasted ``[tool.hybridserve]``."""
    if "tool" not in data:
        return data
    tool = data["tool"]
    if not isinstance(tool, dict) or "hybridserve" not in tool:
        raise ConfigError(
            f"config file {label}: of a [tool] table only [tool.hybridserve] is read; "
            "or put the settings at the top level"
        )
    rest = {key: value for key, value in data.items() if key != "tool"}
    table = _project_table(data, label)
    twice = sorted(rest.keys() & table.keys())
    if twice:
        raise ConfigError(f"config file {label}: {twice[0]!r} is set twice, in and out of [tool]")
    return {**rest, **table}


def file_layer(config_file: str | None, cwd: Path) -> Layer:
    """``--config FILE`` (relative to ``cwd``), else ``./pyproject.toml`` if there is one."""
    if config_file is not None:
        label, path = config_file, cwd / config_file
        table = _read_toml(path, label)
        if path.name == "pyproject.toml":
            table = _project_table(table, label)
        else:
            table = _settings_table(table, label)
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
            close = _closest(key)
            hint = f" (did you mean {close.key!r}?)" if close else ""
            raise ConfigError(f"config file {label}: unknown setting {name!r}{hint}")
        if key in layer:
            raise ConfigError(f"config file {label}: {key!r} is set twice, with - and with _")
        layer[key] = (from_toml(BY_KEY[key], raw, f"config file {label}: {name}"), origin)
    return layer


def env_layer(environ: Mapping[str, str], warnings: list[str]) -> Layer:
    """Every ``HYBRIDSERVE_<FLAG>`` variable that is set to something.

    Other names with the prefix get a warning in ``warnings`` and are otherwise ignored: a
    container image may well set ``HYBRIDSERVE_VERSION`` for its own use. An empty value
    unsets the setting: None where None is allowed, else the file's value or the default.
    """
    layer: Layer = {}
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX) or var in INTERNAL_ENV:
            continue
        key = var.removeprefix(ENV_PREFIX).lower().replace("_", "-")
        if key not in BY_KEY:
            close = _closest(key)
            hint = f"; did you mean {close.env}?" if close else ""
            warnings.append(f"Ignoring {var}: hybridserve has no such setting{hint}")
            continue
        s = BY_KEY[key]
        if not environ[var].strip() and not s.optional:
            continue
        layer[key] = (from_text(s, environ[var], f"environment: {var}"), Origin("env", var))
    return layer


def python_layer(config_file: str, cwd: Path, warnings: list[str]) -> tuple[Layer, Hooks]:
    """A gunicorn-style Python config file (pyconfig.py): its settings and its hooks."""
    found = pyconfig.read(cwd / config_file, config_file, BY_KEY)
    warnings += found.warnings
    origin = Origin("file", config_file)
    layer: Layer = {}
    for key, (name, raw) in found.values.items():
        where = f"config file {config_file}: {name}"
        layer[key] = (from_toml(BY_KEY[key], raw, where), origin)
    return layer, found.hooks


def default_layer(environ: Mapping[str, str]) -> Layer:
    """``WEB_CONCURRENCY`` as the default worker count, as gunicorn and uvicorn read it.

    A default, not a setting: the file and ``HYBRIDSERVE_WORKERS`` still win over it.
    """
    raw = environ.get(WEB_CONCURRENCY, "").strip()
    if not raw:
        return {}
    where = f"environment: {WEB_CONCURRENCY}"
    return {"workers": (from_text(BY_KEY["workers"], raw, where), Origin("env", WEB_CONCURRENCY))}


# -- merging ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Loaded:
    """A Config, where each setting's value came from, and warnings for the log."""

    config: Config
    origins: Mapping[str, Origin]
    warnings: tuple[str, ...] = ()

    def value(self, s: Setting) -> Any:
        holder = getattr(self.config, s.group) if s.group else self.config
        return getattr(holder, s.name)


def _blame(exc: SettingError, origins: Mapping[str, Origin]) -> ConfigError:
    """A Config check's message, naming the setting as the source that set it spells it."""
    s = BY_FLAG.get(exc.flag)
    origin = origins[s.key] if s is not None else DEFAULT
    if s is not None and origin.source == "file":
        return ConfigError(f"config file {origin.name}: {s.key} {exc.problem}")
    if origin.source == "env":
        return ConfigError(f"environment: {origin.name} {exc.problem}")
    return exc


def _build(
    values: Mapping[str, Any], origins: Mapping[str, Origin], hooks: Hooks | None = None
) -> Config:
    fields: dict[str, dict[str, Any]] = {"": {}}
    for s in SETTINGS:
        if s.key in values:
            fields.setdefault(s.group, {})[s.name] = values[s.key]
    top = fields.pop("")
    try:
        nested = {group: GROUPS[group](**kwargs) for group, kwargs in fields.items()}
        return Config(**top, **nested, hooks=hooks or Hooks())
    except SettingError as exc:
        raise _blame(exc, origins) from None


class Command(Protocol):
    """What ``load`` needs from the command line (flags.py's CommandLine)."""

    @property
    def values(self) -> Mapping[str, Any]: ...

    @property
    def config_file(self) -> str | None: ...

    @property
    def env_values(self) -> Mapping[str, Any]: ...


def load(command: Command, *, cwd: Path | str | None = None, environ: Env = None) -> Loaded:
    """Merge defaults < file < environment < flags; raises ConfigError naming the source."""
    base = Path.cwd() if cwd is None else Path(cwd)
    warnings: list[str] = []
    env = os.environ if environ is None else environ
    if command.config_file is not None and command.config_file.endswith(".py"):
        file_values, hooks = python_layer(command.config_file, base, warnings)
    else:
        file_values, hooks = file_layer(command.config_file, base), Hooks()
    layers = (
        default_layer(env),
        file_values,
        env_layer(env, warnings),
        {key: (value, Origin("env", CMD_ARGS_ENV)) for key, value in command.env_values.items()},
        {key: (value, CLI) for key, value in command.values.items()},
    )
    values: dict[str, Any] = {}
    origins = {s.key: DEFAULT for s in SETTINGS}
    for layer in layers:
        for key, (value, origin) in layer.items():
            values[key] = value
            origins[key] = origin
    return Loaded(_build(values, origins, hooks), origins, tuple(warnings))
