"""How many CPUs this process may really use: the default worker count.

``os.cpu_count()`` counts the machine's CPUs, which in a container is the host's: a pod
limited to 2 CPUs on a 64-core node would start 64 workers and spend its quota thrashing.
So the count is the smaller of the CPUs we may be scheduled on (``sched_getaffinity``:
taskset, cpusets) and the cgroup CPU quota, rounded up (1.5 CPUs of quota keep 2 workers
busy enough), and at least 1. The quota is read from cgroup v2 ``cpu.max`` (``max 100000``
or ``QUOTA PERIOD``) or v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (-1: none), for
this process's own cgroup and each parent up to the root, since a limit set on a parent
binds the children too. The roots are parameters so tests can point them at fake files.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

CGROUP_ROOT = "/sys/fs/cgroup"
SELF_CGROUP = "/proc/self/cgroup"


def affinity_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def available_cpus(root: str = CGROUP_ROOT, self_cgroup: str = SELF_CGROUP) -> int:
    """CPUs this process may use, whole and at least 1."""
    cpus = float(affinity_cpus())
    quota = quota_cpus(root, self_cgroup)
    if quota is not None:
        cpus = min(cpus, quota)
    return max(1, math.ceil(cpus))


def quota_cpus(root: str = CGROUP_ROOT, self_cgroup: str = SELF_CGROUP) -> float | None:
    """The tightest CPU quota on our cgroup or its parents, in CPUs; None when unlimited."""
    try:
        lines = Path(self_cgroup).read_text().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        _, controllers, path = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        if not path:
            continue
        if controllers == "":  # cgroup v2, unified
            for base in (Path(root), Path(root) / "unified"):
                limits += _walk(base, path, _v2_limit)
        elif "cpu" in controllers.split(","):
            for name in dict.fromkeys((controllers, "cpu", "cpu,cpuacct")):
                limits += _walk(Path(root) / name, path, _v1_limit)
    return min(limits) if limits else None


def _walk(base: Path, path: str, read: Callable[[Path], float | None]) -> list[float]:
    """The limits found in ``base/path`` and each of its parents, down to ``base``."""
    found = []
    parts = [part for part in path.split("/") if part]
    for depth in range(len(parts), -1, -1):
        directory = base.joinpath(*parts[:depth])
        limit = read(directory)
        if limit is not None:
            found.append(limit)
    return found


def _v2_limit(directory: Path) -> float | None:
    try:
        quota, _, period = (directory / "cpu.max").read_text().strip().partition(" ")
        if quota == "max":
            return None
        return int(quota) / int(period or "100000")
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _v1_limit(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None
