"""build_scope and HTTPCycle without sockets: a fake Channel records what the cycle wrote."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from hybridserve.apps import asgi as asgi_module
from hybridserve.apps.asgi import (
    ASGIAdapter,
    HTTPCycle,
    build_scope,
    split_target,
)
from hybridserve.apps.types import Message, Receive, Scope, Send
from hybridserve.errors import ClientDisconnected, ResponseError
from hybridserve.sansio.events import Headers, Request
from hybridserve.sansio.writer import header_line
from tests.unit.recording_channel import Recorder


class FakeChannel(Recorder):
    """A Channel that validates heads as the real one does and records every call."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.refuse_body = False  # as when a body exceeds the head's Content-Length

    def send_head(self, status: int, headers: Headers, body: bytes, end: bool) -> None:
        if not 100 <= status <= 599:
            raise ResponseError(f"invalid response status {status!r}")
        for name, value in headers:
            header_line(name, value)
        if self.refuse_body:
            self.refuse_body = False
            raise ResponseError("app sent more body than its Content-Length declared")
        super().send_head(status, headers, body, end)


def request(target: bytes = b"/", headers: Headers | None = None, **kw: Any) -> Request:
    return Request(
        method=kw.get("method", b"GET"),
        target=target,
        http_version=kw.get("version", b"1.1"),
        headers=[(b"host", b"example.test")] if headers is None else headers,
        keep_alive=True,
        expect_continue=kw.get("expect_continue", False),
    )


def scope_of(target: bytes, root_path: str = "", **kw: Any) -> Scope:
    channel = FakeChannel(asyncio.new_event_loop())
    try:
        return build_scope(request(target, **kw), channel, root_path, {"db": 1})
    finally:
        channel.loop.close()


# -- build_scope ---------------------------------------------------------------------
def test_scope_keys_and_types() -> None:
    headers = [(b"host", b"h"), (b"x-dup", b"1"), (b"x-dup", b"2")]
    scope = scope_of(b"/p/q?x=1&y=%20", headers=headers, method=b"POST", version=b"1.0")
    assert scope == {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.0",
        "method": "POST",
        "scheme": "http",
        "path": "/p/q",
        "raw_path": b"/p/q",
        "query_string": b"x=1&y=%20",
        "root_path": "",
        "headers": headers,
        "client": ("192.0.2.7", 50123),
        "server": ("127.0.0.1", 8000),
        "state": {"db": 1},
        "extensions": {"http.response.pathsend": {}},
    }


@pytest.mark.parametrize(
    ("target", "path", "raw_path", "query"),
    [
        (b"/caf%C3%A9", "/caf\u00e9", b"/caf%C3%A9", b""),  # ASGI decodes UTF-8
        (b"/a%2Fb%20c?", "/a/b c", b"/a%2Fb%20c", b""),
        (b"/bad%FF", "/bad\ufffd", b"/bad%FF", b""),
        (b"http://example.test/abs?q=1", "/abs", b"/abs", b"q=1"),
        (b"http://example.test", "/", b"/", b""),
    ],
)
def test_scope_path_raw_path_and_query(
    target: bytes, path: str, raw_path: bytes, query: bytes
) -> None:
    scope = scope_of(target)
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == (path, raw_path, query)
    assert split_target(target) == (raw_path, query)


def test_root_path_prefixes_path_and_raw_path() -> None:
    scope = scope_of(b"/items/7?x=1", root_path="/api")
    assert (scope["root_path"], scope["path"], scope["raw_path"]) == (
        "/api",
        "/api/items/7",
        b"/api/items/7",
    )


def test_state_is_a_copy_per_request() -> None:
    state: dict[str, Any] = {"db": "conn"}
    channel = FakeChannel(asyncio.new_event_loop())
    try:
        scope = build_scope(request(), channel, "", state)
    finally:
        channel.loop.close()
    scope["state"]["per_request"] = True
    assert state == {"db": "conn"}


