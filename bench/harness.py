"""Stdlib helpers for run.py: server processes, /proc accounting, wrk, idle connections."""

import atexit
import contextlib
import http.client
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"
HELLO = b"Hello, world!"
CLK_TCK = os.sysconf("SC_CLK_TCK")
LISTEN_RE = re.compile(r"Listening at http://127\.0\.0\.1:(\d+)")
_RUNNING: set["Server"] = set()


class ServerError(RuntimeError):
    """A server could not be started or died while measured."""


def free_port() -> int:
    """Return a port that was free a moment ago (peers bind it themselves afterwards)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ServerSpec:
    """How to launch one server.

    ``argv`` may contain ``{port}``; ``port_from_log`` means it binds port 0 itself and logs
    ``Listening at``; ``ready`` is a stderr regex to await before probing ``GET /``.
    """

    name: str
    argv: tuple[str, ...]
    port_from_log: bool = False
    ready: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    settle: float = 0.0  # seconds to wait after the first good GET (multi-worker peers)

    def command(self) -> str:
        """The shell command, with the port shown as ``$PORT``."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env)
        cmd = shlex.join(a.replace("{port}", "PORT") for a in self.argv).replace("PORT", "$PORT")
        return f"{env} {cmd}" if env else cmd


@dataclass
class Server:
    """A running server in its own process group; use as a context manager."""

    spec: ServerSpec
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    seen: list[str] = field(default_factory=list)

    def __hash__(self) -> int:
        return id(self)

    def __enter__(self) -> "Server":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> None:
        """Launch, learn the port, await the ready line and a good ``GET /``."""
        if not self.spec.port_from_log:
            self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in self.spec.argv]
        env = {**os.environ, **dict(self.spec.env)}
        try:
            self.proc = subprocess.Popen(
                argv,
                cwd=BENCH_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise ServerError(f"cannot execute {argv[0]}: {exc}") from exc
        _RUNNING.add(self)
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the drain thread catch the last lines
                self.stop()
                raise ServerError(f"exited with {self.proc.returncode}: {self.tail()}")
            if self._ready() and self._answers():
                time.sleep(self.spec.settle)
                return
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"not ready after {timeout:.0f}s: {self.tail()}")

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            if LISTEN_RE.search(line) or (self.spec.ready and re.search(self.spec.ready, line)):
                self.seen.append(line)

    def _ready(self) -> bool:
        if self.spec.port_from_log and not self.port:
            for line in self.seen:
                if match := LISTEN_RE.search(line):
                    self.port = int(match.group(1))
        if not self.port:
            return False
        return not self.spec.ready or any(re.search(self.spec.ready, s) for s in self.seen)

    def _answers(self) -> bool:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
        try:
            conn.request("GET", "/")
            resp = conn.getresponse()
            return resp.status == 200 and resp.read() == HELLO
        except OSError:
            return False
        finally:
            conn.close()

    def alive(self) -> bool:
        """Whether the root process is still running."""
        return self.proc is not None and self.proc.poll() is None

    def tail(self) -> str:
        """The last stderr lines, for error messages."""
        text = " | ".join(line.strip() for line in list(self.log)[-3:])
        return text[-300:] or "(no output)"

    def pids(self) -> list[int]:
        """The root process and all its descendants."""
        return process_tree(self.proc.pid) if self.alive() and self.proc else []

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + grace
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        _RUNNING.discard(self)


def _group_alive(pgid: int) -> bool:
    """Whether a live (non-zombie) process of group ``pgid`` remains."""
    return any((f := _stat(pid)) is not None and f[2] == str(pgid) for pid in _all_pids())


def stop_all() -> None:
    """Stop every server this process started (atexit and signal safety net)."""
    for server in list(_RUNNING):
        server.stop(grace=3)


atexit.register(stop_all)


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat from ``state`` on (index 0 = state, 1 = ppid, 2 = pgrp)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return None if fields[0] == "Z" else fields


