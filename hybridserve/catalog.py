"""The catalog of settings: each Config field as the sources name it, and its conversions.

Every Config field with flag metadata is a Setting, which all sources know by one key, its
flag without the dashes (``keep-alive``, ``limit-request-line``; the positional APP is
``app``). A raw value from a TOML file or a text one from the environment becomes the
field's declared type here, with an error naming where it came from. Every source spells a
value the same way after ``normalize``: choices in any case (and ``warn`` for ``warning``),
a bare port number as a bind address.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from hybridserve.config import Config
from hybridserve.errors import ConfigError

ENV_PREFIX = "HYBRIDSERVE_"


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


def closest(key: str) -> Setting | None:
    """The setting whose key is nearest to a mistyped ``key``, for a "did you mean"."""
    close = difflib.get_close_matches(key, BY_KEY, n=1)
    return BY_KEY[close[0]] if close else None
