"""Capacity: the one owner of what a worker has taken on, and of how much more it should.

The heart of the hybrid model: a worker stops accepting while the streams it runs plus the
connections whose first request is surely on its way fill it, so new connections wait in
the shared backlog for a sibling with room instead of queueing behind busy threads. Every
count changes through a verb named for what happened; all of it runs on the loop thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

FRESH_GRACE_S = 0.02  # a new connection's request follows its handshake within this
UNLIMITED = 1 << 30


class Connection(Protocol):
    """What the worker does to a live connection, whatever protocol it speaks."""

    def check_deadline(self, now: float) -> None:
        """The once-a-second sweep: act on whatever deadline has passed."""

    def shutdown(self) -> None:
        """Graceful stop: finish what is under way, take nothing new, then close."""

    def abort(self) -> None:
        """Drop the connection now."""

    def hand_over(self) -> bool:
        """Close after the next response so the client reconnects to a less loaded
        sibling; whether this one will (idle keep-alive connections can)."""


class Capacity:
    """Counts of one worker's connections and streams, and the room they leave."""

    def __init__(
        self,
        *,
        streams: int,
        connections: int,
        clock: Callable[[], float],
        on_room: Callable[[], None],
        on_load: Callable[[], None] = lambda: None,
    ) -> None:
        self.streams_limit = streams  # 0: unlimited (an ASGI worker without a limit)
        self.connections_limit = connections  # 0: unlimited
        self._clock = clock
        self._on_room = on_room
        # The verb for "room may have grown": the callback itself, one call less per request.
        self.room_changed: Callable[[], None] = on_room
        self._on_load = on_load  # ``open`` changed: the siblings see it (worker/balance.py)
        self.connections: set[Connection] = set()
        self.in_flight = 0  # streams running in an app
        self.light = 0  # of those, answered by the worker itself (static files): no thread
        self.fresh = 0  # accepted, no request yet (some not even a protocol yet)
        self.open = 0  # accepted and not yet closed, set up or not: the load siblings see
        self.silent = 0  # accepted, nothing received yet
        self.lost_threads = 0  # WSGI threads stuck past --request-timeout
        self.accepted_total = 0
        self.draining = False
        self._recent: deque[float] = deque()  # accept times within FRESH_GRACE_S

    # -- connections ------------------------------------------------------------------
    def accepted(self) -> None:
        self.fresh += 1
        self.silent += 1
        self.open += 1
        self.accepted_total += 1
        self._recent.append(self._clock())

    def setup_failed(self) -> None:
        """An accepted socket never became a connection (a failed TLS handshake, say)."""
        self.fresh -= 1
        self.silent -= 1
        self.open -= 1
        self._on_load()
        self._on_room()

    def connection_opened(self, conn: Connection) -> None:
        self.connections.add(conn)

    def first_bytes(self) -> None:
        """No longer held in reserve: its request, if whole, counts in flight now."""
        self.silent -= 1

    def first_request(self) -> None:
        self.fresh -= 1

    def connection_closed(self, conn: Connection, *, fresh: bool, silent: bool) -> None:
        self.connections.discard(conn)
        self.fresh -= fresh
        self.silent -= silent
        self.open -= 1
        self._on_load()
        self._on_room()

    # -- streams ------------------------------------------------------------------------
    def stream_started(self) -> None:
        self.in_flight += 1

    def stream_finished(self) -> None:
        self.in_flight -= 1

    def stream_lightened(self) -> None:
        """The stream just started needs no thread or app slot (a static file): a slow
        reader of one must not close the worker's accept. ``light_finished`` ends it."""
        self.light += 1

    def light_finished(self) -> None:
        self.light -= 1

    def threads_lost(self, lost: int) -> None:
        """WSGI threads written off (or given back): they can't take streams meanwhile."""
        self.lost_threads = lost

    # -- the answer -----------------------------------------------------------------------
    def room(self) -> int:
        """How many more connections this worker should accept now."""
        if self.draining:
            return 0
        room = UNLIMITED
        if self.streams_limit:
            heavy = self.in_flight - self.light
            room = self.streams_limit - self.lost_threads - heavy - self._young_fresh()
        if self.connections_limit:
            room = min(room, self.connections_limit - len(self.connections) - self.fresh)
        return room

    def connection_room(self) -> int:
        """How many more connections ``--limit-connections`` lets this worker hold now."""
        if self.draining:
            return 0
        if not self.connections_limit:
            return UNLIMITED
        return self.connections_limit - len(self.connections) - self.fresh

    def held_by_young(self) -> bool:
        """Whether only connections accepted in the last FRESH_GRACE_S leave no room: it is
        back when they age (unless their requests take it), so siblings may wait for us."""
        if not self.streams_limit or self.connection_room() <= 0:
            return False
        threads_room = self.streams_limit - self.lost_threads - (self.in_flight - self.light)
        return 0 < threads_room <= self._young_fresh()

    def young_silent(self) -> bool:
        """Whether some connection counts against room only for a moment more."""
        return self.silent > 0

    def _young_fresh(self) -> int:
        """New connections whose request is probably on its way, as capacity they will use.

        Counting none would let one worker grab a whole burst before reading any request;
        counting every connection without a request would let slowloris clients (connect,
        dribble or send nothing) shut the worker's accept. So only those that have sent
        nothing yet and were accepted in the last FRESH_GRACE_S count.
        """
        recent, horizon = self._recent, self._clock() - FRESH_GRACE_S
        while recent and recent[0] <= horizon:
            recent.popleft()
        return min(self.silent, len(recent))

    def busy_threads(self) -> tuple[int, int]:
        """(busy, queued): streams a WSGI worker runs on threads, and those waiting for one."""
        heavy = self.in_flight - self.light
        busy = min(heavy, self.streams_limit) if self.streams_limit else heavy
        return busy, heavy - busy
