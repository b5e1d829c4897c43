"""How a master hands over: to a new master on the same sockets (USR2), or to new workers
when source files change (--reload). Both only start things; the arbiter's loop decides.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterable

from hybridserve.errors import EXIT_ERROR
from hybridserve.master.sockets import INHERIT_ENV

log = logging.getLogger("hybridserve.error")

LAUNCH_DIR = os.getcwd()  # imported by the CLI before --chdir: where a USR2 re-exec starts


def start_new_master(listeners: list[socket.socket], handled: Iterable[int]) -> int:
    """Fork and exec ``hybridserve`` with our argv, passing the listeners; its pid."""
    env = {**os.environ, INHERIT_ENV: ",".join(str(s.fileno()) for s in listeners)}
    argv = [sys.executable, "-m", "hybridserve", *sys.argv[1:]]
    pid = os.fork()
    if pid == 0:
        try:
            signal.set_wakeup_fd(-1)
            for sig in handled:
                signal.signal(sig, signal.SIG_DFL)
            os.chdir(LAUNCH_DIR)
            os.execve(sys.executable, argv, env)
        finally:
            os._exit(EXIT_ERROR)
    return pid


def move_pid_file(path: str | None, suffix: str, *, add: bool) -> str | None:
    """Rename the pid file to or from ``path + suffix``; the name it has now."""
    if path is None:
        return None
    target = path + suffix if add else path.removesuffix(suffix)
    if target == path:
        return path
    try:
        os.rename(path, target)
    except OSError:
        return path
    return target


def watch_sources(
    dirs: tuple[str, ...], stop: threading.Event, on_change: Callable[[], None]
) -> None:
    """--reload (development only): ``on_change`` for every batch of changed Python files.

    Runs in a thread of the master; ``on_change`` must only queue work for the loop.
    """
    import watchfiles

    log.info("Watching %s for changes", ", ".join(dirs))
    for changes in watchfiles.watch(*dirs, watch_filter=watchfiles.PythonFilter(), stop_event=stop):
        names = sorted({os.path.basename(path) for _, path in changes})
        log.info("Changed: %s; reloading", ", ".join(names))
        with contextlib.suppress(OSError):
            on_change()
