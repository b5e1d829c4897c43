"""Apps for the CLI tests: a plain one, a factory, and things that are not apps."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

NOT_CALLABLE = 42


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"plain"]


def create_app() -> Callable[..., Iterable[bytes]]:
    def made(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"made by a factory"]

    return made


def failing_factory() -> None:
    raise ValueError("no config")


def named_factory(greeting: str) -> Callable[..., Iterable[bytes]]:
    def made(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [greeting.encode()]

    return made


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"asgi"})
