"""Benchmark hybridserve against its peers on loopback and write bench/RESULTS.md.

Every scenario runs each of its servers in turn, round after round (interleaved), restarting
the server for every run. Figures are medians over rounds; ratios are taken against the named
peer in the same round, then the median of those ratios is reported. Run with the bench venv:
``bench/.venv/bin/python bench/run.py`` (``bash bench/setup.sh`` creates it).
"""

import argparse
import dataclasses
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from balance import BALANCE_SECONDS, METRICS_PATH, SHAPES, SOCKET, measure_balance, reuse_port
from h2bench import H2Load, granian_h2, run_h2load, uvicorn_h2
from harness import (
    BENCH_DIR,
    Load,
    Row,
    Scenario,
    Server,
    ServerError,
    ServerSpec,
    Shape,
    close_all,
    cpu_seconds,
    open_idle_connections,
    pss_kib,
    rss_kib,
    run_wrk,
    socket_count,
)
from report import loadavg, write_report
from static_scenarios import static_scenarios

VBIN = BENCH_DIR / ".venv" / "bin"
HYBRIDSERVE = BENCH_DIR.parent / ".venv" / "bin" / "hybridserve"
# The last commit before the stream reshape (issue 12): setup.sh extracts its package here,
# and the hello scenarios run it beside today's code, so a slowdown shows in the same run.
BEFORE_REF = "436bb92"
BEFORE_DIR = BENCH_DIR / ".ref" / BEFORE_REF
PYPATH = (("PYTHONPATH", str(BENCH_DIR)),)
START_STOP_S = 2.5  # budgeted seconds to start, probe and stop one server
MEMORY_CONNECTIONS = 1000
SETTLE_S = 1.5  # peers with several workers give no ready signal: let the others boot


def log(msg: str) -> None:
    """Progress line on stderr."""
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def hybridserve(interface: str, workers: int = 1, threads: int | None = None) -> ServerSpec:
    """hybridserve binding port 0 itself; ready once all workers report."""
    argv = [str(HYBRIDSERVE), f"apps:{interface}_app", "--app-dir", str(BENCH_DIR)]
    argv += ["--bind", "127.0.0.1:0", "--workers", str(workers), "--interface", interface]
    argv += ["--threads", str(threads)] if threads else []
    name = f"hybridserve {interface}" + (f" {workers}w" if workers > 1 else "")
    # Listening/Ready are logged at INFO; the access log is off by default.
    argv += ["--log-level", "info"]
    return ServerSpec(name, tuple(argv), port_from_log=True, ready=r"Ready: \d+ worker")


def hybridserve_before(interface: str, threads: int | None = None) -> ServerSpec:
    """``hybridserve(interface)`` as of BEFORE_REF: same venv, its own package first."""
    spec = hybridserve(interface, threads=threads)
    python = HYBRIDSERVE.parent / "python"
    argv = (str(python), "-m", "hybridserve", *spec.argv[1:])
    name = f"hybridserve {interface} @{BEFORE_REF}"
    return dataclasses.replace(spec, name=name, argv=argv, env=(("PYTHONPATH", str(BEFORE_DIR)),))


def uvicorn(http: str = "httptools", workers: int = 1) -> ServerSpec:
    """uvicorn on uvloop with the given HTTP parser."""
    argv = [str(VBIN / "uvicorn"), "apps:asgi_app", "--host", "127.0.0.1", "--port", "{port}"]
    argv += ["--workers", str(workers), "--loop", "uvloop", "--http", http]
    name = "uvicorn" + (" h11" if http == "h11" else "") + (f" {workers}w" if workers > 1 else "")
    argv += ["--log-level", "warning", "--no-access-log"]  # as hybridserve: no access log
    return ServerSpec(name, tuple(argv), env=PYPATH, settle=SETTLE_S if workers > 1 else 0)


