"""Logging setup: ``hybridserve.error`` for the server, ``hybridserve.access`` per request."""

from __future__ import annotations

import logging
import sys

ERROR_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


def configure(level: str, *, access_log: bool) -> None:
    """Both loggers write to stderr; the access logger only when asked for."""
    error = logging.getLogger("hybridserve.error")
    error.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(ERROR_FORMAT, DATE_FORMAT))
    error.addHandler(handler)
    error.setLevel(level.upper())
    error.propagate = False

    access = logging.getLogger("hybridserve.access")
    access.handlers.clear()
    access.propagate = False
    if access_log:
        access_handler = logging.StreamHandler(sys.stderr)
        access_handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(access_handler)
        access.setLevel(logging.INFO)
    else:
        access.setLevel(logging.CRITICAL + 1)


def reopen_files() -> int:
    """Reopen every file a hybridserve logger writes to (after logrotate moved it; USR1)."""
    reopened = 0
    for name in ("hybridserve.error", "hybridserve.access"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.FileHandler):
                handler.acquire()
                try:
                    handler.close()
                    handler.stream = handler._open()  # the stdlib's own reopen hook
                finally:
                    handler.release()
                reopened += 1
    return reopened
