"""What the master does when a worker dies before it is ready: retry, retire, or give up.

How it works: a master that has never served gives up (exit 3) on an app that cannot load,
or after ``MAX_BOOT_FAILURES`` workers in a row died booting; there is nothing to protect and
a respawn storm helps nobody. Once any generation has been ready, a failure never stops the
master: a reload generation that cannot boot is retired alone and the serving one goes on;
a serving generation whose replacement worker cannot boot (the code on disk broke under it)
retries with a capped backoff while its remaining workers serve.

Pure decisions, no processes or clock: the arbiter acts on the verdicts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAX_BOOT_FAILURES = 5  # consecutive workers dying before ready: the app can't boot
FIRST_DELAY_S = 0.1
MAX_DELAY_BOOTING_S = 5.0  # before the first ready generation: 5 failures take ~1.5 s
MAX_DELAY_SERVING_S = 10.0  # a serving master retries a broken replacement this often


class Verdict(enum.Enum):
    RETRY = "retry"  # spawn again after ``delay_s``
    RETIRE = "retire"  # a reload generation cannot boot: retire it, keep the serving one
    GIVE_UP = "give_up"  # never served: stop the master with exit 3


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    delay_s: float = 0.0


class BootPolicy:
    """Counts boot failures per generation and says what each one means."""

    def __init__(self, max_failures: int = MAX_BOOT_FAILURES) -> None:
        self.max_failures = max_failures
        self.serving: int | None = None  # the last generation that was ready as a whole
        self._failures: dict[int, int] = {}

    @property
    def served(self) -> bool:
        return self.serving is not None

    def generation_ready(self, generation: int) -> None:
        self.serving = generation
        self._failures.pop(generation, None)

    def worker_ready(self, generation: int) -> None:
        """A worker that boots proves the code loads: the count starts over."""
        self._failures.pop(generation, None)

    def forget(self, generation: int) -> None:
        self._failures.pop(generation, None)

    def failed(self, generation: int, *, load_error: bool) -> Decision:
        """A worker of ``generation`` died before it was ready.

        ``load_error``: it reported that the app cannot be imported or built, which no
        retry of the same code will change.
        """
        count = self._failures.get(generation, 0) + 1
        self._failures[generation] = count
        if self.serving is None:
            if load_error or count >= self.max_failures:
                return Decision(Verdict.GIVE_UP)
            return Decision(Verdict.RETRY, _backoff(count, MAX_DELAY_BOOTING_S))
        if generation != self.serving and (load_error or count >= self.max_failures):
            return Decision(Verdict.RETIRE)
        cap = MAX_DELAY_SERVING_S if generation == self.serving else MAX_DELAY_BOOTING_S
        return Decision(Verdict.RETRY, _backoff(count, cap))


def _backoff(count: int, cap_s: float) -> float:
    return float(min(FIRST_DELAY_S * 2 ** (count - 1), cap_s))
