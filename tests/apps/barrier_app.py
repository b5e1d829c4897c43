"""A WSGI app whose requests wait for each other: /meet?n=N&dir=D returns how many were in
the app at once (up to N), waiting at most 5 s for the others to arrive."""

import os
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    query = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    room, want = Path(query["dir"]), int(query["n"])
    (room / f"{os.getpid()}-{uuid.uuid4().hex}").touch()  # I am in the app
    deadline = time.monotonic() + 5
    while len(list(room.iterdir())) < want and time.monotonic() < deadline:
        time.sleep(0.01)  # polling a directory: this is the app's work, not a test's wait
    body = str(len(list(room.iterdir()))).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
