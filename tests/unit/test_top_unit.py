"""The top view as lines: rates from counter deltas, sorting, a new master starts over."""

from __future__ import annotations

from typing import Any

from hybridserve.top import Sampler, render


def status(pid: int = 10, total: int = 0) -> dict[str, Any]:
    return {
        "pid": pid,
        "version": "0.1.0",
        "app": "app:app",
        "uptime_s": 75.0,
        "stopping": False,
        "ready_workers": 2,
        "target_workers": 2,
        "generation": 1,
        "requests_total": total,
        "restarts": {"memory": 1},
    }


def worker(pid: int, requests: int, rss_mib: int = 30) -> dict[str, Any]:
    return {
        "pid": pid,
        "generation": 1,
        "state": "ready",
        "age_s": 65.0,
        "requests": requests,
        "in_flight": 1,
        "threads_busy": 1,
        "connections": 2,
        "loop_lag_s": 0.0005,
        "rss_bytes": rss_mib * 1048576,
    }


def test_rates_come_from_the_difference_between_two_samples() -> None:
    sampler = Sampler()
    first = sampler.update(status(total=100), [worker(1, 40), worker(2, 60)], now=10.0)
    assert first.total_rate is None and [r["rate"] for r in first.rows] == [None, None]
    second = sampler.update(
        status(total=130), [worker(1, 50), worker(2, 80), worker(3, 0)], now=12.0
    )
    assert second.total_rate == 15.0
    assert [r["rate"] for r in second.rows] == [5.0, 10.0, None]  # 3 is new: no rate yet
    restarted = sampler.update(status(pid=11, total=5), [worker(4, 5)], now=13.0)
    assert restarted.total_rate is None and restarted.rows[0]["rate"] is None


def test_render_sorts_rows_and_adds_totals() -> None:
    sampler = Sampler()
    sampler.update(status(total=0), [worker(1, 0), worker(2, 0)], now=0.0)
    sample = sampler.update(
        status(total=30), [worker(1, 10, rss_mib=50), worker(2, 20, rss_mib=20)], now=1.0
    )
    lines = render(sample, "rss_bytes", reverse=True)
    assert lines[0].startswith("hybridserve 0.1.0  master 10  app:app  up 1m15s")
    assert "req/s 30.0" in lines[1] and "restarts memory 1" in lines[1]
    assert lines[3].split()[:5] == ["PID", "GEN", "STATE", "AGE", "REQ/S"]
    assert [line.split()[0] for line in lines[4:6]] == ["1", "2"]  # 50 MiB first
    assert lines[6].split() == ["TOTAL", "30.0", "30", "2", "2", "4", "70.0M"]
    by_rate = render(sample, "rate", reverse=True)
    assert [line.split()[0] for line in by_rate[4:6]] == ["2", "1"]
