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


class Apps:
    wsgi = staticmethod(wsgi)


def test_dotted_attribute_and_forced_interface() -> None:
    app, kind = load_app("tests.unit.test_loader:Apps.wsgi", interface="wsgi", factory=False)
    assert kind == "wsgi"
    assert app is wsgi


def make_wsgi() -> Any:
    return wsgi


def make_named(name: str, *, debug: bool = False) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    app.made_with = (name, debug)  # type: ignore[attr-defined]  # a marker for the test
    return app


def sync_asgi(scope: Any, receive: Any, send: Any) -> Any:
    return asgi(scope, receive, send)


def exits_at_call() -> Any:
    raise SystemExit("DATABASE_URL is not set")


def test_a_factory_call_in_the_spec_builds_the_app() -> None:
    assert load_app("tests.unit.test_loader:make_wsgi()", interface="auto", factory=False) == (
        wsgi,
        "wsgi",
    )
    app, kind = load_app(
        'tests.unit.test_loader:make_named("prod", debug=True)', interface="auto", factory=False
    )
    assert (app.made_with, kind) == (("prod", True), "asgi")


def test_a_factory_call_takes_literals_only() -> None:
    with pytest.raises(AppLoadError, match="arguments must be Python literals"):
        load_app("tests.unit.test_loader:make_named(os.environ)", interface="auto", factory=False)


def test_a_sync_callable_taking_three_arguments_is_asgi() -> None:
    assert (
        load_app("tests.unit.test_loader:sync_asgi", interface="auto", factory=False)[1] == "asgi"
    )


@pytest.mark.parametrize(
    ("spec", "interface", "message"),
    [
        ("make_wsgi", "auto", "takes no arguments, so it is not a WSGI or ASGI app; if it "),
        ("make_named", "auto", "cannot be called as an app: a WSGI app takes 2 arguments"),
        ("wsgi", "asgi", "--interface asgi, but 'tests.unit.test_loader:wsgi' is a WSGI app"),
        ("asgi", "wsgi", "--interface wsgi, but 'tests.unit.test_loader:asgi' is an ASGI app"),
        ("ASGIClass", "auto", "takes no arguments"),
        ("exits_at_call", "auto", "takes no arguments"),
    ],
)
def test_a_signature_that_fits_no_interface_is_refused(
    spec: str, interface: str, message: str
) -> None:
    with pytest.raises(AppLoadError) as info:
        load_app(f"tests.unit.test_loader:{spec}", interface=interface, factory=False)
    assert message in str(info.value)


def test_the_factory_hint_names_both_spellings() -> None:
    with pytest.raises(AppLoadError) as info:
        load_app("tests.unit.test_loader:make_wsgi", interface="auto", factory=False)
    assert "add --factory (or write 'tests.unit.test_loader:make_wsgi()')" in str(info.value)


def test_system_exit_in_a_factory_is_a_load_error() -> None:
    with pytest.raises(AppLoadError, match="SystemExit: DATABASE_URL is not set"):
        load_app("tests.unit.test_loader:exits_at_call", interface="auto", factory=True)


def test_errors_name_what_is_missing() -> None:
    with pytest.raises(AppLoadError, match="attribute 'nope' not found"):
        load_app("tests.unit.test_loader:nope", interface="auto", factory=False)
    with pytest.raises(AppLoadError, match=r"cannot import module 'tests\.nope': not found"):
        load_app("tests.nope:app", interface="auto", factory=False)
    with pytest.raises(AppLoadError, match=r"not found \(drop the \.py: tests\.nope:app\)"):
        load_app("tests.nope.py:app", interface="auto", factory=False)
