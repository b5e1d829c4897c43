"""WorkerState: what one worker's connections share, each part with one owner.

Capacity (``capacity.py``) owns what the worker has taken on; this module owns the coarse
clock and the lines every response carries, the record of finished streams (metrics and
the access log), and where a request goes: the worker's own answers (``--metrics-path``)
or the app's adapter. Everything runs on the loop thread.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections.abc import Callable
from email.utils import formatdate
from time import perf_counter

from hybridserve.apps.types import Adapter, Address, Channel, Cycle
from hybridserve.config import Config
from hybridserve.sansio.events import Request
from hybridserve.sansio.h2events import ResetCounts
from hybridserve.worker.access import AccessLog, Entry
from hybridserve.worker.capacity import Capacity
from hybridserve.worker.exposition import PROMETHEUS, StaticCycle
from hybridserve.worker.offload import Offload
from hybridserve.worker.proxy import TrustedProxies
from hybridserve.worker.slots import DURATION_BUCKETS_S, Counters
from hybridserve.worker.static import StaticFileCycle, StaticFiles
from hybridserve.worker.stream import Stream

METRICS_HEADERS = [(b"content-type", PROMETHEUS.encode())]


def date_line() -> bytes:
    return b"Date: " + formatdate(time.time(), usegmt=True).encode("ascii") + b"\r\n"


class Clock:
    """The worker's coarse clock (one read a sweep) and the Date line that goes with it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.now = loop.time()
        self.date_line = date_line()

    def tick(self) -> float:
        self.now = self._loop.time()
        self.date_line = date_line()
        return self.now


class Record:
    """Finished streams, counted for the metrics and written to the access log."""

    def __init__(
        self, access_log: AccessLog | None, *, max_requests: int, on_quota: Callable[[], None]
    ) -> None:
        self.access_log = access_log
        self.requests = 0
        self.status_classes = [0] * 5  # 1xx .. 5xx
        self.static_classes = [0] * 5  # the same, for static mount answers
        self.buckets = [0] * (len(DURATION_BUCKETS_S) + 1)
        self.duration_sum_s = 0.0
        self.h2_resets = ResetCounts()  # counted by each HTTP/2 connection itself
        self._max_requests = max_requests  # 0: never
        self._on_quota = on_quota
        self._quota_called = False

    def stream_finished(self, stream: Stream) -> None:
        duration_s = perf_counter() - stream.started_at
        status = stream.status
        if 100 <= status <= 599:
            static = type(stream.cycle) is StaticFileCycle
            (self.static_classes if static else self.status_classes)[status // 100 - 1] += 1
        self.buckets[bisect_left(DURATION_BUCKETS_S, duration_s)] += 1
        self.duration_sum_s += duration_s
        if self.access_log is not None:  # an Entry only when someone reads it
            self.access_log.emit(stream.entry(duration_s))
        self.requests += 1
        if self._max_requests and self.requests >= self._max_requests and not self._quota_called:
            self._quota_called = True
            self._on_quota()

    def refused(
        self, request: Request, client: Address, status: int, body_bytes: int, reset: str = ""
    ) -> None:
        """A request refused before any app saw it (as nginx logs its 400s): counted and
        logged with what can be said of it, but not toward --max-requests. An HTTP/2
        stream refused with RST_STREAM (``reset``, its code) sent no status to count."""
        if status:
            self._tally(status, 0.0, static=False)
        if self.access_log is not None:
            self.access_log.emit(Entry(request, client, status, body_bytes, 0.0, [], reset))

    def _tally(self, status: int, duration_s: float, *, static: bool) -> None:
        if 100 <= status <= 599:
            (self.static_classes if static else self.status_classes)[status // 100 - 1] += 1
        self.buckets[bisect_left(DURATION_BUCKETS_S, duration_s)] += 1
        self.duration_sum_s += duration_s


class WorkerState:
    """Settings, clock, capacity, record and router of one worker, given to each connection."""

    def __init__(
        self,
        config: Config,
        loop: asyncio.AbstractEventLoop,
        adapter: Adapter,
        capacity: Capacity,
        record: Record,
        *,
        http_backend: str,
        render_metrics: Callable[[], bytes],
    ) -> None:
        self.config = config
        self.loop = loop
        self.adapter = adapter
        self.capacity = capacity
        self.record = record
        self.http_backend = http_backend
        self.clock = Clock(loop)
        allowed = config.forwarded_allow_ips
        self.proxies = TrustedProxies(allowed) if allowed.strip() else None
        self.server_line = b"Server: hybridserve\r\n" if config.server_header else b""
        path = config.metrics_path
        self._metrics_path = path.encode("latin-1") if path else None
        self._render_metrics = render_metrics
        self.loop_lag_s = 0.0
        self.offload = Offload(loop)  # blocking file calls; its threads start when needed
        self.static = StaticFiles(config.static, self.offload) if config.static.mounts else None

    @property
    def draining(self) -> bool:
        return self.capacity.draining

    def new_cycle(self, request: Request, channel: Channel) -> Cycle:
        """The worker's own answers (``--metrics-path``, ``--static`` mounts); the app's
        adapter for the rest."""
        path = self._metrics_path
        if path is not None and request.target.partition(b"?")[0] == path:
            return StaticCycle(channel, 200, METRICS_HEADERS, self._render_metrics())
        if self.static is not None and (
            cycle := self.static.cycle(request, channel, self.capacity.light_finished)
        ):
            self.capacity.stream_lightened()
            return cycle
        return self.adapter.new_cycle(request, channel)

    def counters(self, started: float) -> Counters:
        capacity, record = self.capacity, self.record
        busy, queued = capacity.busy_threads()
        return Counters(
            requests=record.requests,
            in_flight=capacity.in_flight,
            connections=len(capacity.connections),
            accepted=capacity.accepted_total,
            loop_lag_s=self.loop_lag_s,
            threads_busy=busy,
            threads_queued=queued,
            duration_sum_s=record.duration_sum_s,
            started=started,
            status_classes=tuple(record.status_classes),
            static_classes=tuple(record.static_classes),
            buckets=tuple(record.buckets),
            resets_sent=tuple(record.h2_resets.sent),
            resets_received=tuple(record.h2_resets.received),
        )

    def sweep(self) -> None:
        """Once a second: the coarse clock, the Date line, and every connection's deadline."""
        now = self.clock.tick()
        for conn in list(self.capacity.connections):
            conn.check_deadline(now)
