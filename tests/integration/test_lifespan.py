"""ASGI lifespan per worker, through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServeFactory
from tests.harness import APPS


def test_startup_state_reaches_requests_and_shutdown_runs(
    serve: ServeFactory, tmp_path: Path
) -> None:
    marker = tmp_path / "shutdown.txt"
    server = serve("lifespan_app:app", "-w", "2", env={"LIFESPAN_MARKER": str(marker)})
    body = httpx.get(server.url).text
    assert body.startswith("connected in ")
    workers = server.worker_pids()
    assert server.stop() == 0
    assert sorted(marker.read_text().split("\n")[:-1]) == sorted(f"shutdown {p}" for p in workers)


@pytest.mark.parametrize(
    ("mode", "args", "needle"),
    [
        ("message", [], "ASGI lifespan startup failed: db unreachable"),
        (
            "raise",
            ["--lifespan", "on"],
            "ASGI lifespan startup failed: RuntimeError: startup exploded",
        ),
    ],
)
def test_startup_failure_stops_the_master_with_exit_3(
    mode: str, args: list[str], needle: str
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hybridserve",
            "lifespan_app:app",
            "-w",
            "3",
            "--bind",
            "127.0.0.1:0",
            *args,
        ],
        cwd=APPS,
        env={**os.environ, "LIFESPAN_FAIL": mode},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 3
    assert result.stderr.count("Worker failed to load the app") == 1
    assert result.stderr.count(needle) == 1
    if mode == "raise":  # the app's frame, once, though all three workers failed
        assert result.stderr.count('raise RuntimeError("startup exploded")') == 1
        assert "lifespan_app.py" in result.stderr
        assert "Traceback" not in result.stderr


def test_auto_mode_serves_an_app_without_lifespan(serve: ServeFactory) -> None:
    server = serve("lifespan_app:http_only", "-w", "1")
    assert httpx.get(server.url).status_code == 204
    assert "does not support lifespan" in server.log


def test_lifespan_off_skips_it(serve: ServeFactory) -> None:
    server = serve("lifespan_app:app", "-w", "1", "--lifespan", "off")
    assert httpx.get(server.url).text == "no state"
