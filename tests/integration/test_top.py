"""``hybridserve top`` in a real terminal: tmux runs it, ``capture-pane`` reads the screen."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServeFactory
from tests.harness import ROOT, wait_until

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Terminal:
    """A detached tmux session of its own (its own server socket), 120 x 30."""

    def __init__(self, name: str, command: list[str]) -> None:
        self.base = ["tmux", "-L", name]
        shell_command = " ".join(command)
        subprocess.run(
            [*self.base, "new-session", "-d", "-x", "120", "-y", "30", "-s", "top", shell_command],
            check=True,
            timeout=10,
            cwd=ROOT,
        )

    def screen(self) -> str:
        done = subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", "top"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return done.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "top", *keys], check=True, timeout=10)

    def wait_for(self, pattern: str, timeout_s: float = 15) -> str:
        regex = re.compile(pattern)
        found = wait_until(lambda: regex.search(self.screen()), timeout_s)
        screen = self.screen()
        assert found, f"no {pattern!r} on the screen:\n{screen}"
        return screen

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for term in opened:
        term.close()


def rows(screen: str) -> list[list[str]]:
    """The worker rows: lines that start with a pid."""
    return [line.split() for line in screen.splitlines() if re.match(r"\s+\d+\s+\d+\s+\w+", line)]


def test_top_shows_workers_rates_sorts_and_survives_restarts(
    serve: ServeFactory, tmp_path: Path, terminal: list[Terminal]
) -> None:
    path = tmp_path / "c.sock"
    server = serve("-w", "2", "--control-socket", str(path))
    term = Terminal(
        f"hs-top-{tmp_path.name}",
        [sys.executable, "-m", "hybridserve", "top", "--control-socket", str(path)],
    )
    terminal.append(term)
    screen = term.wait_for(r"workers 2/2 ready")
    assert f"master {server.pid}" in screen
    assert {int(r[0]) for r in rows(screen)} == set(server.worker_pids())
    assert re.search(r"TOTAL\s", screen)

    stop = threading.Event()

    def load() -> None:
        deadline = time.monotonic() + 20
        with httpx.Client(timeout=5) as client:
            while not stop.is_set() and time.monotonic() < deadline:
                client.get(server.url + "/")

    thread = threading.Thread(target=load)
    thread.start()
    try:
        term.wait_for(r"TOTAL\s+[1-9][\d.]*\s")  # a req/s computed from the counters
    finally:
        stop.set()
        thread.join(10)

    term.keys("m")
    term.wait_for("sorted by memory, descending")
    term.keys("p")
    screen = term.wait_for("sorted by pid, ascending")
    pids = [int(r[0]) for r in rows(screen)]
    assert pids == sorted(pids)
    term.keys("p")
    screen = term.wait_for("sorted by pid, descending")
    assert [int(r[0]) for r in rows(screen)] == sorted(pids, reverse=True)

    subprocess.run(
        [sys.executable, "-m", "hybridserve", "ctl", "--control-socket", str(path), "reload"],
        check=True,
        timeout=20,
    )
    screen = term.wait_for(r"generation 2 ")
    term.wait_for(r"\d+\s+2\s+ready")

    assert server.stop() == 0
    term.wait_for("waiting for the server at")
    again = serve("-w", "1", "--control-socket", str(path))
    screen = term.wait_for(f"master {again.pid}")
    assert {int(r[0]) for r in rows(term.wait_for("workers 1/1 ready"))} == set(again.worker_pids())
    term.keys("q")
    assert wait_until(lambda: "hybridserve" not in term.screen(), 10)
