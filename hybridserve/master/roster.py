"""What the control socket says about the master and each worker, as plain JSON values.

Built from the master's own records (``WorkerInfo``) and the workers' shared-memory slots,
plus each worker's resident memory from /proc: nothing asks a worker anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hybridserve.master.children import WorkerInfo
from hybridserve.master.recycle import rss_bytes
from hybridserve.worker.exposition import Totals
from hybridserve.worker.slots import Slots


def state_of(info: WorkerInfo) -> str:
    if info.draining:
        return "draining"
    if info.recycle:
        return "replacing"  # serving until its replacement is ready
    return "ready" if info.ready else "booting"


def worker_rows(workers: Iterable[WorkerInfo], slots: Slots, now: float) -> list[dict[str, Any]]:
    """One row per live worker, oldest first."""
    rows = []
    for info in sorted(workers, key=lambda w: w.started):
        view = slots.read(info.slot)
        c = view.counters
        own = view.pid == info.pid  # a slot not yet written by its new worker reads as zeros
        rows.append(
            {
                "pid": info.pid,
                "generation": info.generation,
                "state": state_of(info),
                "age_s": round(now - info.started, 3),
                "requests": c.requests if own else 0,
                "in_flight": c.in_flight if own else 0,
                "threads_busy": c.threads_busy if own else 0,
                "threads_queued": c.threads_queued if own else 0,
                "connections": c.connections if own else 0,
                "loop_lag_s": round(c.loop_lag_s, 6) if own else 0.0,
                "rss_bytes": rss_bytes(info.pid) or 0,
                "reason": info.recycle or info.reason,
            }
        )
    return rows


def summary(rows: list[dict[str, Any]], totals: Totals) -> dict[str, Any]:
    """The status answer's counts; ``requests_total`` includes workers gone, so never drops."""
    return {
        "workers": len(rows),
        "ready_workers": sum(row["state"] in ("ready", "replacing") for row in rows),
        "requests_total": sum(totals.requests.values()) + sum(row["requests"] for row in rows),
        "restarts": dict(totals.restarts),
        "reloads": {"ok": totals.reloads["ok"], "failed": totals.reloads["failed"]},
        "last_reload_error": totals.reload_error,
    }
