"""Access logs: gunicorn atoms, JSON lines that survive hostile headers, reopen on USR1."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServeFactory
from tests.harness import get, read_response, wait_until

HOSTILE = 'evil" 200 - "x\\"\t[31m\xe9 ] \\\\'


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]


def open_files(pid: int) -> set[str]:
    """The paths of the files process ``pid`` holds open."""
    paths = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            paths.add(os.readlink(fd))
        except FileNotFoundError:  # closed while we looked
            pass
    return paths


def test_default_format_is_gunicorns(serve: ServeFactory) -> None:
    server = serve("-w", "1", "--access-log", "-")
    httpx.get(server.url + "/echo?x=1", headers={"Referer": "http://r/", "User-Agent": "ua/1"})
    line = server.wait_for(r'"GET /echo\?x=1 HTTP/1.1" 200').string
    assert re.search(
        r"127\.0\.0\.1 - - \[\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "
        r'"GET /echo\?x=1 HTTP/1.1" 200 \d+ "http://r/" "ua/1"$',
        line,
    ), line


def test_custom_atoms(serve: ServeFactory, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    fmt = "%(m)s %(U)s %(q)s %(s)s %(D)s %({x-req}i)s %% %({content-type}o)s"
    server = serve("-w", "1", "--access-log", str(log), "--access-log-format", fmt)
    httpx.get(server.url + "/status/201?a=b", headers={"X-Req": "abc"})
    assert wait_until(lambda: log.exists() and lines(log), 5)
    method, path, query, status, micros, req, pct, ctype = lines(log)[0].split(" ", 7)
    assert (method, path, query, status, req, pct) == (
        "GET",
        "/status/201",
        "a=b",
        "201",
        "abc",
        "%",
    )
    assert int(micros) > 0
    assert ctype.startswith("text/plain")


def test_json_lines_escape_hostile_headers(serve: ServeFactory, tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    server = serve("-w", "1", "--access-log", str(log), "--access-log-format", "json")
    with server.connect() as sock:
        for _ in range(3):
            agent = f"User-Agent: {HOSTILE}\r\n"
            sock.sendall(get("/", headers=agent).decode("latin-1").encode("latin-1"))
            assert read_response(sock).status == 200
    assert wait_until(lambda: log.exists() and len(lines(log)) == 3, 5)
    for line in lines(log):
        record = json.loads(line)  # every line is one whole JSON object
        assert record["status"] == 200
        assert record["user_agent"] == HOSTILE
        assert record["path"] == "/"


def test_plain_lines_escape_hostile_headers(serve: ServeFactory, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server = serve("-w", "1", "--access-log", str(log))
    with server.connect() as sock:
        sock.sendall(get("/", headers=f"User-Agent: {HOSTILE}\r\n"))
        read_response(sock)
    assert wait_until(lambda: log.exists() and lines(log), 5)
    (line,) = lines(log)
    assert line.endswith('"-" "evil\\x22 200 - \\x22x\\x5c\\x22\\x09[31m\\xe9 ] \\x5c\\x5c"')


def test_usr1_reopens_the_log_file(serve: ServeFactory, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server = serve("-w", "1", "--access-log", str(log))
    httpx.get(server.url + "/status/201")
    assert wait_until(lambda: log.exists() and lines(log), 5)
    log.rename(tmp_path / "access.log.1")
    server.send_signal(signal.SIGUSR1)
    (worker,) = server.worker_pids()  # the master passes USR1 on; the worker opens a new file
    assert wait_until(lambda: str(log) in open_files(worker), 5), "the worker reopened its log"
    httpx.get(server.url + "/status/202")
    assert wait_until(lambda: log.exists() and lines(log), 5)
    assert '" 202 ' in lines(log)[0]
    assert '" 201 ' in lines(tmp_path / "access.log.1")[0]
    assert "Reopened 1 log files" in server.log


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
def test_b_is_the_response_body_size_as_in_gunicorn(
    serve: ServeFactory, tmp_path: Path, interface: str
) -> None:
    """%(b)s counts the body only: no head, no chunk framing; '-' when there is none."""
    log = tmp_path / "access.log"
    fmt = "%(m)s %(U)s %(s)s %(b)s %(B)s"
    server = serve(
        "-w", "1", "--interface", interface, "--access-log", str(log), "--access-log-format", fmt
    )
    requests = [
        ("GET", "/bytes?n=1000"),
        ("GET", "/stream?chunks=3&size=10"),
        ("GET", "/status/302"),
        ("GET", "/status/204"),
        ("HEAD", "/bytes?n=10"),
    ]
    with httpx.Client(base_url=server.url) as client:
        for method, target in requests:
            client.request(method, target)
    assert wait_until(lambda: log.exists() and len(lines(log)) == len(requests), 5)
    assert lines(log) == [
        "GET /bytes 200 1000 1000",
        "GET /stream 200 30 30",
        "GET /status/302 302 10 10",  # "302 Found\n": the head is not counted
        "GET /status/204 204 - 0",
        "HEAD /bytes 200 - 0",
    ]
