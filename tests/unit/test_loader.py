"""App loading and interface detection."""

from __future__ import annotations

from typing import Any

import pytest

from hybridserve.apps.loader import detect_interface, load_app
from hybridserve.errors import AppLoadError


def wsgi(environ: Any, start_response: Any) -> list[bytes]:
    return []


async def asgi(scope: Any, receive: Any, send: Any) -> None:
    return None


class ASGIClass:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        return None


class WSGIClass:
    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return []


def test_detect_interface() -> None:
    assert detect_interface(wsgi) == "wsgi"
    assert detect_interface(asgi) == "asgi"
    assert detect_interface(ASGIClass()) == "asgi"
    assert detect_interface(WSGIClass()) == "wsgi"


def test_demo_apps() -> None:
    assert load_app(None, interface="auto", factory=False)[1] == "wsgi"
    assert load_app(None, interface="asgi", factory=False)[1] == "asgi"


def test_dotted_attribute_and_forced_interface() -> None:
    app, kind = load_app(
        "tests.unit.test_loader:ASGIClass.__call__", interface="wsgi", factory=False
    )
    assert kind == "wsgi"
    assert app is ASGIClass.__call__


def test_errors_name_what_is_missing() -> None:
    with pytest.raises(AppLoadError, match="attribute 'nope' not found"):
        load_app("tests.unit.test_loader:nope", interface="auto", factory=False)
    with pytest.raises(AppLoadError, match=r"cannot import module 'tests\.nope': not found"):
        load_app("tests.nope:app", interface="auto", factory=False)
