"""How a setting is declared and checked: one dataclass field carries its flag and help.

The CLI (``flags.py``) builds its flags from the ``metadata`` that ``setting`` puts on a
field, so a setting declared in ``config.py`` or ``config_groups.py`` is a flag, with its
help text, at once. A failed check raises a SettingError naming that flag, which the
check finds from the dataclass and the field's name.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any, ClassVar, Protocol

from hybridserve.errors import ConfigError

# Sections of ``--help``, in their order there (flags.py): a setting names its own, or takes
# its group's (GROUP_SECTIONS), else OTHER; CONFIG holds the flags that are not settings.
APPLICATION = "application"
BINDING = "binding"
WORKERS = "workers"
HTTP = "HTTP"
LIMITS = "timeouts and limits"
TLS_SECTION = "TLS"
PROXIES = "proxies"
WEBSOCKETS = "WebSockets"
LOGGING = "logging and metrics"
PROCESS = "process"
CONFIG = "config"
OTHER = "other"
SECTIONS = (
    APPLICATION,
    BINDING,
    WORKERS,
    HTTP,
    LIMITS,
    TLS_SECTION,
    PROXIES,
    WEBSOCKETS,
    LOGGING,
    PROCESS,
    CONFIG,
    OTHER,
)
GROUP_SECTIONS = {
    "limits": LIMITS,
    "timeouts": LIMITS,
    "tls": TLS_SECTION,
    "websocket": WEBSOCKETS,
    "static": HTTP,  # static file mounts, when present
}


class SettingError(ConfigError):
    """A value that fails a check; ``flag`` names the setting, ``problem`` says why.

    sources.py rewrites the message to name the file key or variable that set the value.
    """

    def __init__(self, flag: str, problem: str) -> None:
        super().__init__(f"{flag} {problem}")
        self.flag = flag
        self.problem = problem


def setting(
    default: Any,
    text: str,
    *,
    flag: str,
    short: str = "",
    section: str = "",
    metavar: str = "",
    **extra: Any,
) -> Any:
    """A dataclass field that also describes its command-line flag and its --help section."""
    meta = {"help": text, "flag": flag, "short": short, "section": section, **extra}
    if metavar:
        meta["metavar"] = metavar
    if isinstance(default, (list, dict, set)):
        # A fresh copy per Config: one shared mutable default would leak between instances.
        return field(default_factory=functools.partial(copy.copy, default), metadata=meta)
    return field(default=default, metadata=meta)


class Settings(Protocol):
    """A dataclass of settings: Config or one of its groups."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]


def _metadata(owner: Settings, name: str) -> Mapping[str, Any]:
    return next((f.metadata for f in dataclasses.fields(owner) if f.name == name), {})


def flag_of(owner: Settings, name: str) -> str:
    """The flag of the setting ``name`` of the dataclass ``owner``, as messages spell it."""
    flag = str(_metadata(owner, name).get("flag", "--" + name.replace("_", "-")))
    return "APP" if flag == "app" else flag


def require(owner: Settings, ok: bool, name: str, message: str) -> None:
    """Raise a SettingError naming the flag of ``owner``'s field ``name`` unless ``ok``."""
    if not ok:
        raise SettingError(flag_of(owner, name), message)


def require_choice(owner: Settings, name: str) -> None:
    """Raise a SettingError unless ``owner``'s field ``name`` is one of its ``choices``."""
    allowed = _metadata(owner, name)["choices"]
    require(owner, getattr(owner, name) in allowed, name, "must be one of " + ", ".join(allowed))


def require_valid(owner: Settings, name: str, check: Callable[[Any], object]) -> None:
    """Run ``check`` on ``owner``'s field ``name``: its ValueError becomes a SettingError."""
    try:
        check(getattr(owner, name))
    except ValueError as exc:
        raise SettingError(flag_of(owner, name), str(exc)) from None
