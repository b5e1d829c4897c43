"""The master's record of its worker processes, and what runs in a freshly forked one."""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hybridserve.config import Config
from hybridserve.errors import EXIT_ERROR
from hybridserve.hooks import ServerInfo
from hybridserve.hooks import WorkerInfo as HookWorker
from hybridserve.worker import server as worker_server
from hybridserve.worker.slots import Slots

log = logging.getLogger("hybridserve.error")


@dataclass(slots=True)
class WorkerInfo:
    """The master's record of one child."""

    pid: int
    slot: int
    generation: int
    started: float
    ready: bool = False
    draining: bool = False  # asked to go (or going by itself): does not count as capacity
    term_sent: float = 0.0
    abort_sent: float = 0.0
    reason: str = ""  # why we (or it) ended it: reload, scale_down, timeout, max_requests
    stopped_by_us: bool = False  # its exit is expected, whatever the signal
    lifetime_s: float = 0.0  # --max-worker-lifetime plus this worker's jitter; 0: for ever
    recycle: str = ""  # marked for replacement (memory, max_lifetime): retired once replaced
    rss_bytes: int = 0  # last sample, when --max-worker-memory is on
    rss_over: int = 0  # samples in a row over --max-worker-memory
    age: int = 0  # gunicorn's worker.age for hooks: how many workers were spawned before


def set_title(role: str, config: Config) -> None:
    try:
        from setproctitle import setproctitle
    except ImportError:  # pragma: no cover - optional
        return
    setproctitle(f"hybridserve: {role} [{config.app or 'demo'}]")


def describe_exit(code: int) -> str:
    """``exited (N)`` or ``was killed by SIGNAME``, from ``waitstatus_to_exitcode``."""
    return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited ({code})"


def run_child(
    config: Config,
    listeners: list[socket.socket],
    slots: Slots,
    slot: int,
    *,
    generation: int,
    master_pid: int,
    preloaded: tuple[Any, str] | None,
    setup: Callable[[], None],
    hooked: tuple[ServerInfo, HookWorker],
) -> None:
    """Runs in the forked worker and never returns."""
    code = EXIT_ERROR
    server, worker = hooked
    try:
        setup()
        config.hooks.call("post_fork", server, worker)
        code = worker_server.run(
            config,
            listeners,
            slots=slots,
            index=slot,
            generation=generation,
            master_pid=master_pid,
            preloaded=preloaded,
            hook_worker=worker,
        )
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else EXIT_ERROR
    except BaseException:
        log.exception("Worker crashed")
    finally:
        config.hooks.call("worker_exit", server, worker)
        logging.shutdown()
        os._exit(code)