def gunicorn(worker: str = "gthread", threads: int = 8, workers: int = 1) -> ServerSpec:
    """gunicorn with the sync or gthread worker class."""
    argv = [str(VBIN / "gunicorn"), "apps:wsgi_app", "--bind", "127.0.0.1:{port}"]
    argv += ["--workers", str(workers), "--worker-class", worker, "--chdir", str(BENCH_DIR)]
    argv += ["--threads", str(threads)] if worker == "gthread" else []
    name = f"gunicorn {worker}" + (f" {workers}w" if workers > 1 else "")
    argv += ["--log-level", "warning"]
    return ServerSpec(name, tuple(argv), env=PYPATH, settle=SETTLE_S if workers > 1 else 0)


def granian(interface: str) -> ServerSpec:
    """granian, one worker; WSGI on 8 blocking threads, ASGI on uvloop."""
    argv = [str(VBIN / "granian"), "--interface", interface, "--host", "127.0.0.1"]
    argv += ["--port", "{port}", "--workers", "1", "--working-dir", str(BENCH_DIR)]
    argv += ["--blocking-threads", "8"] if interface == "wsgi" else ["--loop", "uvloop"]
    argv += ["--log-level", "warning", f"apps:{interface}_app"]
    return ServerSpec(f"granian {interface}", tuple(argv), env=PYPATH)


WAITRESS = ServerSpec(
    "waitress",
    (str(VBIN / "waitress-serve"), "--listen=127.0.0.1:{port}", "--threads=8", "apps:wsgi_app"),
    env=PYPATH,
)
HYPERCORN = ServerSpec(
    "hypercorn",
    (
        str(VBIN / "hypercorn"),
        "apps:asgi_app",
        "--bind",
        "127.0.0.1:{port}",
        "--workers",
        "1",
        "--worker-class",
        "uvloop",
        "--log-level",
        "warning",
    ),
    env=PYPATH,
)
RAW = ServerSpec(
    "raw uvloop (ceiling)",
    (str(VBIN / "python"), str(BENCH_DIR / "raw_uvloop.py"), "--port", "0"),
    port_from_log=True,
)
HELLO_LOAD = Load(threads=1, connections=64)
MIXED_LOAD = Load(threads=1, connections=64, script="mixed.lua")
PINNED_LOAD = Load(threads=1, connections=64, cpus="1")


def pinned(spec: ServerSpec, cpus: str = "0") -> ServerSpec:
    """``spec`` run under ``taskset -c cpus`` (its workers inherit the affinity)."""
    return dataclasses.replace(spec, argv=("taskset", "-c", cpus, *spec.argv))


def pinned_scenarios() -> list[Scenario]:
    """Per core: the server on CPU 0, wrk on CPU 1; steadier than sharing both cores."""
    if (os.cpu_count() or 1) < 2:
        return []
    title = ", server pinned to CPU 0, wrk to CPU 1"
    return [
        Scenario(
            "asgi-hello-pinned",
            "ASGI hello, 1 worker" + title,
            "uvicorn",
            [
                pinned(hybridserve("asgi")),
                pinned(hybridserve_before("asgi")),
                pinned(uvicorn()),
                pinned(granian("asgi")),
            ],
            PINNED_LOAD,
        ),
        Scenario(
            "wsgi-hello-pinned",
            "WSGI hello, 1 worker, 8 threads" + title,
            "gunicorn gthread",
            [
                pinned(hybridserve("wsgi", threads=8)),
                pinned(hybridserve_before("wsgi", threads=8)),
                pinned(gunicorn()),
                pinned(granian("wsgi")),
            ],
            PINNED_LOAD,
        ),
    ]


def for_balance(spec: ServerSpec) -> ServerSpec:
    """Also bind the Unix socket nginx talks to; hybridserve also answers its metrics."""
    extra = ("--bind", f"unix:{SOCKET}")
    if spec.name.startswith("hybridserve"):
        extra += ("--metrics-path", METRICS_PATH)
    return dataclasses.replace(spec, argv=(*spec.argv, *extra))


