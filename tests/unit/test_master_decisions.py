"""The master's decisions with a fake clock: how it stops, when it kills a worker, and
when a reload's old generation is told to drain. No fork and no real signal: the pool's
``kill`` and ``spawn`` are replaced by recorders, and workers "report" through real slots.
"""

from __future__ import annotations

import signal
import time

from hybridserve.config import Config
from hybridserve.hooks import ServerInfo
from hybridserve.master import systemd, watchdog
from hybridserve.master.children import WorkerInfo
from hybridserve.master.fleet import Fleet
from hybridserve.master.pool import Pool
from hybridserve.master.shutdown import Shutdown, Step
from hybridserve.master.watchdog import KILL_GRACE_S, Action
from hybridserve.worker.slots import READY

T0 = 1000.0  # the fake clock's start


# -- Shutdown -------------------------------------------------------------------------
def test_term_drains_at_once_and_the_deadline_is_the_graceful_timeout() -> None:
    shutdown = Shutdown()
    assert shutdown.request(graceful=True, now=T0, drain_delay_s=0) is Step.DRAIN
    assert shutdown.stopping and not shutdown.begun
    shutdown.draining(T0, graceful_s=30)
    assert shutdown.begun
    assert not shutdown.overdue(T0 + 29.9)
    assert shutdown.overdue(T0 + 30)


def test_drain_delay_fails_readiness_first_and_drains_once_when_due() -> None:
    shutdown = Shutdown()
    assert shutdown.request(graceful=True, now=T0, drain_delay_s=5) is Step.WAIT
    assert shutdown.stopping and not shutdown.begun
    assert shutdown.request(graceful=True, now=T0 + 1, drain_delay_s=5) is Step.NOTHING
    assert not shutdown.drain_due(T0 + 4.9)
    assert shutdown.drain_due(T0 + 5)
    assert not shutdown.drain_due(T0 + 6)  # said once


def test_a_second_int_turns_a_graceful_stop_into_an_immediate_one_once() -> None:
    shutdown = Shutdown()
    # The arbiter asks for a graceful stop until the drain has begun (INT's meaning).
    assert shutdown.request(graceful=not shutdown.begun, now=T0, drain_delay_s=0) is Step.DRAIN
    shutdown.draining(T0, graceful_s=30)
    assert shutdown.request(graceful=not shutdown.begun, now=T0 + 1, drain_delay_s=0) is Step.KILL
    assert shutdown.deadline == T0 + 1 + KILL_GRACE_S
    assert shutdown.request(graceful=False, now=T0 + 2, drain_delay_s=0) is Step.NOTHING


def test_quit_during_the_drain_delay_cancels_the_delayed_drain() -> None:
    shutdown = Shutdown()
    shutdown.request(graceful=True, now=T0, drain_delay_s=5)
    assert shutdown.request(graceful=False, now=T0 + 1, drain_delay_s=5) is Step.KILL
    assert not shutdown.drain_due(T0 + 10)
    assert shutdown.request(graceful=True, now=T0 + 2, drain_delay_s=5) is Step.NOTHING


# -- watchdog -------------------------------------------------------------------------
def worker(*, abort_sent: float = 0.0, term_sent: float = 0.0) -> WorkerInfo:
    return WorkerInfo(4242, 0, 1, T0, abort_sent=abort_sent, term_sent=term_sent)


def test_a_worker_silent_past_the_timeout_is_aborted_not_before() -> None:
    info = worker()
    judge = dict(timeout_s=30.0, graceful_s=30.0)
    assert watchdog.judge(info, beat=T0, now=T0 + 30, **judge) is Action.NONE
    assert watchdog.judge(info, beat=T0, now=T0 + 30.1, **judge) is Action.ABORT


def test_an_aborted_worker_is_killed_after_the_grace_only() -> None:
    info = worker(abort_sent=T0)
    judge = dict(timeout_s=30.0, graceful_s=30.0)
    assert watchdog.judge(info, beat=T0 - 60, now=T0 + KILL_GRACE_S, **judge) is Action.NONE
    assert watchdog.judge(info, beat=T0 - 60, now=T0 + KILL_GRACE_S + 0.1, **judge) is Action.KILL


def test_a_worker_draining_past_the_graceful_timeout_is_killed() -> None:
    info = worker(term_sent=T0)
    judge = dict(timeout_s=30.0, graceful_s=10.0)
    assert watchdog.judge(info, beat=T0 + 10, now=T0 + 10, **judge) is Action.NONE
    assert watchdog.judge(info, beat=T0 + 10, now=T0 + 10.5, **judge) is Action.OVERSTAYED


def test_enforcing_an_abort_records_it_and_sends_sigabrt() -> None:
    info = worker()
    sent: list[tuple[int, int]] = []
    kill = lambda pid, sig: sent.append((pid, sig))  # noqa: E731
    watchdog.enforce(info, Action.ABORT, silent_s=31, timeout_s=30, now=T0 + 31, kill=kill)
    assert (info.abort_sent, info.draining, info.reason) == (T0 + 31, True, "timeout")
    watchdog.enforce(info, Action.KILL, silent_s=33, timeout_s=30, now=T0 + 33, kill=kill)
    assert sent == [(4242, signal.SIGABRT), (4242, signal.SIGKILL)]


# -- Fleet: the reload handover ---------------------------------------------------------
class Recorder:
    def __init__(self) -> None:
        self.signals: list[tuple[int, int]] = []
        self.next_pid = 5_000_000  # above any pid_max: never a real process

    def kill(self, pid: int, sig: int) -> None:
        self.signals.append((pid, sig))


def fleet_of_two() -> tuple[Fleet, Pool, Recorder]:
    config = Config(workers=2)
    server = ServerInfo(0, config, 2)
    pool = Pool(8, [], preloaded=None, server=server, setup=lambda: None)
    record = Recorder()

    def spawn(config: Config, generation: int) -> None:
        record.next_pid += 1
        slot = pool.free_slots.pop()
        pool.workers[record.next_pid] = WorkerInfo(
            record.next_pid, slot, generation, time.monotonic()
        )

    pool.spawn = spawn  # type: ignore[method-assign]  # no fork: the record is what matters
    pool.kill = record.kill  # type: ignore[method-assign]  # no real signal
    fleet = Fleet(
        config,
        pool,
        Shutdown(),
        notifier=systemd.Notifier(),
        server=server,
        reload_config=None,
        give_up=lambda: None,
    )
    return fleet, pool, record


def report_ready(pool: Pool, generation: int) -> None:
    for info in pool.workers.values():
        if info.generation == generation:
            pool.slots.write(
                info.slot, beat=time.monotonic(), pid=info.pid, state=READY, generation=generation
            )


def test_the_old_generation_drains_only_once_every_new_worker_is_ready() -> None:
    fleet, pool, record = fleet_of_two()
    fleet.spawn_missing()
    report_ready(pool, 1)
    fleet.check()
    assert fleet.boot.serving == 1 and record.signals == []
    old = set(pool.workers)

    fleet.reload()
    fleet.spawn_missing()
    new = set(pool.workers) - old
    assert len(new) == 2
    first_new = min(new)
    info = pool.workers[first_new]
    pool.slots.write(info.slot, beat=time.monotonic(), pid=first_new, state=READY, generation=2)
    fleet.check()
    assert record.signals == []  # one new worker ready of two: the old ones serve on

    report_ready(pool, 2)
    fleet.check()
    assert sorted(record.signals) == sorted((pid, signal.SIGTERM) for pid in old)
    assert fleet.boot.serving == 2
    assert all(pool.workers[pid].reason == "reload" for pid in old)
