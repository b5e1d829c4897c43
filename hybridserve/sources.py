"""Where settings come from: flags, ``HYBRIDSERVE_*`` variables, a TOML file, the defaults.

How this works: each source turns its raw values into ``{key: (value, origin)}`` for the
settings of ``catalog.py``, converted to the field's declared type, and names itself in any
error. Later sources win: defaults < ``WEB_CONCURRENCY`` < file < env < cli. The merged
values build the nested Config once, so every check on values stays with the Config
dataclasses (``config.py``, ``config_groups.py``).

One file at most is read: ``--config FILE`` when given, else ``[tool.hybridserve]`` in
``./pyproject.toml`` when there is one. An explicit file replaces the project's table rather
than merging with it, so a deployment file is never quietly topped up by whatever
pyproject.toml happens to sit in the directory the server was started from.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from hybridserve import pyconfig
from hybridserve.catalog import (
    BY_FLAG,
    BY_KEY,
    ENV_PREFIX,
    GROUPS,
    SETTINGS,
    Setting,
    closest,
    from_text,
    from_toml,
)
from hybridserve.config import Config
from hybridserve.config_fields import SettingError
from hybridserve.errors import ConfigError
from hybridserve.hooks import Hooks

# Variables hybridserve sets for itself (master/sockets.py INHERIT_ENV, for a USR2 re-exec);
# they share the prefix but are not settings.
WEB_CONCURRENCY = "WEB_CONCURRENCY"  # the platforms' (Heroku, Render...) worker count
CMD_ARGS_ENV = "HYBRIDSERVE_CMD_ARGS"  # flags, as GUNICORN_CMD_ARGS (flags.py reads it)
INTERNAL_ENV = frozenset({"HYBRIDSERVE_INHERITED_FDS", CMD_ARGS_ENV})


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
            close = closest(key)
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
            close = closest(key)
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