def balance_servers(shape: Shape) -> list[ServerSpec]:
    """hybridserve with 2 and 4 workers, both interfaces; peers on one shared socket; and
    SO_REUSEPORT (which cannot serve a Unix socket, so not behind nginx)."""
    ours = [
        hybridserve(interface, workers=workers, threads=8 if interface == "wsgi" else None)
        for interface in ("asgi", "wsgi")
        for workers in (2, 4)
    ]
    shared = [for_balance(spec) for spec in [*ours, gunicorn(threads=8, workers=2)]]
    if shape.nginx:  # uvicorn serves one address only; SO_REUSEPORT is for TCP
        return shared
    return [*shared, uvicorn(workers=2), reuse_port(2), reuse_port(4)]


def balance_scenarios() -> list[Scenario]:
    """Per-worker connections and requests in the three shapes of issue 14 (one round)."""
    return [
        Scenario(
            f"balance-{shape.key}",
            f"Balance: {shape.title}",
            "",
            balance_servers(shape),
            shape.load(),
            shape=shape,
            rounds=1,
        )
        for shape in SHAPES
    ]


def h2_scenarios() -> list[Scenario]:
    """HTTP/2 over h2c with h2load (the HTTP/2 issue); our HTTP/1.1 figure is asgi-hello's."""
    servers = [
        hybridserve("asgi"),
        uvicorn_h2(str(VBIN), PYPATH),
        HYPERCORN,
        granian_h2(str(VBIN), PYPATH),
    ]
    return [
        Scenario("h2c-hello", "HTTP/2 h2c hello, 1 worker", "uvicorn zttp h2", servers, H2Load()),
        Scenario(
            "h2c-64k",
            "HTTP/2 h2c, 64 KiB response, 1 worker",
            "uvicorn zttp h2",
            servers,
            H2Load(path="/64k"),
        ),
    ]


def scenarios() -> list[Scenario]:
    """The scenarios of the benchmark issue, in run order."""
    return [
        Scenario(
            "asgi-hello",
            "ASGI hello, 1 worker",
            "uvicorn",
            [
                hybridserve("asgi"),
                hybridserve_before("asgi"),
                uvicorn(),
                uvicorn("h11"),
                granian("asgi"),
                HYPERCORN,
                RAW,
            ],
            HELLO_LOAD,
        ),
        Scenario(
            "wsgi-hello",
            "WSGI hello, 1 worker, 8 threads",
            "gunicorn gthread",
            [
                hybridserve("wsgi", threads=8),
                hybridserve_before("wsgi", threads=8),
                gunicorn(),
                gunicorn("sync"),
                WAITRESS,
                granian("wsgi"),
            ],
            HELLO_LOAD,
        ),
        Scenario(
            "asgi-close",
            "ASGI hello, `Connection: close` on every request, 1 worker",
            "uvicorn",
            [hybridserve("asgi"), uvicorn()],
            Load(threads=1, connections=64, headers=("Connection: close",)),
        ),
        Scenario(
            "wsgi-mixed",
            "Mixed WSGI (10% `/delay?ms=50`), 1 worker, 32 threads",
            "gunicorn gthread",
            [hybridserve("wsgi", threads=32), gunicorn(threads=32)],
            MIXED_LOAD,
            bound=32 / 0.05 / 0.1,
        ),
        Scenario(
            "asgi-hello-2w",
            "ASGI hello, 2 workers",
            "uvicorn 2w",
            [hybridserve("asgi", workers=2), uvicorn(workers=2)],
            HELLO_LOAD,
        ),
        Scenario(
            "wsgi-mixed-2w",
            "Mixed WSGI (10% `/delay?ms=50`), 2 workers x 8 threads",
            "gunicorn gthread 2w",
            [hybridserve("wsgi", workers=2, threads=8), gunicorn(threads=8, workers=2)],
            MIXED_LOAD,
            bound=2 * 8 / 0.05 / 0.1,
        ),
        *pinned_scenarios(),
        *balance_scenarios(),
        *h2_scenarios(),
        Scenario(
            "memory",
            f"Memory: idle worker, and growth per {MEMORY_CONNECTIONS} idle keep-alive connections",
            "uvicorn",
            [hybridserve("asgi"), uvicorn()],
        ),
        *static_scenarios(str(HYBRIDSERVE), VBIN, PYPATH),
    ]


