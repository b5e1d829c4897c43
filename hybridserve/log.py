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
