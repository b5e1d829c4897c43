"""The workers the master wants: which generation, how many, with which config.

How it works: workers belong to a generation. HUP starts a new one with the settings as
they are now; the old one is told to drain only once every new worker reports ready, so a
reload never leaves the listeners unserved. A worker that dies before it is ready is judged
by ``BootPolicy``: retried with backoff, its generation retired (the last good one serves
on), or, in a master that never served, the end. A worker marked for recycling keeps
serving until its replacement is ready.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable

from hybridserve.config import Config
from hybridserve.errors import EXIT_APP_LOAD, EXIT_OK, ConfigError
from hybridserve.hooks import ServerInfo
from hybridserve.master import children, metrics, recycle, systemd, watchdog
from hybridserve.master.boot import BootPolicy, Verdict
from hybridserve.master.children import WorkerInfo
from hybridserve.master.pool import Pool
from hybridserve.master.reconfig import merge_reloaded
from hybridserve.master.shutdown import Shutdown
from hybridserve.worker.slots import DRAINING, READY

log = logging.getLogger("hybridserve.error")


class Fleet:
    """Keeps ``target`` workers of the current generation alive, and retires the others."""

    def __init__(
        self,
        config: Config,
        pool: Pool,
        shutdown: Shutdown,
        *,
        notifier: systemd.Notifier,
        server: ServerInfo,
        reload_config: Callable[[], Config] | None,
        give_up: Callable[[], None],
    ) -> None:
        self.config = config
        self.target = config.workers
        self.generation = 1  # the generation the master wants serving
        self.boot = BootPolicy()
        self.totals = metrics.Totals()
        self._pool = pool
        self._shutdown = shutdown  # read only: the arbiter decides about stopping
        self._notifier = notifier
        self._server = server  # what hooks see
        self._reload_config = reload_config
        self._give_up = give_up  # a master that never served cannot boot the app
        self._newest_generation = 1  # numbers are never reused, even after a failed reload
        self._good_config = config  # what the last generation that was ready ran with
        self._ready_at = (0, 0)  # (generation, target) last announced as ready
        self._next_spawn = 0.0
        self._last_load_error = ""
        self._recycler = recycle.Recycler()

    # -- how many, which generation ------------------------------------------------
    def grow(self) -> None:
        """TTIN: one worker more, up to what the slots hold."""
        if self.target >= self._pool.most:
            log.warning("Worker count already at its limit (%d); TTIN ignored", self.target)
            return
        self.target += 1
        log.info("Worker count raised to %d", self.target)

    def shrink(self) -> None:
        """TTOU: one worker fewer; the newest of this generation goes."""
        if self.target <= 1:
            log.info("Worker count already 1; TTOU ignored")
            return
        self.target -= 1
        current = [w for w in self._pool.workers.values() if not w.draining]
        if len(current) > self.target:
            newest = max(current, key=lambda w: w.started)
            self._pool.retire(newest, "scale_down")
        log.info("Worker count lowered to %d", self.target)

    def reload(self) -> None:
        """HUP: a new generation, with the settings as they are now."""
        self._reread_config()
        self._newest_generation += 1
        self.generation = self._newest_generation
        self._next_spawn = 0.0
        log.info("Reloading: starting worker generation %d", self.generation)

    def _reread_config(self) -> None:
        """The new generation gets the settings as flags, env and file say now."""
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
            self.target = min(self.config.workers, self._pool.most)
        log.info("Config reloaded")

    def spawn_missing(self) -> None:
        if self._shutdown.begun or time.monotonic() < self._next_spawn:
            return
        missing = self.target - len(self._pool.current(self.generation))
        self._pool.spawn_up_to(missing, self.config, self.generation)

    # -- exits ----------------------------------------------------------------------
    def exited(self, pid: int, status: int) -> None:
        """A child of ours was reaped; if it was a worker, account for it."""
        info = self._pool.workers.pop(pid, None)
        if info is None:
            return
        code = os.waitstatus_to_exitcode(status)
        slots = self._pool.slots
        view = slots.read(info.slot)
        if view.pid == info.pid:
            self.totals.retire(view)
            if view.state == DRAINING and not info.reason:
                info.reason = slots.message(info.slot) or "signal"
        if not self._shutdown.begun and info.reason != "scale_down":
            self.totals.restarts[info.reason or ("crash" if code else "exit")] += 1
        self._on_exit(info, code)
        self._pool.release(info, self.config)
        self._pool.publish_totals(self.totals)

    def _on_exit(self, info: WorkerInfo, code: int) -> None:
        how = children.describe_exit(code)
        if info.stopped_by_us or self._shutdown.begun:
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
        message = self._pool.slots.message(info.slot) if load_error else ""
        decision = self.boot.failed(info.generation, load_error=load_error)
        who = (info.pid, how)
        if decision.verdict is Verdict.GIVE_UP:
            if load_error:
                log.error("Worker failed to load the app: %s", message)
            else:
                log.error("Workers keep dying while booting (worker %d %s); giving up", *who)
            self._give_up()
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
        serving = self.boot.serving
        log.error(
            "Reload failed: generation %d cannot boot: %s. Generation %s keeps serving; "
            "fix the app and reload again",
            generation,
            why,
            serving,
        )
        self.totals.note_reload(ok=False, error=f"generation {generation}: {why}")
        self._pool.publish_totals(self.totals)
        self.boot.forget(generation)
        for info in self._pool.workers.values():
            if info.generation == generation and not info.draining:
                self._pool.retire(info, "reload_failed")
        if self.generation == generation and serving is not None:
            self.generation = serving
            if self._good_config.workers != self.config.workers:
                self.target = self._good_config.workers
            self.config = self._good_config
            self._ready_at = (serving, self.target)
        self._notifier.ready("Reload failed; serving the previous generation")

    # -- the once-a-turn look at every worker ------------------------------------------
    def check(self) -> None:
        """Read every slot: readiness, heartbeats, recycling, a generation now ready."""
        now = time.monotonic()
        timeout = self.config.timeouts.worker_s
        self._recycle(now)
        for info in self._pool.workers.values():
            beat = self._observe(info)
            action = watchdog.judge(
                info, beat, now, timeout_s=timeout, graceful_s=self.config.timeouts.graceful_s
            )
            watchdog.enforce(
                info, action, silent_s=now - beat, timeout_s=timeout, now=now, kill=self._pool.kill
            )
        self._check_generation()

    def _observe(self, info: WorkerInfo) -> float:
        """What ``info``'s slot says of it; its last heartbeat."""
        view = self._pool.slots.read(info.slot)
        if view.pid != info.pid:
            return info.started
        if view.state == READY and not info.ready:
            info.ready = True
            self.boot.worker_ready(info.generation)
        elif view.state == DRAINING and not info.draining:
            # Leaving by itself (max requests, lost threads, a TERM of its own):
            # replace it now. Its slot says why; a bare TERM leaves no word.
            info.draining = True
            info.reason = self._pool.slots.message(info.slot) or "signal"
        return view.beat

    def _recycle(self, now: float) -> None:
        """--max-worker-memory, --max-worker-lifetime: mark one worker to be replaced.

        Marked, it keeps serving but no longer counts, so a replacement is spawned; once
        that one is ready, ``_check_generation`` retires it. One at a time, from a steady
        generation only, so capacity never drops.
        """
        limit = self.config.max_worker_memory_mib
        current = [w for w in self._pool.workers.values() if w.generation == self.generation]
        self._recycler.sample(current, now, limit)
        serving = [w for w in current if w.ready and not w.draining]
        if self._shutdown.stopping or any(w.recycle for w in serving) or len(serving) < self.target:
            return
        due = self._recycler.due(serving, now, limit)
        if due is not None:
            info, reason = due
            info.recycle = reason
            why = recycle.describe(info, reason, limit)
            log.warning("Worker %d %s; replacing it once a new one is ready", info.pid, why)

    def _check_generation(self) -> None:
        current = self._pool.current(self.generation)
        if len(current) < self.target or not all(w.ready for w in current):
            return
        if self._ready_at != (self.generation, self.target):
            self._ready_at = (self.generation, self.target)
            self._announce_ready(len(current))
        for info in list(self._pool.workers.values()):
            if (info.generation != self.generation or info.recycle) and not info.draining:
                self._pool.retire(info, info.recycle or "reload")

    def _announce_ready(self, count: int) -> None:
        if self.boot.serving not in (None, self.generation):
            self.totals.note_reload(ok=True)
            self._pool.publish_totals(self.totals)
        first = not self.boot.served
        self.boot.generation_ready(self.generation)
        self._good_config = self.config
        workers = f"{count} worker{'s' if count != 1 else ''}"
        log.info("Ready: %s (generation %d)", workers, self.generation)
        self._notifier.ready(f"Serving with {workers}")
        if first:
            self.config.hooks.call("when_ready", self._server)
