"""The master never dies of running out of worker slots (issue #11: ``_free_slots.pop()``
raised in the master loop after enough HUPs or TTINs while old generations drained)."""

from __future__ import annotations

import logging
import signal

import pytest

from hybridserve.config import Config
from hybridserve.master.arbiter import Arbiter


def arbiter_with_spawns() -> tuple[Arbiter, list[int]]:
    arbiter = Arbiter(Config(workers=2), [])
    spawned: list[int] = []
    pool = arbiter.pool

    def spawn(config: Config, generation: int) -> None:
        spawned.append(pool.free_slots.pop())  # no fork here: a spawn only takes a slot

    pool.spawn = spawn  # type: ignore[method-assign]  # the fork is not what is tested
    return arbiter, spawned


def test_no_free_slot_waits_for_draining_workers_instead_of_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    arbiter, spawned = arbiter_with_spawns()
    arbiter.pool.free_slots.clear()  # old generations still draining hold every slot
    with caplog.at_level(logging.WARNING, "hybridserve.error"):
        arbiter.fleet.spawn_missing()
        arbiter.fleet.spawn_missing()
    assert spawned == []
    assert caplog.text.count("No free worker slot") == 1  # said once, not every loop turn
    arbiter.pool.free_slots.append(7)  # a draining worker exited
    arbiter.fleet.spawn_missing()
    assert spawned == [7]  # one worker now; the second waits for the next free slot


def test_ttin_past_the_slots_is_refused_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    arbiter, _ = arbiter_with_spawns()
    arbiter.fleet.target = arbiter.pool.most
    with caplog.at_level(logging.WARNING, "hybridserve.error"):
        arbiter._act_on(signal.SIGTTIN)
    assert arbiter.fleet.target == arbiter.pool.most
    assert "TTIN ignored" in caplog.text
