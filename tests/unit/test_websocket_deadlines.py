"""WebSocket time and queueing without a session: ``Deadlines`` on a given clock, ``Inbox``."""

from __future__ import annotations

import asyncio

from hybridserve.apps.inbox import Inbox
from hybridserve.apps.types import Message
from hybridserve.sansio.websocket import CLOSE_TIMEOUT_S, Deadlines, Due


def sweep(deadlines: Deadlines, *times: float) -> list[Due | None]:
    return [deadlines.due(now) for now in times]


def test_pings_start_an_interval_after_the_first_sweep_and_repeat() -> None:
    deadlines = Deadlines(ping_interval_s=20, ping_timeout_s=5)
    assert sweep(deadlines, 100.0) == [None]  # not opened: nothing is armed
    deadlines.opened()
    assert sweep(deadlines, 100.0, 119.0, 120.0) == [None, None, Due.PING]
    deadlines.pong()
    assert sweep(deadlines, 125.0, 139.0, 140.0) == [None, None, Due.PING]


def test_a_missing_pong_is_due_once_its_timeout_passes() -> None:
    deadlines = Deadlines(ping_interval_s=20, ping_timeout_s=5)
    deadlines.opened()
    assert sweep(deadlines, 0.0, 20.0, 24.0, 25.0) == [None, Due.PING, None, Due.NO_PONG]


def test_a_zero_timeout_waits_for_a_pong_forever_and_a_zero_interval_never_pings() -> None:
    patient = Deadlines(ping_interval_s=10, ping_timeout_s=0)
    patient.opened()
    assert sweep(patient, 0.0, 10.0, 19.0, 20.0) == [None, Due.PING, None, Due.PING]
    silent = Deadlines(ping_interval_s=0, ping_timeout_s=5)
    silent.opened()
    assert sweep(silent, 0.0, 1000.0) == [None, None]


def test_closing_stops_pings_and_gives_the_peer_the_close_timeout() -> None:
    deadlines = Deadlines(ping_interval_s=1, ping_timeout_s=1)
    deadlines.opened()
    assert sweep(deadlines, 0.0, 1.0) == [None, Due.PING]
    deadlines.closing()
    end = 5.0 + CLOSE_TIMEOUT_S
    assert sweep(deadlines, 5.0, end - 0.5, end, end + 100) == [None, None, Due.NO_CLOSE, None]


def test_stop_disarms_everything() -> None:
    deadlines = Deadlines(ping_interval_s=1, ping_timeout_s=1)
    deadlines.opened()
    deadlines.due(0.0)
    deadlines.closing()
    deadlines.due(1.0)
    deadlines.stop()
    assert sweep(deadlines, 1000.0, 2000.0) == [None, None]


class Reading:
    """The two verbs of a channel an inbox uses, and the loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


async def test_inbox_hands_out_what_is_queued_before_the_end_then_the_first_end() -> None:
    channel = Reading()
    inbox = Inbox(channel, high_bytes=100)
    inbox.put({"type": "a"}, 70)
    assert not channel.paused
    inbox.put({"type": "b"}, 40)
    assert channel.paused  # 110 bytes wait: over the mark
    inbox.end({"type": "over", "code": 1})
    inbox.end({"type": "over", "code": 2})  # too late: the first word stands
    assert (await inbox.receive())["type"] == "a"
    assert not channel.paused  # 40 left: at most half the mark
    got: list[Message] = [await inbox.receive() for _ in range(3)]
    assert [m["type"] for m in got] == ["b", "over", "over"]
    assert got[1]["code"] == got[2]["code"] == 1


async def test_inbox_wakes_a_waiting_receive() -> None:
    inbox = Inbox(Reading(), high_bytes=100)
    waiting = asyncio.ensure_future(inbox.receive())
    await asyncio.sleep(0)  # let it wait
    assert not waiting.done()
    inbox.put({"type": "late"}, 1)
    assert (await asyncio.wait_for(waiting, 5))["type"] == "late"
