"""The master: a small synchronous loop that forks, reaps, watches and signals workers.

How it works: signal handlers only append to the ``Inbox``; ``signal.set_wakeup_fd`` wakes
a ``select`` on a pipe (the ``Console``'s, beside the metrics and control sockets), and the
loop then acts on the queued signals and commands, reaps children with
``waitpid(WNOHANG)``, lets the ``Fleet`` read every worker's slot (readiness, heartbeat)
and fork whatever is missing. No event loop ever exists here, so none crosses a fork.

Who owns what: the arbiter owns the process (signals, pid file, the --reload watcher, a
USR2 successor, the console) and the way out (``Shutdown``); the ``Fleet`` owns which
workers should exist; the ``Pool`` owns the live ones and their slots.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from hybridserve import __version__
from hybridserve.config import Config
from hybridserve.errors import EXIT_APP_LOAD, EXIT_ERROR, EXIT_OK
from hybridserve.hooks import ServerInfo
from hybridserve.log import reopen_files
from hybridserve.master import (
    children,
    control,
    identity,
    metrics,
    roster,
    sockets,
    succession,
    systemd,
)
from hybridserve.master.console import Console
from hybridserve.master.fleet import Fleet
from hybridserve.master.inbox import HANDLED_SIGNALS, Inbox
from hybridserve.master.pool import Pool
from hybridserve.master.shutdown import Shutdown, Step

log = logging.getLogger("hybridserve.error")


class Arbiter:
    """Runs the master loop until every worker is gone after a stop."""

    def __init__(
        self,
        config: Config,
        listeners: list[socket.socket],
        preloaded: tuple[Any, str] | None = None,
        *,
        reload_config: Callable[[], Config] | None = None,
        unix_paths: Sequence[str] = (),
    ) -> None:
        self.listeners = listeners
        self.pid = os.getpid()
        self.pid_file = config.pid_file
        self._server = ServerInfo(self.pid, config, config.workers)  # what hooks see
        self._inbox = Inbox()
        self._shutdown = Shutdown()
        self._notifier = systemd.Notifier()
        self._exit_code = EXIT_OK
        self.pool = Pool(
            max(64, config.workers * 4),
            listeners,
            preloaded=preloaded,
            server=self._server,
            setup=self._child_setup,
        )
        self.fleet = Fleet(
            config,
            self.pool,
            self._shutdown,
            notifier=self._notifier,
            server=self._server,
            reload_config=reload_config,
            give_up=self._give_up,
        )
        self._identity = identity.resolve(config)
        self._new_master: int | None = None
        self._watcher: int | None = None  # --reload's file watcher process
        self._unix_paths = unix_paths  # the socket files we created: removed on exit
        self._console: Console | None = None  # made with the wakeup pipe, in run()
        self._started_at = time.monotonic()
        self._addresses = [sockets.describe(s, tls=config.tls.enabled) for s in listeners]

    @property
    def config(self) -> Config:
        """The settings of the generation the master wants serving (HUP rereads them)."""
        return self.fleet.config

    @property
    def handed_over(self) -> bool:
        """A new master started by USR2 is running on our sockets."""
        return self._new_master is not None

    # -- main loop ----------------------------------------------------------------
    def run(self) -> int:
        children.set_title("master", self.config)
        self._inbox.open()
        console = self._console = Console(self._inbox.wakeup_r)
        self._write_pid_file()
        self.config.hooks.call("on_starting", self._server)
        if not self._start_metrics(console):
            return EXIT_ERROR
        if self.config.reload:
            self._start_watcher()
        try:
            control_path = self.config.control_socket
            if control_path is not None and not console.start_control(
                str(control_path), self._control_request
            ):
                self._exit_code = EXIT_ERROR
                return self._exit_code
            self.fleet.spawn_missing()
            while not self._finished():
                self._turn(console)
        finally:
            self._close(console)
        log.info("Shutdown complete")
        return self._exit_code

    def _start_metrics(self, console: Console) -> bool:
        if self.config.metrics_bind is None:
            return True
        try:
            console.start_metrics(self.config.metrics_bind, self._metrics_request)
        except OSError as exc:
            log.error("Cannot serve metrics on %s: %s", self.config.metrics_bind, exc)
            return False
        return True

    def _turn(self, console: Console) -> None:
        """One pass of the loop: wait, act on what arrived, reap, check, spawn."""
        hurry = self.pool.booting() or self._shutdown.deadline or self._inbox.signals
        console.poll(0.05 if hurry else 0.5)
        while self._inbox.signals:
            self._dispatch(self._inbox.signals.popleft())
        while self._inbox.commands:
            acts_as, asked = self._inbox.commands.popleft()
            if asked:
                log.info("Control socket: %s", asked)
            self._act(acts_as)
        if self._shutdown.drain_due(time.monotonic()):
            self._begin_drain()
        self._reap()
        self.fleet.check()
        self.fleet.spawn_missing()

    def _close(self, console: Console) -> None:
        console.close()
        self._notifier.close()
        if self._watcher is not None:
            self.pool.kill(self._watcher, signal.SIGTERM)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._watcher, 0)
        self._inbox.close()
        if self.pid_file is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.pid_file)
        if not self.handed_over:
            for path in self._unix_paths:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        self.config.hooks.call("on_exit", self._server)

    def _finished(self) -> bool:
        if not self._shutdown.begun:
            return False
        if not self.pool.workers:
            return True
        if self._shutdown.overdue(time.monotonic()):
            self.pool.kill_remaining()
            return True
        return False

    # -- what the console answers ---------------------------------------------------
    def _control_request(self, request: control.Request) -> Any:
        """Answer what can be read now; queue what changes something for the loop."""
        now = time.monotonic()
        if request.command == "workers":
            return roster.worker_rows(self.pool.workers.values(), self.pool.slots, now)
        if request.command == "status":
            return self._status(now)
        if self._shutdown.stopping:
            raise control.ControlError("the server is stopping")
        sig, asked, times = control.plan(request, self.fleet.target, most=self.pool.most)
        self._inbox.commands.extend([(sig, asked)] + [(sig, "")] * (times - 1))  # logged once
        return {"accepted": asked}

    def _status(self, now: float) -> dict[str, Any]:
        rows = roster.worker_rows(self.pool.workers.values(), self.pool.slots, now)
        return {
            "pid": self.pid,
            "version": __version__,
            "app": self.config.app or "(demo)",
            "listeners": self._addresses,
            "uptime_s": round(now - self._started_at, 3),
            "generation": self.fleet.generation,
            "serving_generation": self.fleet.boot.serving,
            "target_workers": self.fleet.target,
            "stopping": self._shutdown.stopping,
            **roster.summary(rows, self.fleet.totals),
        }

    def _metrics_request(self, path: str) -> tuple[int, str, bytes]:
        samples = []
        for info in self.pool.workers.values():
            view = self.pool.slots.read(info.slot)
            if view.pid == info.pid:
                samples.append(metrics.WorkerSample(info.pid, info.ready, info.draining, view))
        return metrics.respond(
            path,
            samples,
            self.fleet.totals,
            stopping=self._shutdown.stopping,
            target=self.fleet.target,
            timeout_s=self.config.timeouts.worker_s,
        )

    # -- signals ------------------------------------------------------------------
    def _dispatch(self, sig: int) -> None:
        if sig == signal.SIGCHLD:
            return
        log.info("Master received %s", signal.Signals(sig).name)
        self._act(sig)

    def _act(self, sig: int) -> None:
        """What a signal (or the control request standing for it) does."""
        before = self.fleet.target
        self._act_on(sig)
        self._server.num_workers = self.fleet.target
        if self.fleet.target != before:
            self.config.hooks.call("nworkers_changed", self._server, self.fleet.target, before)

    def _act_on(self, sig: int) -> None:
        if sig == signal.SIGTERM:
            self.stop(graceful=True)
        elif sig == signal.SIGINT:
            self.stop(graceful=not self._shutdown.begun)
        elif sig == signal.SIGQUIT:
            self.stop(graceful=False)
        elif sig == signal.SIGHUP:
            self.reload()
        elif sig == signal.SIGTTIN:
            self.fleet.grow()
        elif sig == signal.SIGTTOU:
            self.fleet.shrink()
        elif sig == signal.SIGUSR1:
            log.info("Reopened %d log files; telling the workers", reopen_files())
            for info in self.pool.workers.values():
                self.pool.kill(info.pid, signal.SIGUSR1)
        elif sig == signal.SIGUSR2:
            self._reexec()

    def stop(self, *, graceful: bool) -> None:
        """Graceful: readiness fails now, the drain starts after ``--drain-delay``."""
        self._notifier.stopping()
        delay = self.config.drain_delay_s
        step = self._shutdown.request(graceful=graceful, now=time.monotonic(), drain_delay_s=delay)
        if step is Step.KILL:
            log.info("Stopping now")
            self.pool.signal_all(signal.SIGQUIT)
        elif step is Step.WAIT:
            log.info("Readiness now fails; draining in %.1fs", delay)
        elif step is Step.DRAIN:
            self._begin_drain()

    def _begin_drain(self) -> None:
        graceful_s = self.config.timeouts.graceful_s
        self._shutdown.draining(time.monotonic(), graceful_s)
        log.info("Stopping gracefully (up to %.0fs)", graceful_s)
        self.pool.signal_all(signal.SIGTERM)
        if not self.handed_over:
            # Let the last worker's close be the socket's close, right after its final
            # sweep of the backlog (a new master from USR2 keeps its own copies).
            for sock in self.listeners:
                sock.close()

    def _give_up(self) -> None:
        """The app cannot boot and nothing was ever served: exit 3."""
        self._exit_code = EXIT_APP_LOAD
        self.stop(graceful=False)

    def reload(self) -> None:
        if self._shutdown.stopping:
            return
        self._notifier.reloading()
        self.fleet.reload()
        self._server.cfg = self.config
        self.config.hooks.call("on_reload", self._server)

    # -- other processes: the successor, the watcher, the children --------------------
    def _reexec(self) -> None:
        """Start a new master on the same sockets; this one serves on until told to stop."""
        if self._new_master is not None:
            log.warning("A new master (%d) is already running; USR2 ignored", self._new_master)
            return
        self.pid_file = succession.move_pid_file(self.pid_file, ".oldbin", add=True)
        self._new_master = succession.start_new_master(self.listeners, HANDLED_SIGNALS)
        log.info("Started a new master %d on the same sockets", self._new_master)

    def _write_pid_file(self) -> None:
        if self.pid_file is not None:
            with open(self.pid_file, "w") as fh:
                fh.write(f"{self.pid}\n")

    def _start_watcher(self) -> None:
        """--reload: a child process watches the files and sends us HUP.

        A process, not a thread: the master forks workers, and a thread holding a lock
        (the logging lock, say) at the moment of a fork would hang the child.
        """
        dirs = self.config.reload_dirs or (os.getcwd(),)
        inherited = [*self._inbox.fds(), *(s.fileno() for s in self.listeners)]
        if self._console is not None:
            inherited += self._console.fds()
        self._watcher = succession.start_watcher(dirs, self.pid, HANDLED_SIGNALS, inherited)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self._watcher:
                code = os.waitstatus_to_exitcode(status)
                log.warning("File watcher %d exited (%d); --reload is off now", pid, code)
                self._watcher = None
            elif pid == self._new_master:
                code = os.waitstatus_to_exitcode(status)
                log.warning("New master %d exited (%d); this one keeps serving", pid, code)
                self._new_master = None
                self.pid_file = succession.move_pid_file(self.pid_file, ".oldbin", add=False)
            else:
                self.fleet.exited(pid, status)

    def _child_setup(self) -> None:
        """In the forked worker: shed what is the master's, become the configured user."""
        self._inbox.close_in_child()
        if self._console is not None and self._console.control is not None:
            self._console.control.close_in_child()
        children.set_title("worker", self.config)
        self._identity.apply()
