"""The groups of settings nested in Config: limits, timeouts, WebSocket, TLS, static files.

Each group checks its own values in ``__post_init__``; a failed check names the flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from hybridserve.config_fields import require, require_choice, require_valid, setting
from hybridserve.config_values import WS_BACKENDS, check_static_mounts


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
            require(self, getattr(self, name) >= 1, name, "must be at least 1")
        require(self, self.max_head_bytes >= 256, "max_head_bytes", "must be at least 256")
        require(self, self.max_body_bytes >= 0, "max_body_bytes", "must not be negative")


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
            require(self, getattr(self, name) > 0, name, "must be greater than 0")
        require(self, self.request_s >= 0, "request_s", "must not be negative")


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
        require_choice(self, "backend")
        require(self, self.max_size_bytes >= 1, "max_size_bytes", "must be at least 1")
        require(self, self.ping_interval_s >= 0, "ping_interval_s", "must not be negative")
        require(self, self.ping_timeout_s >= 0, "ping_timeout_s", "must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class TLS:
    """HTTPS on every listener when a certificate is given; TLS 1.2 at least; ALPN h2, http/1.1."""

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
        require(self, self.cert_reqs in (0, 1, 2), "cert_reqs", "must be 0, 1 or 2")
        require(
            self,
            self.certfile is not None or self.keyfile is None,
            "keyfile",
            "needs --certfile too",
        )
        require(
            self,
            self.cert_reqs == 0 or self.ca_certs is not None,
            "cert_reqs",
            "needs --ca-certs to verify client certificates",
        )

    @property
    def enabled(self) -> bool:
        return self.certfile is not None


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
        require_valid(self, "mounts", check_static_mounts)
        require(self, self.max_age_s >= 0, "max_age_s", "must not be negative")
