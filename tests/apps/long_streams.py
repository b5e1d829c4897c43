"""Long-lived streams on one server: SSE over HTTP (asgi_apps) and WebSockets (ws_apps)."""

import importlib

from hybridserve.apps.types import Receive, Scope, Send

# Siblings in the app directory the server runs from (not a package).
http_app = importlib.import_module("asgi_apps").app
ws_app = importlib.import_module("ws_apps").app


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await http_app(scope, receive, send)
    else:
        await ws_app(scope, receive, send)
