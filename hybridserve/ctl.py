"""``hybridserve ctl``: ask a running master through its control socket, or tell it to act.

The socket's path comes from ``--control-socket``, else ``HYBRIDSERVE_CONTROL_SOCKET``,
else the config file the server reads (``--config FILE`` or ``[tool.hybridserve]`` in
./pyproject.toml), so the same words reach the server and its client. Exit codes: 0 done,
1 the server refused or could not be reached, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from hybridserve.errors import EXIT_ERROR, EXIT_OK, ConfigError
from hybridserve.flags import parse_command_line
from hybridserve.sources import load

TIMEOUT_S = 5.0  # the master answers between two turns of its loop: milliseconds
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # 1,024 workers' rows are ~250 KB
WORKER_COLUMNS = (  # heading, row key, width
    ("PID", "pid", 8),
    ("GEN", "generation", 4),
    ("STATE", "state", 9),
    ("AGE", "age_s", 8),
    ("REQS", "requests", 9),
    ("INFL", "in_flight", 5),
    ("BUSY", "threads_busy", 5),
    ("CONNS", "connections", 6),
    ("LAG", "loop_lag_s", 7),
    ("RSS", "rss_bytes", 9),
)


class CtlError(Exception):
    """The server could not be reached, or it refused the request."""


def request(path: str, command: str, n: int | None = None, timeout_s: float = TIMEOUT_S) -> Any:
    """Send one request, return the server's ``result``; CtlError on any failure."""
    message: dict[str, Any] = {"command": command}
    if n is not None:
        message["n"] = n
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(path)
            sock.sendall(json.dumps(message).encode() + b"\n")
            data = _read_all(sock)
    except OSError as exc:
        raise CtlError(f"cannot reach the server at {path}: {exc.strerror or exc}") from None
    try:
        answer = json.loads(data)
    except json.JSONDecodeError:
        raise CtlError(f"not an answer from a hybridserve master at {path}") from None
    if not isinstance(answer, dict) or not answer.get("ok"):
        error = answer.get("error") if isinstance(answer, dict) else None
        raise CtlError(str(error or "the server refused the request"))
    return answer.get("result")


def _read_all(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := sock.recv(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise OSError("answer too long")
    return b"".join(chunks)


def socket_path(flag: str | None, config_file: str | None) -> str:
    """The control socket as the flag, else the environment, else the config file says.

    The same sources as the server's, HYBRIDSERVE_CMD_ARGS included.
    """
    if flag:
        return flag
    command = parse_command_line(["--config", config_file] if config_file else [])
    path = load(command).config.control_socket
    if not path:
        raise ConfigError(
            "no control socket: give --control-socket PATH, set HYBRIDSERVE_CONTROL_SOCKET, "
            "or put control-socket in the config file (the server needs it too)"
        )
    return path


# -- human output -------------------------------------------------------------------------


def format_value(key: str, value: Any) -> str:
    """A worker row's value as a person reads it: ages and sizes in their units."""
    if key == "age_s":
        return format_age(float(value))
    if key == "rss_bytes":
        return f"{value / 1048576:.1f}M" if value else "-"
    if key == "loop_lag_s":
        return f"{value * 1000:.1f}ms"
    return str(value)


def format_age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"


def format_workers(rows: list[dict[str, Any]]) -> str:
    lines = [" ".join(f"{head:>{width}}" for head, _, width in WORKER_COLUMNS)]
    for row in rows:
        cells = (f"{format_value(key, row[key]):>{w}}" for _, key, w in WORKER_COLUMNS)
        lines.append(" ".join(cells))
    return "\n".join(lines) + "\n"


def format_status(status: dict[str, Any]) -> str:
    restarts = ", ".join(f"{k} {v}" for k, v in sorted(status["restarts"].items())) or "none"
    lines = [
        f"master pid       {status['pid']} (hybridserve {status['version']})",
        f"app              {status['app']}",
        f"listening        {', '.join(status['listeners'])}",
        f"uptime           {format_age(status['uptime_s'])}",
        f"workers          {status['ready_workers']} ready of {status['workers']}"
        f" (target {status['target_workers']})",
        f"generation       {status['generation']} (serving: {status['serving_generation']})",
        f"requests         {status['requests_total']}",
        f"restarts         {restarts}",
        f"reloads          ok {status['reloads']['ok']}, failed {status['reloads']['failed']}",
    ]
    if status["last_reload_error"]:
        lines.append(f"last reload      failed: {status['last_reload_error']}")
    if status["stopping"]:
        lines.append("stopping         yes")
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybridserve ctl",
        description="Ask a running hybridserve master, or tell it what to do.",
        allow_abbrev=False,
    )
    parser.add_argument("--control-socket", metavar="PATH", help="The master's control socket.")
    parser.add_argument("--config", metavar="FILE", help="Read control-socket from this file.")
    parser.add_argument("--json", action="store_true", help="Print the answer as JSON.")
    parser.add_argument(
        "command", choices=("status", "workers", "reload", "add", "remove", "reopen", "stop")
    )
    parser.add_argument("n", nargs="?", type=int, help="Workers to add or remove (add, remove).")
    return parser


def main(argv: Sequence[str]) -> NoReturn:
    parser = _parser()
    args = parser.parse_args(list(argv))
    counted = args.command in ("add", "remove")
    if counted and args.n is None:
        parser.error(f"{args.command} needs a number of workers, e.g. {args.command} 1")
    if not counted and args.n is not None:
        parser.error(f"{args.command} takes no number")
    try:
        path = socket_path(args.control_socket, args.config)
        result = request(path, args.command, args.n)
    except ConfigError as exc:
        parser.error(str(exc))
    except CtlError as exc:
        print(f"hybridserve ctl: error: {exc}", file=sys.stderr)  # noqa: T201
        sys.exit(EXIT_ERROR)
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    elif args.command == "workers":
        sys.stdout.write(format_workers(result))
    elif args.command == "status":
        sys.stdout.write(format_status(result))
    else:
        sys.stdout.write(f"{result['accepted']}: accepted\n")
    sys.exit(EXIT_OK)
