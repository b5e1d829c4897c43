"""Master signals on a real process tree: reload, resize, and the numbers behind them."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import ServeFactory
from tests.harness import Server, wait_until


@dataclass
class Load:
    """Counts of a steady request loop."""

    ok: int = 0
    failed: list[str] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)


@contextmanager
def steady_load(server: Server, clients: int = 4, max_s: float = 30) -> Iterator[Load]:
    """Clients requesting /pid on fresh connections until the block ends (bounded in time)."""
    load = Load()
    stop = threading.Event()
    lock = threading.Lock()

    def client() -> None:
        deadline = time.monotonic() + max_s
        with httpx.Client(timeout=10, headers={"Connection": "close"}) as c:
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    response = c.get(server.url + "/pid")
                    with lock:
                        if response.status_code == 200:
                            load.ok += 1
                            load.pids.add(int(response.text))
                        else:
                            load.failed.append(f"status {response.status_code}")
                except httpx.HTTPError as exc:
                    with lock:
                        load.failed.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield load
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)


def test_hup_replaces_every_worker_without_failing_a_request(serve: ServeFactory) -> None:
    server = serve("-w", "2", "--threads", "4")
    old = set(server.worker_pids())
    with steady_load(server) as load:
        assert wait_until(lambda: load.ok >= 10, 10), "the load is running"
        started = time.monotonic()
        mark = len(server.lines)
        server.send_signal(signal.SIGHUP)
        server.wait_for("Ready: 2 workers", after=mark)
        assert wait_until(lambda: not old & set(server.worker_pids()), 10)
        reload_s = time.monotonic() - started
        new = set(server.worker_pids())
        after = load.ok
        serving = wait_until(lambda: load.pids & new and load.ok >= after + 10, 10)
        assert serving, "the new generation serves"
    assert load.failed == [], load.failed[:5]
    assert load.ok > 20
    assert len(new) == 2 and not new & old
    assert load.pids & new, "the new generation served requests"
    print(f"HUP under load: {load.ok} ok, 0 failed, old generation gone in {reload_s:.2f}s")  # noqa: T201


def test_ttin_and_ttou_change_the_live_worker_count(serve: ServeFactory) -> None:
    server = serve("-w", "2")
    server.send_signal(signal.SIGTTIN)
    assert wait_until(lambda: len(server.worker_pids()) == 3, 5)
    server.wait_for("Ready: 3 workers")
    for count in (2, 1):  # one at a time: the kernel merges a signal that is already pending
        server.send_signal(signal.SIGTTOU)
        assert wait_until(lambda: len(server.worker_pids()) == count, 10)  # noqa: B023
    server.send_signal(signal.SIGTTOU)  # never below one
    server.wait_for("Worker count already 1")
    assert len(server.worker_pids()) == 1
    assert httpx.get(server.url + "/").status_code == 200


def test_hup_rereads_the_config_file(serve: ServeFactory, tmp_path: Path) -> None:
    conf = tmp_path / "hs.toml"
    conf.write_text("workers = 1\n")
    server = serve("--config", str(conf))
    assert len(server.worker_pids()) == 1
    conf.write_text("workers = 2\nbacklog = 10\n")
    mark = len(server.lines)
    server.send_signal(signal.SIGHUP)
    server.wait_for("Changed settings that need a restart \\(USR2\\): backlog", after=mark)
    server.wait_for("Ready: 2 workers", after=mark)
    assert wait_until(lambda: len(server.worker_pids()) == 2, 10)
    conf.write_text("workers = 'many'\n")
    mark = len(server.lines)
    server.send_signal(signal.SIGHUP)
    server.wait_for("Config not reloaded, keeping the old one: .*workers", after=mark)
    server.wait_for("Ready: 2 workers", after=mark)
    assert httpx.get(server.url + "/").status_code == 200