def measure_load(server: Server, load: Load, duration: int, warmup: int) -> Row:
    """Warm up, then one measured wrk run with the server tree's CPU time around it."""
    if isinstance(load, H2Load):  # sized by requests, not seconds
        run_h2load(load, server.port)
        before = cpu_seconds(server.pids())
        result = run_h2load(load, server.port)
    else:
        if warmup:
            run_wrk(load, server.port, warmup)
        before = cpu_seconds(server.pids())
        result = run_wrk(load, server.port, duration)
    cpu = cpu_seconds(server.pids()) - before
    if not server.alive():
        raise ServerError(f"died under load: {server.tail()}")
    if result.requests == 0 or result.errors > 0.01 * result.requests:
        raise ServerError(f"{result.errors} errors in {result.requests} requests (max 1%)")
    return {
        "rps": result.rps,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "cpu_us": cpu * 1e6 / result.requests,
        "errors": result.errors,
    }


def measure_memory(server: Server, count: int) -> Row:
    """Idle RSS of the worker and its tree, then RSS growth with ``count`` idle connections."""
    time.sleep(1.0)
    pids = server.pids()
    rss = {pid: rss_kib(pid) for pid in pids}
    pss = sum(pss_kib(pid) for pid in pids)
    base_socks = {pid: socket_count(pid) for pid in pids}
    socks = open_idle_connections(server.port, count)
    try:
        time.sleep(0.5)
        after = {pid: rss_kib(pid) for pid in pids}
        held = {pid: socket_count(pid) - base_socks[pid] for pid in pids}
    finally:
        close_all(socks)
    worker = max(pids, key=lambda pid: (held[pid], pid))  # the process holding the connections
    scale = 1000 / count / 1024  # KiB per `count` -> MiB per 1000
    return {
        "worker_mib": rss[worker] / 1024,
        "tree_mib": sum(rss.values()) / 1024,
        "tree_pss_mib": pss / 1024,
        "delta_worker_mib": (after[worker] - rss[worker]) * scale,
        "delta_tree_mib": (sum(after.values()) - sum(rss.values())) * scale,
        "held": held[worker],
    }


def run_seconds(scen: Scenario, duration: int, warmup: int) -> float:
    """Budgeted seconds for one server's run of ``scen``."""
    if scen.shape is not None:
        return min(duration * 2, BALANCE_SECONDS) + 2 + START_STOP_S  # + metrics publish
    return (duration + warmup if scen.load else 3.0) + START_STOP_S


def estimate_seconds(scens: list[Scenario], rounds: int, duration: int, warmup: int) -> float:
    """Budget for the whole run."""
    total = 0.0
    for scen in scens:
        runs = min(rounds, scen.rounds or rounds)
        total += run_seconds(scen, duration, warmup) * len(scen.servers) * runs
    return total


def skip_reason(spec: ServerSpec) -> str | None:
    """Why a server cannot run at all (missing executable), or None."""
    argv = spec.argv
    if argv[0] == "taskset":
        if not shutil.which("taskset"):
            return "not installed (taskset missing)"
        argv = argv[3:]
    missing = [Path(argv[0])] + [Path(v) for k, v in spec.env if k == "PYTHONPATH"]
    missing = [path for path in missing if not path.exists()]
    return f"not installed ({missing[0]} missing)" if missing else None


