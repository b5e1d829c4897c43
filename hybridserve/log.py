"""Logging setup: ``hybridserve.error`` for the server, ``hybridserve.access`` per request.

Each goes to stderr (``-``) or a file; ``--log-config`` (a dictConfig as JSON or TOML) can
replace both. In a worker the access log's handlers move behind a queue, so the event
loop only ever appends to a deque; a thread does the writing. Files are reopened on USR1.
"""

from __future__ import annotations

import json
import logging
import logging.config
import logging.handlers
import queue
import sys
import tomllib
from pathlib import Path

ERROR_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"
_files: list[logging.FileHandler] = []
_listener: logging.handlers.QueueListener | None = None


def _handler(target: str, formatter: logging.Formatter) -> logging.Handler:
    handler: logging.Handler
    if target == "-":
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.FileHandler(target, encoding="utf-8")
        _files.append(handler)
    handler.setFormatter(formatter)
    return handler


def configure(
    level: str,
    *,
    access_log: str | None,
    error_log: str = "-",
    log_config: str | None = None,
) -> None:
    """Set up both loggers; raises OSError or ValueError naming a bad file or config."""
    _files.clear()
    error = logging.getLogger("hybridserve.error")
    error.handlers.clear()
    error.addHandler(_handler(error_log, logging.Formatter(ERROR_FORMAT, DATE_FORMAT)))
    error.setLevel(level.upper())
    error.propagate = False

    access = logging.getLogger("hybridserve.access")
    access.handlers.clear()
    access.propagate = False
    if access_log is not None:
        access.addHandler(_handler(access_log, logging.Formatter("%(message)s")))
        access.setLevel(logging.INFO)
    else:
        access.setLevel(logging.CRITICAL + 1)
    if log_config is not None:
        logging.config.dictConfig(read_log_config(log_config))


def read_log_config(path: str) -> dict[str, object]:
    """A dictConfig from a ``.json`` or ``.toml`` file."""
    text = Path(path).read_text(encoding="utf-8")
    data = tomllib.loads(text) if path.endswith(".toml") else json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a logging config must be a table/object")
    data.setdefault("version", 1)
    data.setdefault("disable_existing_loggers", False)
    return data


def queue_access_log() -> None:
    """In a worker: put the access log's handlers behind a queue and a writer thread."""
    global _listener
    access = logging.getLogger("hybridserve.access")
    if not access.handlers or _listener is not None:
        return
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(
        records, *access.handlers, respect_handler_level=True
    )
    access.handlers = [logging.handlers.QueueHandler(records)]
    _listener.start()


def flush() -> None:
    """Write out what the queue holds (a worker calls this before it exits)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


def reopen_files() -> int:
    """Reopen every log file (after logrotate moved it; USR1)."""
    for handler in _files:
        handler.acquire()
        try:
            handler.close()
            handler.stream = handler._open()  # the stdlib's own reopen hook
        finally:
            handler.release()
    return len(_files)
