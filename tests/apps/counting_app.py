"""Records which process imported it, to tell --preload from per-worker imports."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

if "IMPORT_MARKER" in os.environ:
    with Path(os.environ["IMPORT_MARKER"]).open("a") as fh:
        fh.write(f"{os.getpid()}\n")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
