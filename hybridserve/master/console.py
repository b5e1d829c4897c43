"""The master's own listeners beside its wakeup pipe: metrics and health (``--metrics-bind``)
and the control socket (``--control-socket``), both served from its one select loop.

Nothing here blocks: each server reads what a client sent, answers as the client reads, and
drops a client that dawdles; the arbiter's loop calls ``poll`` between its other chores.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select

from hybridserve.errors import ConfigError
from hybridserve.master import control, metrics, sockets
from hybridserve.worker.exposition import Handler

log = logging.getLogger("hybridserve.error")


class Console:
    """The metrics and control servers, if configured, and the select that serves them."""

    def __init__(self, wakeup_fd: int) -> None:
        self._wakeup_fd = wakeup_fd
        self.metrics: metrics.MetricsServer | None = None
        self.control: control.ControlServer | None = None

    def start_metrics(self, address: str, handler: Handler) -> None:
        """Raises OSError if the address cannot be bound."""
        self.metrics = metrics.MetricsServer(sockets.bind(sockets.parse_bind(address), 64), handler)
        log.info("Metrics at %s/metrics", sockets.describe(self.metrics.sock))

    def start_control(self, path: str, handler: control.Handler) -> bool:
        try:
            sock = control.bind(path)
        except ConfigError as exc:
            log.error("%s", exc)
            return False
        self.control = control.ControlServer(sock, handler)
        log.info("Control socket at %s", path)
        return True

    def fds(self) -> list[int]:
        """Every descriptor the servers hold (a forked helper must not keep them)."""
        servers = (self.metrics, self.control)
        return [fd for server in servers if server is not None for fd in server.fds()]

    def poll(self, timeout: float) -> None:
        """Wait for a signal, a metrics or control client, or the timeout; serve clients."""
        owners: dict[int, metrics.MetricsServer | control.ControlServer] = {}
        for server in (self.metrics, self.control):
            if server is not None:
                owners.update(dict.fromkeys(server.fds(), server))
        writers = self.control.write_fds() if self.control is not None else []
        readable: list[int] = []
        writable: list[int] = []
        with contextlib.suppress(InterruptedError):
            readable, writable, _ = select.select([self._wakeup_fd, *owners], writers, [], timeout)
        with contextlib.suppress(OSError):
            while os.read(self._wakeup_fd, 512):
                pass
        for fd in readable:
            if fd in owners:
                owners[fd].on_readable(fd)
        for server in (self.metrics, self.control):
            if server is not None:
                server.sweep()
        if self.control is not None:
            for fd in writable:
                self.control.on_writable(fd)

    def close(self) -> None:
        for server in (self.metrics, self.control):
            if server is not None:
                server.close()
