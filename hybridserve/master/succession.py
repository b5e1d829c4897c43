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
from collections.abc import Iterable

from hybridserve.errors import EXIT_ERROR
from hybridserve.master.sockets import INHERIT_ENV
from hybridserve.worker.server import die_with_parent

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


def start_watcher(
    dirs: tuple[str, ...], master_pid: int, handled: Iterable[int], inherited: Iterable[int]
) -> int:
    """Fork the --reload watcher: it sends the master HUP for every batch of changed files.

    ``inherited`` are the master's descriptors the watcher must not hold (a listener kept
    open here would outlive the drain).
    """
    pid = os.fork()
    if pid != 0:
        return pid
    code = EXIT_ERROR
    try:
        signal.set_wakeup_fd(-1)
        for sig in handled:
            signal.signal(sig, signal.SIG_DFL)
        for fd in inherited:
            with contextlib.suppress(OSError):
                os.close(fd)
        die_with_parent()
        watch_sources(dirs, master_pid)
        code = 0
    except BaseException:
        log.exception("The file watcher failed")
    finally:
        logging.shutdown()
        os._exit(code)


class _MasterGone:
    """watchfiles' stop event: the watcher ends when its master is no longer its parent."""

    def __init__(self, master_pid: int) -> None:
        self._master_pid = master_pid

    def is_set(self) -> bool:
        return os.getppid() != self._master_pid


def watch_sources(dirs: tuple[str, ...], master_pid: int) -> None:
    """HUP the master for every batch of changed Python files (development only)."""
    import watchfiles

    stop = _MasterGone(master_pid)
    watching = False
    for changes in watchfiles.watch(
        *dirs,
        watch_filter=watchfiles.PythonFilter(),
        stop_event=stop,
        rust_timeout=1000,
        yield_on_timeout=True,
    ):
        if not watching:  # said once the watch is set up, so a save after it is seen
            watching = True
            log.info("Watching %s for changes", ", ".join(dirs))
        if not changes:
            continue
        names = sorted({os.path.basename(path) for _, path in changes})
        log.info("Changed: %s; reloading", ", ".join(names))
        with contextlib.suppress(ProcessLookupError):
            os.kill(master_pid, signal.SIGHUP)
