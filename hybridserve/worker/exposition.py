"""Prometheus text and health answers, built from the workers' shared-memory slots.

Why slots and not prometheus_client's multiprocess mode: the slots already exist for the
heartbeat, cost no file or syscall per request, and vanish with the process tree; the
multiprocess mode writes a file per worker and needs cleaning up after dead ones. Counters
of workers that exited are folded into ``Totals`` by the master, which also publishes them
in a reserved slot, so a worker asked for ``--metrics-path`` renders the same numbers and
totals never go backwards.
"""

from __future__ import annotations

import json
import time
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from hybridserve.apps.types import Channel
from hybridserve.sansio.events import Headers
from hybridserve.sansio.h2events import code_name
from hybridserve.worker.slots import (
    DRAINING,
    DURATION_BUCKETS_S,
    INTERFACE_NAMES,
    READY,
    STATIC,
    Counters,
    Slots,
    SlotView,
)

STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
RESET_SIDES = ("server", "client")  # who sent the RST_STREAM: resets_sent, resets_received
REASON_MAX = 512  # a failed reload's reason, as kept in the reserved slot


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
        self.resets: dict[tuple[int, int], int] = Tally()  # (side index, error code index)
        self.restarts: dict[str, int] = Tally()
        self.reloads: dict[str, int] = Tally()  # by result: ok, failed
        self.reload_error = ""  # why the last reload failed; cleared by one that works

    def note_reload(self, *, ok: bool, error: str = "") -> None:
        self.reloads["ok" if ok else "failed"] += 1
        self.reload_error = "" if ok else error[:REASON_MAX]

    def retire(self, slot: SlotView) -> None:
        _add(self, slot)


# The labels of a counter's two-part key: (interface, status class), (sender, error code).
_LABELS: dict[str, Callable[[int, int], str]] = {
    "requests_total": lambda iface, i: (
        f'class="{STATUS_CLASSES[i]}",interface="{INTERFACE_NAMES[iface]}"'
    ),
    "http2_stream_resets_total": lambda side, i: f'by="{RESET_SIDES[side]}",code="{code_name(i)}"',
}


def _add(totals: Totals, slot: SlotView) -> None:
    """Fold one worker's counters into ``totals``."""
    c, iface = slot.counters, slot.interface
    for i, n in enumerate(c.status_classes):
        totals.requests[iface, i] += n
    for i, n in enumerate(c.static_classes):
        if n:  # a worker without mounts adds no static series
            totals.requests[STATIC, i] += n
    for i, n in enumerate(c.buckets):
        totals.buckets[iface, i] += n
    totals.duration_sum_s[iface] += c.duration_sum_s
    for side, counts in enumerate((c.resets_sent, c.resets_received)):
        for i, n in enumerate(counts):
            if n:  # a worker that never spoke HTTP/2 adds no series
                totals.resets[side, i] += n


def render(workers: list[WorkerSample], totals: Totals) -> str:
    """The Prometheus text exposition of everything the slots and totals hold."""
    summed = Totals()  # the gone workers' totals plus every live worker's counters
    summed.requests.update(totals.requests)
    summed.buckets.update(totals.buckets)
    summed.duration_sum_s.update(totals.duration_sum_s)
    summed.resets.update(totals.resets)
    for w in workers:
        _add(summed, w.slot)
    out: list[str] = []
    metric = _writer(out)
    counters = (
        ("requests_total", "Requests answered, by status class and interface.", summed.requests),
        ("http2_stream_resets_total", "HTTP/2 streams reset, by sender and code.", summed.resets),
    )
    for name, text, counts in counters:
        metric(name, "counter", text)
        labels = _LABELS[name]
        out += [f"hybridserve_{name}{{{labels(*key)}}} {n}" for key, n in sorted(counts.items())]
    _durations(out, metric, summed)
    _per_worker(out, metric, workers)
    metric("worker_restarts_total", "counter", "Workers replaced, by reason.")
    for reason, n in sorted(totals.restarts.items()):
        out.append(f'hybridserve_worker_restarts_total{{reason="{reason}"}} {n}')
    metric("reloads_total", "counter", "Reloads (HUP, --reload) by result.")
    for result in ("ok", "failed"):
        out.append(f'hybridserve_reloads_total{{result="{result}"}} {totals.reloads[result]}')
    metric("last_reload_failed", "gauge", "1 while the newest reload could not boot.")
    out.append(f"hybridserve_last_reload_failed {int(bool(totals.reload_error))}")
    return "\n".join(out) + "\n"


def _durations(out: list[str], metric: Callable[[str, str, str], None], summed: Totals) -> None:
    """The request duration histogram, one per interface."""
    buckets, sums = summed.buckets, summed.duration_sum_s
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
        (
            "worker_requests_total",
            "counter",
            "Requests answered by each worker (shows balance).",
            lambda c: c.requests,
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


Handler = Callable[[str], tuple[int, str, bytes]]  # path -> (status, content type, body)
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
        if totals.reload_error:
            # Still ready: the previous generation serves. Taking the instance out of
            # rotation over a failed deploy would turn it into an outage.
            return 200, TEXT, f"ready\nlast reload failed: {totals.reload_error}\n".encode()
        return 200, TEXT, b"ready\n"
    return 404, TEXT, b"not found: try /metrics, /healthz or /readyz\n"


def encode_totals(totals: Totals) -> str:
    """JSON for the reserved slot's message area (it holds a few KiB)."""
    return json.dumps(
        {
            "requests": [[k[0], k[1], n] for k, n in totals.requests.items()],
            "buckets": [[k[0], k[1], n] for k, n in totals.buckets.items()],
            "sums": [[k, v] for k, v in totals.duration_sum_s.items()],
            "resets": [[k[0], k[1], n] for k, n in totals.resets.items()],
            "restarts": dict(totals.restarts),
            "reloads": dict(totals.reloads),
            "reload_error": totals.reload_error,
        },
        separators=(",", ":"),
    )


def decode_totals(text: str) -> Totals:
    totals = Totals()
    if not text:
        return totals
    data = json.loads(text)
    for iface, i, n in data["requests"]:
        totals.requests[iface, i] = n
    for iface, i, n in data["buckets"]:
        totals.buckets[iface, i] = n
    for iface, value in data["sums"]:
        totals.duration_sum_s[iface] = value
    for side, i, n in data.get("resets", []):
        totals.resets[side, i] = n
    totals.restarts.update(data["restarts"])
    totals.reloads.update(data.get("reloads", {}))
    totals.reload_error = data.get("reload_error", "")
    return totals


def from_slots(slots: Slots) -> tuple[list[WorkerSample], Totals]:
    """What a worker sees: every live slot, and the totals the master published last."""
    samples = []
    for index in range(slots.count - 1):
        view = slots.read(index)
        if view.pid:
            ready = view.state in (READY, DRAINING)
            samples.append(WorkerSample(view.pid, ready, view.state == DRAINING, view))
    return samples, decode_totals(slots.message(slots.count - 1))


class StaticCycle:
    """A request answered by the worker itself (``--metrics-path``), not by the app."""

    def __init__(self, channel: Channel, status: int, headers: Headers, body: bytes) -> None:
        self._channel = channel
        self._answer = (status, headers, body)

    def start(self) -> None:
        status, headers, body = self._answer
        self._channel.send_head(status, headers, body, True)

    def feed_body(self, data: bytes) -> None:
        """The request body, if any, is of no interest."""

    def feed_end(self) -> None: ...
    def disconnected(self) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...
    def expire(self) -> None: ...
    def shutdown(self) -> None: ...
