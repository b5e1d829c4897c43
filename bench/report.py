"""Render bench/RESULTS.md from run.py's per-round rows."""

import argparse
import datetime
import importlib.metadata
import os
import platform
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

from balance import BALANCE_METHOD, BALANCE_SECONDS, NGINX_CONF, balance_table
from harness import BENCH_DIR, Row, Scenario

PEERS = ("uvicorn", "httptools", "uvloop", "h11", "gunicorn", "granian", "waitress", "hypercorn")
HS_PYTHON = BENCH_DIR.parent / ".venv" / "bin" / "python"
Results = dict[str, dict[str, list[Row | None]]]


def _cmd(argv: list[str], any_status: bool = False) -> str:
    """First output line of ``argv`` ("" on failure, unless ``any_status``)."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines and (out.returncode == 0 or any_status) else ""


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine(loadavg_at_start: str) -> list[str]:
    """Machine and software lines for the report header."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if "model name" in ln), "?"
    )
    mem = next(
        ln.split()[1]
        for ln in Path("/proc/meminfo").read_text().splitlines()
        if ln.startswith("MemTotal")
    )
    versions = []
    for name in PEERS:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    hs = _cmd(
        [str(HS_PYTHON), "-c", "import importlib.metadata as m; print(m.version('hybridserve'))"]
    )
    rev = _cmd(["git", "-C", str(BENCH_DIR.parent), "rev-parse", "--short", "HEAD"]) or "no commit"
    dirty = _cmd(["git", "-C", str(BENCH_DIR.parent), "status", "--porcelain", "--", "hybridserve"])
    wrk = _cmd(["wrk", "-v"], any_status=True).split(" Copyright")[0]
    hs_py = _cmd([str(HS_PYTHON), "-V"]) or "?"
    return [
        f"- Date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: nproc={os.cpu_count()}, CPU {model}, {int(mem) // 1024 // 1024} GiB RAM, "
        f"Linux {platform.release()}",
        f"- Python: {platform.python_version()} (bench venv, peers); {hs_py} (hybridserve venv)",
        f"- hybridserve: {hs or 'not installed'} at git {rev}"
        + (" + uncommitted changes" if dirty else ""),
        f"- Peers: {', '.join(versions)}",
        f"- Load generator: {wrk or 'wrk ?'}",
        f"- Load average (1/5/15 min) at start: {loadavg_at_start}; at the end: {loadavg()} "
        "(other work on the machine makes the figures noisy)",
    ]


def _median(rows: list[Row | None], key: str) -> float | None:
    values = [r[key] for r in rows if r is not None]
    return statistics.median(values) if values else None


