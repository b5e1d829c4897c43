"""File responses from apps: WSGI ``wsgi.file_wrapper`` over a real file, ASGI pathsend.

Both serve the file named by ``SERVE_FILE``; the WSGI app takes ``?skip=N`` (seek first)
and ``?length=N`` (declare a Content-Length) to pin where the worker starts and stops.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

from hybridserve.apps.types import Environ, Receive, Scope, Send, StartResponse


def wsgi(environ: Environ, start_response: StartResponse) -> Any:
    query = parse_qs(environ["QUERY_STRING"])
    fh = open(os.environ["SERVE_FILE"], "rb")  # noqa: SIM115  # closed by the server
    fh.seek(int(query.get("skip", ["0"])[0]))
    headers = [("Content-Type", "application/octet-stream")]
    if "length" in query:
        headers.append(("Content-Length", query["length"][0]))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](fh, 8192)


async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"application/octet-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.pathsend", "path": os.environ["SERVE_FILE"]})


def flask_app() -> Any:
    """Flask's ``send_file`` hands the server a ``wsgi.file_wrapper`` (direct passthrough)."""
    from flask import Flask, send_file

    app = Flask(__name__)

    @app.route("/")
    def index() -> Any:
        return send_file(os.environ["SERVE_FILE"], conditional=False)

    return app