def process_tree(root: int) -> list[int]:
    """``root`` and its live descendants, from the ppid links in /proc."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        if (fields := _stat(pid)) is not None:
            children.setdefault(int(fields[1]), []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """Summed utime+stime of ``pids``, in seconds."""
    ticks = 0
    for pid in pids:
        if (fields := _stat(pid)) is not None:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLK_TCK


def _status_kib(path: str, key: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (0 if gone)."""
    return _status_kib(f"/proc/{pid}/status", "VmRSS:")


def pss_kib(pid: int) -> int:
    """Proportional set size of ``pid`` in KiB: shared pages split among sharers."""
    return _status_kib(f"/proc/{pid}/smaps_rollup", "Pss:")


def socket_count(pid: int) -> int:
    """Number of open socket descriptors of ``pid``."""
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


@dataclass(frozen=True)
class Load:
    """One wrk invocation shape."""

    threads: int = 1
    connections: int = 64
    path: str = "/"
    script: str | None = None
    headers: tuple[str, ...] = ()
    cpus: str | None = None  # pin wrk to these CPUs (taskset -c)

    def argv(self, port: int | str, duration: int) -> list[str]:
        """The wrk argv for ``port`` and ``duration`` seconds."""
        argv = ["taskset", "-c", self.cpus] if self.cpus else []
        argv += ["wrk", f"-t{self.threads}", f"-c{self.connections}", f"-d{duration}s", "--latency"]
        for header in self.headers:
            argv += ["-H", header]
        if self.script:
            argv += ["-s", self.script]
        return [*argv, f"http://{HOST}:{port}{self.path}"]


Row = dict[str, float]


@dataclass(frozen=True)
class Shape:
    """A client shape: wrk's connections, optionally through nginx."""

    key: str
    title: str
    connections: int
    nginx: bool = False

    def load(self) -> Load:
        return Load(threads=1, connections=self.connections)


@dataclass
class Scenario:
    """A set of servers measured under one load (``load=None``: the memory probe)."""

    key: str
    title: str
    peer: str
    servers: list[ServerSpec]
    load: Load | None = None
    bound: float | None = None  # theoretical req/s ceiling, reported as a fraction
    shape: Shape | None = None  # a balance scenario: per-worker spread under this shape
    rounds: int | None = None  # at most this many rounds (balance runs are long)


@dataclass(frozen=True)
class WrkResult:
    """Parsed wrk output."""

    rps: float
    requests: int
    p50_ms: float
    p99_ms: float
    errors: int


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_wrk(text: str) -> WrkResult:
    """Extract req/s, request count, p50/p99 and errors (socket + non-2xx) from wrk --latency."""

    def latency(pct: str) -> float:
        match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
        if not match:
            raise ValueError(f"no {pct}% latency in wrk output")
        return float(match.group(1)) * _UNITS_MS[match.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    if not rps or not total:
        raise ValueError("unparsable wrk output: " + text[-300:])
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors += int(non2xx.group(1)) if non2xx else 0
    return WrkResult(float(rps.group(1)), int(total.group(1)), latency("50"), latency("99"), errors)


def run_wrk(load: Load, port: int, duration: int) -> WrkResult:
    """Run wrk against ``port`` (bounded by a timeout) and parse its output."""
    out = subprocess.run(
        load.argv(port, duration),
        cwd=BENCH_DIR,
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=False,
    )
    if out.returncode != 0:
        raise ServerError(f"wrk exited {out.returncode}: {out.stderr.strip()[-300:]}")
    return parse_wrk(out.stdout)


def open_idle_connections(port: int, count: int, timeout: float = 5.0) -> list[socket.socket]:
    """Open ``count`` keep-alive connections, one answered request on each; leave them open."""
    request = f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    socks: list[socket.socket] = []
    deadline = time.monotonic() + 60
    try:
        for _ in range(count):
            if time.monotonic() > deadline:
                break
            sock = socket.create_connection((HOST, port), timeout=timeout)
            socks.append(sock)
            sock.sendall(request)
            buf = b""
            while not buf.endswith(HELLO):
                chunk = sock.recv(4096)
                if not chunk:
                    raise ServerError(f"connection {len(socks)} closed by the server")
                buf += chunk
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks: list[socket.socket]) -> None:
    """Close every socket in ``socks``."""
    for sock in socks:
        sock.close()
