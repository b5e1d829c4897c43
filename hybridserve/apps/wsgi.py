"""WSGI (PEP 3333) on a bounded thread pool.

Threads never touch the transport. A body that is whole when the app starts (most are) is
a plain BytesIO; one still arriving streams through ``WSGIInput`` (a lock and a condition).
A thread hands response bytes back through the adapter's ``LoopMailbox``. A response given
as a list goes back in one hop, head and body together; an iterator costs a hop per chunk,
so streaming reaches the client as it is produced. Both directions are
bounded: reading pauses above ``INPUT_HIGH_BYTES`` unread bytes, and a thread waits while
more than ``OUTPUT_HIGH_BYTES`` are queued for the loop or the transport is full.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import stat
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from hybridserve.apps.environ import FileWrapper, WSGIInput, build_environ
from hybridserve.apps.failure import fail_response
from hybridserve.apps.threads import LoopMailbox
from hybridserve.apps.types import Channel, FileBody, WSGIApp
from hybridserve.errors import ClientDisconnected, ResponseError
from hybridserve.sansio.events import Headers, Request
from hybridserve.sansio.writer import header_line

log = logging.getLogger("hybridserve.error")

OUTPUT_HIGH_BYTES = 256 * 1024  # response bytes queued for the loop before a thread waits


def _no_wait(ok: bool) -> None:
    """The app's thread has moved on; the worker finishes the response."""


class Submitter(Protocol):
    """Where app calls run: a ThreadPool (or, in tests, anything with ``submit``)."""

    def submit(self, fn: Callable[[], object], /) -> object: ...


class WSGIAdapter:
    """Runs each request's app call on the executor."""

    def __init__(
        self,
        app: WSGIApp,
        executor: Submitter,
        *,
        root_path: str,
        multiprocess: bool,
        on_threads_lost: Callable[[int], None] = lambda lost: None,
    ) -> None:
        self.app = app
        self.executor = executor
        self.root_path = root_path
        self.multiprocess = multiprocess
        self.lost_threads = 0  # stuck past --request-timeout: written off until they return
        self._lost_cycles: set[WSGICycle] = set()
        self._on_threads_lost = on_threads_lost
        self._mailbox: LoopMailbox | None = None

    def mailbox(self, loop: asyncio.AbstractEventLoop) -> LoopMailbox:
        if self._mailbox is None:
            self._mailbox = LoopMailbox(loop)
        return self._mailbox

    def written_off(self, cycle: WSGICycle) -> None:
        """Loop thread: ``cycle``'s thread is stuck past its deadline; count it lost."""
        self._lost_cycles.add(cycle)
        self.lost_threads = len(self._lost_cycles)
        self._on_threads_lost(self.lost_threads)

    def check_lost(self) -> None:
        """Loop thread, once a second: give back the written-off threads that returned."""
        back = {cycle for cycle in self._lost_cycles if cycle.thread_done}
        if back:
            self._lost_cycles -= back
            self.lost_threads = len(self._lost_cycles)
            self._on_threads_lost(self.lost_threads)

    def new_cycle(self, request: Request, channel: Channel) -> WSGICycle:
        return WSGICycle(self, request, channel)


