"""build_environ, WSGIInput and WSGICycle without sockets: a Request in, calls out."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import Any

import pytest

from hybridserve.apps.environ import INPUT_HIGH_BYTES, FileWrapper, WSGIInput, build_environ
from hybridserve.apps.threads import ThreadPool
from hybridserve.apps.types import Address, Environ, StartResponse, WSGIApp
from hybridserve.apps.wsgi import WSGIAdapter
from hybridserve.config_groups import Limits
from hybridserve.errors import ClientDisconnected
from hybridserve.sansio.connection import ServerConnection
from hybridserve.sansio.events import Headers, Request
from tests.unit.recording_channel import CLIENT, SERVER, Recorder


def request(target: bytes = b"/", headers: Headers | None = None, **kw: bytes) -> Request:
    return Request(
        method=kw.get("method", b"GET"),
        target=target,
        http_version=kw.get("version", b"1.1"),
        headers=[(b"host", b"example.test")] if headers is None else headers,
        keep_alive=True,
    )


def environ(
    req: Request,
    *,
    root_path: str = "",
    server: Address = SERVER,
    client: Address = CLIENT,
    scheme: str = "http",
) -> dict[str, object]:
    return build_environ(
        req,
        client=client,
        server=server,
        scheme=scheme,
        root_path=root_path,
        body=WSGIInput(lambda: None),
        multiprocess=False,
    )


class Resumes:
    """Counts the input's calls to resume reading the socket."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


# -- build_environ -----------------------------------------------------------------
def test_environ_core_keys() -> None:
    headers = [(b"host", b"example.test:8080"), (b"content-type", b"text/plain")]
    headers += [(b"content-length", b"5"), (b"accept", b"*/*")]
    env = environ(request(b"/a/b?x=1&y=%20", headers, method=b"POST"), scheme="https")
    body = env.pop("wsgi.input")
    assert isinstance(body, WSGIInput)
    assert env == {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/a/b",
        "QUERY_STRING": "x=1&y=%20",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": "5",
        "SERVER_NAME": "example.test",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.0.2.7",
        "REMOTE_PORT": "50123",
        "HTTP_HOST": "example.test:8080",
        "HTTP_ACCEPT": "*/*",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
    }


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        (b"/caf%C3%A9", "/caf\u00c3\u00a9", ""),  # PEP 3333: the bytes, as latin-1
        (b"/a%2Fb%20c", "/a/b c", ""),
        (b"/%E9t%E9?q=%E9", "/\u00e9t\u00e9", "q=%E9"),
        (b"http://example.test/abs/path?q=1", "/abs/path", "q=1"),  # absolute-form
        (b"http://example.test", "/", ""),
        (b"/?", "/", ""),
    ],
)
def test_path_info_is_percent_decoded_latin1(target: bytes, path: str, query: str) -> None:
    env = environ(request(target))
    assert (env["PATH_INFO"], env["QUERY_STRING"]) == (path, query)


@pytest.mark.parametrize(
    ("target", "script_name", "path_info"),
    [
        (b"/api/items", "/api", "/items"),
        (b"/api", "/api", ""),
        (b"/api/", "/api", "/"),
        (b"/items", "/api", "/items"),  # the proxy already took the prefix off
        (b"/apiary", "/api", "/apiary"),  # a prefix of a segment is not the root path
        (b"/ap%69/x", "/api", "/x"),  # compared after decoding
    ],
)
def test_root_path_is_script_name(target: bytes, script_name: str, path_info: str) -> None:
    env = environ(request(target), root_path="/api")
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == (script_name, path_info)


@pytest.mark.parametrize(
    ("host", "name", "port"),
    [
        (b"example.test", "example.test", "8000"),
        (b"example.test:81", "example.test", "81"),
        (b"10.0.0.1", "10.0.0.1", "8000"),  # digits at the end are not a port
        (b"host1", "host1", "8000"),
        (b"[::1]", "[::1]", "8000"),
        (b"[::1]:8443", "[::1]", "8443"),
        (b"", "127.0.0.1", "8000"),  # empty Host: keep the socket's, never ""
    ],
)
def test_server_name_and_port_from_host(host: bytes, name: str, port: str) -> None:
    env = environ(request(headers=[(b"host", host)]))
    assert (env["SERVER_NAME"], env["SERVER_PORT"], env["HTTP_HOST"]) == (name, port, host.decode())


@pytest.mark.parametrize(("scheme", "port"), [("http", "80"), ("https", "443")])
def test_unix_socket_without_host_still_names_a_server(scheme: str, port: str) -> None:
    env = environ(request(headers=[], version=b"1.0"), server=None, client=None, scheme=scheme)
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("localhost", port)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("", "")
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_headers_are_joined_and_underscores_dropped() -> None:
    headers = [
        (b"host", b"h"),
        (b"x-dup", b"one"),
        (b"x-dup", b"two"),
        (b"cookie", b"a=1"),
        (b"cookie", b"b=2"),
        (b"x_forwarded_for", b"203.0.113.1"),  # would pose as X-Forwarded-For
        (b"x-latin", b"caf\xe9"),
    ]
    env = environ(request(headers=headers))
    assert env["HTTP_X_DUP"] == "one,two"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert "HTTP_X_FORWARDED_FOR" not in env
    assert env["HTTP_X_LATIN"] == "caf\u00e9"
    assert "HTTP_CONTENT_TYPE" not in env and "CONTENT_TYPE" not in env


