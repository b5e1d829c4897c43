"""Counters against HTTP/2 floods, over windows of time read from a clock passed in.

Each frame below costs the server work and the client almost nothing, so a client that sends
too many in one window gets GOAWAY ENHANCE_YOUR_CALM (RFC 9113 §10.5):

- resets: RST_STREAM from the client (rapid reset, CVE-2023-44487) and the streams we reset
  for the client's errors (MadeYouReset, CVE-2025-8671), counted together;
- PING, SETTINGS, empty DATA without END_STREAM (RFC 9113 §10.5 names each);
- WINDOW_UPDATE beyond what the DATA we sent explains (a client may credit each frame twice:
  stream and connection).

The sans-IO rule holds: no clock is read here; ``now_s`` comes from the worker.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class FloodLimits:
    """How many of each frame one connection may send per window; generous for real clients."""

    window_s: float = 10.0
    resets: int = 200  # browsers cancel a few streams per page; attacks send thousands a second
    pings: int = 1000  # keep-alive and BDP probes send a handful a second at most
    settings: int = 100  # clients send one, maybe a few
    empty_data: int = 100  # no client needs one; Envoy allows a single one in a row
    window_updates: int = 1000  # plus two per DATA frame we ever sent on the connection


class RateWindow:
    """Counts events in fixed windows of ``window_s``; over ``limit`` is a flood."""

    __slots__ = ("_count", "_limit", "_start_s", "_window_s")

    def __init__(self, limit: int, window_s: float) -> None:
        self._limit = limit
        self._window_s = window_s
        self._start_s = float("-inf")
        self._count = 0

    def hit(self, now_s: float, allowance: int = 0) -> bool:
        """Count one; True when this window holds more than the limit (plus ``allowance``)."""
        if now_s - self._start_s >= self._window_s:
            self._start_s = now_s
            self._count = 0
        self._count += 1
        return self._count > self._limit + allowance


class FloodGuard:
    """The counters of one connection; each check returns a reason once over, else None."""

    __slots__ = ("_data_frames", "_empty", "_limits", "_pings", "_resets", "_settings", "_updates")

    def __init__(self, limits: FloodLimits) -> None:
        window = limits.window_s
        self._limits = limits
        self._resets = RateWindow(limits.resets, window)
        self._pings = RateWindow(limits.pings, window)
        self._settings = RateWindow(limits.settings, window)
        self._empty = RateWindow(limits.empty_data, window)
        self._updates = RateWindow(limits.window_updates, window)
        self._data_frames = 0  # over the connection's life, as Envoy counts them

    def reset(self, now_s: float) -> str | None:
        if self._resets.hit(now_s):
            return f"more than {self._limits.resets} stream resets in {self._limits.window_s:g}s"
        return None

    def control(self, kind: str, now_s: float) -> str | None:
        window = self._pings if kind == "ping" else self._settings
        if window.hit(now_s):
            return f"{kind} flood"
        return None

    def empty_data(self, now_s: float) -> str | None:
        return "empty DATA flood" if self._empty.hit(now_s) else None

    def window_update(self, now_s: float) -> str | None:
        return "WINDOW_UPDATE flood" if self._updates.hit(now_s, 2 * self._data_frames) else None

    def data_sent(self, nbytes: int, frame_bytes: int) -> None:
        """We sent a body chunk: it earns the client's WINDOW_UPDATEs for its frames."""
        self._data_frames += nbytes // frame_bytes + 1
