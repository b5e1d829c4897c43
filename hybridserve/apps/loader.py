"""Find the app: ``module:attr.path``, optional factory, and which interface it speaks.

A factory is named by ``--factory`` or, as gunicorn spells it, by a call in the spec:
``app:create_app()`` or ``app:create_app("prod", debug=True)`` (literal arguments only).
The callable's signature is checked before the first request: a WSGI app takes two
arguments and an ASGI app three, so a factory given without ``--factory``, or an
``--interface`` that does not fit, is one clear error at load instead of a 500 per request.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
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
    path, call = _split_call(spec)
    app = _import(path)
    if factory or call is not None:
        args, kwargs = call or ((), {})
        if not callable(app):
            raise AppLoadError(f"app factory {spec!r} is a {type(app).__name__}, not a callable")
        try:
            app = app(*args, **kwargs)
        except (Exception, SystemExit) as exc:
            raise AppLoadError(f"app factory {spec!r} failed:\n{_brief(exc)}") from None
    if not callable(app):
        raise AppLoadError(f"{spec!r} is a {type(app).__name__}, not a callable app")
    built = factory or call is not None
    return app, _interface(app, spec, interface, built=built)


Call = tuple[tuple[Any, ...], dict[str, Any]]
_CALL = re.compile(r"(?P<path>[^(]+)\((?P<args>.*)\)", re.DOTALL)


def _split_call(spec: str) -> tuple[str, Call | None]:
    """``mod:make(1, x=2)`` -> ``("mod:make", ((1,), {"x": 2}))``; no call -> None."""
    match = _CALL.fullmatch(spec.strip())
    if match is None:
        return spec, None
    try:
        node = ast.parse(f"f({match['args']})", mode="eval").body
        if not isinstance(node, ast.Call):
            raise ValueError(match["args"])
        args = tuple(ast.literal_eval(arg) for arg in node.args)
        kwargs = {str(kw.arg): ast.literal_eval(kw.value) for kw in node.keywords}
    except (SyntaxError, ValueError, TypeError):
        raise AppLoadError(
            f"{spec!r}: the factory's arguments must be Python literals (strings, numbers...)"
        ) from None
    if any(kw.arg is None for kw in node.keywords):
        raise AppLoadError(f"{spec!r}: **kwargs is not supported in the factory call")
    return match["path"].strip(), (args, kwargs)


def _accepts(app: Any, count: int) -> bool | None:
    """Whether ``app`` can be called with ``count`` positional arguments; None: can't tell."""
    try:
        signature = inspect.signature(app)
    except (TypeError, ValueError):  # some builtins and C types have no signature
        return None
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


def _interface(app: Any, spec: str, forced: str, *, built: bool) -> str:
    """The interface ``app`` speaks, or AppLoadError when its signature fits none asked for."""
    detected = detect_interface(app)
    takes_wsgi, takes_asgi = _accepts(app, 2), _accepts(app, 3)
    if takes_wsgi is None:
        return detected if forced == "auto" else forced
    if not takes_wsgi and not takes_asgi:
        if _accepts(app, 0) and not built:
            raise AppLoadError(
                f"{spec!r} takes no arguments, so it is not a WSGI or ASGI app; if it builds "
                f"the app, add --factory (or write '{spec}()')"
            )
        raise AppLoadError(
            f"{spec!r} cannot be called as an app: a WSGI app takes 2 arguments "
            "(environ, start_response), an ASGI app 3 (scope, receive, send)"
        )
    if forced == "auto":
        return "asgi" if detected == "asgi" or not takes_wsgi else "wsgi"
    if forced == "wsgi" and (detected == "asgi" or not takes_wsgi):
        raise AppLoadError(
            f"--interface wsgi, but {spec!r} is an ASGI app (async, or takes scope, receive, "
            "send): drop --interface or give --interface asgi"
        )
    if forced == "asgi" and not takes_asgi:
        raise AppLoadError(
            f"--interface asgi, but {spec!r} is a WSGI app (takes environ, start_response): "
            "drop --interface or give --interface wsgi"
        )
    return forced


def detect_interface(app: Any) -> str:
    """ASGI apps are coroutine functions (or objects whose ``__call__`` is one)."""
    if inspect.iscoroutinefunction(app):
        return "asgi"
    call = getattr(app, "__call__", None)  # noqa: B004  # we want the attribute itself
    if call is not None and inspect.iscoroutinefunction(call):
        return "asgi"
    return "wsgi"


def _not_found_hint(module_name: str, attrs: str) -> str:
    """``okapp.py:app`` means ``okapp:app``; a module one directory down wants --app-dir."""
    if module_name.endswith(".py"):
        return f" (drop the .py: {module_name.removesuffix('.py')}:{attrs})"
    top = module_name.partition(".")[0]
    try:
        folders = sorted(e.name for e in os.scandir(".") if e.is_dir() and e.name[0] not in "._")
    except OSError:
        return ""
    for folder in folders[:100]:
        if os.path.isfile(os.path.join(folder, top + ".py")) or os.path.isfile(
            os.path.join(folder, top, "__init__.py")
        ):
            return f" here; it is in {folder}/: add --app-dir {folder}"
    return ""


def _import(spec: str) -> Any:
    module_name, _, attrs = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            hint = _not_found_hint(module_name, attrs)
            raise AppLoadError(f"cannot import module {module_name!r}: not found{hint}") from None
        raise AppLoadError(f"error while importing {module_name!r}:\n{_brief(exc)}") from None
    except (Exception, SystemExit) as exc:
        # sys.exit("DATABASE_URL is not set") at import is a failure to load like any other.
        raise AppLoadError(f"error while importing {module_name!r}:\n{_brief(exc)}") from None
    obj: Any = module
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise AppLoadError(f"attribute {attrs!r} not found in module {module_name!r}") from None
    return obj


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def app_frames(exc: BaseException, limit: int = 5) -> str:
    """The last ``limit`` frames of the traceback that are the app's, not ours or importlib's."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [
        f
        for f in frames
        if "importlib" not in f.filename and not f.filename.startswith(_PACKAGE_DIR)
    ]
    return "".join(traceback.format_list(own[-limit:])).rstrip()


def _brief(exc: BaseException) -> str:
    """The app's own frames, then the exception: the loader's frames are noise to the user."""
    lines = app_frames(exc) + "\n" + "".join(traceback.format_exception_only(exc))
    return lines.strip()
