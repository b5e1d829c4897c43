"""What waits for the master's loop: signals, and control-socket commands standing for them.

Signal handlers only append to ``signals`` (no real work in a handler); ``set_wakeup_fd``
writes a byte to a pipe so the loop's ``select`` wakes at once, and the loop takes what is
queued. A forked child sheds all of it before it runs anything of its own.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from types import FrameType

HANDLED_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCHLD,
)


class Inbox:
    """The pending signals and commands, and the wakeup pipe that says some arrived."""

    def __init__(self) -> None:
        self.signals: deque[int] = deque()
        self.commands: deque[tuple[int, str]] = deque()  # (signal to act as, what was asked)
        self.wakeup_r = self.wakeup_w = -1

    def open(self) -> None:
        """Make the wakeup pipe and route every handled signal here."""
        self.wakeup_r, self.wakeup_w = os.pipe()
        os.set_blocking(self.wakeup_r, False)
        os.set_blocking(self.wakeup_w, False)
        signal.set_wakeup_fd(self.wakeup_w)
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, self._enqueue)

    def _enqueue(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)

    def fds(self) -> list[int]:
        """The pipe's descriptors (a forked helper must not keep them)."""
        return [self.wakeup_r, self.wakeup_w]

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        os.close(self.wakeup_r)
        os.close(self.wakeup_w)

    def close_in_child(self) -> None:
        """In a forked worker: default signal handling, and no pipe of the master's."""
        signal.set_wakeup_fd(-1)
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        os.close(self.wakeup_r)
        os.close(self.wakeup_w)
