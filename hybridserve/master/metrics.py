"""Prometheus metrics and health checks, served by the master from the workers' slots.

Why slots and not prometheus_client's multiprocess mode: the slots already exist for the
heartbeat, cost no file or syscall per request, and vanish with the process tree; the
multiprocess mode writes a file per worker and needs cleaning up after dead ones. Counters
of workers that exited are folded into ``retired`` first, so totals never go backwards.

The endpoint is a tiny HTTP/1.0 responder driven by the master's own select loop: no
thread is ever started in the master (a thread holding a lock at fork time would hang the
child), and a client that stalls is dropped after ``CLIENT_DEADLINE_S``.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from hybridserve.worker.slots import DURATION_BUCKETS_S, INTERFACE_NAMES, Counters, SlotView

CLIENT_DEADLINE_S = 2.0
MAX_REQUEST_BYTES = 8192
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


@dataclass(frozen=True, slots=True)
class WorkerSample:
    """One live worker as the metrics see it."""

    pid: int
    ready: bool
    draining: bool
    slot: SlotView


class Totals:
    """Counters of workers that are gone, by interface, plus restarts by reason."""

    def __init__(self) -> None:
        self.requests: dict[tuple[int, int], int] = Tally()  # (interface, class index)
        self.buckets: dict[tuple[int, int], int] = Tally()  # (interface, bucket index)
        self.duration_sum_s: dict[int, float] = defaultdict(float)
        self.restarts: dict[str, int] = Tally()

    def retire(self, slot: SlotView) -> None:
        c = slot.counters
        for i, n in enumerate(c.status_classes):
            self.requests[slot.interface, i] += n
        for i, n in enumerate(c.buckets):
            self.buckets[slot.interface, i] += n
        self.duration_sum_s[slot.interface] += c.duration_sum_s


def render(workers: list[WorkerSample], totals: Totals) -> str:
    """The Prometheus text exposition of everything the slots and totals hold."""
    requests: dict[tuple[int, int], int] = Tally(totals.requests)
    buckets: dict[tuple[int, int], int] = Tally(totals.buckets)
    sums: dict[int, float] = defaultdict(float, totals.duration_sum_s)
    for w in workers:
        c, iface = w.slot.counters, w.slot.interface
        for i, n in enumerate(c.status_classes):
            requests[iface, i] += n
        for i, n in enumerate(c.buckets):
            buckets[iface, i] += n
        sums[iface] += c.duration_sum_s
    out: list[str] = []
    metric = _writer(out)
    metric("requests_total", "counter", "Requests answered, by status class and interface.")
    for (iface, i), n in sorted(requests.items()):
        out.append(
            f'hybridserve_requests_total{{class="{STATUS_CLASSES[i]}",'
            f'interface="{INTERFACE_NAMES[iface]}"}} {n}'
        )
    metric("request_duration_seconds", "histogram", "Time from request head to response end.")
    for iface in sorted({key[0] for key in buckets} | set(sums)):
        name = INTERFACE_NAMES[iface]
        running = 0
        for i, bound in enumerate((*DURATION_BUCKETS_S, float("inf"))):
            running += buckets.get((iface, i), 0)
            le = "+Inf" if bound == float("inf") else repr(bound)
            out.append(
                f'hybridserve_request_duration_seconds_bucket{{interface="{name}",le="{le}"}} '
                f"{running}"
            )
        out.append(
            f'hybridserve_request_duration_seconds_sum{{interface="{name}"}} {sums[iface]:.6f}'
        )
        out.append(f'hybridserve_request_duration_seconds_count{{interface="{name}"}} {running}')
    _per_worker(out, metric, workers)
    metric("worker_restarts_total", "counter", "Workers replaced, by reason.")
    for reason, n in sorted(totals.restarts.items()):
        out.append(f'hybridserve_worker_restarts_total{{reason="{reason}"}} {n}')
    return "\n".join(out) + "\n"


def _writer(out: list[str]) -> Callable[[str, str, str], None]:
    def metric(name: str, kind: str, text: str) -> None:
        out.append(f"# HELP hybridserve_{name} {text}")
        out.append(f"# TYPE hybridserve_{name} {kind}")

    return metric


def _per_worker(
    out: list[str], metric: Callable[[str, str, str], None], workers: list[WorkerSample]
) -> None:
    gauges: list[tuple[str, str, str, Callable[[Counters], float]]] = [
        ("requests_in_flight", "gauge", "Requests being handled.", lambda c: c.in_flight),
        ("connections_open", "gauge", "Open client connections.", lambda c: c.connections),
        ("wsgi_threads_busy", "gauge", "WSGI threads running a request.", lambda c: c.threads_busy),
        (
            "wsgi_threads_queued",
            "gauge",
            "WSGI requests waiting for a thread.",
            lambda c: c.threads_queued,
        ),
        (
            "event_loop_lag_seconds",
            "gauge",
            "How late the worker's last tick ran.",
            lambda c: c.loop_lag_s,
        ),
        (
            "connections_accepted_total",
            "counter",
            "Connections accepted (shows balance).",
            lambda c: c.accepted,
        ),
    ]
    metric("workers", "gauge", "Worker processes, by state.")
    ready = sum(1 for w in workers if w.ready and not w.draining)
    out.append(f'hybridserve_workers{{state="ready"}} {ready}')
    out.append(f'hybridserve_workers{{state="other"}} {len(workers) - ready}')
    for name, kind, text, pick in gauges:
        metric(name, kind, text)
        for w in workers:
            out.append(f'hybridserve_{name}{{worker="{w.pid}"}} {pick(w.slot.counters):g}')


Handler = Callable[[str], tuple[int, str, bytes]]
TEXT = "text/plain; charset=utf-8"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


def respond(
    path: str,
    workers: list[WorkerSample],
    totals: Totals,
    *,
    stopping: bool,
    target: int,
    timeout_s: float,
) -> tuple[int, str, bytes]:
    """``/metrics``, ``/healthz`` (alive: every worker beating) and ``/readyz`` (serving)."""
    path = path.partition("?")[0]
    if path == "/metrics":
        return 200, PROMETHEUS, render(workers, totals).encode()
    if path == "/healthz":
        now = time.monotonic()
        silent = [w.pid for w in workers if w.ready and now - w.slot.beat > timeout_s]
        if silent:
            return 503, TEXT, f"workers not beating: {silent}\n".encode()
        return 200, TEXT, b"ok\n"
    if path == "/readyz":
        ready = sum(1 for w in workers if w.ready and not w.draining)
        if stopping:
            return 503, TEXT, b"draining\n"
        if ready < target:
            return 503, TEXT, f"{ready} of {target} workers ready\n".encode()
        return 200, TEXT, b"ready\n"
    return 404, TEXT, b"not found: try /metrics, /healthz or /readyz\n"


class MetricsServer:
    """Answers ``GET`` requests on its listener from inside the master's select loop."""

    def __init__(self, sock: socket.socket, handler: Handler) -> None:
        self.sock = sock
        self._handler = handler
        self._clients: dict[int, tuple[socket.socket, bytearray, float]] = {}

    def fds(self) -> list[int]:
        return [self.sock.fileno(), *self._clients]

    def on_readable(self, fd: int) -> None:
        if fd == self.sock.fileno():
            with contextlib.suppress(BlockingIOError, InterruptedError, ConnectionAbortedError):
                client, _ = self.sock.accept()
                client.setblocking(False)
                self._clients[client.fileno()] = (client, bytearray(), time.monotonic())
            return
        client, buf, _ = self._clients[fd]
        try:
            data = client.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        buf += data
        if not data or b"\r\n\r\n" in buf or b"\n\n" in buf or len(buf) > MAX_REQUEST_BYTES:
            self._answer(fd, bytes(buf) if data else b"")

    def sweep(self) -> None:
        """Drop clients that have not sent a whole request in time."""
        now = time.monotonic()
        for fd, (_, _, started) in list(self._clients.items()):
            if now - started > CLIENT_DEADLINE_S:
                self._close(fd)

    def close(self) -> None:
        for fd in list(self._clients):
            self._close(fd)
        self.sock.close()

    def _answer(self, fd: int, request: bytes) -> None:
        client = self._clients[fd][0]
        if request:
            parts = request.split(b"\r\n", 1)[0].split()
            method = parts[0] if parts else b""
            if len(parts) >= 2 and method in (b"GET", b"HEAD"):
                status, content_type, body = self._handler(parts[1].decode("latin-1"))
            else:
                status, content_type, body = 405, "text/plain", b"only GET\n"
            head = (
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            payload = head if method == b"HEAD" else head + body
            with contextlib.suppress(OSError):
                client.settimeout(CLIENT_DEADLINE_S)
                client.sendall(payload)
        self._close(fd)

    def _close(self, fd: int) -> None:
        client = self._clients.pop(fd)[0]
        with contextlib.suppress(OSError):
            client.close()
