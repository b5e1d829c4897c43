"""hybridserve: a prefork server with asyncio workers, WSGI on threads and ASGI on the loop."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