def _ratio(rows: list[Row | None], peer: list[Row | None], key: str) -> float | None:
    """Median over rounds of this round's value divided by the peer's in the same round."""
    ratios = [r[key] / p[key] for r, p in zip(rows, peer, strict=False) if r and p and p[key] != 0]
    return statistics.median(ratios) if ratios else None


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _table(scen: Scenario, res: dict[str, list[Row | None]]) -> list[str]:
    peer = res.get(scen.peer, [])
    if scen.load is None:
        cols = [
            ("worker_mib", "idle worker RSS MiB", True),
            ("tree_mib", "tree RSS MiB", True),
            ("tree_pss_mib", "tree PSS MiB", False),
            ("delta_worker_mib", "worker RSS +MiB / 1000 conns", True),
            ("delta_tree_mib", "tree RSS +MiB / 1000 conns", False),
        ]
    else:
        cols = [
            ("rps", "req/s", True),
            ("p50_ms", "p50 ms", True),
            ("p99_ms", "p99 ms", True),
            ("cpu_us", "CPU µs/req", True),
        ]
    head = ["server"]
    for _, label, ratio in cols:
        head += [label, f"x {scen.peer}"] if ratio else [label]
        if label == "req/s" and scen.bound:
            head.append(f"of bound {scen.bound:,.0f}")
    head += ["conns held"] if scen.load is None else ["errors", "req/s per round"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rows in res.items():
        if not any(rows):
            continue
        cells = [name]
        for key, label, ratio in cols:
            digits = 0 if key == "rps" else 2 if key.endswith("ms") else 1
            cells.append(_fmt(_median(rows, key), digits))
            if ratio:
                cells.append(_fmt(_ratio(rows, peer, key), 2))
            if label == "req/s" and scen.bound:
                cells.append(f"{(_median(rows, 'rps') or 0) / scen.bound:.0%}")
        if scen.load is None:
            cells.append(_fmt(_median(rows, "held"), 0))
        else:
            cells.append(str(int(sum(r["errors"] for r in rows if r))))
            cells.append(" / ".join(f"{r['rps']:,.0f}" if r else "—" for r in rows))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_report(
    path: Path,
    scens: list[Scenario],
    results: Results,
    notes: dict[str, dict[str, str]],
    args: argparse.Namespace,
    elapsed: float,
) -> None:
    """Write the markdown report to ``path``."""
    out = ["# hybridserve benchmark results", ""]
    if args.quick:
        out += ["**Quick smoke run (1 round of 1 s): the numbers are not meaningful.**", ""]
    out += machine(args.loadavg)
    out += [
        f"- Run: {args.rounds} rounds, {args.duration} s measured per run after {args.warmup} s "
        f"of warm-up, total {elapsed / 60:.1f} min",
        "- Reproduce: `make bench` (= `bash bench/setup.sh && bench/.venv/bin/python "
        f"bench/run.py`); this run: `{shlex.join(['bench/run.py', *sys.argv[1:]])}`",
        "",
        "Method: all traffic on 127.0.0.1; the load generator shares the 2 cores with the "
        "server, except in the pinned scenarios (server under `taskset -c 0`, its workers "
        "inheriting it, and wrk under `taskset -c 1`: one core each). Each round runs every "
        "server of a scenario in turn (the order rotates per round), starting a fresh "
        "server for each run and waiting until `GET /` answers. "
        "Figures are medians over rounds. Each `x PEER` column is that server's figure divided by "
        "the peer's in the same round, median over rounds (req/s: higher is better; latency, "
        "CPU and memory: lower is better). CPU µs/req is utime+stime of the server's whole "
        "process tree (from /proc) during the measured run, divided by the requests wrk "
        "completed. Errors are wrk's socket errors plus non-2xx responses, summed over rounds.",
        "",
    ]
    for scen in scens:
        out += [f"## {scen.title}", ""]
        if scen.load is None:
            out += [
                f"Each server is started with one worker and left idle 1 s; then "
                f"{args.connections} keep-alive connections are opened from the driver, one "
                "`GET /` answered on each, and held open. The worker is the process that "
                "holds them; RSS is VmRSS from /proc/PID/status, the tree sums every process "
                f"of the server (PSS splits shared pages). Growth is scaled to 1000 connections.",
                "",
            ]
        elif scen.shape is not None:
            seconds = min(args.duration * 2, BALANCE_SECONDS)
            target = "$NGINX_PORT" if scen.shape.nginx else "$PORT"
            wrk = shlex.join(scen.load.argv(target, seconds))
            out += [f"Load: `{wrk}`, one round.", "", BALANCE_METHOD, ""]
            if scen.shape.nginx:
                conf = NGINX_CONF.strip()
                out += ["nginx (one worker process) config:", "", "```", conf, "```", ""]
        else:
            wrk = shlex.join(scen.load.argv("$PORT", args.duration))
            out += [f"Load: `{wrk}`", ""]
        if scen.shape is not None:
            out += balance_table(scen, results[scen.key])
        else:
            out += _table(scen, results[scen.key])
        out += ["", "Commands:", ""]
        out += [f"- {spec.name}: `{spec.command()}`" for spec in scen.servers]
        if notes[scen.key]:
            out += ["", "Skipped or failed:", ""]
            out += [f"- {name}: {why.strip()}" for name, why in notes[scen.key].items()]
        out.append("")
    path.write_text("\n".join(out))
