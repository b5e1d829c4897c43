"""The demo app, saying on stdout when a request enters it.

A test that needs "the request is in the app now" (before a signal, say) waits for the
line ``app entered /delay?ms=800`` with ``Server.wait_for`` instead of sleeping and hoping.
Everything else is the built-in demo, byte for byte.
"""

from __future__ import annotations

import sys
from typing import Any

from hybridserve.apps.types import Environ, Receive, Scope, Send, StartResponse
from hybridserve.demo import asgi_app, wsgi_app


def announce(path: str, query: str) -> None:
    # One write per line: workers and their threads share the harness's pipe.
    sys.stdout.write(f"app entered {path}?{query}\n")
    sys.stdout.flush()


def wsgi(environ: Environ, start_response: StartResponse) -> Any:
    announce(environ["PATH_INFO"], environ["QUERY_STRING"])
    return wsgi_app(environ, start_response)


async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        announce(scope["path"], scope["query_string"].decode("latin-1"))
    await asgi_app(scope, receive, send)
