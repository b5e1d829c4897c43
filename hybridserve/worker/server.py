"""A worker process: one event loop serving the inherited listeners until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import faulthandler
import logging
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from hybridserve.apps.asgi import ASGIAdapter
from hybridserve.apps.lifespan import Lifespan
from hybridserve.apps.loader import load_app
from hybridserve.apps.threads import ThreadPool
from hybridserve.apps.types import Adapter
from hybridserve.apps.websocket import WebSocketFactory
from hybridserve.apps.wsgi import WSGIAdapter
from hybridserve.config import Config
from hybridserve.config_values import resolved_http, resolved_loop
from hybridserve.errors import EXIT_APP_LOAD, EXIT_OK, AppLoadError
from hybridserve.hooks import WorkerInfo as HookWorker
from hybridserve.hooks import install_abort_hook, wrap_app
from hybridserve.log import flush as flush_logs
from hybridserve.log import queue_access_log, reopen_files
from hybridserve.worker import tls
from hybridserve.worker.acceptor import Acceptor
from hybridserve.worker.access import AccessLog
from hybridserve.worker.balance import Share
from hybridserve.worker.capacity import Capacity
from hybridserve.worker.exposition import from_slots, render
from hybridserve.worker.slots import ASGI, BOOTING, DRAINING, READY, WSGI, Slots
from hybridserve.worker.state import Record, WorkerState

log = logging.getLogger("hybridserve.error")

DRAIN_SWEEPS = 3  # rounds of serving what waited in the backlog before the final one
PR_SET_PDEATHSIG = 1


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if resolved_loop(name) == "uvloop":
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    return asyncio.new_event_loop


class Worker:
    """Runs one worker's loop: accept, heartbeat, drain."""

    def __init__(
        self,
        config: Config,
        listeners: list[socket.socket],
        app: Any,
        interface: str,
        *,
        slots: Slots,
        index: int,
        generation: int,
        master_pid: int,
        hook_worker: HookWorker | None = None,
    ) -> None:
        self.config = config
        self.listeners = listeners
        self.app = app
        self.interface = interface
        self.slots = slots
        self.index = index
        self.generation = generation
        self.master_pid = master_pid
        self._stop: asyncio.Future[bool] | None = None
        self.early_stops: list[int] = []  # TERMs that came while the app was loading
        self._interrupts = 0
        self.hook_worker = hook_worker  # what gunicorn-style hooks see
        self._slot_state = BOOTING
        self._started = time.time()
        self._next_tick = 0.0
        self.lifespan: Lifespan | None = None
        self._wsgi: WSGIAdapter | None = None  # WSGI: its written-off threads are checked
        self.share: Share | None = None

    def _adapter(self, capacity: Capacity) -> Adapter:
        config = self.config
        if self.interface == "asgi":
            settings = config.websocket
            asgi = ASGIAdapter(
                self.app,
                root_path=config.root_path_stripped,
                websocket=None if settings.backend == "none" else WebSocketFactory(settings),
            )
            self.lifespan = Lifespan(self.app, config.lifespan, asgi.state)
            return asgi

        def threads_lost(lost: int) -> None:
            capacity.threads_lost(lost)
            self._threads_lost(lost, capacity)

        self._wsgi = WSGIAdapter(
            self.app,
            ThreadPool(config.threads),
            root_path=config.root_path_stripped,
            multiprocess=config.workers > 1,
            on_threads_lost=threads_lost,
        )
        return self._wsgi

    def _state(
        self,
        loop: asyncio.AbstractEventLoop,
        on_room: Callable[[], None],
        on_load: Callable[[], None],
    ) -> WorkerState:
        """Capacity, adapter and record, each given what it calls back at construction."""
        config = self.config
        streams = config.limit_concurrency if self.interface == "asgi" else config.threads
        capacity = Capacity(
            streams=streams,
            connections=config.limit_connections,
            clock=loop.time,
            on_room=on_room,
            on_load=on_load,
        )
        quota = 0
        if config.max_requests:
            quota = config.max_requests + random.randint(0, config.max_requests_jitter)
        access = AccessLog(config.access_log_format) if config.access_log else None
        record = Record(access, max_requests=quota, on_quota=self._quota_reached)
        return WorkerState(
            config,
            loop,
            self._adapter(capacity),
            capacity,
            record,
            http_backend=resolved_http(config.http),
            render_metrics=lambda: render(*from_slots(self.slots)).encode(),
        )

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        acceptor: Acceptor | None = None

        def room_changed() -> None:  # capacity calls back; the acceptor is made below
            if acceptor is not None:
                acceptor.resume()

        def load_changed() -> None:  # connections opened or closed: the siblings see it
            if acceptor is not None:
                acceptor.publish()

        state = self._state(loop, room_changed, load_changed)
        self.state = state
        self._stop = loop.create_future()
        if self.lifespan is not None:
            try:
                await self.lifespan.startup()
            except AppLoadError as exc:
                self.slots.set_message(self.index, str(exc))
                return EXIT_APP_LOAD
        acceptor = self._start_serving(loop, state)
        immediate = await self._stop
        acceptor.stop()
        self._slot_state = DRAINING
        self._beat()
        if not immediate:
            await self._drain(state, acceptor)
        for conn in list(state.capacity.connections):
            conn.abort()
        if self.lifespan is not None and not immediate:
            await self.lifespan.shutdown(self.config.timeouts.graceful_s)
        self._beat()  # the final counters, for the master's totals
        return EXIT_OK

    def _start_serving(self, loop: asyncio.AbstractEventLoop, state: WorkerState) -> Acceptor:
        """Signals, accepting, the "serving" line, then READY in the slot: the master
        announces Ready once every slot says so, and no worker's line may follow that."""
        loop.add_signal_handler(signal.SIGTERM, self.stop, False)
        loop.add_signal_handler(signal.SIGINT, self._interrupt)
        loop.add_signal_handler(signal.SIGQUIT, self._quit)
        loop.add_signal_handler(signal.SIGUSR1, reopen_files)
        self.share = share = Share(self.slots, self.index)
        alpn = ("h2", "http/1.1") if self.config.http2 else ("http/1.1",)
        acceptor = Acceptor(state, self.listeners, tls.server_tls(self.config.tls, alpn), share)
        acceptor.resume()
        if self.early_stops:
            self.stop(False)  # told to go while booting: serve what waits, then leave
        what = self.interface + (f", lifespan {self.lifespan.status}" if self.lifespan else "")
        loop_name = type(loop).__module__.partition(".")[0]  # uvloop or asyncio
        log.info(
            "Worker %d serving %s (loop %s, HTTP %s)",
            os.getpid(),
            what,
            loop_name,
            state.http_backend,
        )
        self._slot_state = READY
        self._tick()
        return acceptor

    async def _drain(self, state: WorkerState, acceptor: Acceptor) -> None:
        """Finish what we have; then serve what waits in the backlog, until none does.

        The master closed its copies of the listeners when the stop began, so the last
        worker to close its own closes the socket: what it swept just before is served,
        not reset.
        """
        state.capacity.draining = True
        for conn in list(state.capacity.connections):
            conn.shutdown()
        deadline = state.loop.time() + self.config.timeouts.graceful_s
        for _ in range(DRAIN_SWEEPS):
            if not await self._idle(state, deadline) or not acceptor.sweep():
                break
        acceptor.sweep()
        acceptor.close_listeners()  # right after the sweep: nothing slips in unseen
        await self._idle(state, deadline)
        if state.capacity.connections:
            n = len(state.capacity.connections)
            if state.loop.time() >= deadline:
                log.warning("%d connection(s) still open after the graceful timeout", n)
            else:
                log.info("Stopping now: closing %d open connection(s)", n)

    async def _idle(self, state: WorkerState, deadline: float) -> bool:
        """Wait until no connection is left; False if time ran out or we must stop now."""
        # ``fresh`` also counts sockets accepted whose protocol isn't made yet.
        while state.capacity.connections or state.capacity.fresh > 0:
            if state.loop.time() >= deadline:
                return False
            if self._stop is not None and self._stop.done() and self._stop.result():
                return False
            await asyncio.sleep(0.02)
        return True

    def stop(self, immediate: bool) -> None:
        stop = self._stop
        if stop is None:
            return
        if not stop.done():
            stop.set_result(immediate)
        elif immediate:  # already draining: a second request to stop means now
            self._stop = self.state.loop.create_future()
            self._stop.set_result(True)

    def _interrupt(self) -> None:
        self.config.hooks.call("worker_int", self.hook_worker)
        self._interrupts += 1
        self.stop(self._interrupts > 1)

    def _quit(self) -> None:
        self.config.hooks.call("worker_int", self.hook_worker)
        self.stop(True)

    def _threads_lost(self, lost: int, capacity: Capacity) -> None:
        """Stuck threads leave less capacity; with none left, hand over to a new worker."""
        if lost >= self.config.threads and not capacity.draining:
            log.error(
                "Worker %d lost all %d threads to stuck requests; replacing it", os.getpid(), lost
            )
            self.slots.set_message(self.index, "request_timeout")
            self.stop(False)

    def _quota_reached(self) -> None:
        log.info(
            "Worker %d served %d requests; restarting", os.getpid(), self.state.record.requests
        )
        self.slots.set_message(self.index, "max_requests")  # the master's restart reason
        self.stop(False)

    def _beat(self) -> None:
        self.slots.write(
            self.index,
            beat=time.monotonic(),
            pid=os.getpid(),
            state=self._slot_state,
            generation=self.generation,
            interface=ASGI if self.interface == "asgi" else WSGI,
            counters=self.state.counters(self._started),
        )

    def _hand_over(self) -> None:
        """Far above our share of connections: let some reconnect to a sibling."""
        share, state = self.share, self.state
        if share is None or state.draining:
            return
        count = share.excess(state.capacity.open, time.monotonic())
        handed = 0
        for conn in state.capacity.connections:
            if handed >= count:
                break
            handed += conn.hand_over()
        if handed:
            log.debug("Worker %d hands %d connections over to siblings", os.getpid(), handed)

    def _tick(self) -> None:
        state = self.state
        now = state.loop.time()
        if self._next_tick:
            state.loop_lag_s = max(0.0, now - self._next_tick)
        state.sweep()
        if self._wsgi is not None:
            self._wsgi.check_lost()
        self._beat()
        self._hand_over()
        if os.getppid() != self.master_pid:
            log.warning("Worker %d: master %d is gone; stopping", os.getpid(), self.master_pid)
            self.stop(False)
        interval = min(1.0, self.config.timeouts.worker_s / 4)
        self._next_tick = now + interval
        state.loop.call_later(interval, self._tick)


