"""Balance across workers: per-worker connections and requests under three client shapes.

The shapes of issue 14: a 64-connection keep-alive burst (``wrk -c64``), 8 persistent
connections (a proxy's pool), and nginx in front over a Unix socket with upstream
keep-alive (its pool opens and closes upstream connections as load varies: keep-alive
churn). For each run we count, per worker process, the client sockets it holds (sampled
from /proc at a quarter, half and three quarters of the run), the requests it answered
(hybridserve: its own per-worker metric; peers: not observable, so the worker's CPU
seconds stand in), and report max/min. SO_REUSEPORT is measured as the alternative: one
listener per process, the kernel spreading connections by a hash of the 4-tuple.
"""

import contextlib
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from harness import (
    BENCH_DIR,
    HOST,
    Row,
    Scenario,
    Server,
    ServerError,
    ServerSpec,
    Shape,
    cpu_seconds,
    free_port,
    run_wrk,
)

SOCKET = f"/tmp/hybridserve-bench-{os.getpid()}.sock"
METRICS_PATH = "/_metrics"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
BALANCE_SECONDS = 10  # per run, as issue 14 states its targets
PUBLISH_S = 1.3  # hybridserve workers publish their counters once a second
REQUESTS_RE = re.compile(r'^hybridserve_worker_requests_total\{worker="(\d+)"\} (\d+)', re.M)
NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log error;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    upstream app {{
        server unix:{socket};
        keepalive 32;
        keepalive_timeout 4s;
    }}
    server {{
        listen {host}:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


BURST = Shape("burst", "64-connection keep-alive burst", 64)
POOL = Shape("pool", "8 persistent connections", 8)
PROXY = Shape("nginx", "nginx (64 clients) over a Unix socket, upstream keepalive 32", 64, True)
SHAPES = (BURST, POOL, PROXY)


def reuse_port(processes: int) -> ServerSpec:
    """The raw uvloop responder in ``processes`` processes, each with its SO_REUSEPORT listener."""
    python = BENCH_DIR / ".venv" / "bin" / "python"
    argv = (str(python), str(BENCH_DIR / "raw_uvloop.py"), "--reuse-port", str(processes))
    return ServerSpec(f"SO_REUSEPORT x{processes} (raw uvloop)", argv, port_from_log=True)


def workers_of(server: Server) -> list[int]:
    """The server's worker processes: the root's descendants but multiprocessing's helpers."""
    pids = server.pids()
    workers = [pid for pid in pids[1:] if "resource_tracker" not in _cmdline(pid)]
    return workers or pids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def client_inodes(port: int) -> set[str]:
    """Socket inodes of the server's side of client connections: established TCP on
    ``port``, and connected sockets on the Unix path ``SOCKET`` (nginx's upstream)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":  # ESTABLISHED
                    inodes.add(fields[9])
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == SOCKET and fields[5] == "03":  # connected
                inodes.add(fields[6])
    return inodes


def held_by(pid: int, inodes: set[str]) -> int:
    """How many of ``inodes`` process ``pid`` has open."""
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                count += link.startswith("socket:[") and link[8:-1] in inodes
    return count


def hybridserve_requests(port: int) -> dict[int, int]:
    """Requests per worker pid from hybridserve's metrics ({} for other servers)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{METRICS_PATH}", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    return {int(pid): int(n) for pid, n in REQUESTS_RE.findall(text)}


@contextlib.contextmanager
def nginx_in_front(folder: Path):  # type: ignore[no-untyped-def]  # bench/ is not type-checked
    """nginx on a free loopback port, proxying to ``SOCKET``; yields its port."""
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=folder, socket=SOCKET, host=HOST, port=port))
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(folder)], stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            if proc.poll() is not None:
                raise ServerError(f"nginx exited: {proc.stderr.read().decode()[-300:]}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=1).read()
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def measure_balance(server: Server, shape: Shape, duration: int, folder: Path) -> Row:
    """One run of ``shape``: throughput, CPU per request, and the spread over workers."""
    if shape.nginx:
        with nginx_in_front(folder) as port:
            return _measure(server, shape, duration, port)
    return _measure(server, shape, duration, server.port)


def _measure(server: Server, shape: Shape, duration: int, port: int) -> Row:
    workers = workers_of(server)
    cpu0 = {pid: cpu_seconds([pid]) for pid in workers}
    tree0 = cpu_seconds(server.pids())
    reqs0 = hybridserve_requests(server.port)
    held = dict.fromkeys(workers, 0)
    outcome: dict[str, object] = {}

    def load() -> None:
        try:
            outcome["result"] = run_wrk(shape.load(), port, duration)
        except (ServerError, ValueError, OSError) as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=load)
    thread.start()
    for _ in range(3):  # sample at 1/4, 2/4 and 3/4 of the run
        time.sleep(duration / 4)
        inodes = client_inodes(server.port)
        for pid in workers:
            held[pid] += held_by(pid, inodes)
    thread.join()
    tree = cpu_seconds(server.pids()) - tree0
    cpu = {pid: cpu_seconds([pid]) - cpu0[pid] for pid in workers}
    if "error" in outcome:
        raise ServerError(str(outcome["error"]))
    result = outcome["result"]
    if not server.alive():
        raise ServerError(f"died under load: {server.tail()}")
    served: dict[int, int] = {}
    if reqs0:
        time.sleep(PUBLISH_S)
        after = hybridserve_requests(server.port)
        served = {pid: after.get(pid, 0) - reqs0.get(pid, 0) for pid in workers}
    row: Row = {
        "rps": result.rps,  # type: ignore[attr-defined]
        "cpu_us": tree * 1e6 / max(1, result.requests),  # type: ignore[attr-defined]
        "errors": result.errors,  # type: ignore[attr-defined]
    }
    for i, pid in enumerate(sorted(workers)):
        row[f"w_conns_{i}"] = held[pid] / 3
        row[f"w_cpu_{i}"] = cpu[pid]
        if served:
            row[f"w_reqs_{i}"] = served[pid]
    return row


