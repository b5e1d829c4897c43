"""A 10 GB static download by a client that pauses now and then: the worker's RSS growth.

Run from the repository: ``.venv/bin/python bench/static_rss.py [--gib 10] [--tls]``. The
file is sparse (no disk space used); the worker sends it with sendfile on plain TCP, or
with bounded reads under ``--tls`` (needs trustme, from the dev extra). Prints the peak RSS
growth of the worker and the time taken. Loopback only, bounded by ``--max-seconds``.
"""

import argparse
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MiB = 1 << 20


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def start(folder: Path, tls: list[str]) -> tuple[subprocess.Popen[str], int]:
    argv = [sys.executable, "-m", "hybridserve", "-w", "1", "--bind", "127.0.0.1:0"]
    argv += ["--static", f"/f={folder}", *tls]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    port = 0
    for line in proc.stdout:
        if match := re.search(r"Listening at https?://127\.0\.0\.1:(\d+)", line):
            port = int(match[1])
        if "Ready:" in line:
            break
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gib", type=float, default=10.0)
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--max-seconds", type=float, default=300.0)
    args = parser.parse_args()
    size = int(args.gib * 1024 * MiB)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with (folder / "big.bin").open("wb") as fh:
            fh.truncate(size)
        tls: list[str] = []
        context = None
        if args.tls:
            import trustme

            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1")
            cert.cert_chain_pems[0].write_to_path(str(folder / "c.pem"))
            cert.private_key_pem.write_to_path(str(folder / "k.pem"))
            tls = ["--certfile", str(folder / "c.pem"), "--keyfile", str(folder / "k.pem")]
            context = ssl.create_default_context()
            ca.configure_trust(context)
        proc, port = start(folder, tls)
        try:
            measure(proc, port, size, context, args.max_seconds)
        finally:
            proc.terminate()
            proc.wait(20)


def measure(
    proc: subprocess.Popen[str],
    port: int,
    size: int,
    context: ssl.SSLContext | None,
    max_seconds: float,
) -> None:
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    worker = int(children[0])
    baseline = peak = rss_bytes(worker)
    started = time.monotonic()
    received = 0
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock = context.wrap_socket(raw, server_hostname="127.0.0.1") if context else raw
    with sock:
        sock.sendall(b"GET /f/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        reads = 0
        while received < size and time.monotonic() - started < max_seconds:
            data = sock.recv(MiB)
            if not data:
                break
            received += len(data)
            reads += 1
            if reads % 64 == 0:
                peak = max(peak, rss_bytes(worker))
                time.sleep(0.005)  # a reader that pauses now and then
    took = time.monotonic() - started
    print(  # noqa: T201
        f"{received / (1 << 30):.2f} GiB in {took:.1f}s ({received / took / MiB:.0f} MiB/s); "
        f"worker RSS {baseline / MiB:.1f} MiB, peak +{(peak - baseline) / MiB:.1f} MiB"
    )


if __name__ == "__main__":
    main()
