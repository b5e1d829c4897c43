"""WSGI (PEP 3333) through the real CLI: environ, wsgi.input, responses, failures, Flask."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.harness import Server, SocketReader, get, read_response, read_until_close

MIB = 1024 * 1024


def start(*args: str) -> Server:
    return Server(*args).start()


@pytest.fixture(scope="module")
def wsgi() -> Iterator[Server]:
    server = start("wsgi_apps:app", "-w", "1", "--threads", "4")
    yield server
    assert server.stop() == 0, server.log


@pytest.fixture(scope="module")
def mounted() -> Iterator[Server]:
    """Two workers and a root path: SCRIPT_NAME and wsgi.multiprocess change."""
    server = start("wsgi_apps:app", "-w", "2", "--threads", "2", "--root-path", "/api")
    yield server
    assert server.stop() == 0, server.log


@pytest.fixture(scope="module")
def flask() -> Iterator[Server]:
    server = start("flask_app:app", "-w", "1", "--threads", "2", "--interface", "auto")
    yield server
    assert server.stop() == 0, server.log


def raw_json(server: Server, raw: bytes) -> Any:
    with server.connect() as sock:
        sock.sendall(raw)
        response = read_response(sock)
    assert response.status == 200, response
    return json.loads(response.body)


def events(server: Server, key: str, *, until: int = 0, timeout_s: float = 5) -> list[str]:
    """What the app recorded under ``key``; waits until there are ``until`` entries."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen: list[str] = httpx.get(f"{server.url}/events?id={key}").json()
        if len(seen) >= until or time.monotonic() > deadline:
            return seen
        time.sleep(0.02)  # the poll interval of this bounded wait


def worker_pid(server: Server) -> str:
    return httpx.get(server.url + "/pid").text


def truncated_chunked(server: Server, path: str) -> bytes:
    """GET ``path`` and read until the server closes; asserts the chunked body never ended."""
    raw = server.exchange(get(path))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), raw
    assert b"transfer-encoding: chunked" in head.lower()
    assert not body.endswith(b"0\r\n\r\n"), body
    return body


# -- environ -------------------------------------------------------------------------
def test_environ_holds_every_pep3333_key(wsgi: Server) -> None:
    with wsgi.connect() as sock:
        sock.sendall(
            b"GET /environ?a=1&b=%20x HTTP/1.1\r\nHost: example.test:8080\r\n"
            b"X-Dup: one\r\nX-Dup: two\r\nX_Spoof: underscore\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 0\r\n\r\n"
        )
        env = json.loads(read_response(sock).body)
        client_port = sock.getsockname()[1]
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "a=1&b=%20x"  # as sent, not decoded
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "0"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("example.test", "8080")
    assert env["HTTP_HOST"] == "example.test:8080"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("127.0.0.1", str(client_port))
    assert env["HTTP_X_DUP"] == "one,two"
    assert "HTTP_X_SPOOF" not in env  # an underscore header would alias X-Spoof
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is False  # -w 1
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    assert env["errors_ok"] is True
    assert env["input_type"] in ("WSGIInput", "BytesIO")  # BytesIO: the body was whole
    assert env["file_wrapper_callable"] is True


def test_path_info_is_percent_decoded_as_latin1(wsgi: Server) -> None:
    env = raw_json(wsgi, get("/caf%C3%A9/a%2Fb%20c?q=%C3%A9", host="h"))
    assert env["PATH_INFO"] == "/caf\u00c3\u00a9/a/b c"  # the UTF-8 bytes, one char each
    assert env["QUERY_STRING"] == "q=%C3%A9"
    assert env["SERVER_NAME"] == "h"
    assert env["SERVER_PORT"] == str(wsgi.port)  # no port in Host: the socket's


def test_http10_request_reports_its_protocol(wsgi: Server) -> None:
    raw = wsgi.exchange(b"GET /environ HTTP/1.0\r\n\r\n")
    env = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert "HTTP_HOST" not in env


@pytest.mark.parametrize(
    ("path", "script_name", "path_info"),
    [("/api/items/7", "/api", "/items/7"), ("/api", "/api", ""), ("/items/7", "/api", "/items/7")],
)
def test_root_path_becomes_script_name(
    mounted: Server, path: str, script_name: str, path_info: str
) -> None:
    env = httpx.get(mounted.url + path).json()
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == (script_name, path_info)
    assert env["wsgi.multiprocess"] is True  # -w 2


# -- wsgi.input ----------------------------------------------------------------------
BODY = b"first line\nsecond\n\nlast without newline"


