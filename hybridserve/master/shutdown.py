"""How the master stops: readiness fails at once, the drain starts after ``--drain-delay``,
and whatever is left at the deadline is killed.

How it works: a graceful request (TERM, the first INT) marks the master as stopping, so
health checks fail while load balancers notice, then tells the arbiter to drain (at once, or
once ``drain_at`` is reached). An immediate request (QUIT, a second INT) skips the wait and
gives the workers ``KILL_GRACE_S``. A request while a stop is already under way changes
nothing, except that an immediate one overtakes a graceful one, once.

Pure decisions: the clock comes in as ``now``, the arbiter signals and logs.
"""

from __future__ import annotations

import enum

from hybridserve.master.watchdog import KILL_GRACE_S


class Step(enum.Enum):
    NOTHING = "nothing"  # a stop of that kind is already under way
    WAIT = "wait"  # readiness fails now; drain at ``drain_at``
    DRAIN = "drain"  # tell the workers to drain now
    KILL = "kill"  # tell the workers to quit now (SIGQUIT, then SIGKILL)


class Shutdown:
    """Where the master is on its way out; ``deadline`` is set once workers were told."""

    def __init__(self) -> None:
        self.stopping = False  # readiness fails from the first request on
        self.drain_at: float | None = None  # --drain-delay: when the real drain starts
        self.deadline: float | None = None  # workers still alive then are killed
        self._immediate = False

    @property
    def begun(self) -> bool:
        """The workers were told to stop: nothing is spawned, exits are expected."""
        return self.deadline is not None

    def request(self, *, graceful: bool, now: float, drain_delay_s: float) -> Step:
        """A stop was asked for; what to do about it now."""
        self.stopping = True
        if not graceful:
            if self._immediate:
                return Step.NOTHING
            self._immediate = True
            self.drain_at = None
            self.deadline = now + KILL_GRACE_S
            return Step.KILL
        if self.deadline is not None or self.drain_at is not None:
            return Step.NOTHING
        if drain_delay_s > 0:
            self.drain_at = now + drain_delay_s
            return Step.WAIT
        return Step.DRAIN

    def drain_due(self, now: float) -> bool:
        """True once, when the drain delay is over."""
        if self.drain_at is None or now < self.drain_at:
            return False
        self.drain_at = None
        return True

    def draining(self, now: float, graceful_s: float) -> None:
        """The workers were told to drain; they have ``graceful_s``."""
        self.deadline = now + graceful_s

    def overdue(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline
