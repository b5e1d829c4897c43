"""``hybridserve top``: a live view of the master and its workers, from the control socket.

How it works: once a second it asks the control socket for ``status`` and ``workers``
(a fresh connection each time, so a server that restarts or reloads under it is simply
found again), turns the counters into rates by the difference from the last sample, and
draws one row per worker plus a totals row. Keys choose the sort column; the same key
again reverses it.

The view is built as plain lines (``Sampler``, ``render``), so it is tested without a
terminal; curses (the standard library's, which needs nothing installed and is all a
table of numbers needs) only puts the lines on the screen and reads keys.
"""

from __future__ import annotations

import argparse
import curses
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from hybridserve.ctl import CtlError, format_age, format_value, request, socket_path
from hybridserve.errors import EXIT_OK, ConfigError

INTERVAL_S = 1.0
# heading, row key, width; "rate" is computed here, the rest come from the server
COLUMNS = (
    ("PID", "pid", 8),
    ("GEN", "generation", 4),
    ("STATE", "state", 9),
    ("AGE", "age_s", 7),
    ("REQ/S", "rate", 8),
    ("REQS", "requests", 9),
    ("INFL", "in_flight", 5),
    ("BUSY", "threads_busy", 5),
    ("CONNS", "connections", 6),
    ("LAG", "loop_lag_s", 8),
    ("RSS", "rss_bytes", 9),
)
SORT_KEYS = {  # key: (column, label)
    "p": ("pid", "pid"),
    "r": ("rate", "req/s"),
    "m": ("rss_bytes", "memory"),
    "a": ("age_s", "age"),
    "i": ("in_flight", "in flight"),
    "c": ("connections", "connections"),
    "g": ("generation", "generation"),
}
HELP = "keys: p pid, r req/s, m mem, a age, i infl, c conns, g gen; q quit"


@dataclass(slots=True)
class Sample:
    """One refresh: what the server said, with rates worked out from the one before."""

    status: dict[str, Any]
    rows: list[dict[str, Any]]
    total_rate: float | None


@dataclass(slots=True)
class Sampler:
    """Keeps the previous counters to turn them into requests per second."""

    _last_at: float = 0.0
    _last_total: int | None = None
    _last_pid: int | None = None
    _last_by_pid: dict[int, int] = field(default_factory=dict)

    def update(self, status: dict[str, Any], rows: list[dict[str, Any]], now: float) -> Sample:
        if status["pid"] != self._last_pid:  # a new master: nothing to compare with
            self._last_total, self._last_by_pid = None, {}
        elapsed = now - self._last_at
        for row in rows:
            before = self._last_by_pid.get(row["pid"])
            row["rate"] = (row["requests"] - before) / elapsed if before is not None else None
        total = int(status["requests_total"])
        total_rate = None
        if self._last_total is not None and elapsed > 0:
            total_rate = max(0, total - self._last_total) / elapsed
        self._last_at, self._last_total, self._last_pid = now, total, status["pid"]
        self._last_by_pid = {row["pid"]: row["requests"] for row in rows}
        return Sample(status, rows, total_rate)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "rate":
        return f"{value:.1f}"
    return format_value(key, value)


def _line(cells: Sequence[str]) -> str:
    return " ".join(f"{c:>{w}}" for c, (_, _, w) in zip(cells, COLUMNS, strict=True))


