"""Which worker the master replaces next for memory or age (no processes)."""

from __future__ import annotations

from pathlib import Path

from hybridserve.config import Config
from hybridserve.master.children import WorkerInfo
from hybridserve.master.recycle import MIB, PAGE_BYTES, Recycler, lifetime_s, rss_bytes


def ready(pid: int, started: float = 0.0, lifetime: float = 0.0) -> WorkerInfo:
    return WorkerInfo(pid, pid, 1, started, ready=True, lifetime_s=lifetime)


def test_memory_must_stay_over_the_limit_for_three_samples_in_a_row() -> None:
    rss = {1: 200 * MIB, 2: 50 * MIB}
    recycler = Recycler(rss.get)
    workers = [ready(1), ready(2)]
    for second in range(2):
        recycler.sample(workers, float(second), 100)
    rss[1] = 90 * MIB  # one sample under: the count starts over
    recycler.sample(workers, 2.0, 100)
    rss[1] = 200 * MIB
    for second in (3, 4):
        recycler.sample(workers, float(second), 100)
    assert Recycler.due(workers, 4.0, 100) is None
    recycler.sample(workers, 4.5, 100)  # within the second: not a new sample
    assert workers[0].rss_over == 2
    recycler.sample(workers, 5.0, 100)
    assert Recycler.due(workers, 5.0, 100) == (workers[0], "memory")


def test_lifetime_and_skipping_workers_already_leaving() -> None:
    young, old = ready(1, started=90.0, lifetime=30.0), ready(2, started=0.0, lifetime=30.0)
    assert Recycler.due([young, old], 100.0, 0) == (old, "max_lifetime")
    old.recycle = "max_lifetime"
    assert Recycler.due([young, old], 100.0, 0) is None
    assert Recycler.due([ready(3, lifetime=0.0)], 10_000.0, 0) is None  # 0: for ever


def test_jitter_is_drawn_per_worker_within_its_bound() -> None:
    config = Config(max_worker_lifetime_s=60, max_worker_lifetime_jitter_s=10)
    assert lifetime_s(config, lambda: 0.0) == 60
    assert lifetime_s(config, lambda: 0.5) == 65
    assert lifetime_s(Config(), lambda: 0.5) == 0


def test_rss_comes_from_statm_pages(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "statm").write_text("1000 256 30 1 0 200 0\n")
    assert rss_bytes(42, str(tmp_path)) == 256 * PAGE_BYTES
    assert rss_bytes(43, str(tmp_path)) is None
