"""The master: a small synchronous loop that forks, reaps, watches and signals workers.

How it works: signal handlers only append to a queue; ``signal.set_wakeup_fd`` wakes a
``select`` on a pipe, and the loop then dispatches the queued signals, reaps children
with ``waitpid(WNOHANG)``, reads every worker's shared-memory slot (readiness, heartbeat)
and forks whatever is missing. No event loop ever exists here, so none crosses a fork.

Workers belong to a generation. HUP starts a new one; the old one is told to drain only
once every new worker reports ready, so a reload never leaves the listeners unserved.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from hybridserve import __version__
from hybridserve.config import Config
from hybridserve.errors import EXIT_APP_LOAD, EXIT_ERROR, EXIT_OK, ConfigError
from hybridserve.hooks import ServerInfo
from hybridserve.hooks import WorkerInfo as HookWorker
from hybridserve.log import reopen_files
from hybridserve.master import (
    children,
    control,
    identity,
    metrics,
    recycle,
    roster,
    sockets,
    succession,
    systemd,
)
from hybridserve.master.boot import BootPolicy, Verdict
from hybridserve.master.children import WorkerInfo
from hybridserve.master.console import Console
from hybridserve.master.reconfig import merge_reloaded
from hybridserve.worker.exposition import encode_totals
from hybridserve.worker.slots import DRAINING, READY, Slots

log = logging.getLogger("hybridserve.error")

HANDLED_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCHLD,
)
KILL_GRACE_S = 1.0  # after SIGABRT/SIGQUIT, before SIGKILL


class Arbiter:
    """Keeps ``target`` workers of the current generation alive until told to stop."""

    def __init__(
        self,
        config: Config,
        listeners: list[socket.socket],
        preloaded: tuple[Any, str] | None = None,
        *,
        reload_config: Callable[[], Config] | None = None,
        unix_paths: Sequence[str] = (),
    ) -> None:
        self.config = config
        self._reload_config = reload_config
        self.listeners = listeners
        self.preloaded = preloaded
        self.target = config.workers
        self.generation = 1  # the generation the master wants serving
        self._newest_generation = 1  # numbers are never reused, even after a failed reload
        self._good_config = config  # what the last generation that was ready ran with
        self.workers: dict[int, WorkerInfo] = {}
        self.slots = Slots(max(64, config.workers * 4))
        # The last slot is the master's: it publishes the totals of workers gone there.
        self._free_slots = list(range(self.slots.count - 2, -1, -1))
        self._signals: deque[int] = deque()
        self._stop_deadline: float | None = None
        self._exit_code = EXIT_OK
        self._boot = BootPolicy()
        self._next_spawn = 0.0
        self._ready_at = (0, 0)  # (generation, target) last announced as ready
        self._wakeup_r = self._wakeup_w = -1
        self.pid = os.getpid()
        self.pid_file = config.pid_file
        self._new_master: int | None = None
        self._identity = identity.resolve(config)
        self._notifier = systemd.Notifier()
        self._watcher: int | None = None  # --reload's file watcher process
        self._stopping = False  # readiness fails from the first TERM on
        self._stopping_now = False
        self._out_of_slots = False
        self._last_load_error = ""
        self._drain_at: float | None = None  # --drain-delay: when the real drain starts
        self.totals = metrics.Totals()
        self._unix_paths = unix_paths  # the socket files we created: removed on exit
        self._console: Console | None = None  # made with the wakeup pipe, in run()
        self._commands: deque[tuple[int, str]] = deque()  # (signal to act as, what was asked)
        self._recycler = recycle.Recycler()
        self._started_at = time.monotonic()
        self._addresses = [sockets.describe(s, tls=config.tls.enabled) for s in listeners]
        self._server = ServerInfo(self.pid, config, config.workers)  # what hooks see
        self._spawned = 0  # gunicorn's worker "age": how many were spawned before

    # -- main loop ----------------------------------------------------------------
    def run(self) -> int:
        children.set_title("master", self.config)
        self._wakeup_r, self._wakeup_w = os.pipe()
        os.set_blocking(self._wakeup_r, False)
        os.set_blocking(self._wakeup_w, False)
        signal.set_wakeup_fd(self._wakeup_w)
        console = self._console = Console(self._wakeup_r)
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, self._enqueue)
        self._write_pid_file()
        self.config.hooks.call("on_starting", self._server)
        if self.config.metrics_bind is not None:
            try:
                console.start_metrics(self.config.metrics_bind, self._metrics_request)
            except OSError as exc:
                log.error("Cannot serve metrics on %s: %s", self.config.metrics_bind, exc)
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
            self._spawn_missing()
            while not self._finished():
                booting = any(not w.ready for w in self.workers.values())
                timeout = 0.05 if booting or self._stop_deadline or self._signals else 0.5
                console.poll(timeout)
                while self._signals:
                    self._dispatch(self._signals.popleft())
                while self._commands:
                    acts_as, asked = self._commands.popleft()
                    if asked:
                        log.info("Control socket: %s", asked)
                    self._act(acts_as)
                if self._drain_at is not None and time.monotonic() >= self._drain_at:
                    self._drain_at = None
                    self._begin_drain()
                self._reap()
                self._check_workers()
                self._spawn_missing()
        finally:
            console.close()
            self._notifier.close()
            if self._watcher is not None:
                self._kill(self._watcher, signal.SIGTERM)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self._watcher, 0)
            signal.set_wakeup_fd(-1)
            os.close(self._wakeup_r)
            os.close(self._wakeup_w)
            if self.pid_file is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.pid_file)
            if not self.handed_over:
                for path in self._unix_paths:
                    with contextlib.suppress(OSError):
                        os.unlink(path)
            self.config.hooks.call("on_exit", self._server)
        log.info("Shutdown complete")
        return self._exit_code

    @property
    def handed_over(self) -> bool:
        """A new master started by USR2 is running on our sockets."""
        return self._new_master is not None

    def _control_request(self, request: control.Request) -> Any:
        """Answer what can be read now; queue what changes something for the loop."""
        now = time.monotonic()
        if request.command == "workers":
            return roster.worker_rows(self.workers.values(), self.slots, now)
        if request.command == "status":
            return self._status(now)
        if self._stopping:
            raise control.ControlError("the server is stopping")
        sig, asked, times = control.plan(request, self.target, most=self.slots.count - 1)
        self._commands.extend([(sig, asked)] + [(sig, "")] * (times - 1))  # logged once
        return {"accepted": asked}

    def _status(self, now: float) -> dict[str, Any]:
        rows = roster.worker_rows(self.workers.values(), self.slots, now)
        return {
            "pid": self.pid,
            "version": __version__,
            "app": self.config.app or "(demo)",
            "listeners": self._addresses,
            "uptime_s": round(now - self._started_at, 3),
            "generation": self.generation,
            "serving_generation": self._boot.serving,
            "target_workers": self.target,
            "stopping": self._stopping,
            **roster.summary(rows, self.totals),
        }

    def _metrics_request(self, path: str) -> tuple[int, str, bytes]:
        samples = []
        for info in self.workers.values():
            view = self.slots.read(info.slot)
            if view.pid == info.pid:
                samples.append(metrics.WorkerSample(info.pid, info.ready, info.draining, view))
        return metrics.respond(
            path,
            samples,
            self.totals,
            stopping=self._stopping,
            target=self.target,
            timeout_s=self.config.timeouts.worker_s,
        )

    def _enqueue(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)

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
        inherited = [self._wakeup_r, self._wakeup_w, *(s.fileno() for s in self.listeners)]
        if self._console is not None:
            inherited += self._console.fds()
        self._watcher = succession.start_watcher(dirs, self.pid, HANDLED_SIGNALS, inherited)

    def _finished(self) -> bool:
        if self._stop_deadline is None:
            return False
        if not self.workers:
            return True
        if time.monotonic() >= self._stop_deadline:
            for info in list(self.workers.values()):
                log.warning("Worker %d did not stop in time; killing it", info.pid)
                self._kill(info.pid, signal.SIGKILL)
            for pid in list(self.workers):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            self.workers.clear()
            return True
        return False

    # -- signals ------------------------------------------------------------------
    def _dispatch(self, sig: int) -> None:
        if sig == signal.SIGCHLD:
            return
        log.info("Master received %s", signal.Signals(sig).name)
        self._act(sig)

    def _act(self, sig: int) -> None:
        """What a signal (or the control request standing for it) does."""
        before = self.target
        self._act_on(sig)
        self._server.num_workers = self.target
        if self.target != before:
            self.config.hooks.call("nworkers_changed", self._server, self.target, before)

    def _act_on(self, sig: int) -> None:
        if sig == signal.SIGTERM:
            self.stop(graceful=True)
        elif sig == signal.SIGINT:
            self.stop(graceful=self._stop_deadline is None)
        elif sig == signal.SIGQUIT:
            self.stop(graceful=False)
        elif sig == signal.SIGHUP:
            self.reload()
        elif sig == signal.SIGTTIN:
            if self.target >= self.slots.count - 1:
                log.warning("Worker count already at its limit (%d); TTIN ignored", self.target)
                return
            self.target += 1
            log.info("Worker count raised to %d", self.target)
        elif sig == signal.SIGTTOU:
            self._shrink()
        elif sig == signal.SIGUSR1:
            log.info("Reopened %d log files; telling the workers", reopen_files())
            for info in self.workers.values():
                self._kill(info.pid, signal.SIGUSR1)
        elif sig == signal.SIGUSR2:
            self._reexec()

    def _reexec(self) -> None:
        """Start a new master on the same sockets; this one serves on until told to stop."""
        if self._new_master is not None:
            log.warning("A new master (%d) is already running; USR2 ignored", self._new_master)
            return
        self.pid_file = succession.move_pid_file(self.pid_file, ".oldbin", add=True)
        self._new_master = succession.start_new_master(self.listeners, HANDLED_SIGNALS)
        log.info("Started a new master %d on the same sockets", self._new_master)

    def stop(self, *, graceful: bool) -> None:
        """Graceful: readiness fails now, the drain starts after ``--drain-delay``."""
        self._notifier.stopping()
        self._stopping = True
        if not graceful:
            if self._stopping_now:
                return
            self._stopping_now = True
            log.info("Stopping now")
            self._drain_at = None
            self._stop_deadline = time.monotonic() + KILL_GRACE_S
            self._signal_all(signal.SIGQUIT)
        elif self._stop_deadline is None and self._drain_at is None:
            delay = self.config.drain_delay_s
            if delay > 0:
                log.info("Readiness now fails; draining in %.1fs", delay)
                self._drain_at = time.monotonic() + delay
            else:
                self._begin_drain()

    def _begin_drain(self) -> None:
        self._stop_deadline = time.monotonic() + self.config.timeouts.graceful_s
        log.info("Stopping gracefully (up to %.0fs)", self.config.timeouts.graceful_s)
        self._signal_all(signal.SIGTERM)
        if not self.handed_over:
            # Let the last worker's close be the socket's close, right after its final
            # sweep of the backlog (a new master from USR2 keeps its own copies).
            for sock in self.listeners:
                sock.close()

    def reload(self) -> None:
        if self._stopping:
            return
        self._notifier.reloading()
        self._reread_config()
        self._newest_generation += 1
        self.generation = self._newest_generation
        self._next_spawn = 0.0
        log.info("Reloading: starting worker generation %d", self.generation)
        self._server.cfg = self.config
        self.config.hooks.call("on_reload", self._server)

    def _reread_config(self) -> None:
        """HUP: the new generation gets the settings as flags, env and file say now."""
        if self._reload_config is None:
            return
        try:
            fresh = self._reload_config()
        except ConfigError as exc:
            log.error("Config not reloaded, keeping the old one: %s", exc)
            return
        old = self.config
        self.config, changed = merge_reloaded(old, fresh)
        if changed:
            log.warning("Changed settings that need a restart (USR2): %s", ", ".join(changed))
        if self.config.workers != old.workers:
            self.target = min(self.config.workers, self.slots.count - 1)
        log.info("Config reloaded")

    def _shrink(self) -> None:
        if self.target <= 1:
            log.info("Worker count already 1; TTOU ignored")
            return
        self.target -= 1
        current = [w for w in self.workers.values() if not w.draining]
        if len(current) > self.target:
            newest = max(current, key=lambda w: w.started)
            self._retire(newest, "scale_down")
        log.info("Worker count lowered to %d", self.target)

    def _signal_all(self, sig: int) -> None:
        """Tell every worker to stop.

        TERM goes to booting workers too: one that has not yet installed its handler dies
        of it having accepted nothing, and one that has (it may already be serving, before
        we read its slot) drains like any other. An immediate stop kills booting ones.
        """
        now = time.monotonic()
        for info in self.workers.values():
            info.draining = True
            info.stopped_by_us = True
            if sig == signal.SIGTERM and info.term_sent:
                continue
            info.term_sent = info.term_sent or now
            self._kill(info.pid, sig if info.ready or sig == signal.SIGTERM else signal.SIGKILL)

    def _retire(self, info: WorkerInfo, reason: str) -> None:
        info.draining = True
        info.stopped_by_us = True
        info.reason = info.reason or reason
        info.term_sent = time.monotonic()
        self._kill(info.pid, signal.SIGTERM)

    @staticmethod
    def _kill(pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    # -- children -----------------------------------------------------------------
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
                continue
            if pid == self._new_master:
                code = os.waitstatus_to_exitcode(status)
                log.warning("New master %d exited (%d); this one keeps serving", pid, code)
                self._new_master = None
                self.pid_file = succession.move_pid_file(self.pid_file, ".oldbin", add=False)
                continue
            info = self.workers.pop(pid, None)
            if info is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            view = self.slots.read(info.slot)
            if view.pid == info.pid:
                self.totals.retire(view)
                if view.state == DRAINING and not info.reason:
                    info.reason = self.slots.message(info.slot) or "signal"
            if self._stop_deadline is None and info.reason != "scale_down":
                self.totals.restarts[info.reason or ("crash" if code else "exit")] += 1
            self._on_exit(info, code)
            gone = HookWorker(info.age, self.pid, self.config, info.pid, alive=False)
            self.config.hooks.call("child_exit", self._server, gone)
            self.slots.clear(info.slot)
            self._free_slots.append(info.slot)
            self._publish_totals()

    def _publish_totals(self) -> None:
        self.slots.set_message(self.slots.count - 1, encode_totals(self.totals))

    def _on_exit(self, info: WorkerInfo, code: int) -> None:
        how = children.describe_exit(code)
        if info.stopped_by_us or self._stop_deadline is not None:
            # We asked it to go: whatever signal ended it, that was the plan, not news.
            detail = "" if code in (EXIT_OK, -signal.SIGTERM, -signal.SIGKILL) else f" ({how})"
            log.info("Worker %d stopped%s", info.pid, detail)
            return
        if info.draining and code == EXIT_OK:
            log.info("Worker %d exited (%s)", info.pid, info.reason or "drained")
            return
        if info.ready:
            level = logging.INFO if code == EXIT_OK else logging.WARNING
            log.log(level, "Worker %d %s; replacing it", info.pid, how)
            return
        self._boot_failed(info, code, how)

    def _boot_failed(self, info: WorkerInfo, code: int, how: str) -> None:
        load_error = code == EXIT_APP_LOAD
        message = self.slots.message(info.slot) if load_error else ""
        decision = self._boot.failed(info.generation, load_error=load_error)
        who = (info.pid, how)
        if decision.verdict is Verdict.GIVE_UP:
            if load_error:
                log.error("Worker failed to load the app: %s", message)
            else:
                log.error("Workers keep dying while booting (worker %d %s); giving up", *who)
            self._exit_code = EXIT_APP_LOAD
            self.stop(graceful=False)
        elif decision.verdict is Verdict.RETIRE:
            self._retire_generation(info.generation, message or f"worker {how} while booting")
        else:
            self._next_spawn = time.monotonic() + decision.delay_s
            what = how
            if load_error:  # the app's own words once; after that, that they still hold
                same = message == self._last_load_error
                what = "could not load the app" + (" (the same error)" if same else f": {message}")
                self._last_load_error = message
            log.warning("Worker %d %s; retrying in %.1fs", info.pid, what, decision.delay_s)

    def _retire_generation(self, generation: int, why: str) -> None:
        """A reload that cannot boot: stop its workers, serve on with the last good one."""
        serving = self._boot.serving
        log.error(
            "Reload failed: generation %d cannot boot: %s. Generation %s keeps serving; "
            "fix the app and reload again",
            generation,
            why,
            serving,
        )
        self.totals.note_reload(ok=False, error=f"generation {generation}: {why}")
        self._publish_totals()
        self._boot.forget(generation)
        for info in self.workers.values():
            if info.generation == generation and not info.draining:
                self._retire(info, "reload_failed")
        if self.generation == generation and serving is not None:
            self.generation = serving
            if self._good_config.workers != self.config.workers:
                self.target = self._good_config.workers
            self.config = self._good_config
            self._ready_at = (serving, self.target)
        self._notifier.ready("Reload failed; serving the previous generation")

    def _check_workers(self) -> None:
        now = time.monotonic()
        timeout = self.config.timeouts.worker_s
        self._recycle(now)
        for info in self.workers.values():
            view = self.slots.read(info.slot)
            if view.pid != info.pid:
                beat = info.started
            else:
                beat = view.beat
                if view.state == READY and not info.ready:
                    info.ready = True
                    self._boot.worker_ready(info.generation)
                elif view.state == DRAINING and not info.draining:
                    # Leaving by itself (max requests, lost threads, a TERM of its own):
                    # replace it now. Its slot says why; a bare TERM leaves no word.
                    info.draining = True
                    info.reason = self.slots.message(info.slot) or "signal"
            if info.abort_sent:
                if now - info.abort_sent > KILL_GRACE_S:
                    self._kill(info.pid, signal.SIGKILL)
            elif now - beat > timeout:
                log.error(
                    "Worker %d silent for %.1fs (timeout %.0fs); killing it",
                    info.pid,
                    now - beat,
                    timeout,
                )
                info.abort_sent = now
                info.draining = True
                info.reason = "timeout"
                self._kill(info.pid, signal.SIGABRT)
            elif info.term_sent and now - info.term_sent > self.config.timeouts.graceful_s:
                log.warning("Worker %d still draining after the graceful timeout", info.pid)
                info.abort_sent = now
                self._kill(info.pid, signal.SIGKILL)
        self._check_generation()

    def _recycle(self, now: float) -> None:
        """--max-worker-memory, --max-worker-lifetime: mark one worker to be replaced.

        Marked, it keeps serving but no longer counts, so a replacement is spawned; once
        that one is ready, ``_check_generation`` retires it. One at a time, from a steady
        generation only, so capacity never drops.
        """
        limit = self.config.max_worker_memory_mib
        current = [w for w in self.workers.values() if w.generation == self.generation]
        self._recycler.sample(current, now, limit)
        serving = [w for w in current if w.ready and not w.draining]
        if self._stopping or any(w.recycle for w in serving) or len(serving) < self.target:
            return
        due = self._recycler.due(serving, now, limit)
        if due is not None:
            info, reason = due
            info.recycle = reason
            why = recycle.describe(info, reason, limit)
            log.warning("Worker %d %s; replacing it once a new one is ready", info.pid, why)

    def _check_generation(self) -> None:
        current = self._current()
        if len(current) < self.target or not all(w.ready for w in current):
            return
        if self._ready_at != (self.generation, self.target):
            self._ready_at = (self.generation, self.target)
            if self._boot.serving not in (None, self.generation):
                self.totals.note_reload(ok=True)
                self._publish_totals()
            first = not self._boot.served
            self._boot.generation_ready(self.generation)
            self._good_config = self.config
            workers = f"{len(current)} worker{'s' if len(current) != 1 else ''}"
            log.info("Ready: %s (generation %d)", workers, self.generation)
            self._notifier.ready(f"Serving with {workers}")
            if first:
                self.config.hooks.call("when_ready", self._server)
        for info in list(self.workers.values()):
            if (info.generation != self.generation or info.recycle) and not info.draining:
                self._retire(info, info.recycle or "reload")

    def _current(self) -> list[WorkerInfo]:
        """The workers that count as this generation's capacity."""
        return [
            w
            for w in self.workers.values()
            if w.generation == self.generation and not w.draining and not w.recycle
        ]

    def _spawn_missing(self) -> None:
        if self._stop_deadline is not None or time.monotonic() < self._next_spawn:
            return
        for _ in range(self.target - len(self._current())):
            if not self._free_slots:
                # Old generations still draining hold every slot; they free theirs as
                # they exit, and the loop comes back here.
                if not self._out_of_slots:
                    log.warning("No free worker slot until draining workers exit")
                self._out_of_slots = True
                return
            self._out_of_slots = False
            self._spawn()

    def _child_setup(self) -> None:
        """In the forked worker: shed what is the master's, become the configured user."""
        signal.set_wakeup_fd(-1)
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        os.close(self._wakeup_r)
        os.close(self._wakeup_w)
        if self._console is not None and self._console.control is not None:
            self._console.control.close_in_child()
        children.set_title("worker", self.config)
        self._identity.apply()

    def _spawn(self) -> None:
        slot = self._free_slots.pop()
        self.slots.clear(slot)
        self._spawned += 1
        worker = HookWorker(self._spawned, self.pid, self.config)
        self.config.hooks.call("pre_fork", self._server, worker)
        pid = os.fork()
        if pid == 0:
            worker.pid = os.getpid()
            children.run_child(
                self.config,
                self.listeners,
                self.slots,
                slot,
                generation=self.generation,
                master_pid=self.pid,
                preloaded=self.preloaded,
                setup=self._child_setup,
                hooked=(self._server, worker),
            )
        lifetime = recycle.lifetime_s(self.config)
        self.workers[pid] = WorkerInfo(
            pid, slot, self.generation, time.monotonic(), lifetime_s=lifetime, age=self._spawned
        )
        log.debug("Spawned worker %d (generation %d)", pid, self.generation)