# -- HTTPCycle -----------------------------------------------------------------------
async def run(
    app: Any, req: Request | None = None, *, body: list[bytes] | None = None
) -> tuple[FakeChannel, HTTPCycle]:
    """Run ``app`` for one request whose body is ``body`` (fed before the app starts)."""
    channel = FakeChannel(asyncio.get_running_loop())
    cycle = HTTPCycle(ASGIAdapter(app, root_path=""), req or request(), channel)
    for piece in body or []:
        cycle.feed_body(piece)
    cycle.feed_end()
    cycle.start()
    assert cycle.task is not None
    await asyncio.wait_for(cycle.task, 5)
    return channel, cycle


async def ok(send: Send, body: bytes = b"ok", headers: Headers | None = None) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


async def test_receive_gives_pieces_then_disconnect_after_the_response() -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.extend([await receive(), await receive()])
        await ok(send)
        seen.append(await receive())

    channel, _ = await run(app, body=[b"ab", b"cd"])
    assert seen == [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"cd", "more_body": False},
        {"type": "http.disconnect"},
    ]
    assert channel.calls == [("head", 200, b"ok", True)]


async def test_receive_without_a_body() -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        await ok(send)

    await run(app)
    assert seen == [{"type": "http.request", "body": b"", "more_body": False}]


async def test_waiting_receive_gets_disconnect_when_the_client_goes() -> None:
    channel = FakeChannel(asyncio.get_running_loop())
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        seen.append(await receive())  # a long poll: nothing more will come but a disconnect
        await send({"type": "http.response.start", "status": 200, "headers": []})

    cycle = HTTPCycle(ASGIAdapter(app, root_path=""), request(), channel)
    cycle.feed_end()
    cycle.start()
    assert cycle.task is not None
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(seen) == 1 and not cycle.task.done()
    cycle.disconnected()
    await asyncio.wait_for(cycle.task, 5)  # send() raised ClientDisconnected, taken quietly
    assert seen[1] == {"type": "http.disconnect"}
    assert channel.calls == []


async def test_a_draining_worker_tells_a_waiting_app_it_is_over_and_still_lets_it_send() -> None:
    channel = FakeChannel(asyncio.get_running_loop())
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())  # the body, in pieces, is not cut short by the drain
        seen.append(await receive())
        seen.append(await receive())  # waiting past the body, as an SSE app does
        await ok(send, b"bye")

    cycle = HTTPCycle(ASGIAdapter(app, root_path=""), request(), channel)
    cycle.feed_body(b"ab")
    cycle.start()
    assert cycle.task is not None
    for _ in range(3):
        await asyncio.sleep(0)
    cycle.shutdown()
    cycle.feed_body(b"cd")
    cycle.feed_end()
    await asyncio.wait_for(cycle.task, 5)
    assert [m.get("body") for m in seen[:2]] == [b"ab", b"cd"]
    assert seen[2] == {"type": "http.disconnect"}
    assert channel.calls[-1] == ("head", 200, b"bye", True)


async def test_expect_continue_is_sent_when_the_app_reads() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await ok(send)

    channel = FakeChannel(asyncio.get_running_loop())
    cycle = HTTPCycle(ASGIAdapter(app, root_path=""), request(expect_continue=True), channel)
    cycle.start()
    await asyncio.sleep(0)
    assert channel.calls == [("continue",)]
    cycle.feed_body(b"x")
    cycle.feed_end()
    assert cycle.task is not None
    await asyncio.wait_for(cycle.task, 5)
    assert channel.calls[-1] == ("head", 200, b"ok", True)


async def test_streaming_with_more_body() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b", "more_body": True})
        await send({"type": "http.response.body"})

    channel, _ = await run(app)
    assert channel.calls == [
        ("head", 201, b"a", False),
        ("body", b"b", False),
        ("body", b"", True),
    ]


