"""HTTP/2 (h2c, prior knowledge) scenarios: h2load instead of wrk, same rounds and report.

``h2load -n 8000 -c 8 -m 10`` as the HTTP/2 issue measured it: 1,000 requests per
connection, which also fits hypercorn's ``keep_alive_max_requests`` (it closes a connection
after 1,000). h2load reports no percentiles: p50 is its mean request time, p99 its max.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from harness import BENCH_DIR, ServerError, ServerSpec, WrkResult

H2_REQUESTS = 8000
H2_CONNECTIONS = 8
H2_STREAMS = 10


@dataclass(frozen=True)
class H2Load:
    """One h2load invocation shape (run.py's ``Load`` for wrk has the same role)."""

    path: str = "/"
    requests: int = H2_REQUESTS
    connections: int = H2_CONNECTIONS
    streams: int = H2_STREAMS

    def argv(self, port: int | str, duration: int = 0) -> list[str]:
        """The h2load argv; ``duration`` is unused (runs are sized by requests)."""
        argv = ["h2load", "-n", str(self.requests), "-c", str(self.connections)]
        return [*argv, "-m", str(self.streams), f"http://127.0.0.1:{port}{self.path}"]


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_h2load(text: str) -> WrkResult:
    """req/s, requests, mean and max request time, and failures from h2load's summary."""
    rps = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", text)
    done = re.search(
        r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed", text
    )
    times = re.search(
        r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", text
    )
    if not rps or not done or not times:
        raise ValueError("unparsable h2load output: " + text[-300:])
    max_ms = float(times.group(3)) * _UNITS_MS[times.group(4)]
    mean_ms = float(times.group(5)) * _UNITS_MS[times.group(6)]
    succeeded, failed = int(done.group(1)), int(done.group(2))
    return WrkResult(float(rps.group(1)), succeeded + failed, mean_ms, max_ms, failed)


def run_h2load(load: H2Load, port: int) -> WrkResult:
    """Run h2load against ``port`` (bounded by a timeout) and parse its output."""
    out = subprocess.run(
        load.argv(port), cwd=BENCH_DIR, capture_output=True, text=True, timeout=60, check=False
    )
    if out.returncode != 0:
        raise ServerError(f"h2load exited {out.returncode}: {out.stderr.strip()[-300:]}")
    return parse_h2load(out.stdout)


def uvicorn_h2(vbin: str, pypath: tuple[tuple[str, str], ...]) -> ServerSpec:
    """uvicorn on its zttp HTTP/2 path (uvicorn >= 0.53)."""
    argv = [f"{vbin}/uvicorn", "apps:asgi_app", "--host", "127.0.0.1", "--port", "{port}"]
    argv += ["--loop", "uvloop", "--http", "zttp", "--http2"]
    argv += ["--log-level", "warning", "--no-access-log"]
    return ServerSpec("uvicorn zttp h2", tuple(argv), env=pypath)


def granian_h2(vbin: str, pypath: tuple[tuple[str, str], ...]) -> ServerSpec:
    """granian with HTTP/1.1 and HTTP/2 (h2c prior knowledge), one worker on uvloop."""
    argv = [f"{vbin}/granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", "{port}"]
    argv += ["--workers", "1", "--loop", "uvloop", "--http", "auto"]
    argv += ["--working-dir", str(BENCH_DIR), "--log-level", "warning", "apps:asgi_app"]
    return ServerSpec("granian h2", tuple(argv), env=pypath)
