"""Every setting, its default and the reason for it, declared once.

The CLI (``cli.py``) builds its flags from the ``metadata`` of these fields, so a setting
added here is a flag, with its help text, at once. A Config is frozen: it is validated in
``__post_init__`` and never changed after the master starts.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import ipaddress
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from hybridserve.cpus import available_cpus
from hybridserve.errors import ConfigError
from hybridserve.hooks import Hooks

INTERFACES = ("auto", "wsgi", "asgi")
LOOPS = ("auto", "uvloop", "asyncio")
HTTP_BACKENDS = ("auto", "h11", "httptools")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
LIFESPAN_MODES = ("auto", "on", "off")
WS_BACKENDS = ("auto", "wsproto", "none")


# Sections of ``--help``; a setting names its own, or takes its group's (see sources.py).
APPLICATION = "application"
BINDING = "binding"
WORKERS = "workers"
HTTP = "HTTP"
LIMITS = "timeouts and limits"
TLS_SECTION = "TLS"
PROXIES = "proxies"
WEBSOCKETS = "WebSockets"
LOGGING = "logging and metrics"
PROCESS = "process"


@functools.cache
def resolved_http(name: str) -> str:
    """``--http auto`` is httptools when it (and our backend for it) imports, else h11.

    The one place ``auto`` is decided, so the banner, the worker and the parser agree.
    """
    if name != "auto":
        return name
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


@functools.cache
def resolved_loop(name: str) -> str:
    """``--loop auto`` is uvloop when installed, else asyncio's own loop."""
    if name != "auto":
        return name
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


class SettingError(ConfigError):
    """A value that fails a check; ``flag`` names the setting, ``problem`` says why.

    sources.py rewrites the message to name the file key or variable that set the value.
    """

    def __init__(self, flag: str, problem: str) -> None:
        super().__init__(f"{flag} {problem}")
        self.flag = flag
        self.problem = problem


def setting(
    default: Any,
    text: str,
    *,
    flag: str,
    short: str = "",
    section: str = "",
    metavar: str = "",
    **extra: Any,
) -> Any:
    """A dataclass field that also describes its command-line flag and its --help section."""
    meta = {"help": text, "flag": flag, "short": short, "section": section, **extra}
    if metavar:
        meta["metavar"] = metavar
    if isinstance(default, (list, dict, set)):
        # A fresh copy per Config: one shared mutable default would leak between instances.
        return field(default_factory=functools.partial(copy.copy, default), metadata=meta)
    return field(default=default, metadata=meta)


