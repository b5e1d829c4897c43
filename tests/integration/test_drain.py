"""Kubernetes-grade drain: no request that reached the server before its listener closed
is lost, under load."""

from __future__ import annotations

import signal
import socket
import threading
import time
from dataclasses import dataclass, field

from tests.conftest import ServeFactory
from tests.harness import Server, get, read_response, wait_until


@dataclass
class Tally:
    served: int = 0
    refused: int = 0  # connect() refused: the listener was already closed, nothing was sent
    lost: list[str] = field(default_factory=list)  # connected and sent, but no answer


def hammer(server: Server, tally: Tally, lock: threading.Lock, stop: threading.Event) -> None:
    deadline = time.monotonic() + 20
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            sock = socket.create_connection((server.host, server.port), timeout=10)
        except ConnectionRefusedError:
            with lock:
                tally.refused += 1
            time.sleep(0.01)  # pacing in this bounded loop, not a wait for anything
            continue
        try:
            with sock:
                sock.sendall(get("/delay?ms=20"))
                status = read_response(sock).status
            with lock:
                tally.served += status == 200
                if status != 200:
                    tally.lost.append(f"status {status}")
        except (OSError, EOFError) as exc:
            with lock:
                tally.lost.append(repr(exc))


def test_stop_under_load_loses_no_request(serve: ServeFactory) -> None:
    server = serve("-w", "2", "--threads", "2", "--drain-delay", "0.3")
    tally, lock, stop = Tally(), threading.Lock(), threading.Event()
    clients = [threading.Thread(target=hammer, args=(server, tally, lock, stop)) for _ in range(8)]
    for client in clients:
        client.start()
    assert wait_until(lambda: tally.served > 20, 10), "the load is running"
    server.send_signal(signal.SIGTERM)
    assert server.wait() == 0
    assert wait_until(lambda: tally.refused > 0, 10), "the clients go on after the close"
    stop.set()
    for client in clients:
        client.join(15)
    assert tally.lost == [], f"{len(tally.lost)} lost, e.g. {tally.lost[:3]}"
    assert tally.served > 20
    assert tally.refused > 0  # the clients did go on until after the listener closed
    print(f"drain under load: {tally.served} served, 0 lost, {tally.refused} refused after close")  # noqa: T201
