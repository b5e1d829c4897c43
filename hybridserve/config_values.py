"""What a setting's value may be: the choices, what ``auto`` means, the text formats.

A format check raises ValueError saying what is wrong; the dataclass that holds the value
turns it into a SettingError naming the flag (``config_fields.require_valid``).
"""

from __future__ import annotations

import functools
import ipaddress
from pathlib import PurePath

INTERFACES = ("auto", "wsgi", "asgi")
LOOPS = ("auto", "uvloop", "asyncio")
HTTP_BACKENDS = ("auto", "h11", "httptools")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
LIFESPAN_MODES = ("auto", "on", "off")
WS_BACKENDS = ("auto", "wsproto", "none")


@functools.cache
def resolved_http(name: str) -> str:
    """``--http auto`` is httptools when it (and our backend for it) imports, else h11.

    The one place ``auto`` is decided, so the banner, the worker and the parser agree.
    """
    if name != "auto":
        return name
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


@functools.cache
def resolved_loop(name: str) -> str:
    """``--loop auto`` is uvloop when installed, else asyncio's own loop."""
    if name != "auto":
        return name
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def parse_static_mount(spec: str) -> tuple[str, str]:
    """``"/static=./dir"`` → ``("/static", "./dir")``; raises ValueError saying what is wrong."""
    prefix, eq, directory = (part.strip() for part in spec.partition("="))
    if not eq or not prefix or not directory:
        raise ValueError(f"expected URL_PREFIX=DIR, got {spec!r}")
    segments = prefix.split("/")
    if not prefix.startswith("/") or any(c in prefix for c in "?#%\\\0") or ".." in segments:
        raise ValueError(f"the URL prefix must be a plain path starting with '/', got {prefix!r}")
    return prefix.rstrip("/"), directory


def check_static_mounts(specs: tuple[str, ...]) -> None:
    """Every ``--static`` value parses (``parse_static_mount``)."""
    for spec in specs:
        parse_static_mount(spec)


def check_app_spec(spec: str | None) -> None:
    """MODULE:ATTRIBUTE, maybe with a factory call; a file path gets the module it means."""
    if spec is None:
        return  # the demo app
    module, _, attr = spec.partition(":")
    if "/" in module or "\\" in module:
        path = PurePath(module)
        hint = f"{path.name.removesuffix('.py')}:{attr or 'app'}"
        if str(path.parent) not in ("", "."):
            hint += f" --app-dir {path.parent}"
        raise ValueError(f"must be a module name, not a file path: try {hint}")
    name = attr.partition("(")[0].strip()
    if not attr and module and " " not in module:
        # Django's wsgi.py and asgi.py name their app "application".
        example = f"{module}:{'application' if module.endswith(('wsgi', 'asgi')) else 'app'}"
        raise ValueError(f"must look like MODULE:ATTRIBUTE, such as {example}")
    if not module or not name or " " in module + name:
        raise ValueError(f"must look like MODULE:ATTRIBUTE, got {spec!r}")


def check_peers(text: str) -> None:
    """``--forwarded-allow-ips``: addresses or networks, comma-separated; ``*`` for all."""
    for item in filter(None, (part.strip() for part in text.split(","))):
        if item != "*":
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address") from None


def check_umask(text: str | None) -> None:
    """An octal file mode creation mask, such as ``022``; None leaves the umask alone."""
    if text is None:
        return
    try:
        ok = 0 <= int(text, 8) <= 0o777
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"must be an octal number, got {text!r}")