def render(sample: Sample, sort: str, reverse: bool) -> list[str]:
    """The screen as lines: a summary, the column heads, one row per worker, totals."""
    s = sample.status
    rate = "-" if sample.total_rate is None else f"{sample.total_rate:.1f}"
    restarts = ", ".join(f"{k} {v}" for k, v in sorted(s["restarts"].items())) or "none"
    lines = [
        f"hybridserve {s['version']}  master {s['pid']}  {s['app']}  up {format_age(s['uptime_s'])}"
        + ("  STOPPING" if s["stopping"] else ""),
        f"workers {s['ready_workers']}/{s['target_workers']} ready  generation "
        f"{s['generation']}  req/s {rate}  requests {s['requests_total']}  restarts {restarts}",
        "",
        _line([head for head, _, _ in COLUMNS]),
    ]
    rows = sorted(sample.rows, key=lambda r: (r[sort] is None, r[sort] or 0), reverse=reverse)
    lines += [_line([_cell(key, row[key]) for _, key, _ in COLUMNS]) for row in rows]
    known = [row["rate"] for row in rows if row["rate"] is not None]
    totals = {
        "rate": sum(known) if known else None,
        **{k: sum(row[k] for row in rows) for k in ("requests", "in_flight", "threads_busy")},
        "connections": sum(row["connections"] for row in rows),
        "rss_bytes": sum(row["rss_bytes"] for row in rows),
    }
    cells = [_cell(key, totals[key]) if key in totals else "" for _, key, _ in COLUMNS]
    cells[0] = "TOTAL"
    lines.append(_line(cells))
    return lines


class Screen:
    """The curses side: draws lines, reads keys, refetches once a second."""

    def __init__(self, window: curses.window, path: str, interval_s: float) -> None:
        self.window = window
        self.path = path
        self.interval_s = interval_s
        self.sampler = Sampler()
        self.sort, self.reverse, self.label = "pid", False, "pid"
        self.lines: list[str] = []

    def run(self) -> None:
        curses.curs_set(0)
        self.window.timeout(100)
        next_fetch = 0.0
        while True:
            now = time.monotonic()
            if now >= next_fetch:
                self.lines = self._fetch(now)
                next_fetch = now + self.interval_s
                self._draw()
            key = self.window.getch()
            if key in (ord("q"), 27):
                return
            if key >= 0 and chr(key) in SORT_KEYS:
                column, self.label = SORT_KEYS[chr(key)]
                self.reverse = not self.reverse if column == self.sort else column != "pid"
                self.sort = column
                next_fetch = 0.0

    def _fetch(self, now: float) -> list[str]:
        try:
            status = request(self.path, "status")
            rows = request(self.path, "workers")
        except CtlError as exc:
            self.sampler = Sampler()
            return [f"hybridserve top: waiting for the server at {self.path}", f"({exc})"]
        return render(self.sampler.update(status, rows, now), self.sort, self.reverse)

    def _draw(self) -> None:
        try:
            self._paint()
        except curses.error:  # a terminal too small for even one line: skip this frame
            pass

    def _paint(self) -> None:
        self.window.erase()
        height, width = self.window.getmaxyx()
        order = "descending" if self.reverse else "ascending"
        footer = f"sorted by {self.label}, {order} (again: reverse).  {HELP}"
        for y, text in enumerate(self.lines[: height - 1]):
            attr = curses.A_REVERSE if text.lstrip().startswith("PID") else curses.A_NORMAL
            self.window.addnstr(y, 0, text, width - 1, attr)
        self.window.addnstr(height - 1, 0, footer, width - 1, curses.A_DIM)
        self.window.refresh()


def main(argv: Sequence[str]) -> NoReturn:
    parser = argparse.ArgumentParser(
        prog="hybridserve top",
        description="A live view of a running hybridserve master and its workers.",
        allow_abbrev=False,
    )
    parser.add_argument("--control-socket", metavar="PATH", help="The master's control socket.")
    parser.add_argument("--config", metavar="FILE", help="Read control-socket from this file.")
    parser.add_argument(
        "--interval", type=float, default=INTERVAL_S, metavar="SECONDS", help="Refresh period."
    )
    args = parser.parse_args(list(argv))
    if args.interval < 0.1:
        parser.error("--interval must be at least 0.1")
    if not sys.stdout.isatty():
        parser.error("top needs a terminal; for scripts use: hybridserve ctl workers --json")
    try:
        path = socket_path(args.control_socket, args.config)
    except ConfigError as exc:
        parser.error(str(exc))
    curses.wrapper(lambda window: Screen(window, path, args.interval).run())
    sys.exit(EXIT_OK)