class WSGICycle:
    """One request: loop-side feeding and thread-side running of the app."""

    def __init__(self, adapter: WSGIAdapter, request: Request, channel: Channel) -> None:
        self._adapter = adapter
        self._request = request
        self._channel = channel
        self._loop = channel.loop
        self._post = adapter.mailbox(channel.loop).post
        # The body as it came before the app started; most requests are whole by then, and
        # get a plain BytesIO instead of a WSGIInput with its lock and condition.
        self._early: list[bytes] = []
        self._early_done = False
        self._input: WSGIInput | None = None
        self._lock = threading.Lock()
        self._flow: threading.Condition | None = None  # made on the first wait
        self._queued = 0  # bytes posted to the loop, not yet written
        self._write_paused = False
        self._gone = False
        self._status = 0
        self._headers: Headers | None = None
        self._head_sent = False
        self._thread = 0  # ident of the thread running the app, while it does (for stacks)
        # The thread only reports that it is done (one store, no post: no loop wake-up);
        # the loop alone writes threads off and gives them back (WSGIAdapter.check_lost),
        # so no moment exists where both sides think the other will.
        self.thread_done = False
        self._lost = False  # loop thread only

    # -- loop thread --------------------------------------------------------------
    def feed_body(self, data: bytes) -> None:
        if self._input is None:
            self._early.append(data)
        elif self._input.feed(data):
            self._channel.pause_reading()

    def feed_end(self) -> None:
        if self._input is None:
            self._early_done = True
        else:
            self._input.feed_eof()

    def start(self) -> None:
        if not self._early_done:
            self._input = WSGIInput(self._resume_reading_threadsafe)
            for data in self._early:
                self.feed_body(data)
            self._early = []
        self._adapter.executor.submit(self._run)

    def _body(self) -> WSGIInput | io.BytesIO:
        if self._input is not None:
            return self._input
        return io.BytesIO(b"".join(self._early))

    def expire(self) -> None:
        """Past --request-timeout: log where the thread is stuck and write the thread off.

        A thread cannot be stopped from outside; it is given back if it ever returns.
        """
        if self.thread_done or self._lost:
            return
        thread = self._thread
        frame = sys._current_frames().get(thread) if thread else None
        if frame is None:
            log.error("WSGI request %r expired before a thread ran it", self._request.target)
            return
        stack = "".join(traceback.format_stack(frame))
        log.error("WSGI request %r stuck past its deadline at:\n%s", self._request.target, stack)
        self._lost = True
        self._adapter.written_off(self)

    def shutdown(self) -> None:
        """A thread cannot be told; it finishes within the graceful timeout or is cut."""

    def disconnected(self) -> None:
        if self._input is not None:
            self._input.feed_eof(disconnected=True)
        with self._lock:
            self._gone = True
            self._notify()

    def pause_writing(self) -> None:
        with self._lock:
            self._write_paused = True

    def resume_writing(self) -> None:
        with self._lock:
            self._write_paused = False
            self._notify()

    def _notify(self) -> None:
        """Wake a thread waiting to write; call with ``_lock`` held."""
        if self._flow is not None:
            self._flow.notify_all()

    def _resume_reading_threadsafe(self) -> None:
        self._post(self._channel.resume_reading)

    def _deliver(
        self, data: bytes, end: bool, head: tuple[int, Headers] | None, counted: bool
    ) -> None:
        if counted:
            with self._lock:
                self._queued -= len(data)
                self._notify()
        if self._gone:
            return
        try:
            if head is not None:
                self._channel.send_head(head[0], head[1], data, end)
            else:
                self._channel.send_body(data, end)
        except ResponseError as exc:
            log.error("WSGI app %r: %s", self._adapter.app, exc)
            self._fail_on_loop(head is not None)

    def _fail_on_loop(self, head_unsent: bool) -> None:
        """End the response in error: a 500 if no head went out, else a cut connection.

        The cycle counts as gone from here on: bytes the thread still has in flight would
        otherwise land in the connection's next response, and the thread stops at its next
        send instead of producing them. Once gone, the connection is no longer ours to end.
        """
        with self._lock:
            if self._gone:
                return
            self._gone = True
            self._notify()
        fail_response(self._channel, head_sent=not head_unsent)

    # -- app thread ---------------------------------------------------------------
    def _start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self._head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self._headers is not None:
            raise ResponseError("start_response() called twice without exc_info")
        try:
            code = int(status.split(" ", 1)[0])
            encoded = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
        except (ValueError, AttributeError, UnicodeEncodeError, TypeError):
            raise ResponseError(f"invalid status or headers: {status!r}") from None
        for name, value in encoded:
            header_line(name, value)  # validate here, so the error reaches the app's thread
        self._status = code
        self._headers = encoded
        return self._write

    def _write(self, data: bytes) -> None:
        self._send(data, end=False)

    def _send(self, data: bytes, *, end: bool) -> None:
        if type(data) is not bytes:
            raise ResponseError(f"app yielded {type(data).__name__}, not bytes")
        head: tuple[int, Headers] | None = None
        if not self._head_sent:
            if self._headers is None:
                raise ResponseError("app produced body before calling start_response()")
            if not data and not end:
                return
            head = (self._status, self._headers)
            self._head_sent = True
        if end and not self._queued and not self._write_paused and not self._gone:
            # The last (often the only) piece: nothing after it waits on flow control.
            self._post(self._deliver, data, end, head, False)
            return
        with self._lock:
            while (self._write_paused or self._queued > OUTPUT_HIGH_BYTES) and not self._gone:
                if self._flow is None:
                    self._flow = threading.Condition(self._lock)
                self._flow.wait()
            if self._gone:
                raise ClientDisconnected("client disconnected")
            self._queued += len(data)
        self._post(self._deliver, data, end, head, True)

    def _run(self) -> None:
        self._thread = threading.get_ident()
        try:
            if not self._gone:  # the client may have left while this waited for a thread
                self._run_app()
        finally:
            self._thread = 0
            self.thread_done = True

    def _run_app(self) -> None:
        request = self._request
        channel = self._channel
        environ = build_environ(
            request,
            client=channel.client,
            server=channel.server,
            scheme=channel.scheme,
            root_path=self._adapter.root_path,
            body=self._body(),
            multiprocess=self._adapter.multiprocess,
            tls=channel.tls,
        )
        if request.expect_continue and self._input is not None:
            self._post(channel.send_continue)
        result: Iterable[bytes] | None = None
        try:
            result = self._adapter.app(environ, self._start_response)
            self._respond(result)
        except ClientDisconnected:
            log.debug("client %s went away during %r", channel.client, request.target)
        except Exception as exc:
            self._on_error(exc)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("close() of the WSGI response iterable failed")

    def _respond(self, result: Iterable[bytes]) -> None:
        """Send what the app returned: a file by its descriptor, a list in one hop, an
        iterator a hop per chunk (so streaming reaches the client as it is produced)."""
        body = self._file_body(result) if isinstance(result, FileWrapper) else None
        if body is not None:
            self._head_sent = True
            self._post(self._deliver_file, body)
        elif isinstance(result, (list, tuple)):
            self._send(b"".join(result), end=True)
        else:
            try:
                chunks = iter(result)
            except TypeError:
                raise ResponseError(
                    f"app returned a non-iterable {type(result).__name__}"
                ) from None
            for chunk in chunks:
                if chunk:
                    self._send(chunk, end=False)
            self._send(b"", end=True)

    def _file_body(self, wrapper: FileWrapper) -> FileBody | None:
        """The wrapped file as a FileBody of its own descriptor; None to iterate it instead.

        The descriptor is duplicated, so the app may close its file as soon as this
        returns; the thread is free while the loop sends the bytes.
        """
        if self._head_sent or self._headers is None:
            return None
        try:
            fd = wrapper.filelike.fileno()
            offset = wrapper.filelike.tell()
            st = os.fstat(fd)
        except (AttributeError, OSError, ValueError):  # not a real file (io.BytesIO, ...)
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        count = max(0, st.st_size - offset)
        declared = [v for n, v in self._headers if n.lower() == b"content-length"]
        if len(declared) == 1 and declared[0].strip().isdigit():
            if int(declared[0]) > count:
                return None  # iterating tells the app its length was wrong
            count = int(declared[0])
        return FileBody(os.dup(fd), [(offset, count)] if count else [])

    def _deliver_file(self, body: FileBody) -> None:
        """Loop thread: hand the file to the channel (which closes the descriptor)."""
        if self._gone:
            os.close(body.fd)
            return
        assert self._headers is not None
        try:
            self._channel.send_file(self._status, self._headers, body, _no_wait)
        except ResponseError as exc:
            log.error("WSGI app %r: %s", self._adapter.app, exc)
            self._fail_on_loop(True)

    def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, ResponseError):
            log.error("WSGI app %r: %s", self._adapter.app, exc)
        else:
            log.exception("Exception in WSGI app %r", self._adapter.app)
        head_unsent = not self._head_sent
        self._head_sent = True
        self._post(self._fail_on_loop, head_unsent)