# -- WSGIInput -----------------------------------------------------------------------
def fed(*parts: bytes, eof: bool = True) -> WSGIInput:
    stream = WSGIInput(lambda: None)
    for part in parts:
        stream.feed(part)
    if eof:
        stream.feed_eof()
    return stream


def test_read_all_and_read_n() -> None:
    stream = fed(b"hel", b"lo wo", b"rld")
    assert stream.read(4) == b"hell"  # spans fed pieces
    assert stream.read(0) == b""
    assert stream.read() == b"o world"
    assert stream.read() == b""
    assert stream.read(10) == b""
    assert fed(b"abc").read(None) == b"abc"
    assert fed(b"abc").read(-1) == b"abc"
    assert fed(b"abc").read(100) == b"abc"  # short only at EOF


def test_readline_and_its_limit() -> None:
    stream = fed(b"one\ntw", b"o\n\nlong line", b" without end")
    assert stream.readline() == b"one\n"
    assert stream.readline() == b"two\n"
    assert stream.readline() == b"\n"
    assert stream.readline(4) == b"long"
    assert stream.readline(0) == b""
    assert stream.readline(None) == b" line without end"
    assert stream.readline() == b""


def test_readlines_hint_and_iteration() -> None:
    assert fed(b"a\nbb\nccc\n").readlines() == [b"a\n", b"bb\n", b"ccc\n"]
    assert fed(b"a\nbb\nccc\n").readlines(3) == [b"a\n", b"bb\n"]  # stop once >= hint
    assert fed(b"a\nbb\nccc\n").readlines(0) == [b"a\n", b"bb\n", b"ccc\n"]
    assert list(fed(b"x\ny\nz")) == [b"x\n", b"y\n", b"z"]
    assert list(fed()) == []


def test_read_after_a_disconnect_raises_once_the_buffer_is_empty() -> None:
    stream = WSGIInput(lambda: None)
    stream.feed(b"part")
    stream.feed_eof(disconnected=True)
    assert stream.read(2) == b"pa"
    assert stream.read() == b"rt"
    with pytest.raises(ClientDisconnected):
        stream.read()
    assert isinstance(ClientDisconnected(), OSError)  # apps catching OSError see it


