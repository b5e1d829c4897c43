"""Recycling on memory and age: which worker to replace next, one at a time.

How it works: once a second the master reads each worker's resident memory from
``/proc/PID/statm`` (one small read, no signal to the worker). A worker over
``--max-worker-memory`` for ``SAMPLES_OVER`` samples in a row (one spike is not a leak), or
older than its ``--max-worker-lifetime`` (plus its own jitter, drawn at spawn so workers
started together do not leave together), is marked for replacement. The arbiter then starts
a new worker and retires the marked one only once the new one is ready, so capacity never
drops; and it marks no second worker while one is being replaced.

Decisions only: the arbiter spawns and signals.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable

from hybridserve.config import Config
from hybridserve.master.children import WorkerInfo

SAMPLES_OVER = 3
SAMPLE_INTERVAL_S = 1.0
MIB = 1024 * 1024
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid: int, proc: str = "/proc") -> int | None:
    """Resident set size of ``pid``; None when it is gone or /proc cannot tell."""
    try:
        with open(f"{proc}/{pid}/statm", "rb") as fh:
            fields = fh.read().split()
        return int(fields[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return None


def lifetime_s(config: Config, draw: Callable[[], float] = random.random) -> float:
    """How long a worker spawned now may live: 0 for ever, else the limit plus jitter."""
    if config.max_worker_lifetime_s <= 0:
        return 0.0
    return config.max_worker_lifetime_s + draw() * config.max_worker_lifetime_jitter_s


class Recycler:
    """Samples workers' memory and names the next one to replace, with the reason."""

    def __init__(self, read_rss: Callable[[int], int | None] = rss_bytes) -> None:
        self._read_rss = read_rss
        self._next_sample = 0.0

    def sample(self, workers: Iterable[WorkerInfo], now: float, limit_mib: int) -> None:
        """Once a second: each worker's RSS, and how many samples in a row were over."""
        if limit_mib <= 0 or now < self._next_sample:
            return
        self._next_sample = now + SAMPLE_INTERVAL_S
        for info in workers:
            rss = self._read_rss(info.pid)
            over = rss is not None and rss > limit_mib * MIB
            info.rss_over = info.rss_over + 1 if over else 0
            info.rss_bytes = rss or 0

    @staticmethod
    def due(
        workers: Iterable[WorkerInfo], now: float, limit_mib: int
    ) -> tuple[WorkerInfo, str] | None:
        """The first serving worker that should go, and why."""
        for info in workers:
            if not info.ready or info.draining or info.recycle:
                continue
            if limit_mib > 0 and info.rss_over >= SAMPLES_OVER:
                return info, "memory"
            if info.lifetime_s > 0 and now - info.started >= info.lifetime_s:
                return info, "max_lifetime"
        return None


def describe(info: WorkerInfo, reason: str, limit_mib: int) -> str:
    """The log line's words for why ``info`` is being replaced."""
    if reason == "memory":
        used = info.rss_bytes / MIB
        return f"uses {used:.0f} MiB (over {limit_mib} MiB for {info.rss_over} samples)"
    return f"reached its lifetime ({info.lifetime_s:.0f}s)"
