"""Per-worker slots in one anonymous shared mmap, made by the master before any fork.

A worker writes its slot from its event loop once a second (a heartbeat and counters), so
a loop that blocks stops beating, and the master sees it without any syscall per beat. The
same counters feed the master's metrics. A worker that cannot boot leaves its reason in
the slot's message area for the master to log once, instead of every worker printing the
same traceback.

Besides the once-a-second head, each slot has a small "load" area the worker rewrites
whenever its connection count or accepting state changes (a memory write, no syscall), so
siblings can leave the next connection to whoever holds fewest (``worker/balance.py``).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

from hybridserve.sansio.h2events import RESET_CODES

SLOT_BYTES = 4096
# Request duration histogram bounds, in seconds (Prometheus ``le`` labels; +Inf follows).
DURATION_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_N_BUCKETS = len(DURATION_BUCKETS_S) + 1
_HEAD = struct.Struct(f"<dIIIIQQQQdIIdd5Q{_N_BUCKETS}Q5Q{2 * RESET_CODES}Q")
_LIVENESS = struct.Struct("<dII")  # the head's first fields: beat, pid, state
_LOAD = struct.Struct("<iI")  # open connections, accepting (0/1)
_LOAD_AT = 512
_MESSAGE_LEN = struct.Struct("<I")
_MESSAGE_AT = 576
_MESSAGE_MAX = SLOT_BYTES - _MESSAGE_AT - _MESSAGE_LEN.size
assert _HEAD.size <= _LOAD_AT and _LOAD_AT + _LOAD.size <= _MESSAGE_AT

BOOTING, READY, DRAINING = 0, 1, 2
STATE_NAMES = {BOOTING: "booting", READY: "ready", DRAINING: "draining"}
WSGI, ASGI, STATIC = 0, 1, 2  # STATIC: --static mounts, counted apart from the app
INTERFACE_NAMES = {WSGI: "wsgi", ASGI: "asgi", STATIC: "static"}


@dataclass(frozen=True, slots=True)
class Counters:
    """What a worker has done so far; ``buckets`` are per bucket, not cumulative."""

    requests: int = 0
    in_flight: int = 0
    connections: int = 0
    accepted: int = 0
    loop_lag_s: float = 0.0
    threads_busy: int = 0
    threads_queued: int = 0
    duration_sum_s: float = 0.0
    started: float = 0.0
    status_classes: tuple[int, ...] = (0,) * 5
    buckets: tuple[int, ...] = (0,) * _N_BUCKETS
    static_classes: tuple[int, ...] = (0,) * 5  # static mount answers, not in status_classes
    # HTTP/2 RST_STREAM frames by error code (sansio.h2events.ResetCounts), both ways
    resets_sent: tuple[int, ...] = (0,) * RESET_CODES
    resets_received: tuple[int, ...] = (0,) * RESET_CODES


@dataclass(frozen=True, slots=True)
class SlotView:
    """A copy of one slot, as the master reads it."""

    beat: float
    pid: int
    state: int
    generation: int
    interface: int
    counters: Counters


class Slots:
    """``count`` fixed-size slots; index them by the worker's slot number."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._mm = mmap.mmap(-1, count * SLOT_BYTES)

    def write(
        self,
        index: int,
        *,
        beat: float,
        pid: int,
        state: int,
        generation: int,
        interface: int = WSGI,
        counters: Counters | None = None,
    ) -> None:
        c = counters or Counters()
        _HEAD.pack_into(
            self._mm,
            index * SLOT_BYTES,
            beat,
            pid,
            state,
            generation,
            interface,
            c.requests,
            c.in_flight,
            c.connections,
            c.accepted,
            c.loop_lag_s,
            c.threads_busy,
            c.threads_queued,
            c.duration_sum_s,
            c.started,
            *c.status_classes,
            *c.buckets,
            *c.static_classes,
            *c.resets_sent,
            *c.resets_received,
        )

    def read(self, index: int) -> SlotView:
        v = _HEAD.unpack_from(self._mm, index * SLOT_BYTES)
        counters = Counters(
            requests=v[5],
            in_flight=v[6],
            connections=v[7],
            accepted=v[8],
            loop_lag_s=v[9],
            threads_busy=v[10],
            threads_queued=v[11],
            duration_sum_s=v[12],
            started=v[13],
            status_classes=tuple(v[14:19]),
            buckets=tuple(v[19 : 19 + _N_BUCKETS]),
            static_classes=tuple(v[19 + _N_BUCKETS : 24 + _N_BUCKETS]),
            resets_sent=tuple(v[24 + _N_BUCKETS : 24 + _N_BUCKETS + RESET_CODES]),
            resets_received=tuple(v[24 + _N_BUCKETS + RESET_CODES :]),
        )
        return SlotView(v[0], v[1], v[2], v[3], v[4], counters)

    def liveness(self, index: int) -> tuple[float, int, int]:
        """(beat, pid, state) of a slot, without unpacking its counters."""
        beat, pid, state = _LIVENESS.unpack_from(self._mm, index * SLOT_BYTES)
        return beat, pid, state

    def publish_load(self, index: int, connections: int, accepting: bool) -> None:
        """This worker's open connections, and whether it takes new ones now."""
        _LOAD.pack_into(self._mm, index * SLOT_BYTES + _LOAD_AT, connections, accepting)

    def load(self, index: int) -> tuple[int, bool]:
        """A worker's last published (connections, accepting); a cleared slot is (0, False)."""
        connections, accepting = _LOAD.unpack_from(self._mm, index * SLOT_BYTES + _LOAD_AT)
        return connections, bool(accepting)

    def set_message(self, index: int, text: str) -> None:
        data = text.encode("utf-8", "replace")[:_MESSAGE_MAX]
        at = index * SLOT_BYTES + _MESSAGE_AT
        _MESSAGE_LEN.pack_into(self._mm, at, len(data))
        self._mm[at + _MESSAGE_LEN.size : at + _MESSAGE_LEN.size + len(data)] = data

    def message(self, index: int) -> str:
        at = index * SLOT_BYTES + _MESSAGE_AT
        (length,) = _MESSAGE_LEN.unpack_from(self._mm, at)
        start = at + _MESSAGE_LEN.size
        return self._mm[start : start + min(length, _MESSAGE_MAX)].decode("utf-8", "replace")

    def clear(self, index: int) -> None:
        start = index * SLOT_BYTES
        self._mm[start : start + SLOT_BYTES] = bytes(SLOT_BYTES)
