"""File bodies on the wire: ``os.sendfile`` on plain TCP, bounded reads under TLS.

How the zero-copy path works with a transport that owns the socket: the response head goes
through ``transport.write`` as usual; once the transport's buffer is empty, the file goes
straight from the page cache to the socket with ``os.sendfile``. When the socket is full,
we wait for it to become writable on a *duplicate* of its descriptor, since neither
asyncio nor uvloop lets a second watcher on a transport's own fd (and uvloop has no
``loop.sendfile``). The transport keeps reading meanwhile, so a client that leaves is
noticed and ``cancel()`` runs; the protocol holds pipelined requests as it always does.
Literal pieces (multipart boundaries) go through the transport, and the file waits until
they have left its buffer again.

Bounded: the kernel never takes more than the socket buffer, so memory stays flat however
large the file; one ``sendfile`` per writable event keeps one download from starving the
loop. A client that takes nothing for ``--timeout-write`` seconds is dropped by the
protocol's sweep (``blocked_at``), as for any other response. The copy path (TLS, or a
file system without sendfile) reads ``COPY_PIECE_BYTES`` at a time in a thread, and
reads the next piece only when the transport is below its high-water mark.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections import deque
from collections.abc import Callable
from typing import Any

from hybridserve.apps.types import FileBody
from hybridserve.sansio.conditional import Piece
from hybridserve.worker.offload import Offload

COPY_PIECE_BYTES = 256 * 1024
# sendfile cannot serve this file/socket pair: copy instead (nothing was sent yet).
NO_SENDFILE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSOCK, errno.EOVERFLOW}


class FileSender:
    """Sends one FileBody after its head; owns ``body.fd`` and always closes it."""

    def __init__(
        self,
        transport: asyncio.Transport,
        body: FileBody,
        *,
        zero_copy: bool,
        offload: Offload,
        clock: Callable[[], float],
        on_done: Callable[[bool], None],
    ) -> None:
        self._transport = transport
        self._loop = offload.loop
        self._fd = body.fd
        self._pieces: deque[Piece] = deque(body.pieces)
        self._zero_copy = zero_copy
        self._offload = offload
        self._clock = clock
        self._on_done = on_done
        self._sock_fd = -1
        self._poll_fd = -1  # a dup of the socket, watched for writability
        self._reading = False  # a copy-path read is running in a thread
        self._write_paused = False
        self._finished = False
        self.sent_bytes = 0
        self.blocked_at = 0.0  # when the client stopped taking bytes; 0 while it takes them

    def start(self) -> None:
        if self._zero_copy:
            sock: Any = self._transport.get_extra_info("socket")
            self._sock_fd = sock.fileno() if sock is not None else -1
            self._zero_copy = self._sock_fd >= 0
        self._advance()

    def cancel(self) -> None:
        """The connection is gone: stop, and free the descriptors."""
        self._end(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if not self._zero_copy and not self._reading and not self._finished:
            self._advance()

    # -- the pieces, in order -----------------------------------------------------------
    def _advance(self) -> None:
        if self._transport.is_closing():
            # Closed under us (a timeout, a refused pipelined request): its descriptor may
            # already belong to another connection, so not one more byte goes to it.
            self._end(False)
            return
        pieces = self._pieces
        while pieces and not self._finished:
            piece = pieces[0]
            if isinstance(piece, bytes):
                pieces.popleft()
                self.sent_bytes += len(piece)
                self._transport.write(piece)
            elif self._zero_copy:
                if not self._sendfile(piece):
                    return
            else:
                if not self._write_paused:
                    self._read(piece)
                return
        if not self._finished:
            self._end(True)

    def _sendfile(self, piece: tuple[int, int]) -> bool:
        """Send what the socket takes now; True when the piece is done."""
        if self._transport.get_write_buffer_size():
            self._wait_writable()  # the transport's own bytes go first
            return False
        offset, count = piece
        try:
            sent = os.sendfile(self._sock_fd, self._fd, offset, count)
        except BlockingIOError:
            sent = -1
        except OSError as exc:
            if exc.errno in NO_SENDFILE and not self.sent_bytes:
                self._zero_copy = False
                self._stop_polling()
                return True  # the caller's loop now takes the copy path
            self._end(False)
            return False
        if sent == 0:  # the file shrank under us: the promised length cannot be kept
            self._end(False)
            return False
        if sent > 0:
            self.sent_bytes += sent
            self.blocked_at = 0.0
            if sent == count:
                self._pieces.popleft()
                return True
            self._pieces[0] = (offset + sent, count - sent)
        self._wait_writable()
        return False

    def _wait_writable(self) -> None:
        if not self.blocked_at:
            self.blocked_at = self._clock()
        if self._poll_fd < 0:
            self._poll_fd = os.dup(self._sock_fd)
            self._loop.add_writer(self._poll_fd, self._advance)

    def _stop_polling(self) -> None:
        if self._poll_fd >= 0:
            self._loop.remove_writer(self._poll_fd)
            os.close(self._poll_fd)
            self._poll_fd = -1

    # -- the copy path ------------------------------------------------------------------
    def _read(self, piece: tuple[int, int]) -> None:
        offset, count = piece
        size = min(count, COPY_PIECE_BYTES)
        fd = self._fd
        self._reading = True
        self._offload.run(lambda: os.pread(fd, size, offset), self._got)

    def _got(self, data: bytes | Exception) -> None:
        self._reading = False
        if self._finished:
            self._close_file()  # cancelled while the read ran: the fd waited for it
            return
        if isinstance(data, Exception) or not data or self._transport.is_closing():
            self._end(False)
            return
        offset, count = self._pieces[0]
        if len(data) == count:
            self._pieces.popleft()
        else:
            self._pieces[0] = (offset + len(data), count - len(data))
        self.sent_bytes += len(data)
        self._transport.write(data)
        self._advance()

    # -- the end ------------------------------------------------------------------------
    def _end(self, ok: bool | None) -> None:
        """Finish once: ``ok`` True (all sent), False (failed), None (cancelled)."""
        if self._finished:
            return
        self._finished = True
        self._stop_polling()
        if not self._reading:
            self._close_file()
        if ok is not None:
            self._on_done(ok)

    def _close_file(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
