"""A WSGI app whose import takes a while and says when it started (for TERM-while-booting)."""

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

marker = os.environ.get("BOOT_MARKER")
if marker:
    Path(marker).write_text(str(os.getpid()))
time.sleep(float(os.environ.get("BOOT_DELAY_S", "0")))


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
    return [b"booted"]
