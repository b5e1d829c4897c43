"""What a HUP may change: the new generation gets today's settings, except those that
shaped the master, its sockets or its identity (those need a USR2 re-exec).
"""

from __future__ import annotations

import dataclasses

from hybridserve.config import Config

STARTUP_ONLY = (
    "bind",
    "backlog",
    "user",
    "group",
    "umask",
    "pid_file",
    "metrics_bind",
    "control_socket",
    "preload",
    "reload",
    "reload_dirs",
    "chdir",
    "app_dir",
    "tls",
    "error_log",
    "access_log",
    "log_config",
)


def merge_reloaded(old: Config, fresh: Config) -> tuple[Config, list[str]]:
    """``fresh`` with the startup-only settings kept from ``old``; the ones that differed."""
    fixed = {name: getattr(old, name) for name in STARTUP_ONLY}
    changed = [name for name, value in fixed.items() if getattr(fresh, name) != value]
    return dataclasses.replace(fresh, **fixed), changed
