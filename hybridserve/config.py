"""Every setting, its default and the reason for it, declared once.

The CLI (``cli.py``) builds its flags from the ``metadata`` of these fields, so a setting
added here is a flag, with its help text, at once. A Config is frozen: it is validated in
``__post_init__`` and never changed after the master starts. The nested groups (limits,
timeouts, WebSocket, TLS, static files) are in ``config_groups.py``, the way a field
declares its flag in ``config_fields.py``, the choices and text formats in ``config_values.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hybridserve.config_fields import (
    APPLICATION,
    BINDING,
    HTTP,
    LIMITS,
    LOGGING,
    PROCESS,
    PROXIES,
    WORKERS,
    require,
    require_choice,
    require_valid,
    setting,
)
from hybridserve.config_groups import TLS, Limits, Static, Timeouts, WebSocket
from hybridserve.config_values import (
    HTTP_BACKENDS,
    INTERFACES,
    LIFESPAN_MODES,
    LOG_LEVELS,
    LOOPS,
    check_app_spec,
    check_peers,
    check_umask,
)
from hybridserve.cpus import available_cpus
from hybridserve.hooks import Hooks


def default_workers() -> int:
    """One worker per CPU this process may use: affinity and the cgroup quota (cpus.py).

    WEB_CONCURRENCY, when set, comes before this as the default (sources.py).
    """
    return available_cpus()


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole server configuration. ``app=None`` serves the built-in demo app."""

    app: str | None = setting(
        None,
        "The application as MODULE:ATTRIBUTE, or MODULE:FACTORY() to call a factory "
        "(default: the demo app).",
        flag="app",
    )
    bind: tuple[str, ...] = setting(
        ("127.0.0.1:8000",),
        "Address to listen on: HOST:PORT, [IPv6]:PORT, unix:PATH or fd://N. Repeatable.",
        flag="--bind",
        section=BINDING,
        metavar="ADDRESS",
        short="-b",
    )
    workers: int = setting(
        default_workers(),
        "Number of worker processes (default: $WEB_CONCURRENCY, else the CPUs this process "
        "may use, by affinity and cgroup quota).",
        flag="--workers",
        section=WORKERS,
        short="-w",
    )
    threads: int = setting(
        8,
        "Threads per worker running WSGI requests; also the worker's accept capacity.",
        flag="--threads",
        section=WORKERS,
    )
    interface: str = setting(
        "auto",
        "Application interface.",
        flag="--interface",
        section=APPLICATION,
        choices=INTERFACES,
    )
    factory: bool = setting(
        False,
        "Treat APP as a factory: call it with no arguments to get the app.",
        flag="--factory",
        section=APPLICATION,
    )
    app_dir: str = setting(
        ".",
        "Directory put first on sys.path before the app is imported.",
        flag="--app-dir",
        section=APPLICATION,
        metavar="DIR",
    )
    chdir: str | None = setting(
        None,
        "Change to this directory before loading the app.",
        flag="--chdir",
        section=APPLICATION,
        metavar="DIR",
    )
    loop: str = setting(
        "auto", "Event loop implementation.", flag="--loop", section=WORKERS, choices=LOOPS
    )
    http: str = setting(
        "auto", "HTTP/1.1 parser backend.", flag="--http", section=HTTP, choices=HTTP_BACKENDS
    )
    preload: bool = setting(
        False,
        "Import the app in the master before forking workers.",
        flag="--preload",
        section=APPLICATION,
    )
    backlog: int = setting(
        2048,
        "Listen backlog: connections the kernel queues for the workers.",
        flag="--backlog",
        section=BINDING,
    )
    max_requests: int = setting(
        0,
        "Restart a worker after it served this many requests (0: never).",
        flag="--max-requests",
        section=WORKERS,
    )
    max_requests_jitter: int = setting(
        0,
        "Random extra up to this many requests, so workers don't restart together.",
        flag="--max-requests-jitter",
        section=WORKERS,
    )
    max_worker_memory_mib: int = setting(
        0,
        "Replace a worker whose resident memory stays above this many MiB for 3 samples "
        "a second apart; the new one starts first (0: no limit).",
        flag="--max-worker-memory",
        section=WORKERS,
        metavar="MIB",
    )
    max_worker_lifetime_s: float = setting(
        0.0,
        "Replace a worker after it has run this many seconds; the new one starts first (0: never).",
        flag="--max-worker-lifetime",
        section=WORKERS,
    )
    max_worker_lifetime_jitter_s: float = setting(
        0.0,
        "Random extra lifetime up to this many seconds, so workers don't leave together.",
        flag="--max-worker-lifetime-jitter",
        section=WORKERS,
    )
    limit_concurrency: int = setting(
        0,
        "Most requests a worker runs at once; ASGI only, WSGI uses --threads (0: no limit).",
        flag="--limit-concurrency",
        section=LIMITS,
    )
    lifespan: str = setting(
        "auto",
        "ASGI lifespan: on (must succeed), off, or auto (used if the app supports it).",
        flag="--lifespan",
        section=APPLICATION,
        choices=LIFESPAN_MODES,
    )
    limit_connections: int = setting(
        4096,
        "Most open connections per worker; beyond, it stops accepting (0: no limit).",
        flag="--limit-connections",
        section=LIMITS,
    )
    proxy_protocol: bool = setting(
        False,
        "Expect a PROXY protocol (v1 or v2) header on every connection, as HAProxy or an "
        "AWS NLB sends it, and take the client address from it.",
        flag="--proxy-protocol",
        section=PROXIES,
    )
    root_path: str = setting(
        "",
        "Path prefix the app is mounted under (SCRIPT_NAME / root_path).",
        flag="--root-path",
        section=PROXIES,
        metavar="PATH",
    )
    forwarded_allow_ips: str = setting(
        "127.0.0.1,::1",
        "Peers (addresses or networks, comma-separated; * for all; empty for none) whose "
        "X-Forwarded-For/-Proto/-Host and Forwarded headers are believed. A Unix-socket "
        "peer counts as trusted.",
        flag="--forwarded-allow-ips",
        section=PROXIES,
        metavar="ADDRESSES",
    )
    server_header: bool = setting(
        True, "Add a Server header unless the app set one.", flag="--server-header", section=HTTP
    )
    http2: bool = setting(
        True,
        "Speak HTTP/2: over TLS when the client offers h2 (ALPN), and on plain TCP when it "
        "starts with the HTTP/2 preface (prior knowledge). No Upgrade: h2c (RFC 9113 §3.1).",
        flag="--http2",
        section=HTTP,
    )
    http2_max_concurrent_streams: int = setting(
        100,
        "Streams one HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS; "
        "RFC 9113 suggests at least 100). A WSGI worker announces no more than its --threads.",
        flag="--http2-max-concurrent-streams",
        section=HTTP,
    )
    log_level: str = setting(
        "info",
        "Error log level.",
        flag="--log-level",
        section=LOGGING,
        aliases={"warn": "warning"},
        choices=LOG_LEVELS,
    )
    access_log: str | None = setting(
        None,
        "Access log: a file path, or - for stderr (default: off).",
        flag="--access-log",
        section=LOGGING,
        metavar="FILE",
    )
    access_log_format: str = setting(
        '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
        "Access log line, with gunicorn's atoms (plus %(D)s, %(M)s, {header}i, {header}o), "
        "or json for one JSON object per request.",
        flag="--access-log-format",
        section=LOGGING,
        metavar="FORMAT",
    )
    error_log: str = setting(
        "-",
        "Error log: a file path, or - for stderr.",
        flag="--error-log",
        section=LOGGING,
        metavar="FILE",
    )
    log_config: str | None = setting(
        None,
        "A logging dictConfig file (.json or .toml) applied last.",
        flag="--log-config",
        section=LOGGING,
        metavar="FILE",
    )
    pid_file: str | None = setting(
        None, "Write the master's pid to this file.", flag="--pid", section=PROCESS, metavar="FILE"
    )
    user: str | None = setting(
        None,
        "Run workers as this user (name or uid); needs root.",
        flag="--user",
        section=PROCESS,
        metavar="USER",
    )
    group: str | None = setting(
        None,
        "Run workers as this group (name or gid); needs root.",
        flag="--group",
        section=PROCESS,
        metavar="GROUP",
    )
    umask: str | None = setting(
        None,
        "Octal umask for the server processes.",
        flag="--umask",
        section=PROCESS,
        metavar="MODE",
    )
    metrics_bind: str | None = setting(
        None,
        "Serve Prometheus /metrics and /healthz, /readyz from the master at HOST:PORT.",
        flag="--metrics-bind",
        section=LOGGING,
        metavar="ADDRESS",
    )
    metrics_path: str | None = setting(
        None,
        "Also answer this path on the application's port with the metrics (off by default: "
        "an app port is often public).",
        flag="--metrics-path",
        section=LOGGING,
        metavar="PATH",
    )
    control_socket: str | None = setting(
        None,
        "Answer `hybridserve ctl` and `hybridserve top` on this Unix socket (mode 0600; "
        "off by default).",
        flag="--control-socket",
        section=PROCESS,
        metavar="PATH",
    )
    drain_delay_s: float = setting(
        0.0,
        "On TERM, fail readiness and keep serving this many seconds before draining, so a "
        "load balancer can stop sending traffic first.",
        flag="--drain-delay",
        section=PROCESS,
    )
    reload: bool = setting(
        False,
        "Development: restart workers when source files change.",
        flag="--reload",
        section=PROCESS,
    )
    reload_dirs: tuple[str, ...] = setting(
        (),
        "Directory to watch with --reload (default: the app's). Repeatable.",
        flag="--reload-dir",
        section=PROCESS,
        metavar="DIR",
    )
    limits: Limits = field(default_factory=Limits)
    timeouts: Timeouts = field(default_factory=Timeouts)
    websocket: WebSocket = field(default_factory=WebSocket)
    tls: TLS = field(default_factory=TLS)
    static: Static = field(default_factory=Static)
    # Server hooks from a gunicorn-style --config FILE.py (hooks.py); behaviour, not a setting.
    hooks: Hooks = field(default_factory=Hooks, compare=False, repr=False)

    def __post_init__(self) -> None:
        require(self, len(self.bind) >= 1, "bind", "needs at least one address")
        require(self, 1 <= self.workers <= 1024, "workers", "must be between 1 and 1024")
        require(self, 1 <= self.threads <= 4096, "threads", "must be between 1 and 4096")
        require(self, self.backlog >= 1, "backlog", "must be at least 1")
        for name in (
            "max_requests",
            "max_requests_jitter",
            "max_worker_memory_mib",
            "max_worker_lifetime_s",
            "max_worker_lifetime_jitter_s",
            "limit_concurrency",
        ):
            require(self, getattr(self, name) >= 0, name, "must not be negative")
        streams = self.http2_max_concurrent_streams
        require(self, streams >= 1, "http2_max_concurrent_streams", "must be at least 1")
        require(self, self.drain_delay_s >= 0, "drain_delay_s", "must not be negative")
        path = self.metrics_path
        require(self, path is None or path.startswith("/"), "metrics_path", "must start with '/'")
        require(self, self.limit_connections >= 0, "limit_connections", "must not be negative")
        root = self.root_path
        require(self, root == "" or root.startswith("/"), "root_path", "must start with '/'")
        for name in ("interface", "loop", "http", "log_level", "lifespan"):
            require_choice(self, name)
        require_valid(self, "forwarded_allow_ips", check_peers)
        require_valid(self, "umask", check_umask)
        require_valid(self, "app", check_app_spec)

    @property
    def root_path_stripped(self) -> str:
        return self.root_path.rstrip("/")
