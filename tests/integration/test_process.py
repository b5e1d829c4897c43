"""The process tree: several workers, capacity-aware accept, signals, deaths and drains."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.conftest import ServeFactory
from tests.harness import Server, get, read_response, wait_until


def fetch(server: Server, path: str, timeout_s: float = 10) -> httpx.Response:
    """One request on a fresh connection (so the kernel picks the worker)."""
    with httpx.Client(timeout=timeout_s) as client:
        return client.get(server.url + path, headers={"Connection": "close"})


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "State:\tZ" not in status.read_text()


def test_several_workers_serve(serve: ServeFactory) -> None:
    server = serve("-w", "2")
    assert len(server.worker_pids()) == 2
    seen: set[int] = set()
    with ThreadPoolExecutor(8) as pool:
        for _ in range(25):  # bounded: 25 rounds of 8 parallel delayed requests
            responses = pool.map(lambda _: fetch(server, "/delay?ms=20&x=/pid"), range(8))
            list(responses)
            seen.update(int(fetch(server, "/pid").text) for _ in range(4))
            if len(seen) == 2:
                break
    assert seen == set(server.worker_pids())


def test_a_busy_worker_leaves_new_connections_to_its_sibling(
    serve: ServeFactory, tmp_path: Path
) -> None:
    """2 workers x 2 threads: four requests are in the app at once, none queued behind a
    busy thread (each waits in the app until it has seen the other three arrive)."""
    server = serve("barrier_app:app", "-w", "2", "--threads", "2")
    with ThreadPoolExecutor(4) as pool:
        met = list(pool.map(lambda _: fetch(server, f"/meet?n=4&dir={tmp_path}"), range(4)))
    assert [r.status_code for r in met] == [200] * 4
    assert [r.text for r in met] == ["4"] * 4, "a request waited for a thread instead"
    assert len({p.name.split("-")[0] for p in tmp_path.iterdir()}) == 2, "both workers served"


def test_term_drains_the_request_in_flight(serve: ServeFactory) -> None:
    server = serve("announce_app:wsgi", "-w", "1")
    with server.connect() as sock:
        sock.sendall(get("/delay?ms=800"))
        server.wait_entered("/delay?ms=800")
        server.send_signal(signal.SIGTERM)
        response = read_response(sock)
        assert response.status == 200
        assert response.header("connection") == "close"
    assert server.wait() == 0
    assert "Stopping gracefully" in server.log


def test_term_closes_idle_keep_alive_connections_at_once(serve: ServeFactory) -> None:
    server = serve("-w", "1")
    with server.connect() as sock:
        sock.sendall(get("/"))
        assert read_response(sock).status == 200
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert sock.recv(1) == b""
    assert server.wait() == 0
    assert time.monotonic() - started < 2


def test_quit_stops_at_once_despite_a_long_request(serve: ServeFactory) -> None:
    server = serve("announce_app:wsgi", "-w", "1")
    with server.connect() as sock:
        sock.sendall(get("/delay?ms=10000"))
        server.wait_entered("/delay?ms=10000")
        started = time.monotonic()
        server.send_signal(signal.SIGQUIT)
        assert server.wait() == 0
    assert time.monotonic() - started < 3


def test_second_int_stops_at_once(serve: ServeFactory) -> None:
    server = serve("announce_app:wsgi", "-w", "1")
    with server.connect() as sock:
        sock.sendall(get("/delay?ms=10000"))
        server.wait_entered("/delay?ms=10000")
        started = time.monotonic()
        server.send_signal(signal.SIGINT)
        server.wait_for("Stopping gracefully")
        server.send_signal(signal.SIGINT)
        assert server.wait() == 0
    assert time.monotonic() - started < 3


def test_a_killed_worker_is_replaced(serve: ServeFactory) -> None:
    server = serve("-w", "2")
    victim = server.worker_pids()[0]
    started = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    assert wait_until(
        lambda: len(server.worker_pids()) == 2 and victim not in server.worker_pids(), 5
    )
    replaced_s = time.monotonic() - started
    server.wait_for(f"Worker {victim} was killed by SIGKILL; replacing it")
    assert replaced_s < 2
    assert fetch(server, "/").status_code == 200
    print(f"killed worker replaced in {replaced_s:.2f}s")  # noqa: T201


def test_term_to_a_worker_drains_it_and_it_is_replaced(serve: ServeFactory) -> None:
    server = serve("announce_app:wsgi", "-w", "1")
    (worker,) = server.worker_pids()
    with server.connect() as sock:
        sock.sendall(get("/delay?ms=600"))
        server.wait_entered("/delay?ms=600")
        os.kill(worker, signal.SIGTERM)
        response = read_response(sock)
    assert response.status == 200
    assert response.header("connection") == "close"
    assert wait_until(lambda: server.worker_pids() and server.worker_pids() != [worker], 5)
    assert fetch(server, "/").status_code == 200


def test_workers_exit_when_the_master_dies() -> None:
    server = Server("-w", "2").start()
    workers = server.worker_pids()
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    assert wait_until(lambda: not any(alive(pid) for pid in workers), 3), "orphaned workers"


def test_max_requests_recycles_the_worker_without_failing_requests(serve: ServeFactory) -> None:
    server = serve("-w", "1", "--max-requests", "5")
    first = server.worker_pids()
    codes = [fetch(server, "/").status_code for _ in range(15)]
    assert codes == [200] * 15
    assert wait_until(lambda: server.worker_pids() and server.worker_pids() != first, 5)
    server.wait_for("served 5 requests; restarting")


def test_many_concurrent_connections_are_all_served(serve: ServeFactory) -> None:
    server = serve("-w", "2", "--threads", "4")
    errors: list[BaseException] = []

    def client() -> None:
        try:
            with httpx.Client(timeout=10) as c:
                for _ in range(20):
                    assert c.get(server.url + "/").status_code == 200
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
