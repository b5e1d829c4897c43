"""Find the app: ``module:attr.path``, optional factory, and which interface it speaks."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from typing import Any

from hybridserve.errors import AppLoadError

DEMO_APPS = {"wsgi": "hybridserve.demo:wsgi_app", "asgi": "hybridserve.demo:asgi_app"}


def prepare_path(app_dir: str, chdir: str | None) -> None:
    """Apply ``--chdir`` and put ``--app-dir`` first on sys.path, as the peers do."""
    if chdir:
        try:
            os.chdir(chdir)
        except OSError as exc:
            raise AppLoadError(f"cannot change directory to {chdir!r}: {exc.strerror}") from None
    path = os.path.abspath(app_dir)
    if path not in sys.path:
        sys.path.insert(0, path)


def load_app(spec: str | None, *, interface: str, factory: bool) -> tuple[Any, str]:
    """Import and return ``(app, interface)``; every failure is one AppLoadError message."""
    if spec is None:
        kind = "asgi" if interface == "asgi" else "wsgi"
        app = _import(DEMO_APPS[kind])
        return app, kind
    app = _import(spec)
    if factory:
        try:
            app = app()
        except Exception as exc:
            raise AppLoadError(f"app factory {spec!r} failed:\n{_brief(exc)}") from None
    if not callable(app):
        raise AppLoadError(f"{spec!r} is a {type(app).__name__}, not a callable app")
    if interface == "auto":
        interface = detect_interface(app)
    return app, interface


def detect_interface(app: Any) -> str:
    """ASGI apps are coroutine functions (or objects whose ``__call__`` is one)."""
    if inspect.iscoroutinefunction(app):
        return "asgi"
    call = getattr(app, "__call__", None)  # noqa: B004  # we want the attribute itself
    if call is not None and inspect.iscoroutinefunction(call):
        return "asgi"
    return "wsgi"


def _import(spec: str) -> Any:
    module_name, _, attrs = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise AppLoadError(f"cannot import module {module_name!r}: not found") from None
        raise AppLoadError(f"error while importing {module_name!r}:\n{_brief(exc)}") from None
    except Exception as exc:
        raise AppLoadError(f"error while importing {module_name!r}:\n{_brief(exc)}") from None
    obj: Any = module
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise AppLoadError(f"attribute {attrs!r} not found in module {module_name!r}") from None
    return obj


def _brief(exc: BaseException) -> str:
    """The app's own frames only: the loader's frames are noise to the user."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "importlib" not in f.filename and __file__ != f.filename]
    lines = traceback.format_list(own[-5:]) + traceback.format_exception_only(exc)
    return "".join(lines).rstrip()