def die_with_parent() -> None:
    """Linux: get SIGTERM when the master dies; the heartbeat tick checks getppid too."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def run(
    config: Config,
    listeners: list[socket.socket],
    *,
    slots: Slots,
    index: int,
    generation: int,
    master_pid: int,
    preloaded: tuple[Any, str] | None,
    hook_worker: HookWorker | None = None,
) -> int:
    """Entry point in a freshly forked worker; returns the process exit code."""
    die_with_parent()
    faulthandler.enable()
    queue_access_log()
    slots.write(index, beat=time.monotonic(), pid=os.getpid(), state=BOOTING, generation=generation)
    if os.getppid() != master_pid:
        return EXIT_OK
    termed = _hold_term()
    try:
        app, interface = _load_app(config, preloaded, hook_worker)
    except AppLoadError as exc:
        slots.set_message(index, str(exc))
        return EXIT_APP_LOAD
    worker = Worker(
        config,
        listeners,
        app,
        interface,
        slots=slots,
        index=index,
        generation=generation,
        master_pid=master_pid,
        hook_worker=hook_worker,
    )
    worker.early_stops = termed  # the same list: a TERM during lifespan startup lands too
    return _run_loop(config, worker)


def _hold_term() -> list[int]:
    """Keep a TERM that comes while the app loads for later: the list of those that came.

    Not fatal: the master may already be counting on this worker, and connections may wait
    for it in the shared backlog.
    """
    termed: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: termed.append(signum))
    return termed


def _load_app(
    config: Config, preloaded: tuple[Any, str] | None, hook_worker: HookWorker | None
) -> tuple[Any, str]:
    """The app and its interface (loaded here unless --preload did it in the master),
    wrapped in the config file's request hooks; raises AppLoadError."""
    app, interface = preloaded or load_app(
        config.app, interface=config.interface, factory=config.factory
    )
    if hook_worker is not None and config.hooks:
        app = wrap_app(app, interface, config.hooks, hook_worker)
        config.hooks.call("post_worker_init", hook_worker)
        install_abort_hook(config.hooks, hook_worker)
    return app, interface


def _run_loop(config: Config, worker: Worker) -> int:
    try:
        with asyncio.Runner(loop_factory=loop_factory(config.loop)) as runner:
            return runner.run(worker.serve())
    finally:
        flush_logs()