def test_feed_asks_to_pause_and_reading_resumes_below_half() -> None:
    resumes = Resumes()
    stream = WSGIInput(resumes)
    assert stream.feed(b"x" * INPUT_HIGH_BYTES) is False
    assert stream.feed(b"x") is True
    stream.read(INPUT_HIGH_BYTES // 4)
    assert resumes.count == 0  # still more than half the limit unread
    stream.read(INPUT_HIGH_BYTES // 4 + 2)
    assert resumes.count == 1
    stream.read(10)
    assert resumes.count == 1  # resumed once, not per read


def test_pause_holds_until_the_reader_resumes() -> None:
    """A small feed while paused (bytes the parser already had) must not forget the pause."""
    resumes = Resumes()
    stream = WSGIInput(resumes)
    assert stream.feed(b"x" * (INPUT_HIGH_BYTES + 1)) is True
    stream.read(INPUT_HIGH_BYTES // 4)
    assert stream.feed(b"y") is True  # below the limit now, but the socket is still paused
    stream.read(INPUT_HIGH_BYTES // 2)
    assert resumes.count == 1  # so the reader still resumes it


def test_reader_waiting_for_more_unpauses_the_socket() -> None:
    resumes = Resumes()
    stream = WSGIInput(resumes)
    stream.feed(b"x" * (INPUT_HIGH_BYTES + 1))
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(stream.read()))
    reader.start()  # read() wants everything: it must resume the socket, then wait
    while resumes.count == 0:
        reader.join(0.01)
        assert reader.is_alive()
    stream.feed(b"tail")
    stream.feed_eof()
    reader.join(5)
    assert got == [b"x" * (INPUT_HIGH_BYTES + 1) + b"tail"]


def test_reads_block_until_another_thread_feeds() -> None:
    stream = WSGIInput(lambda: None)
    got: list[bytes] = []

    def read() -> None:
        got.append(stream.read(6))
        got.append(stream.readline())
        got.append(stream.read())

    reader = threading.Thread(target=read)
    reader.start()
    for piece in (b"ab", b"cdef", b"line", b"\nrest"):
        reader.join(0.01)  # the reader is (most likely) waiting: it must wake per feed
        stream.feed(piece)
    stream.feed_eof()
    reader.join(5)
    assert not reader.is_alive()
    assert got == [b"abcdef", b"line\n", b"rest"]


def test_file_wrapper_iterates_in_blocks_and_closes() -> None:
    raw = io.BytesIO(b"0123456789")
    wrapper = FileWrapper(raw, 4)
    assert list(wrapper) == [b"0123", b"4567", b"89"]
    wrapper.close()
    assert raw.closed


# -- WSGICycle, run inline: the "thread" and the "loop" are this test ----------------
class InlineLoop:
    """``call_soon_threadsafe`` at once: the loop side runs as soon as the thread asks."""

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: object) -> None:
        callback(*args)


class InlineExecutor(Executor):
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


class RecordingChannel(Recorder):
    """A Channel over a real ServerConnection, so response state is checked as in a worker."""

    def __init__(self) -> None:
        super().__init__(InlineLoop())
        self.conn = ServerConnection(Limits(), "h11")
        self.conn.receive(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")

    def send_head(self, status: int, headers: Headers, body: bytes, end: bool) -> None:
        self.conn.send_head(status, headers, body=body, end=end, date_line=b"")
        super().send_head(status, headers, body, end)

    def send_body(self, data: bytes, end: bool) -> None:
        self.conn.send_body(data, end=end)
        super().send_body(data, end)

    def abort(self) -> None:
        self.conn.abandon()
        super().abort()


class Closing:
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks

    def close(self) -> None:
        self.closed = True


def run_wsgi(app: WSGIApp) -> list[tuple[object, ...]]:
    channel = RecordingChannel()
    adapter = WSGIAdapter(app, InlineExecutor(), root_path="", multiprocess=False)
    cycle = adapter.new_cycle(request(), channel)
    cycle.feed_end()
    cycle.start()
    return channel.calls


ERROR_500 = ("head", 500, b"Internal Server Error\n", True)


def test_streamed_response_and_close() -> None:
    body = Closing([b"a", b"", b"b"])

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    assert run_wsgi(app) == [("head", 200, b"a", False), ("body", b"b", False), ("body", b"", True)]
    assert body.closed


def test_bytes_after_a_failed_head_are_dropped_not_sent_into_the_next_response() -> None:
    body = Closing([b"a", b"b", b"c"])

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("999 Nope", [])  # only the writer, on the loop, rejects this status
        return body

    assert run_wsgi(app) == [ERROR_500]
    assert body.closed  # and the app stopped at its next chunk


def test_list_longer_than_its_content_length_aborts() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Length", "3")])
        return [b"hello"]

    # The head was accepted before the body was refused: no 500 can follow it.
    assert run_wsgi(app) == [("abort",)]


def test_exception_before_and_after_the_head() -> None:
    def before(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        raise RuntimeError("boom")

    def after(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"a"
        raise RuntimeError("boom")

    assert run_wsgi(before) == [ERROR_500]
    assert run_wsgi(after) == [("head", 200, b"a", False), ("abort",)]


def test_exc_info_replaces_the_head_until_it_is_sent() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("X-Old", "1")])
        try:
            raise ValueError("late failure")
        except ValueError:
            start_response("502 Bad Gateway", [], sys.exc_info())
        return [b"sorry"]

    assert run_wsgi(app) == [("head", 502, b"sorry", True)]


# -- thread accounting: the loop alone decides ---------------------------------------
class QuietChannel(RecordingChannel):
    """A RecordingChannel on a real loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop


class Returning:
    """A pool that says when a job has returned, thread_done and all: a fact to wait on.

    Counting loop turns instead fails whenever a loaded machine leaves the thread
    unscheduled for longer than the count lasts.
    """

    def __init__(self, pool: ThreadPool) -> None:
        self._pool = pool
        self.returned = threading.Event()

    def submit(self, fn: Callable[[], object], /) -> None:
        def job() -> None:
            try:
                fn()
            finally:
                self.returned.set()

        self._pool.submit(job)


async def test_expiry_racing_completion_always_gives_every_thread_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.CRITICAL, "hybridserve.error")  # a stack per expiry, thousands
    loop = asyncio.get_running_loop()
    pool = ThreadPool(2)
    executor = Returning(pool)
    lost_seen: list[int] = []
    adapter = WSGIAdapter(
        lambda e, s: [],
        executor,
        root_path="",
        multiprocess=False,
        on_threads_lost=lost_seen.append,
    )
    inside, go = threading.Event(), threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        inside.set()
        go.wait(5)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    adapter.app = app
    try:
        for i in range(2000):
            await asyncio.sleep(0)  # the loop runs what the last thread posted, as it would
            inside.clear()
            go.clear()
            executor.returned.clear()
            cycle = adapter.new_cycle(request(), QuietChannel(loop))
            cycle.feed_end()
            cycle.start()
            # The loop thread blocks on purpose: expiry and completion then race only
            # with each other, never with the wait.
            assert inside.wait(10), f"round {i}: no thread ran the app"
            if i % 2:  # both orders, and everything between them
                go.set()
                cycle.expire()
            else:
                cycle.expire()
                go.set()
            assert executor.returned.wait(10), f"round {i}: the thread never came back"
            assert cycle.thread_done
            adapter.check_lost()  # the worker's once-a-second look
            assert adapter.lost_threads == 0, f"round {i}: a returned thread stayed lost"
    finally:
        pool.shutdown()
    assert lost_seen and set(lost_seen) <= {0, 1}, "expiry did write threads off at times"
