"""The live workers: the master's records by pid, the slots they write, and the verbs that
fork, signal and free them. Which generation to spawn, and when, is the fleet's to decide.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from hybridserve.config import Config
from hybridserve.hooks import ServerInfo
from hybridserve.hooks import WorkerInfo as HookWorker
from hybridserve.master import recycle
from hybridserve.master.children import WorkerInfo, run_child
from hybridserve.worker.exposition import Totals, encode_totals
from hybridserve.worker.slots import Slots

log = logging.getLogger("hybridserve.error")


class Pool:
    """Workers by pid and their shared-memory slots.

    The last slot is the master's: it publishes the totals of workers gone there.
    """

    def __init__(
        self,
        slot_count: int,
        listeners: list[socket.socket],
        *,
        preloaded: tuple[Any, str] | None,
        server: ServerInfo,
        setup: Callable[[], None],
    ) -> None:
        self.workers: dict[int, WorkerInfo] = {}
        self.slots = Slots(slot_count)
        self.free_slots = list(range(self.slots.count - 2, -1, -1))
        self.pid = os.getpid()
        self._listeners = listeners
        self._preloaded = preloaded
        self._server = server  # what hooks see
        self._setup = setup  # runs first in every forked worker
        self._out_of_slots = False
        self._spawned = 0  # gunicorn's worker "age": how many were spawned before

    @property
    def most(self) -> int:
        """How many workers may live at once (one slot is the master's)."""
        return self.slots.count - 1

    def booting(self) -> bool:
        return any(not w.ready for w in self.workers.values())

    def current(self, generation: int) -> list[WorkerInfo]:
        """The workers that count as ``generation``'s capacity."""
        return [
            w
            for w in self.workers.values()
            if w.generation == generation and not w.draining and not w.recycle
        ]

    def spawn_up_to(self, count: int, config: Config, generation: int) -> None:
        """Spawn ``count`` workers, or as many as there are free slots for."""
        for _ in range(count):
            if not self.free_slots:
                # Old generations still draining hold every slot; they free theirs as
                # they exit, and the loop comes back here.
                if not self._out_of_slots:
                    log.warning("No free worker slot until draining workers exit")
                self._out_of_slots = True
                return
            self._out_of_slots = False
            self.spawn(config, generation)

    def spawn(self, config: Config, generation: int) -> None:
        slot = self.free_slots.pop()
        self.slots.clear(slot)
        self._spawned += 1
        worker = HookWorker(self._spawned, self.pid, config)
        config.hooks.call("pre_fork", self._server, worker)
        pid = os.fork()
        if pid == 0:
            worker.pid = os.getpid()
            run_child(
                config,
                self._listeners,
                self.slots,
                slot,
                generation=generation,
                master_pid=self.pid,
                preloaded=self._preloaded,
                setup=self._setup,
                hooked=(self._server, worker),
            )
        lifetime = recycle.lifetime_s(config)
        self.workers[pid] = WorkerInfo(
            pid, slot, generation, time.monotonic(), lifetime_s=lifetime, age=self._spawned
        )
        log.debug("Spawned worker %d (generation %d)", pid, generation)

    def release(self, info: WorkerInfo, config: Config) -> None:
        """``info`` was reaped: tell the hooks, free its slot."""
        gone = HookWorker(info.age, self.pid, config, info.pid, alive=False)
        config.hooks.call("child_exit", self._server, gone)
        self.slots.clear(info.slot)
        self.free_slots.append(info.slot)

    def publish_totals(self, totals: Totals) -> None:
        self.slots.set_message(self.slots.count - 1, encode_totals(totals))

    @staticmethod
    def kill(pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def retire(self, info: WorkerInfo, reason: str) -> None:
        """Ask ``info`` to drain and go; it no longer counts as capacity."""
        info.draining = True
        info.stopped_by_us = True
        info.reason = info.reason or reason
        info.term_sent = time.monotonic()
        self.kill(info.pid, signal.SIGTERM)

    def signal_all(self, sig: int) -> None:
        """Tell every worker to stop.

        TERM goes to booting workers too: one that has not yet installed its handler dies
        of it having accepted nothing, and one that has (it may already be serving, before
        we read its slot) drains like any other. An immediate stop kills booting ones.
        """
        now = time.monotonic()
        for info in self.workers.values():
            info.draining = True
            info.stopped_by_us = True
            if sig == signal.SIGTERM and info.term_sent:
                continue
            info.term_sent = info.term_sent or now
            self.kill(info.pid, sig if info.ready or sig == signal.SIGTERM else signal.SIGKILL)

    def kill_remaining(self) -> None:
        """The stop deadline passed: SIGKILL whoever is left and wait for them."""
        for info in list(self.workers.values()):
            log.warning("Worker %d did not stop in time; killing it", info.pid)
            self.kill(info.pid, signal.SIGKILL)
        for pid in list(self.workers):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.workers.clear()
