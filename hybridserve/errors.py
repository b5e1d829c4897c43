"""Exceptions raised inside hybridserve, and the exit codes they map to.

HybridServeError
 ├── ConfigError        bad setting or flag           -> exit 2
 ├── AppLoadError       app cannot be imported/built  -> exit 3
 ├── ProtocolError      client broke HTTP/1.1          -> 4xx response, connection closed
 └── ResponseError      app produced an invalid response -> 500, or abort if already started
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_APP_LOAD = 3


class HybridServeError(Exception):
    """Base class; its subclasses are handled at the edges (CLI, worker, protocol)."""


class ConfigError(HybridServeError):
    """A setting is invalid; the message names it."""


class AppLoadError(HybridServeError):
    """The app could not be imported, found or built; the message says what was missing."""


class ProtocolError(HybridServeError):
    """The client sent something HTTP/1.1 does not allow; ``status`` is the answer to give."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ClientDisconnected(OSError):
    """The client went away; raised into an app that sends or reads more (ASGI spec 2.4
    and PEP 3333 readers alike expect an OSError)."""


class ResponseError(HybridServeError):
    """The app's response cannot be sent as it is (bad header, wrong length, bad call order)."""
