"""Slow readers of large static files beside normal clients: does their p99 move?

Run from the repository: ``.venv/bin/python bench/static_fairness.py [--readers 16]``.
Starts hybridserve (1 worker) with a static mount holding a sparse 50 MiB file, measures
``wrk -t1 -c16 -d5s`` on ``/`` alone, then again while ``--readers`` clients each download
the file slowly (64 KiB reads with pauses), and prints both p99s. Loopback only; every
reader stops when the measurement ends.
"""

import argparse
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MiB = 1 << 20


def start(folder: Path) -> tuple[subprocess.Popen[str], int]:
    argv = [sys.executable, "-m", "hybridserve", "-w", "1", "--bind", "127.0.0.1:0"]
    argv += ["--static", f"/f={folder}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    port = 0
    for line in proc.stdout:
        if match := re.search(r"Listening at http://127\.0\.0\.1:(\d+)", line):
            port = int(match[1])
        if "Ready:" in line:
            break
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, port


def wrk_p99(port: int) -> tuple[float, str]:
    out = subprocess.run(
        ["wrk", "-t1", "-c16", "-d5s", "--latency", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert p99 and rps
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99[2]]
    return float(p99[1]) * scale, rps[1]


def slow_reader(port: int, stop: threading.Event, received: list[int]) -> None:
    while not stop.is_set():
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sock.sendall(b"GET /f/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while not stop.is_set():
                data = sock.recv(64 * 1024)
                if not data:
                    break
                received[0] += len(data)
                time.sleep(0.01)  # about 6 MiB/s at most per reader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readers", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with (folder / "big.bin").open("wb") as fh:
            fh.truncate(50 * MiB)
        proc, port = start(folder)
        try:
            alone, alone_rps = wrk_p99(port)
            stop, received = threading.Event(), [0]
            readers = [
                threading.Thread(target=slow_reader, args=(port, stop, received), daemon=True)
                for _ in range(args.readers)
            ]
            for reader in readers:
                reader.start()
            time.sleep(1.0)  # the downloads are under way
            loaded, loaded_rps = wrk_p99(port)
            stop.set()
            for reader in readers:
                reader.join(10)
        finally:
            proc.terminate()
            proc.wait(20)
    print(  # noqa: T201
        f"GET / p99 alone {alone:.2f} ms ({alone_rps} req/s); with {args.readers} slow "
        f"readers {loaded:.2f} ms ({loaded_rps} req/s); readers took "
        f"{received[0] / MiB:.0f} MiB"
    )


if __name__ == "__main__":
    main()