@pytest.mark.parametrize(
    ("how", "pieces"),
    [
        ("read", [BODY.decode()]),
        ("read_n", [BODY[i : i + 4].decode() for i in range(0, len(BODY), 4)]),
        ("readline", ["first line\n", "second\n", "\n", "last without newline"]),
        ("readlines", ["first line\n", "second\n", "\n", "last without newline"]),
        ("iter", ["first line\n", "second\n", "\n", "last without newline"]),
        (
            "readline_n",
            [
                *["fir", "st ", "lin", "e\n", "sec", "ond", "\n", "\n"],
                *["las", "t w", "ith", "out", " ne", "wli", "ne"],
            ],
        ),
        ("mixed", ["first line\n", "se", "cond\n\nlast without newline"]),
    ],
)
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_wsgi_input_methods(wsgi: Server, how: str, pieces: list[str], chunked: bool) -> None:
    if chunked:  # chunk boundaries fall inside lines: the reader must not care
        parts = [BODY[i : i + 5] for i in range(0, len(BODY), 5)]
        body = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        framing = b"Transfer-Encoding: chunked\r\n"
    else:
        body, framing = BODY, b"Content-Length: %d\r\n" % len(BODY)
    raw = b"POST /read?how=%b HTTP/1.1\r\nHost: t\r\n%b\r\n%b" % (how.encode(), framing, body)
    assert raw_json(wsgi, raw) == [*pieces, ""]  # then read() at EOF gives b""


def test_large_upload_is_streamed_to_the_app_not_buffered(wsgi: Server) -> None:
    size = 50 * MIB

    def body() -> Iterator[bytes]:
        piece = b"u" * MIB
        for _ in range(size // MIB):
            yield piece

    report = httpx.post(wsgi.url + "/upload", content=body(), timeout=30).json()
    assert report["bytes"] == size
    assert report["biggest"] <= 64 * 1024
    assert report["reads"] >= size // (64 * 1024)
    assert report["rss_growth_kib"] < 16 * 1024, report  # a fraction of the 50 MiB body


def test_client_leaving_mid_body_raises_in_the_reading_app(wsgi: Server) -> None:
    pid = worker_pid(wsgi)
    with wsgi.connect() as sock:
        sock.sendall(b"POST /upload?id=left HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n")
        sock.sendall(b"p" * 100_000)
        assert events(wsgi, "left", timeout_s=0.2) == []  # still waiting for the rest
    # Every byte that came, then the error (an OSError) instead of a short body.
    assert events(wsgi, "left", until=1) == ["ClientDisconnected after 100000"]
    assert worker_pid(wsgi) == pid


def test_expect_continue_upload(wsgi: Server) -> None:
    with wsgi.connect() as sock:
        sock.sendall(
            b"POST /read HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        reader = SocketReader(sock)
        assert reader._line() == b"HTTP/1.1 100 Continue"
        assert reader._line() == b""
        sock.sendall(b"hello")
        assert json.loads(reader.read_response().body) == ["hello", ""]


# -- start_response, write() and the response iterable -----------------------------
def test_exc_info_replaces_headers_before_the_head_is_sent(wsgi: Server) -> None:
    response = httpx.get(wsgi.url + "/exc-info-before-head")
    assert response.status_code == 503
    assert response.headers["x-replaced"] == "yes"
    assert "x-discarded" not in response.headers
    assert response.content == b"replaced"


def test_exc_info_after_the_head_is_sent_reraises(wsgi: Server) -> None:
    mark = len(wsgi.lines)
    body = truncated_chunked(wsgi, "/exc-info-after-head?id=late")
    assert body.startswith(b"5\r\nfirst\r\n")
    assert events(wsgi, "late", until=1) == ["re-raised"]
    wsgi.wait_for("ValueError: too late", after=mark)


def test_write_callable_and_returned_iterable_are_one_body(wsgi: Server) -> None:
    response = httpx.get(wsgi.url + "/write")
    assert response.content == b"one,two,three"


def test_close_is_called_after_a_complete_response(wsgi: Server) -> None:
    assert httpx.get(wsgi.url + "/closing?id=complete").content == b"abc"
    assert events(wsgi, "complete", until=1) == ["closed"]


def test_close_is_called_when_iteration_raises(wsgi: Server) -> None:
    mark = len(wsgi.lines)
    body = truncated_chunked(wsgi, "/closing?id=midway&fail_after=1")
    assert body == b"1\r\na\r\n"
    assert events(wsgi, "midway", until=2) == ["raised", "closed"]
    wsgi.wait_for("RuntimeError: failed mid-iteration", after=mark)


def test_close_is_called_when_the_client_goes_away(wsgi: Server) -> None:
    with wsgi.connect() as sock:
        sock.sendall(get("/endless?id=gone"))
        assert b"200 OK" in sock.recv(4096)
    assert events(wsgi, "gone", until=1) == ["closed"]
    assert httpx.get(wsgi.url + "/").content == b"hello"


def test_file_wrapper_streams_the_file_and_closes_it(wsgi: Server) -> None:
    response = httpx.get(wsgi.url + "/file?id=file")
    assert response.content == b"0123456789" * 10_000
    assert events(wsgi, "file", until=1) == ["file closed"]


# -- failures ------------------------------------------------------------------------
def test_exception_before_the_response_is_a_500_and_the_worker_lives(wsgi: Server) -> None:
    pid = worker_pid(wsgi)
    mark = len(wsgi.lines)
    response = httpx.get(wsgi.url + "/raise-before")
    assert response.status_code == 500
    assert response.content == b"Internal Server Error\n"
    wsgi.wait_for("Exception in WSGI app", after=mark)
    wsgi.wait_for("RuntimeError: boom before the response", after=mark)
    assert worker_pid(wsgi) == pid


def test_exception_after_the_response_started_closes_the_connection(wsgi: Server) -> None:
    pid = worker_pid(wsgi)
    body = truncated_chunked(wsgi, "/raise-after?id=after")
    assert body == b"8\r\npartial-\r\n5\r\nmore-\r\n"
    assert events(wsgi, "after", until=2) == ["raised", "closed"]
    assert worker_pid(wsgi) == pid


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/not-iterable", "app returned a non-iterable int"),
        ("/start-twice", "start_response() called twice without exc_info"),
        ("/bad-status", "invalid response status 999"),
    ],
)
def test_broken_app_contract_is_a_logged_500(wsgi: Server, path: str, reason: str) -> None:
    mark = len(wsgi.lines)
    with wsgi.connect() as sock:  # one connection: it must stay usable after the 500
        reader = SocketReader(sock)
        sock.sendall(get(path) + get("/"))
        failed = reader.read_response()
        after = reader.read_response()
    assert (failed.status, failed.body) == (500, b"Internal Server Error\n")
    assert (after.status, after.body) == (200, b"hello")
    wsgi.wait_for(re.escape(reason), after=mark)


