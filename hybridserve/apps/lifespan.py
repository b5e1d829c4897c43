"""ASGI lifespan, per worker: startup before the first accept, shutdown after the drain.

With ``--lifespan auto`` an app that raises before answering startup is taken not to speak
lifespan (as uvicorn does); with ``on`` that is a boot failure. ``startup.failed`` is a
boot failure in both modes: the worker exits with the app's message (and, for an exception,
the app's frames), which the master logs once, however many workers failed the same way,
and stops with exit code 3 instead of respawning workers that would fail the same way.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import Any

from hybridserve.apps.loader import app_frames
from hybridserve.apps.types import ASGIApp, Message
from hybridserve.errors import AppLoadError

log = logging.getLogger("hybridserve.error")

ASGI_VERSION = {"version": "3.0", "spec_version": "2.0"}


class Lifespan:
    """Runs the app's lifespan task; ``state`` is shared with every request scope."""

    def __init__(self, app: ASGIApp, mode: str, state: dict[str, Any]) -> None:
        self._app = app
        self._mode = mode
        self.state = state
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._startup_done: asyncio.Future[str | None] | None = None
        self._shutdown_done: asyncio.Future[str | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._supported = True

    async def startup(self) -> None:
        """Raises AppLoadError if the app reports, or (with ``on``) raises, a failure."""
        if self._mode == "off":
            return
        loop = asyncio.get_running_loop()
        self._startup_done = loop.create_future()
        self._shutdown_done = loop.create_future()
        self._task = loop.create_task(self._run())
        await self._inbox.put({"type": "lifespan.startup"})
        failure = await self._startup_done
        if failure is not None:
            raise AppLoadError(f"ASGI lifespan startup failed: {failure}")

    @property
    def status(self) -> str:
        """For the startup line: on, off, or unsupported (auto, and the app has none)."""
        if self._mode == "off":
            return "off"
        return "on" if self._supported else "unsupported by the app"

    async def shutdown(self, timeout_s: float) -> None:
        if self._task is None or not self._supported or self._shutdown_done is None:
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        try:
            async with asyncio.timeout(timeout_s):
                failure = await self._shutdown_done
        except TimeoutError:
            log.warning("ASGI lifespan shutdown did not finish in %.0fs", timeout_s)
            self._task.cancel()
            return
        if failure is not None:
            log.error("ASGI lifespan shutdown failed: %s", failure)

    async def _receive(self) -> Message:
        return await self._inbox.get()

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            failure = message.get("message", "") or "no reason given"
            _settle(self._startup_done, failure if kind.endswith("failed") else None)
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            failure = message.get("message", "") or "no reason given"
            _settle(self._shutdown_done, failure if kind.endswith("failed") else None)
        else:
            raise ValueError(f"unexpected lifespan message {kind!r}")

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        try:
            await self._app(scope, self._receive, self._send)
        except Exception as exc:
            started = self._startup_done is not None and self._startup_done.done()
            if self._mode == "auto" and not started:
                log.info("ASGI app does not support lifespan (%r); going on without it", exc)
                self._supported = False
                _settle(self._startup_done, None)
            elif not started:
                # No log here: the master logs this once for all workers (exit code 3).
                summary = "".join(traceback.format_exception_only(exc)).strip()
                _settle(self._startup_done, f"{summary}\n{app_frames(exc)}".strip())
            else:
                log.exception("Exception in ASGI lifespan")
                _settle(self._shutdown_done, f"{type(exc).__name__}: {exc}")
        else:
            # The app returned: a lifespan it doesn't implement, or one that ended early.
            if self._startup_done is not None and not self._startup_done.done():
                self._supported = False
            _settle(self._startup_done, None)
            _settle(self._shutdown_done, None)


def _settle(future: asyncio.Future[str | None] | None, value: str | None) -> None:
    if future is not None and not future.done():
        future.set_result(value)
