"""The Acceptor on a real loopback listener: it takes connections while the worker has room,
and without room only when no sibling has any either (and not under --limit-concurrency)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from hybridserve.config import Config
from hybridserve.worker.acceptor import Acceptor
from hybridserve.worker.balance import Share
from hybridserve.worker.capacity import Capacity
from hybridserve.worker.slots import READY, Slots
from hybridserve.worker.state import Record, WorkerState
from tests.unit.test_worker_seams import HeldAdapter


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    yield sock
    sock.close()


def acceptor(
    listener: socket.socket, *, share: Share | None = None, **settings: object
) -> tuple[Acceptor, Capacity]:
    """A worker with one stream of room; the Acceptor hears of room as the worker's does."""
    loop = asyncio.get_running_loop()
    made: list[Acceptor] = []
    cap = Capacity(streams=1, connections=0, clock=loop.time, on_room=lambda: made[0].resume())
    config = Config(**settings)  # type: ignore[arg-type]  # test knobs
    record = Record(None, max_requests=0, on_quota=lambda: None)
    state = WorkerState(
        config, loop, HeldAdapter(), cap, record, http_backend="h11", render_metrics=lambda: b""
    )
    made.append(Acceptor(state, [listener], share=share))
    return made[0], cap


async def until(fact: Callable[[], bool], seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.005)):
        if fact():
            return True
        await asyncio.sleep(0.005)
    return fact()


def client(listener: socket.socket) -> socket.socket:
    return socket.create_connection(listener.getsockname())


async def test_with_room_a_waiting_connection_is_taken(listener: socket.socket) -> None:
    acc, cap = acceptor(listener)
    acc.resume()
    with client(listener):
        assert await until(lambda: cap.accepted_total == 1)
    acc.stop()


async def test_full_and_alone_it_takes_the_connection_all_the_same(
    listener: socket.socket,
) -> None:
    acc, cap = acceptor(listener)
    cap.stream_started()  # its one stream is busy: no room
    acc.resume()
    with client(listener):
        assert await until(lambda: cap.accepted_total == 1)
    assert cap.room() <= 0
    acc.stop()


async def test_full_under_limit_concurrency_the_backlog_keeps_it_until_room(
    listener: socket.socket,
) -> None:
    acc, cap = acceptor(listener, limit_concurrency=1)
    cap.stream_started()
    acc.resume()
    with client(listener):
        await asyncio.sleep(0.1)  # what must not happen has had time to
        assert cap.accepted_total == 0
        cap.stream_finished()
        cap.room_changed()
        assert await until(lambda: cap.accepted_total == 1)
    acc.stop()


async def test_full_it_leaves_the_connection_to_a_sibling_with_room(
    listener: socket.socket,
) -> None:
    slots = Slots(8)

    def sibling(accepting: bool) -> None:
        slots.write(1, beat=time.monotonic(), pid=4242, state=READY, generation=1)
        slots.publish_load(1, 3, accepting)

    sibling(accepting=True)
    acc, cap = acceptor(listener, share=Share(slots, 0))
    cap.stream_started()
    acc.resume()
    with client(listener):
        await asyncio.sleep(0.1)
        assert cap.accepted_total == 0  # the sibling has room: it is the one to take it
        sibling(accepting=False)  # now it is full too
        assert await until(lambda: cap.accepted_total == 1)
    acc.stop()


async def test_room_held_only_by_a_young_connection_still_counts_as_taking(
    listener: socket.socket,
) -> None:
    """Its room is back within FRESH_GRACE_S: a sibling over its share keeps leaving
    connections to it, instead of taking all its own room while this one's recheck waits."""
    slots = Slots(8)
    slots.write(1, beat=time.monotonic(), pid=4242, state=READY, generation=1)
    slots.publish_load(1, 3, True)
    acc, cap = acceptor(listener, share=Share(slots, 0))
    acc.resume()
    with client(listener):
        assert await until(lambda: cap.accepted_total == 1)
        assert slots.load(0) == (1, True)
    acc.stop()
    assert slots.load(0) == (1, False)  # stopped: nobody waits for it
