"""systemd integration without libsystemd: socket activation and sd_notify.

Socket activation: systemd passes listening sockets as fds 3.. with ``LISTEN_FDS`` and
``LISTEN_PID``; they are used in order for ``fd://N`` binds, or all of them when no
``--bind`` was given. sd_notify: one datagram per state change to ``NOTIFY_SOCKET``
(``@name`` is Linux's abstract namespace), so ``Type=notify`` units know when we are ready.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time

log = logging.getLogger("hybridserve.error")

SD_LISTEN_FDS_START = 3


def listen_fds() -> list[int]:
    """The fds systemd passed to this process (and only to it), then forget them."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # our workers and re-execs are not their target
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))


class Notifier:
    """Sends sd_notify messages when ``NOTIFY_SOCKET`` is set; does nothing otherwise."""

    def __init__(self) -> None:
        address = os.environ.pop("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        if self._address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.set_inheritable(False)

    def notify(self, *fields: str) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            log.warning("sd_notify to %r failed: %s", self._address, exc)

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=Reloading")

    def stopping(self) -> None:
        self.notify("STOPPING=1", "STATUS=Stopping")

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