def spread(row: Row, prefix: str) -> tuple[list[float], float | None]:
    """The per-worker values under ``prefix`` and their max/min (None: min is 0 or absent)."""
    count = sum(1 for key in row if key.startswith(prefix))
    values = [row[f"{prefix}{i}"] for i in range(count)]
    if not values or min(values) <= 0:
        return values, None
    return values, max(values) / min(values)


def _cells(values: list[float], ratio: float | None, digits: int) -> list[str]:
    shown = " / ".join(f"{v:,.{digits}f}" for v in values) or "—"
    worst = "∞" if values and ratio is None else "—" if ratio is None else f"{ratio:.2f}"
    return [shown, worst]


def balance_table(scen: Scenario, res: dict[str, list[Row | None]]) -> list[str]:
    """Per server: req/s, CPU, and per-worker connections, requests and CPU with max/min.

    With several rounds, the round with the worst connection spread is shown.
    """
    head = ["server", "req/s", "CPU µs/req", "connections held per worker", "max/min"]
    head += ["requests per worker", "max/min", "CPU s per worker", "max/min", "errors"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rows in res.items():
        done = [r for r in rows if r]
        if not done:
            continue
        row = max(done, key=lambda r: spread(r, "w_conns_")[1] or float("inf"))
        cells = [name, f"{row['rps']:,.0f}", f"{row['cpu_us']:.1f}"]
        cells += _cells(*spread(row, "w_conns_"), 1)
        reqs = spread(row, "w_reqs_")
        cells += _cells(*reqs, 0) if reqs[0] else ["(not exposed)", "—"]
        cells += _cells(*spread(row, "w_cpu_"), 2)
        cells.append(str(int(sum(r["errors"] for r in done))))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


BALANCE_METHOD = (
    "Each server is started fresh and the load starts at once (no warm-up: the burst is "
    "the point). Connections held per worker: client sockets in the worker's /proc/PID/fd "
    "(established TCP connections on the server's port, or connected Unix sockets on the "
    "path nginx uses), averaged over samples at 1/4, 1/2 and 3/4 of the run. "
    "Requests per worker: hybridserve's `hybridserve_worker_requests_total` (from "
    "`--metrics-path`); peers do not expose it, so their per-worker CPU seconds stand in. "
    "max/min is over the workers of one run; ∞ means a worker got none."
)
