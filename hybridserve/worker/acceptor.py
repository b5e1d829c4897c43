"""The Acceptor: takes connections from the shared listeners while this worker has room,
then while it holds no more than its share (``balance.py``), and makes each a protocol.

Without room it still watches the listeners, for one case: every worker is full. Then no
freed thread ever reaches the backlog, because the keep-alive clients' next requests take
each one first, and a new connection waited there for seconds (wrk timed out at 2 s with
2 workers x 8 threads under a mixed load). So when no sibling has room either, a waiting
connection is taken after all, by the workers holding no more than their share, and its
request queues for a thread like everyone else's. Where ``--limit-concurrency`` is set,
streams past it are refused rather than queued, and the backlog keeps them instead.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time

from hybridserve.worker.balance import DEFER_MAX_S, DEFER_S, Share
from hybridserve.worker.capacity import FRESH_GRACE_S
from hybridserve.worker.http1 import H1Session
from hybridserve.worker.preface import Preface, read_proxy_header
from hybridserve.worker.protocol import HTTPProtocol
from hybridserve.worker.sessions import make_session as h1_or_h2
from hybridserve.worker.state import WorkerState
from hybridserve.worker.tls import ServerTLS

log = logging.getLogger("hybridserve.error")

ACCEPT_BATCH = 64  # connections taken per wake-up at most, so one worker can't grab a burst
RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class Acceptor:
    """Accepts from the shared listeners while the worker has room, then its share."""

    def __init__(
        self,
        state: WorkerState,
        listeners: list[socket.socket],
        server_tls: ServerTLS | None = None,
        share: Share | None = None,
    ) -> None:
        self._state = state
        self._capacity = state.capacity
        self._tls = server_tls
        self._loop = state.loop
        self._listeners = listeners
        self._share = share
        self._watching = False  # for connections, with room (the siblings see it)
        self._watching_full = False  # for connections, without room: see the docstring
        self._take_when_full = state.config.limit_concurrency == 0
        self._full_retry: asyncio.TimerHandle | None = None  # a sibling had room: look later
        self._stopped = False
        self._backoff: asyncio.TimerHandle | None = None
        self._recheck: asyncio.TimerHandle | None = None
        self._deferred: asyncio.TimerHandle | None = None  # leaving connections to siblings

    def publish(self) -> None:
        """Our load for the siblings: a sibling over its share defers only to one that takes.

        Waiting only for young connections to age counts as taking: room is back within
        FRESH_GRACE_S. Said otherwise, a sibling stops deferring for that moment and takes
        all the room it has; if our recheck then runs late (a loaded machine), its next
        one wins again, and a 64-connection burst ended 51 to 13.
        """
        if self._share is not None:
            soon = self._recheck is not None and not self._stopped and self._backoff is None
            soon = soon and self._capacity.held_by_young()
            accepting = self._watching or self._deferred is not None or soon
            self._share.publish(self._capacity.open, accepting)

    def resume(self) -> None:
        if self._watching or self._stopped or self._backoff is not None:
            return
        if self._deferred is not None:
            return
        if self._capacity.room() <= 0:
            self._recheck_when_fresh_age()
            if not self._watching_full:
                self._watch_when_full()
            return
        self._watch()
        # Take a waiting connection now: if we waited for the next poll, a keep-alive
        # client's next request could fill the freed slot first, starving the backlog.
        for sock in self._listeners:
            if self._watching:
                self._accept(sock)

    def _recheck_when_fresh_age(self) -> None:
        """Young fresh connections stop counting soon: look again then, once."""
        if self._recheck is None and self._capacity.young_silent():
            self._recheck = self._loop.call_later(FRESH_GRACE_S, self._recheck_now)

    def _recheck_now(self) -> None:
        self._recheck = None
        self.resume()
        self.publish()  # still no room: the requests came, so no longer "soon"

    def _watch(self) -> None:
        self._watching, self._watching_full = True, False
        for sock in self._listeners:
            self._loop.add_reader(sock.fileno(), self._accept, sock)
        self.publish()

    def _watch_when_full(self) -> None:
        if not self._take_when_full or self._stopped or self._capacity.draining:
            return
        if self._backoff is not None or self._full_retry is not None or self._watching:
            return
        self._watching_full = True
        for sock in self._listeners:
            self._loop.add_reader(sock.fileno(), self._accept_when_full, sock)

    def _unwatch(self) -> None:
        if self._watching or self._watching_full:
            self._watching = self._watching_full = False
            for sock in self._listeners:
                self._loop.remove_reader(sock.fileno())

    def pause(self) -> None:
        """No room (or stopping): siblings must not wait for us."""
        self._unwatch()
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        self.publish()

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
        if self._full_retry is not None:
            self._full_retry.cancel()
            self._full_retry = None

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
        capacity, share = self._capacity, self._share
        for _ in range(ACCEPT_BATCH):
            if capacity.room() <= 0:
                self._recheck_when_fresh_age()
                self.pause()  # publishes, "soon" if only young connections fill us
                self._watch_when_full()
                return
            if share is not None and share.should_defer(capacity.open, time.monotonic()):
                self._defer()
                return
            if not self._accept_one(listener):
                return

    def _accept_when_full(self, listener: socket.socket) -> None:
        """A connection waits and this worker has no room: take it if no sibling has room
        and we hold no more than our share; else leave it and look again later."""
        capacity, share = self._capacity, self._share
        for _ in range(ACCEPT_BATCH):
            if capacity.room() > 0:  # room came back: the usual rule
                self._unwatch()
                self.resume()
                return
            fair = share is None or share.may_take_when_full(capacity.open, time.monotonic())
            if not fair or capacity.connection_room() <= 0:
                self._unwatch()  # the listener stays readable: wait, don't spin on it
                self._full_retry = self._loop.call_later(DEFER_MAX_S, self._end_full_retry)
                return
            if not self._accept_one(listener):
                return

    def _end_full_retry(self) -> None:
        self._full_retry = None
        self.resume()

    def _accept_one(self, listener: socket.socket) -> bool:
        """Take one waiting connection; False when none waits or accepting must pause."""
        try:
            sock, _addr = listener.accept()
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            if exc.errno in RESOURCE_ERRNOS:
                log.warning("cannot accept: %s; pausing 100 ms", exc.strerror)
                self.pause()
                self._backoff = self._loop.call_later(0.1, self._end_backoff)
                return False
            return True  # ECONNABORTED and friends: that one client is gone
        self._take(sock)
        return True

    def _take(self, sock: socket.socket) -> None:
        self._capacity.accepted()
        if self._share is not None:
            self._share.taken()
            self.publish()
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
        make_session = h1_or_h2 if self._state.config.http2 else H1Session

        def factory() -> HTTPProtocol:
            protocol = HTTPProtocol(self._state, make_session, server_tls, preface)
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
                self._capacity.setup_failed()
