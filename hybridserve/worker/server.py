"""A worker process: one event loop serving the inherited listeners until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
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
from hybridserve.apps.wsgi import WSGIAdapter
from hybridserve.config import Config
from hybridserve.errors import EXIT_APP_LOAD, EXIT_OK, AppLoadError
from hybridserve.log import flush as flush_logs
from hybridserve.log import queue_access_log, reopen_files
from hybridserve.worker import tls
from hybridserve.worker.balance import DEFER_S, Share
from hybridserve.worker.exposition import from_slots, render
from hybridserve.worker.preface import Preface, read_proxy_header
from hybridserve.worker.protocol import HTTPProtocol
from hybridserve.worker.slots import ASGI, BOOTING, DRAINING, READY, WSGI, Slots
from hybridserve.worker.state import FRESH_GRACE_S, WorkerState

log = logging.getLogger("hybridserve.error")

DRAIN_SWEEPS = 3  # rounds of serving what waited in the backlog before the final one
ACCEPT_BATCH = 64  # connections taken per wake-up at most, so one worker can't grab a burst
RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
PR_SET_PDEATHSIG = 1


def resolve_http_backend(name: str) -> str:
    if name != "auto":
        return name
    try:
        import httptools  # noqa: F401

        from hybridserve.sansio import httptools_backend  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise
        else:
            factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return factory
    return asyncio.new_event_loop


class Acceptor:
    """Accepts from the shared listeners while the worker has room, then its share."""

    def __init__(
        self,
        state: WorkerState,
        listeners: list[socket.socket],
        server_tls: tls.ServerTLS | None = None,
        share: Share | None = None,
    ) -> None:
        self._state = state
        self._tls = server_tls
        self._loop = state.loop
        self._listeners = listeners
        self._share = share
        self._watching = False
        self._stopped = False
        self._backoff: asyncio.TimerHandle | None = None
        self._recheck: asyncio.TimerHandle | None = None
        self._deferred: asyncio.TimerHandle | None = None  # leaving connections to siblings
        state.on_room = self.resume
        state.on_load = self._publish

    def _publish(self) -> None:
        """Our load for the siblings: a sibling over its share defers only to one that takes."""
        if self._share is not None:
            accepting = self._watching or self._deferred is not None
            self._share.publish(self._state.open, accepting)

    def resume(self) -> None:
        if self._watching or self._stopped or self._backoff is not None:
            return
        if self._deferred is not None:
            return
        if self._state.room() <= 0:
            self._recheck_when_fresh_age()
            return
        self._watch()
        # Take a waiting connection now: if we waited for the next poll, a keep-alive
        # client's next request could fill the freed slot first, starving the backlog.
        for sock in self._listeners:
            if self._watching:
                self._accept(sock)

    def _recheck_when_fresh_age(self) -> None:
        """Young fresh connections stop counting soon: look again then, once."""
        if self._recheck is None and self._state.silent:
            self._recheck = self._loop.call_later(FRESH_GRACE_S, self._recheck_now)

    def _recheck_now(self) -> None:
        self._recheck = None
        self.resume()

    def _watch(self) -> None:
        self._watching = True
        for sock in self._listeners:
            self._loop.add_reader(sock.fileno(), self._accept, sock)
        self._publish()

    def _unwatch(self) -> None:
        if self._watching:
            self._watching = False
            for sock in self._listeners:
                self._loop.remove_reader(sock.fileno())

    def pause(self) -> None:
        """No room (or stopping): siblings must not wait for us."""
        self._unwatch()
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        self._publish()

    def _defer(self) -> None:
        """Over our share: stop watching a moment so a sibling wakes to the connection."""
        self._unwatch()
        self._deferred = self._loop.call_later(DEFER_S, self._end_defer)

    def _end_defer(self) -> None:
        # Only watch again: if the connection is still waiting, the listener is readable
        # and _accept decides once more; if a sibling took it, we stay quiet.
        self._deferred = None
        if not self._stopped:
            self._watch()

    def stop(self) -> None:
        self._stopped = True
        self.pause()

    def sweep(self) -> int:
        """Accept whatever waits in the backlog now, room or not (the drain's last act)."""
        taken = 0
        for listener in self._listeners:
            for _ in range(4096):
                try:
                    sock, _addr = listener.accept()
                except OSError:
                    break
                self._take(sock)
                taken += 1
        return taken

    def close_listeners(self) -> None:
        """Our copies of the listeners; the socket closes when the last holder lets go."""
        self.stop()
        for listener in self._listeners:
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        state, share = self._state, self._share
        for _ in range(ACCEPT_BATCH):
            if state.room() <= 0:
                self.pause()
                self._recheck_when_fresh_age()
                return
            if share is not None and share.should_defer(state.open, time.monotonic()):
                self._defer()
                return
            try:
                sock, _addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in RESOURCE_ERRNOS:
                    log.warning("cannot accept: %s; pausing 100 ms", exc.strerror)
                    self.pause()
                    self._backoff = self._loop.call_later(0.1, self._end_backoff)
                    return
                continue  # ECONNABORTED and friends: that one client is gone
            self._take(sock)

    def _take(self, sock: socket.socket) -> None:
        state = self._state
        state.note_accept()
        if self._share is not None:
            self._share.taken()
            self._publish()
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._loop.create_task(self._connect(sock))

    def _end_backoff(self) -> None:
        self._backoff = None
        self.resume()

    async def _connect(self, sock: socket.socket) -> None:
        made: list[HTTPProtocol] = []
        server_tls = self._tls
        preface: Preface | None = None

        def factory() -> HTTPProtocol:
            protocol = HTTPProtocol(self._state, server_tls, preface)
            made.append(protocol)
            return protocol

        try:
            if server_tls is None:
                await self._loop.connect_accepted_socket(factory, sock)
            else:
                head_s = self._state.config.timeouts.request_head_s
                if self._state.config.proxy_protocol:  # in clear text, before the handshake
                    preface = await read_proxy_header(self._loop, sock, head_s)
                await self._loop.connect_accepted_socket(
                    factory, sock, ssl=server_tls.context, ssl_handshake_timeout=head_s
                )
        except Exception as exc:
            log.debug("connection setup failed: %s", exc)
            sock.close()
            if not made or not made[0].connected:
                self._state.fresh -= 1
                self._state.silent -= 1
                self._state.note_close()
                self._state.capacity_freed()


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
        self._slot_state = BOOTING
        self._started = time.time()
        self._next_tick = 0.0
        self.lifespan: Lifespan | None = None
        self.share: Share | None = None

    def _adapter(self) -> tuple[Adapter, int]:
        config = self.config
        if self.interface == "asgi":
            asgi = ASGIAdapter(self.app, root_path=config.root_path_stripped)
            self.lifespan = Lifespan(self.app, config.lifespan, asgi.state)
            return asgi, config.limit_concurrency
        executor = ThreadPool(config.threads)
        adapter = WSGIAdapter(
            self.app,
            executor,
            root_path=config.root_path_stripped,
            multiprocess=config.workers > 1,
            on_threads_lost=self._threads_lost,
        )
        return adapter, config.threads

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        adapter, capacity = self._adapter()
        state = WorkerState(
            self.config,
            loop,
            adapter,
            capacity=capacity,
            http_backend=resolve_http_backend(self.config.http),
        )
        self.state = state
        state.render_metrics = lambda: render(*from_slots(self.slots)).encode()
        if self.config.max_requests:
            jitter = random.randint(0, self.config.max_requests_jitter)
            state.max_requests = self.config.max_requests + jitter
            state.on_quota = self._quota_reached
        self._stop = loop.create_future()
        if self.lifespan is not None:
            try:
                await self.lifespan.startup()
            except AppLoadError as exc:
                self.slots.set_message(self.index, str(exc))
                return EXIT_APP_LOAD
        loop.add_signal_handler(signal.SIGTERM, self.stop, False)
        loop.add_signal_handler(signal.SIGINT, self._interrupt)
        loop.add_signal_handler(signal.SIGQUIT, self.stop, True)
        loop.add_signal_handler(signal.SIGUSR1, reopen_files)
        self.share = share = Share(self.slots, self.index)
        acceptor = Acceptor(state, self.listeners, tls.server_tls(self.config.tls), share)
        acceptor.resume()
        if self.early_stops:
            self.stop(False)  # told to go while booting: serve what waits, then leave
        self._slot_state = READY
        self._tick()
        what = self.interface + (f", lifespan {self.lifespan.status}" if self.lifespan else "")
        loop_name = type(loop).__module__.partition(".")[0]  # uvloop or asyncio
        log.info(
            "Worker %d serving %s (loop %s, HTTP %s)",
            os.getpid(),
            what,
            loop_name,
            state.http_backend,
        )
        immediate = await self._stop
        acceptor.stop()
        self._slot_state = DRAINING
        self._beat()
        if not immediate:
            await self._drain(state, acceptor)
        for conn in list(state.connections):
            conn.abort()
        if self.lifespan is not None and not immediate:
            await self.lifespan.shutdown(self.config.timeouts.graceful_s)
        self._beat()  # the final counters, for the master's totals
        return EXIT_OK

    async def _drain(self, state: WorkerState, acceptor: Acceptor) -> None:
        """Finish what we have; then serve what waits in the backlog, until none does.

        The master closed its copies of the listeners when the stop began, so the last
        worker to close its own closes the socket: what it swept just before is served,
        not reset.
        """
        state.draining = True
        for conn in list(state.connections):
            conn.shutdown()
        deadline = state.loop.time() + self.config.timeouts.graceful_s
        for _ in range(DRAIN_SWEEPS):
            if not await self._idle(state, deadline) or not acceptor.sweep():
                break
        acceptor.sweep()
        acceptor.close_listeners()  # right after the sweep: nothing slips in unseen
        await self._idle(state, deadline)
        if state.connections:
            n = len(state.connections)
            if state.loop.time() >= deadline:
                log.warning("%d connection(s) still open after the graceful timeout", n)
            else:
                log.info("Stopping now: closing %d open connection(s)", n)

    async def _idle(self, state: WorkerState, deadline: float) -> bool:
        """Wait until no connection is left; False if time ran out or we must stop now."""
        # ``fresh`` also counts sockets accepted whose protocol isn't made yet.
        while state.connections or state.fresh > 0:
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
        self._interrupts += 1
        self.stop(self._interrupts > 1)

    def _threads_lost(self, lost: int) -> None:
        """Stuck threads leave less capacity; with none left, hand over to a new worker."""
        self.state.lost_threads = lost
        if lost >= self.config.threads and not self.state.draining:
            log.error(
                "Worker %d lost all %d threads to stuck requests; replacing it", os.getpid(), lost
            )
            self.slots.set_message(self.index, "request_timeout")
            self.stop(False)

    def _quota_reached(self) -> None:
        log.info("Worker %d served %d requests; restarting", os.getpid(), self.state.requests)
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
        count = share.excess(state.open, time.monotonic())
        handed = 0
        for conn in state.connections:
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
        state.tick()
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
) -> int:
    """Entry point in a freshly forked worker; returns the process exit code."""
    die_with_parent()
    faulthandler.enable()
    queue_access_log()
    slots.write(index, beat=time.monotonic(), pid=os.getpid(), state=BOOTING, generation=generation)
    if os.getppid() != master_pid:
        return EXIT_OK
    # A TERM while the app loads is kept for later, not fatal: the master may already be
    # counting on this worker, and connections may wait for it in the shared backlog.
    termed: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: termed.append(signum))
    try:
        app, interface = preloaded or load_app(
            config.app, interface=config.interface, factory=config.factory
        )
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
    )
    worker.early_stops = termed  # the same list: a TERM during lifespan startup lands too
    try:
        with asyncio.Runner(loop_factory=loop_factory(config.loop)) as runner:
            return runner.run(worker.serve())
    finally:
        flush_logs()