def run(args: argparse.Namespace) -> None:
    """Run all rounds of the selected scenarios and write the report."""
    scens = [s for s in scenarios() if not args.only or s.key in args.only]
    estimate = estimate_seconds(scens, args.rounds, args.duration, args.warmup)
    log(f"{len(scens)} scenarios x {args.rounds} rounds: estimated {estimate / 60:.1f} min")
    args.loadavg = loadavg()
    if float(args.loadavg.split()[0]) > 0.5:
        log(f"warning: load average {args.loadavg}: other work will make the figures noisy")
    started = time.monotonic()
    deadline = started + args.max_minutes * 60
    # results[scenario][server] = one row per round (None: that run failed or was skipped)
    results: dict[str, dict[str, list[Row | None]]] = {
        s.key: {sp.name: [] for sp in s.servers} for s in scens
    }
    notes: dict[str, dict[str, str]] = {s.key: {} for s in scens}
    for scen in scens:
        for spec in scen.servers:
            if reason := skip_reason(spec):
                notes[scen.key][spec.name] = reason
    for rnd in range(args.rounds):
        for scen in scens:
            turn = rnd % len(scen.servers)
            specs = scen.servers[turn:] + scen.servers[:turn]
            if scen.rounds is not None and rnd >= scen.rounds:
                continue
            for spec in specs:
                row: Row | None = None
                budget = run_seconds(scen, args.duration, args.warmup)
                if spec.name in notes[scen.key]:
                    pass
                elif time.monotonic() + budget > deadline:
                    notes[scen.key].setdefault(spec.name, "")
                    notes[scen.key][spec.name] += f" round {rnd + 1} dropped (time budget);"
                else:
                    row = measure_one(scen, spec, args, rnd, notes)
                results[scen.key][spec.name].append(row)
    elapsed = time.monotonic() - started
    log(f"finished in {elapsed / 60:.1f} min (estimate was {estimate / 60:.1f} min)")
    write_report(Path(args.output), scens, results, notes, args, elapsed)
    log(f"wrote {args.output}")


def measure_one(
    scen: Scenario,
    spec: ServerSpec,
    args: argparse.Namespace,
    rnd: int,
    notes: dict[str, dict[str, str]],
) -> Row | None:
    """Start ``spec``, measure it for ``scen``, stop it; note failures instead of raising."""
    log(f"[round {rnd + 1}] {scen.key}: {spec.name}")
    started = False
    try:
        with Server(spec) as server:
            started = True
            if scen.load is None:
                row = measure_memory(server, args.connections)
            elif scen.shape is not None:
                seconds = min(args.duration * 2, BALANCE_SECONDS)
                row = measure_balance(server, scen.shape, seconds, Path(args.scratch))
            else:
                row = measure_load(server, scen.load, args.duration, args.warmup)
    except (ServerError, OSError, ValueError) as exc:
        log(f"  FAILED: {exc}")
        if rnd == 0 and not started:  # could not even start: skip it in later rounds
            notes[scen.key][spec.name] = f"failed to start: {exc}"
        else:
            note = notes[scen.key].get(spec.name, "")
            notes[scen.key][spec.name] = note + f" round {rnd + 1}: {exc};"
        return None
    log("  " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()))
    return row


def main() -> None:
    """Parse arguments, raise the fd limit, and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of unmeasured wrk first")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 1 s")
    parser.add_argument("--only", nargs="*", help="scenario keys to run (default: all)")
    parser.add_argument("--connections", type=int, default=MEMORY_CONNECTIONS)
    parser.add_argument("--max-minutes", type=float, default=17.0, help="hard time budget")
    parser.add_argument("--output", help="default bench/RESULTS.md (quick: RESULTS.quick.md)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 1, 0
        args.connections = min(args.connections, 200)
    default_output = "RESULTS.quick.md" if args.quick else "RESULTS.md"
    args.output = args.output or str(BENCH_DIR / default_output)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 1024
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(need, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    with tempfile.TemporaryDirectory(prefix="hybridserve-bench-") as scratch:
        args.scratch = scratch  # nginx's config and temp files
        run(args)


if __name__ == "__main__":
    main()