@pytest.mark.parametrize("stream", ["", "1"])
def test_body_longer_than_content_length_fails_without_hanging(wsgi: Server, stream: str) -> None:
    mark = len(wsgi.lines)
    with wsgi.connect(timeout_s=5) as sock:
        sock.sendall(get(f"/wrong-length?stream={stream}"))
        raw = read_until_close(sock)
    # Nothing valid can follow: either a 500 (head unsent) or a cut connection.
    assert raw == b"" or raw.startswith(b"HTTP/1.1 500 "), raw
    wsgi.wait_for("more body than its Content-Length declared", after=mark)
    assert httpx.get(wsgi.url + "/").content == b"hello"


# -- threads and the loop ------------------------------------------------------------
def test_a_sleeping_app_does_not_delay_other_requests(wsgi: Server) -> None:
    with wsgi.connect() as sock:
        sock.sendall(get("/sleep?s=1&id=nap"))
        assert events(wsgi, "nap", until=1) == ["sleeping"]  # a thread is in time.sleep
        assert httpx.get(wsgi.url + "/").content == b"hello"  # answered meanwhile:
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(1)  # ... the sleeper is still in flight
        sock.setblocking(True)
        assert read_response(sock).body == b"slept"


# -- Flask ---------------------------------------------------------------------------
def test_flask_is_detected_as_wsgi(flask: Server) -> None:
    flask.wait_for(r"Worker \d+ serving wsgi \(")


def test_flask_routes_json_and_form(flask: Server) -> None:
    assert httpx.get(flask.url + "/").text == "hello from flask"
    data = httpx.get(flask.url + "/json?x=1").json()
    assert data == {"items": [1, 2, 3], "args": {"x": "1"}, "script": ""}
    form = httpx.post(flask.url + "/form", data={"name": "ada", "lang": "en"}).json()
    assert form == {"name": "ada", "lang": "en", "length": len("name=ada&lang=en")}
    assert httpx.post(flask.url + "/echo-json", json={"a": [1]}).json() == {"got": {"a": [1]}}


def test_flask_streaming_response(flask: Server) -> None:
    with flask.connect() as sock:
        sock.sendall(get("/stream?n=3"))
        response = read_response(sock)
    assert response.header("transfer-encoding") == "chunked"
    assert response.body == b"line 0 of /stream\nline 1 of /stream\nline 2 of /stream\n"


def test_flask_404_error_handler_and_crash(flask: Server) -> None:
    assert httpx.get(flask.url + "/missing").status_code == 404
    refused = httpx.get(flask.url + "/refuse")
    assert (refused.status_code, refused.json()) == (422, {"error": "not today"})
    mark = len(flask.lines)
    assert httpx.get(flask.url + "/crash").status_code == 500  # Flask's own 500 page
    flask.wait_for("RuntimeError: unhandled in flask", after=mark)
