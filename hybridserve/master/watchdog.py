"""Which worker to kill, and how hard: the heartbeat timeout and the graceful timeout.

How it works: every worker beats in its shared-memory slot once a second. One silent for
longer than ``--timeout`` gets SIGABRT (its faulthandler dumps the stack), then SIGKILL
after ``KILL_GRACE_S``. One told to drain that is still alive after ``--graceful-timeout``
gets SIGKILL. A worker not yet seen in its slot counts from when it was spawned.

Pure decisions over the master's records and ``now``; ``enforce`` logs and signals.
"""

from __future__ import annotations

import enum
import logging
import signal
from collections.abc import Callable

from hybridserve.master.children import WorkerInfo

log = logging.getLogger("hybridserve.error")

KILL_GRACE_S = 1.0  # after SIGABRT/SIGQUIT, before SIGKILL


class Action(enum.Enum):
    NONE = "none"
    KILL = "kill"  # SIGABRT was sent, the grace is over: SIGKILL
    ABORT = "abort"  # silent past the timeout: SIGABRT for a stack dump
    OVERSTAYED = "overstayed"  # still draining after the graceful timeout: SIGKILL


def judge(
    info: WorkerInfo, beat: float, now: float, *, timeout_s: float, graceful_s: float
) -> Action:
    """What ``info``, whose last heartbeat was at ``beat``, has earned by ``now``."""
    if info.abort_sent:
        return Action.KILL if now - info.abort_sent > KILL_GRACE_S else Action.NONE
    if now - beat > timeout_s:
        return Action.ABORT
    if info.term_sent and now - info.term_sent > graceful_s:
        return Action.OVERSTAYED
    return Action.NONE


def enforce(
    info: WorkerInfo,
    action: Action,
    *,
    silent_s: float,
    timeout_s: float,
    now: float,
    kill: Callable[[int, int], None],
) -> None:
    """Carry out ``action`` on ``info``: record it, say why, send the signal."""
    if action is Action.KILL:
        kill(info.pid, signal.SIGKILL)
    elif action is Action.ABORT:
        log.error(
            "Worker %d silent for %.1fs (timeout %.0fs); killing it", info.pid, silent_s, timeout_s
        )
        info.abort_sent = now
        info.draining = True
        info.reason = "timeout"
        kill(info.pid, signal.SIGABRT)
    elif action is Action.OVERSTAYED:
        log.warning("Worker %d still draining after the graceful timeout", info.pid)
        info.abort_sent = now
        kill(info.pid, signal.SIGKILL)
