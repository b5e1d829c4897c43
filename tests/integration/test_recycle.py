"""--max-worker-memory and --max-worker-lifetime: a new worker first, then the old one goes."""

from __future__ import annotations

import itertools
import re

import httpx

from tests.conftest import ServeFactory
from tests.harness import Server, wait_until
from tests.integration.test_signals import steady_load


def restarts(server: Server, metrics_url: str, reason: str) -> int:
    text = httpx.get(metrics_url, timeout=5).text
    found = re.search(rf'hybridserve_worker_restarts_total{{reason="{reason}"}} (\d+)', text)
    return int(found[1]) if found else 0


def line_index(server: Server, pattern: str) -> int:
    match = server.wait_for(pattern)
    return next(i for i, line in enumerate(server.lines) if match.re.search(line))


def test_worker_over_the_memory_limit_is_replaced_after_its_successor_is_ready(
    serve: ServeFactory,
) -> None:
    server = serve(
        "recycle_app:app", "-w", "1", "--max-worker-memory", "80", "--metrics-bind", "127.0.0.1:0"
    )
    metrics_url = server.wait_for(r"Metrics at (\S+)")[1]
    (old,) = server.worker_pids()
    with steady_load(server, clients=2) as load:
        assert httpx.get(server.url + "/grow?100", timeout=10).status_code == 200
        warned = line_index(server, rf"Worker {old} uses \d+ MiB \(over 80 MiB for 3 samples\)")
        assert wait_until(lambda: old not in server.worker_pids(), 20)
        (new,) = server.worker_pids()
        # The successor served before the old worker was told to go: capacity never hit 0.
        assert warned < line_index(server, rf"Worker {new} serving")
        assert line_index(server, rf"Worker {new} serving") < line_index(
            server, rf"Worker {old} stopped"
        )
        assert wait_until(lambda: restarts(server, metrics_url, "memory") == 1, 10)
    assert load.failed == [], load.failed[:5]
    assert load.ok > 0


def test_workers_are_replaced_one_at_a_time_when_their_lifetime_ends(serve: ServeFactory) -> None:
    server = serve(
        "recycle_app:app",
        "-w",
        "2",
        "--max-worker-lifetime",
        "2",
        "--max-worker-lifetime-jitter",
        "1",
        "--metrics-bind",
        "127.0.0.1:0",
    )
    metrics_url = server.wait_for(r"Metrics at (\S+)")[1]
    first = set(server.worker_pids())
    with steady_load(server, clients=2) as load:
        assert wait_until(lambda: not first & set(server.worker_pids()), 30)
        assert wait_until(lambda: restarts(server, metrics_url, "max_lifetime") >= 2, 10)
    assert load.failed == [], load.failed[:5]
    lines = [line for line in server.lines if "reached its lifetime" in line or "stopped" in line]
    # One at a time: each "reached its lifetime" is followed by that worker's stop before the next.
    marks = [re.search(r"Worker (\d+) (reached|stopped)", line) for line in lines]
    order = [(int(m[1]), m[2]) for m in marks if m]
    for (pid_a, what_a), (pid_b, what_b) in itertools.pairwise(order):
        if what_a == "reached":
            assert (pid_b, what_b) == (pid_a, "stopped"), order
