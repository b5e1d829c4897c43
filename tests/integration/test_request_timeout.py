"""--request-timeout: stuck requests get 503, stuck threads are written off, and a worker
that lost them all is replaced, so the server is serving again within S + a few seconds."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import ServeFactory
from tests.harness import wait_until


def test_every_wsgi_thread_stuck_is_recovered(serve: ServeFactory) -> None:
    server = serve("stuck_app:wsgi", "-w", "1", "--threads", "2", "--request-timeout", "2")
    (first,) = server.worker_pids()
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        statuses = list(
            pool.map(lambda _: httpx.get(server.url + "/stuck", timeout=20).status_code, range(2))
        )
    assert statuses == [503, 503]
    server.wait_for("stuck past its deadline at:")
    server.wait_for(f"Worker {first} lost all 2 threads to stuck requests; replacing it")
    assert "stuck_app.py" in server.log  # the stack shows where the thread is stuck
    assert wait_until(lambda: httpx.get(server.url + "/", timeout=5).status_code == 200, 10)
    recovered_s = time.monotonic() - started
    assert int(httpx.get(server.url + "/").text) != first
    assert recovered_s < 2 + 5
    print(f"every WSGI thread stuck: serving again after {recovered_s:.1f}s")  # noqa: T201


def test_stuck_asgi_request_is_cancelled(serve: ServeFactory) -> None:
    server = serve("stuck_app:asgi", "-w", "1", "--request-timeout", "1", "--lifespan", "off")
    (worker,) = server.worker_pids()
    started = time.monotonic()
    assert httpx.get(server.url + "/stuck", timeout=10).status_code == 503
    assert time.monotonic() - started < 3
    assert int(httpx.get(server.url + "/").text) == worker  # the same worker goes on
