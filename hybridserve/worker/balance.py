"""Even load across workers: leave the next connection to a sibling that holds fewer.

How this works. Every worker accepts from the same listeners and the kernel wakes all of
them; whoever runs first takes the connection. Left alone, the worker that happens to be
awake takes a whole burst, and with keep-alive it keeps it (one worker served all of a
64-connection wrk run). So each worker publishes its open connections in its slot on every
accept and close, and before accepting compares itself with its siblings that are ready,
beating and accepting: holding ``slack`` more than the least loaded of them, it stops
watching the listeners for ``DEFER_S`` and lets that sibling take the connection.

Keep-alive connections that piled up before a sibling existed (a worker added by TTIN, or
one replaced after --max-requests, starts with none) are handed over: once a second, a
worker far above the least loaded sibling answers the next request on some of its
connections with ``Connection: close``, and the clients reconnect to whoever holds fewest.

The rule never strands a connection: a sibling that does not take it (loop blocked, dead
but not yet reaped) is outwaited after ``DEFER_MAX_S``, then this worker takes it anyway.
Room comes first: a worker without room does not accept at all, and says so in its slot,
so nobody defers to it; only while the connections it took in the last moment alone fill it
(``Capacity.held_by_young``) it counts as accepting, as it will in a moment. With one
worker there is no sibling and nothing changes.
"""

from __future__ import annotations

from hybridserve.worker.slots import BOOTING, READY, Slots

DEFER_S = 0.002  # how long a worker over its share leaves the listeners to its siblings
DEFER_MAX_S = 0.02  # a connection nobody else took in this long is taken anyway
REFRESH_S = 0.02  # the list of ready siblings is rebuilt this often (while accepting): ~15 µs
# ... and before every accept while a sibling boots: it may be ready before REFRESH_S is up,
# and a burst that waits in the backlog then would all go to whoever looked too early.
STALE_S = 3.0  # a sibling whose heartbeat is older is not waited for


def slack(least: int) -> int:
    """Connections a worker may hold beyond the least loaded sibling: 1, then 1 in 16."""
    return 1 + least // 16


class Share:
    """One worker's view of its siblings' load, read from their shared-memory slots."""

    def __init__(self, slots: Slots, index: int) -> None:
        self._slots = slots
        self._index = index
        self._peers: list[int] = []
        self._booting = False  # a sibling was booting at the last refresh
        self._refreshed = -REFRESH_S
        self._streak_start = 0.0
        self._streak_least = -1
        self._last_defer = -DEFER_MAX_S * 2

    def publish(self, connections: int, accepting: bool) -> None:
        self._slots.publish_load(self._index, connections, accepting)

    def refresh(self, now: float) -> None:
        """Find the sibling slots that are ready and beating (the master's slot is last)."""
        self._refreshed = now
        peers = []
        booting = False
        for index in range(self._slots.count - 1):
            if index != self._index:
                beat, pid, state = self._slots.liveness(index)
                if pid and state == READY and now - beat < STALE_S:
                    peers.append(index)
                booting = booting or (pid != 0 and state == BOOTING)
        self._peers = peers
        self._booting = booting

    def least(self) -> int | None:
        """The fewest connections held by a sibling that accepts now; None if none does."""
        least: int | None = None
        for index in self._peers:
            connections, accepting = self._slots.load(index)
            if accepting and (least is None or connections < least):
                least = connections
        return least

    def should_defer(self, own: int, now: float) -> bool:
        """Whether to leave the waiting connection to a sibling for ``DEFER_S``.

        ``now`` is ``time.monotonic()``, the clock the heartbeats use.
        """
        if self._booting or now - self._refreshed >= REFRESH_S:
            self.refresh(now)
        if not self._peers:
            return False
        least = self.least()
        if least is None or own < least + slack(least):
            return False
        if now - self._last_defer > DEFER_MAX_S or least != self._streak_least:
            # Not deferring lately, or the sibling took connections since: a new wait.
            self._streak_start, self._streak_least = now, least
        if now - self._streak_start >= DEFER_MAX_S:
            return False  # nobody took it: serve it here rather than let it wait
        self._last_defer = now
        return True

    def may_take_when_full(self, own: int, now: float) -> bool:
        """Without room, whether to take a waiting connection anyway: only if no ready
        sibling has room (it would take it) and we hold no more than our share."""
        if now - self._refreshed >= REFRESH_S:
            self.refresh(now)
        least: int | None = None
        for index in self._peers:
            connections, accepting = self._slots.load(index)
            if accepting:
                return False
            least = connections if least is None else min(least, connections)
        return least is None or own < least + slack(least)

    def excess(self, own: int, now: float) -> int:
        """Connections to hand over: half the gap to the least loaded sibling, once the gap
        is well beyond what the accept rule lets happen (so steady load never churns)."""
        self.refresh(now)
        least = self.least()
        if least is None or own - least <= 2 * slack(least):
            return 0
        return (own - least) // 2

    def taken(self) -> None:
        """We accepted a connection: the next one starts a new wait."""
        self._last_defer = -DEFER_MAX_S * 2