async def test_send_after_disconnect_raises_an_oserror() -> None:
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        cycle.disconnected()
        try:
            await ok(send)
        except OSError as exc:
            raised.append(exc)

    channel = FakeChannel(asyncio.get_running_loop())
    cycle = HTTPCycle(ASGIAdapter(app, root_path=""), request(), channel)
    cycle.start()
    assert cycle.task is not None
    await asyncio.wait_for(cycle.task, 5)
    assert [type(e) for e in raised] == [ClientDisconnected]
    assert channel.calls == []


async def test_exception_before_start_is_a_500() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    channel, _ = await run(app)
    assert channel.calls == [("head", 500, b"Internal Server Error\n", True)]


async def test_exception_after_start_aborts() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        raise RuntimeError("boom")

    channel, _ = await run(app)
    assert channel.calls == [("head", 200, b"a", False), ("abort",)]


async def test_returning_without_a_response_is_a_500() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    channel, _ = await run(app)
    assert channel.calls == [("head", 500, b"Internal Server Error\n", True)]


@pytest.mark.parametrize(
    "headers",
    [[(b"bad name", b"x")], [(b"x-ok", b"line\r\nbreak")]],
    ids=["name", "value"],
)
async def test_invalid_header_is_a_500_not_an_abort(headers: Headers) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await ok(send, headers=headers)

    channel, _ = await run(app)
    assert channel.calls == [("head", 500, b"Internal Server Error\n", True)]


async def test_invalid_status_is_a_500() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 99, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    channel, _ = await run(app)
    assert channel.calls == [("head", 500, b"Internal Server Error\n", True)]


async def test_head_taken_but_body_refused_aborts() -> None:
    """The channel may refuse the body after accepting the head: then no 500 can follow."""

    class Refusing(FakeChannel):
        def send_head(self, status: int, headers: Headers, body: bytes, end: bool) -> None:
            if self.calls:  # the 500 after the refusal: the response already started
                raise ResponseError("response started twice")
            self.calls.append(("refused", status))
            raise ResponseError("app sent more body than its Content-Length declared")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await ok(send, b"too long", [(b"content-length", b"2")])

    channel = Refusing(asyncio.get_running_loop())
    cycle = HTTPCycle(ASGIAdapter(app, root_path=""), request(), channel)
    cycle.feed_end()
    cycle.start()
    assert cycle.task is not None
    await asyncio.wait_for(cycle.task, 5)
    assert channel.calls == [("refused", 200), ("abort",)]


@pytest.mark.parametrize(
    "messages",
    [
        [{"type": "http.response.body", "body": b"x"}],
        [{"type": "http.response.start", "status": 200}] * 2,
        [{"type": "http.response.bogus"}],
    ],
    ids=["body-first", "start-twice", "unknown-type"],
)
async def test_messages_out_of_order_are_a_500(messages: list[Message]) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    channel, _ = await run(app)
    assert channel.calls == [("head", 500, b"Internal Server Error\n", True)]


async def test_body_after_the_response_completed_is_refused() -> None:
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await ok(send)
        try:
            await send({"type": "http.response.body", "body": b"late"})
        except ResponseError as exc:
            raised.append(exc)

    channel, _ = await run(app)
    assert len(raised) == 1
    assert channel.calls == [("head", 200, b"ok", True)]


async def test_pathsend_opens_and_stats_its_file_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "f.txt").write_bytes(b"file body")
    opened_on: list[int] = []
    real = asgi_module.open_regular_file

    def recording_open(path: str) -> tuple[int, int]:
        opened_on.append(threading.get_ident())
        return real(path)

    monkeypatch.setattr(asgi_module, "open_regular_file", recording_open)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(tmp_path / "f.txt")})

    channel, _ = await run(app)
    assert channel.calls == [("file", 200, b"file body")]
    assert opened_on and opened_on[0] != threading.get_ident(), "open/stat ran on the loop"