def default_workers() -> int:
    """One worker per CPU this process may use: affinity and the cgroup quota (cpus.py).

    WEB_CONCURRENCY, when set, comes before this as the default (sources.py).
    """
    return available_cpus()


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Sizes the sans-IO layer enforces; each breach has its own status code."""

    max_request_line_bytes: int = setting(
        8190,
        "Longest request line accepted, in bytes (414 beyond). gunicorn's default.",
        flag="--limit-request-line",
    )
    max_header_count: int = setting(
        100,
        "Most header fields in one request (431 beyond). gunicorn's default.",
        flag="--limit-request-fields",
    )
    max_header_field_bytes: int = setting(
        8190,
        "Longest single header field line, in bytes (431 beyond). gunicorn's default.",
        flag="--limit-request-field-size",
    )
    max_head_bytes: int = setting(
        64 * 1024,
        "Largest whole request head, in bytes (431 beyond); bounds memory per connection.",
        flag="--limit-request-head",
    )
    max_body_bytes: int = setting(
        0,
        "Largest request body, in bytes (413 beyond); 0 means unlimited, as bodies stream.",
        flag="--limit-request-body",
    )

    def __post_init__(self) -> None:
        for name in ("max_request_line_bytes", "max_header_count", "max_header_field_bytes"):
            _require(getattr(self, name) >= 1, name, "must be at least 1")
        _require(self.max_head_bytes >= 256, "max_head_bytes", "must be at least 256")
        _require(self.max_body_bytes >= 0, "max_body_bytes", "must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Durations in seconds; the worker enforces them with one coarse per-second sweep."""

    worker_s: float = setting(
        30.0,
        "Seconds a worker's event loop may go without a heartbeat before it is killed.",
        flag="--timeout",
    )
    graceful_s: float = setting(
        30.0,
        "Seconds workers get to finish in-flight requests on stop before they are killed.",
        flag="--graceful-timeout",
    )
    keep_alive_s: float = setting(
        5.0,
        "Seconds an idle keep-alive connection stays open (uvicorn's default; gunicorn uses 2).",
        flag="--keep-alive",
    )
    request_head_s: float = setting(
        10.0,
        "Seconds a client has to send a whole request head once it started (408 beyond).",
        flag="--timeout-request-head",
    )

    body_read_s: float = setting(
        30.0,
        "Seconds a request body may stall between two reads from the client (408 or close).",
        flag="--timeout-body-read",
    )
    write_s: float = setting(
        60.0,
        "Seconds a client may leave a response unread (the server's send buffer full) "
        "before the connection is dropped.",
        flag="--timeout-write",
    )
    request_s: float = setting(
        0.0,
        "Seconds one request may run before it is answered 503 (or cut off) and its thread "
        "written off; a worker that lost all its threads is replaced (0: no limit).",
        flag="--request-timeout",
    )

    def __post_init__(self) -> None:
        for name in (
            "worker_s",
            "graceful_s",
            "keep_alive_s",
            "request_head_s",
            "body_read_s",
            "write_s",
        ):
            _require(getattr(self, name) > 0, name, "must be greater than 0")
        _require(self.request_s >= 0, "request_s", "must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSocket:
    """WebSocket settings for ASGI apps; the names follow uvicorn's flags."""

    backend: str = setting(
        "auto",
        "WebSocket support (auto: wsproto when installed).",
        flag="--ws",
        choices=WS_BACKENDS,
    )
    max_size_bytes: int = setting(
        16 * 1024 * 1024,
        "Largest incoming message, in bytes; larger closes with 1009 (uvicorn's default).",
        flag="--ws-max-size",
    )
    ping_interval_s: float = setting(
        20.0, "Seconds between server pings (0: never).", flag="--ws-ping-interval"
    )
    ping_timeout_s: float = setting(
        20.0, "Seconds to wait for a pong before closing (0: forever).", flag="--ws-ping-timeout"
    )
    per_message_deflate: bool = setting(
        True, "Offer permessage-deflate compression.", flag="--ws-per-message-deflate"
    )

    def __post_init__(self) -> None:
        _require(self.backend in WS_BACKENDS, "backend", "must be one of " + ", ".join(WS_BACKENDS))
        _require(self.max_size_bytes >= 1, "max_size_bytes", "must be at least 1")
        _require(self.ping_interval_s >= 0, "ping_interval_s", "must not be negative")
        _require(self.ping_timeout_s >= 0, "ping_timeout_s", "must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class TLS:
    """HTTPS on every listener when a certificate is given; TLS 1.2 at least, ALPN http/1.1."""

    certfile: str | None = setting(
        None, "TLS certificate chain (PEM); enables HTTPS.", flag="--certfile", metavar="FILE"
    )
    keyfile: str | None = setting(None, "TLS private key (PEM).", flag="--keyfile", metavar="FILE")
    keyfile_password: str | None = setting(
        None, "Password of an encrypted --keyfile.", flag="--keyfile-password", metavar="PASSWORD"
    )
    ca_certs: str | None = setting(
        None,
        "CA bundle (PEM) to verify client certificates with.",
        flag="--ca-certs",
        metavar="FILE",
    )
    cert_reqs: int = setting(
        0,
        "Client certificates: 0 not asked, 1 optional, 2 required.",
        flag="--cert-reqs",
        metavar="{0,1,2}",
    )
    ciphers: str = setting(
        "",
        "OpenSSL cipher list for TLS 1.2 (default: OpenSSL's).",
        flag="--ssl-ciphers",
        metavar="CIPHERS",
    )

    def __post_init__(self) -> None:
        _require(self.cert_reqs in (0, 1, 2), "cert_reqs", "must be 0, 1 or 2")
        _require(
            self.certfile is not None or self.keyfile is None,
            "keyfile",
            "needs --certfile too",
        )
        _require(
            self.cert_reqs == 0 or self.ca_certs is not None,
            "cert_reqs",
            "needs --ca-certs to verify client certificates",
        )

    @property
    def enabled(self) -> bool:
        return self.certfile is not None


def parse_static_mount(spec: str) -> tuple[str, str]:
    """``"/static=./dir"`` → ``("/static", "./dir")``; raises ValueError saying what is wrong."""
    prefix, eq, directory = (part.strip() for part in spec.partition("="))
    if not eq or not prefix or not directory:
        raise ValueError(f"expected URL_PREFIX=DIR, got {spec!r}")
    segments = prefix.split("/")
    if not prefix.startswith("/") or any(c in prefix for c in "?#%\\\0") or ".." in segments:
        raise ValueError(f"the URL prefix must be a plain path starting with '/', got {prefix!r}")
    return prefix.rstrip("/"), directory


@dataclass(frozen=True, slots=True, kw_only=True)
class Static:
    """Static files the worker serves itself, on its loop, without entering the app."""

    mounts: tuple[str, ...] = setting(
        (),
        "Serve the files under DIR at URL_PREFIX (as URL_PREFIX=DIR, e.g. "
        "/static=./staticfiles) from the worker, zero-copy. Repeatable.",
        flag="--static",
        metavar="URL_PREFIX=DIR",
    )
    max_age_s: int = setting(
        3600,
        "Cache-Control max-age of static files, in seconds (0: no-cache, revalidate each "
        "time). An hour suits files without a content hash in their names.",
        flag="--static-max-age",
    )
    index: bool = setting(
        False,
        "Answer a directory's URL with its index.html (off: directories are 404).",
        flag="--static-index",
    )
    sendfile: bool = setting(
        True,
        "Send file bodies (static files, ASGI pathsend, WSGI file_wrapper) with sendfile(2) "
        "on plain TCP; off: read them in a thread, as under TLS (for file systems where "
        "sendfile misbehaves, such as some shared folders).",
        flag="--sendfile",
    )

    def __post_init__(self) -> None:
        for spec in self.mounts:
            try:
                parse_static_mount(spec)
            except ValueError as exc:
                raise SettingError("--static", str(exc)) from None
        _require(self.max_age_s >= 0, "max_age_s", "must not be negative")


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
        _require(len(self.bind) >= 1, "bind", "needs at least one address")
        _require(1 <= self.workers <= 1024, "workers", "must be between 1 and 1024")
        _require(1 <= self.threads <= 4096, "threads", "must be between 1 and 4096")
        _require(self.backlog >= 1, "backlog", "must be at least 1")
        _require(self.max_requests >= 0, "max_requests", "must not be negative")
        _require(self.max_requests_jitter >= 0, "max_requests_jitter", "must not be negative")
        for name in ("max_worker_memory_mib", "max_worker_lifetime_s"):
            _require(getattr(self, name) >= 0, name, "must not be negative")
        jitter = self.max_worker_lifetime_jitter_s
        _require(jitter >= 0, "max_worker_lifetime_jitter_s", "must not be negative")
        _require(self.limit_concurrency >= 0, "limit_concurrency", "must not be negative")
        _require(
            self.http2_max_concurrent_streams >= 1,
            "http2_max_concurrent_streams",
            "must be at least 1",
        )
        _require(self.drain_delay_s >= 0, "drain_delay_s", "must not be negative")
        _require(
            self.metrics_path is None or self.metrics_path.startswith("/"),
            "metrics_path",
            "must start with '/'",
        )
        _require(self.limit_connections >= 0, "limit_connections", "must not be negative")
        _require(
            self.root_path == "" or self.root_path.startswith("/"),
            "root_path",
            "must start with '/'",
        )
        for name, allowed in (
            ("interface", INTERFACES),
            ("loop", LOOPS),
            ("http", HTTP_BACKENDS),
            ("log_level", LOG_LEVELS),
            ("lifespan", LIFESPAN_MODES),
        ):
            _require(getattr(self, name) in allowed, name, "must be one of " + ", ".join(allowed))
        for item in filter(None, (part.strip() for part in self.forwarded_allow_ips.split(","))):
            _require(
                item == "*" or _is_network(item),
                "forwarded_allow_ips",
                f"{item!r} is not an address",
            )
        if self.umask is not None:
            _require(_is_octal(self.umask), "umask", f"must be an octal number, got {self.umask!r}")
        if self.app is not None:
            _check_app_spec(self.app)

    @property
    def root_path_stripped(self) -> str:
        return self.root_path.rstrip("/")


def _check_app_spec(spec: str) -> None:
    """MODULE:ATTRIBUTE, maybe with a factory call; a file path gets the module it means."""
    module, _, attr = spec.partition(":")
    if "/" in module or "\\" in module:
        path = PurePath(module)
        hint = f"{path.name.removesuffix('.py')}:{attr or 'app'}"
        if str(path.parent) not in ("", "."):
            hint += f" --app-dir {path.parent}"
        _require(False, "app", f"must be a module name, not a file path: try {hint}")
    name = attr.partition("(")[0].strip()
    if not attr and module and " " not in module:
        # Django's wsgi.py and asgi.py name their app "application".
        example = f"{module}:{'application' if module.endswith(('wsgi', 'asgi')) else 'app'}"
        _require(False, "app", f"must look like MODULE:ATTRIBUTE, such as {example}")
    _require(
        bool(module) and bool(name) and " " not in module + name,
        "app",
        f"must look like MODULE:ATTRIBUTE, got {spec!r}",
    )


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _is_octal(text: str) -> bool:
    try:
        return 0 <= int(text, 8) <= 0o777
    except ValueError:
        return False


def _flags(cls: type) -> dict[str, str]:
    """Field name to flag, for every setting in ``cls`` and the groups nested in it."""
    found: dict[str, str] = {}
    for f in dataclasses.fields(cls):
        if "flag" in f.metadata:
            flag = str(f.metadata["flag"])
            found[f.name] = "APP" if flag == "app" else flag
        elif isinstance(f.default_factory, type) and dataclasses.is_dataclass(f.default_factory):
            found.update(_flags(f.default_factory))
    return found


@functools.cache
def _flag_of(name: str) -> str:
    return _flags(Config).get(name, "--" + name.replace("_", "-"))


def _require(ok: bool, name: str, message: str) -> None:
    """Raise a SettingError naming the flag of field ``name`` unless ``ok``."""
    if not ok:
        raise SettingError(_flag_of(name), message)
