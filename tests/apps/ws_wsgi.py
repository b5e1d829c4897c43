"""A WSGI app that an Upgrade request reaches as an ordinary request."""

from __future__ import annotations

import json
from collections.abc import Iterable

from hybridserve.apps.types import Environ, StartResponse


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    body = json.dumps(
        {"path": environ["PATH_INFO"], "upgrade": environ.get("HTTP_UPGRADE", "")}
    ).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
