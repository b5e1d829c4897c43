"""Per-worker slots in one anonymous shared mmap, made by the master before any fork.

A worker writes its slot from its event loop once a second (a heartbeat and counters), so
a loop that blocks stops beating, and the master sees it without any syscall per beat. A
worker that cannot boot leaves its reason in the slot's message area for the master to log
once, instead of every worker printing the same traceback.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

SLOT_BYTES = 1024
_HEAD = struct.Struct("<dIIIIQQQQ")  # beat, pid, state, generation, spare, counters...
_MESSAGE_LEN = struct.Struct("<I")
_MESSAGE_AT = 128
_MESSAGE_MAX = SLOT_BYTES - _MESSAGE_AT - _MESSAGE_LEN.size

BOOTING, READY, DRAINING = 0, 1, 2
STATE_NAMES = {BOOTING: "booting", READY: "ready", DRAINING: "draining"}


@dataclass(frozen=True, slots=True)
class SlotView:
    """A copy of one slot, as the master reads it."""

    beat: float
    pid: int
    state: int
    generation: int
    requests: int
    in_flight: int
    connections: int
    accepted: int


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
        requests: int = 0,
        in_flight: int = 0,
        connections: int = 0,
        accepted: int = 0,
    ) -> None:
        _HEAD.pack_into(
            self._mm,
            index * SLOT_BYTES,
            beat,
            pid,
            state,
            generation,
            0,
            requests,
            in_flight,
            connections,
            accepted,
        )

    def read(self, index: int) -> SlotView:
        beat, pid, state, gen, _, req, infl, conns, acc = _HEAD.unpack_from(
            self._mm, index * SLOT_BYTES
        )
        return SlotView(beat, pid, state, gen, req, infl, conns, acc)

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
