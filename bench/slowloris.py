"""What 500 slowloris connections do to the p99 of normal requests on a 1-worker server.

Loopback only, bounded: starts hybridserve (demo app), measures ``wrk`` p99 alone, then
again while 500 clients hold connections open and dribble a request head one byte every
second. Prints both and their ratio. Usage: ``.venv/bin/python bench/slowloris.py``.
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAD = b"GET / HTTP/1.1\r\nHost: loris\r\nX-Padding: " + b"a" * 200


def start_server(interface: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hybridserve",
            "-w",
            "1",
            "--interface",
            interface,
            "--bind",
            "127.0.0.1:0",
            "--timeout-request-head",
            "60",
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    port = 0
    for line in proc.stderr:
        match = re.search(r"Listening at http://127\.0\.0\.1:(\d+)", line)
        port = int(match[1]) if match else port
        if "Ready:" in line:
            break
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    return proc, port


def wrk_p99_ms(port: int, seconds: int) -> tuple[float, float]:
    out = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return float(value) * scale, rps


def loris(port: int, count: int, stop: threading.Event) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(HEAD[:20])
        socks.append(sock)

    def dribble() -> None:
        position = 20
        while not stop.wait(1.0) and position < len(HEAD):
            for sock in socks:
                try:
                    sock.sendall(HEAD[position : position + 1])
                except OSError:
                    pass
            position += 1

    threading.Thread(target=dribble, daemon=True).start()
    return socks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--interface", default="wsgi")
    args = parser.parse_args()
    proc, port = start_server(args.interface)
    try:
        base_p99, base_rps = wrk_p99_ms(port, args.seconds)
        stop = threading.Event()
        socks = loris(port, args.connections, stop)
        time.sleep(1)
        attacked_p99, attacked_rps = wrk_p99_ms(port, args.seconds)
        stop.set()
        for sock in socks:
            sock.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    print(f"hybridserve -w 1 ({args.interface}), wrk -t1 -c16 -d{args.seconds}s on /")  # noqa: T201
    print(f"  alone:             p99 {base_p99:.2f} ms, {base_rps:,.0f} req/s")  # noqa: T201
    print(  # noqa: T201
        f"  {args.connections} slowloris:   p99 {attacked_p99:.2f} ms, {attacked_rps:,.0f} req/s"
        f"  (p99 x{attacked_p99 / base_p99:.2f})"
    )


if __name__ == "__main__":
    main()
