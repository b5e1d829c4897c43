"""WorkerState: what one worker knows about itself, shared by its connections.

Counters are touched only on the loop thread. ``capacity`` is the heart of the hybrid
model: a worker stops accepting while requests in flight plus connections that have not
yet sent their first request fill it, so new connections wait in the shared backlog for a
sibling with room instead of queueing behind busy threads.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from email.utils import formatdate
from typing import TYPE_CHECKING

from hybridserve.apps.types import Adapter
from hybridserve.config import Config
from hybridserve.worker.access import AccessLog
from hybridserve.worker.proxy import TrustedProxies
from hybridserve.worker.slots import DURATION_BUCKETS_S, Counters

if TYPE_CHECKING:
    from hybridserve.worker.protocol import HTTPProtocol


FRESH_GRACE_S = 0.02  # a new connection's request follows its handshake within this


def date_line() -> bytes:
    return b"Date: " + formatdate(time.time(), usegmt=True).encode("ascii") + b"\r\n"


class WorkerState:
    """Counters, caches and the drain flag of one worker."""

    def __init__(
        self,
        config: Config,
        loop: asyncio.AbstractEventLoop,
        adapter: Adapter,
        *,
        capacity: int,
        http_backend: str,
    ) -> None:
        self.config = config
        self.loop = loop
        self.adapter = adapter
        self.capacity = capacity  # 0: unlimited
        self.http_backend = http_backend
        self.access_log = AccessLog(config.access_log_format) if config.access_log else None
        allowed = config.forwarded_allow_ips
        self.proxies = TrustedProxies(allowed) if allowed.strip() else None
        self.connections: set[HTTPProtocol] = set()
        self.in_flight = 0
        self.fresh = 0
        self.open = 0  # accepted and not yet closed, set up or not: the load siblings see
        self.lost_threads = 0  # WSGI threads stuck past --request-timeout
        self.silent = 0  # accepted, nothing received yet
        self._recent: deque[float] = deque()  # accept times within FRESH_GRACE_S
        self.requests = 0
        self.accepted = 0
        self.draining = False
        self.now = loop.time()
        self.date_line = date_line()
        self.server_line = b"Server: hybridserve\r\n" if config.server_header else b""
        self.max_requests = 0  # set by the worker with its jitter; 0 means never
        path = config.metrics_path
        self.metrics_path = path.encode("latin-1") if path else None
        self.render_metrics: Callable[[], bytes] = lambda: b""
        self.status_classes = [0] * 5  # 1xx .. 5xx
        self.buckets = [0] * (len(DURATION_BUCKETS_S) + 1)
        self.duration_sum_s = 0.0
        self.loop_lag_s = 0.0
        self.on_room: Callable[[], None] = lambda: None
        self.on_load: Callable[[], None] = lambda: None  # ``open`` changed
        self.on_quota: Callable[[], None] = lambda: None

    def note_accept(self) -> None:
        self.fresh += 1
        self.silent += 1
        self.accepted += 1
        self.open += 1
        self._recent.append(self.loop.time())

    def note_close(self) -> None:
        self.open -= 1
        self.on_load()

    def _young_fresh(self) -> int:
        """New connections whose request is probably on its way, as capacity they will use.

        Counting none would let one worker grab a whole burst before reading any request;
        counting every connection without a request would let slowloris clients (connect,
        dribble or send nothing) shut the worker's accept. So only those that have sent
        nothing yet and were accepted in the last FRESH_GRACE_S count.
        """
        recent, horizon = self._recent, self.loop.time() - FRESH_GRACE_S
        while recent and recent[0] <= horizon:
            recent.popleft()
        return min(self.silent, len(recent))

    def room(self) -> int:
        """How many more connections this worker should accept now."""
        if self.draining:
            return 0
        if self.capacity:
            room = self.capacity - self.lost_threads - self.in_flight - self._young_fresh()
        else:
            room = 1 << 30
        cap = self.config.limit_connections
        if cap:
            room = min(room, cap - len(self.connections) - self.fresh)
        return room

    def capacity_freed(self) -> None:
        self.on_room()

    def request_done(self) -> None:
        self.requests += 1
        if self.max_requests and self.requests >= self.max_requests and not self.draining:
            self.on_quota()

    def record(self, status: int, duration_s: float) -> None:
        """Count one answered request for the metrics."""
        if 100 <= status <= 599:
            self.status_classes[status // 100 - 1] += 1
        self.buckets[bisect_left(DURATION_BUCKETS_S, duration_s)] += 1
        self.duration_sum_s += duration_s

    def counters(self, started: float) -> Counters:
        busy = min(self.in_flight, self.capacity) if self.capacity else self.in_flight
        return Counters(
            requests=self.requests,
            in_flight=self.in_flight,
            connections=len(self.connections),
            accepted=self.accepted,
            loop_lag_s=self.loop_lag_s,
            threads_busy=busy,
            threads_queued=self.in_flight - busy,
            duration_sum_s=self.duration_sum_s,
            started=started,
            status_classes=tuple(self.status_classes),
            buckets=tuple(self.buckets),
        )

    def tick(self) -> None:
        """Once a second: the coarse clock, the Date header, and connection deadlines."""
        self.now = now = self.loop.time()
        self.date_line = date_line()
        for conn in list(self.connections):
            conn.check_deadline(now)
