"""A WSGI app whose worker can be made to hold memory, for the recycling tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

HELD: list[bytes] = []  # what /grow allocated stays until the worker exits


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/grow":
        mib = int(environ["QUERY_STRING"] or 0)
        HELD.append(b"\x01" * (mib * 1024 * 1024))  # written, so resident
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
