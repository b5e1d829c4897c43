"""``--static`` mounts through the real CLI: RFC 9110 semantics and containment.

One server per module serves a tree built here; a secret file sits next to its root, and
every attack below must leave that secret unread.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServeFactory
from tests.harness import Server, SocketReader, get, wait_until

SECRET = b"TOP-SECRET-NEXT-TO-THE-ROOT\n"
TEXT = b"body { color: red; }\n" * 200


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("static")
    (base / "secret.txt").write_bytes(SECRET)
    root = base / "public"
    (root / "css").mkdir(parents=True)
    (root / "css" / "app.css").write_bytes(TEXT)
    (root / "css" / "app.css.gz").write_bytes(gzip.compress(TEXT))
    (root / "css" / "app.css.br").write_bytes(b"pretend-brotli")
    (root / "data.bin").write_bytes(bytes(range(256)) * 40)
    (root / "empty.txt").write_bytes(b"")
    (root / "docs").mkdir()
    (root / "docs" / "index.html").write_bytes(b"<h1>docs</h1>\n")
    (root / ".env").write_bytes(SECRET)
    (root / "leak.txt").symlink_to(base / "secret.txt")
    (root / "leakdir").symlink_to(base)
    (root / "alias.css").symlink_to(root / "css" / "app.css")
    (root / "fifo").parent.mkdir(exist_ok=True)
    os.mkfifo(root / "fifo")
    return root


@pytest.fixture(scope="module")
def server(tree: Path) -> Iterator[Server]:
    with Server("-w", "1", "--static", f"/static={tree}", "--static-max-age", "60") as srv:
        yield srv


@pytest.fixture(scope="module")
def indexed(tree: Path) -> Iterator[Server]:
    with Server("-w", "1", "--static", f"/s/={tree}", "--static-index") as srv:
        yield srv


@dataclass
class Got:
    """A response as sent: no decoding of content codings (httpx would undo them)."""

    status_code: int
    headers: dict[str, str]
    content: bytes


def fetch(server: Server, target: str, headers: str = "", method: str = "GET") -> Got:
    raw = f"{method} {target} HTTP/1.1\r\nHost: t\r\n{headers}\r\n".encode("latin-1")
    with server.connect() as sock:
        sock.sendall(raw)
        got = SocketReader(sock).read_response(head_request=method == "HEAD")
    return Got(got.status, {k.lower(): v for k, v in got.headers}, got.body)


def test_a_file_is_served_with_its_type_and_validators(server: Server) -> None:
    response = fetch(server, "/static/css/app.css", "Accept-Encoding: identity\r\n")
    assert response.status_code == 200
    assert response.content == TEXT
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=60"
    assert response.headers["etag"].startswith('"')
    assert response.headers["last-modified"].endswith(" GMT")
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["vary"] == "Accept-Encoding"  # it has siblings
    # No Accept-Encoding: the plain file without a look for siblings, so without Vary.
    assert "vary" not in fetch(server, "/static/css/app.css").headers
    assert "content-encoding" not in response.headers
    binary = httpx.get(server.url + "/static/data.bin")
    assert binary.headers["content-type"] == "application/octet-stream"
    assert binary.content == bytes(range(256)) * 40 and "vary" not in binary.headers


def test_the_app_still_answers_every_other_path(server: Server) -> None:
    assert httpx.get(server.url + "/").text == "Hello, world!"
    assert httpx.get(server.url + "/staticx").status_code == 404  # the demo's own 404


def test_head_405_and_an_empty_file(server: Server) -> None:
    head = fetch(server, "/static/css/app.css", method="HEAD")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(TEXT))
    post = fetch(server, "/static/css/app.css", "Content-Length: 0\r\n", method="POST")
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"
    empty = httpx.get(server.url + "/static/empty.txt")
    assert empty.status_code == 200 and empty.content == b""


def test_conditional_requests(server: Server) -> None:
    first = httpx.get(server.url + "/static/data.bin")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for headers in (
        f"If-None-Match: {etag}\r\n",
        f'If-None-Match: "x", W/{etag}\r\n',
        "If-None-Match: *\r\n",
        f"If-Modified-Since: {modified}\r\n",
    ):
        response = fetch(server, "/static/data.bin", headers)
        assert response.status_code == 304, headers
        assert response.headers["etag"] == etag and response.content == b""
    assert fetch(server, "/static/data.bin", 'If-None-Match: "x"\r\n').status_code == 200
    assert fetch(server, "/static/data.bin", 'If-Match: "x"\r\n').status_code == 412
    assert fetch(server, "/static/data.bin", f"If-Match: {etag}\r\n").status_code == 200
    old = "If-Unmodified-Since: Mon, 01 Jan 2001 00:00:00 GMT\r\n"
    assert fetch(server, "/static/data.bin", old).status_code == 412


def test_ranges(server: Server) -> None:
    whole = bytes(range(256)) * 40
    one = fetch(server, "/static/data.bin", "Range: bytes=10-19\r\n")
    assert one.status_code == 206 and one.content == whole[10:20]
    assert one.headers["content-range"] == f"bytes 10-19/{len(whole)}"
    assert fetch(server, "/static/data.bin", "Range: bytes=-7\r\n").content == whole[-7:]
    assert fetch(server, "/static/data.bin", "Range: bytes=10000-\r\n").content == whole[10000:]
    bad = fetch(server, "/static/data.bin", "Range: bytes=99999-\r\n")
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{len(whole)}"
    etag = one.headers["etag"]
    same = fetch(server, "/static/data.bin", f"Range: bytes=0-1\r\nIf-Range: {etag}\r\n")
    assert same.status_code == 206
    changed = fetch(server, "/static/data.bin", 'Range: bytes=0-1\r\nIf-Range: "old"\r\n')
    assert changed.status_code == 200 and changed.content == whole


def test_several_ranges_come_as_multipart_byteranges(server: Server) -> None:
    whole = bytes(range(256)) * 40
    response = fetch(server, "/static/data.bin", "Range: bytes=0-4, 100-109\r\n")
    assert response.status_code == 206
    kind = response.headers["content-type"]
    assert kind.startswith("multipart/byteranges; boundary=")
    boundary = kind.split("boundary=")[1].encode()
    parts = response.content.split(b"--" + boundary)
    assert parts[0] == b"" and parts[-1] == b"--\r\n"
    bodies = [part.split(b"\r\n\r\n", 1) for part in parts[1:-1]]
    assert [b[1].removesuffix(b"\r\n") for b in bodies] == [whole[0:5], whole[100:110]]
    assert b"Content-Range: bytes 100-109/10240" in bodies[1][0]
    assert int(response.headers["content-length"]) == len(response.content)


def test_precompressed_siblings_follow_accept_encoding(server: Server) -> None:
    plain = fetch(server, "/static/css/app.css")
    br = fetch(server, "/static/css/app.css", "Accept-Encoding: gzip, br\r\n")
    assert br.headers["content-encoding"] == "br" and br.content == b"pretend-brotli"
    assert br.headers["vary"] == "Accept-Encoding"
    gz = fetch(server, "/static/css/app.css", "Accept-Encoding: br;q=0, gzip\r\n")
    assert gz.headers["content-encoding"] == "gzip"
    assert gzip.decompress(gz.content) == TEXT
    assert len({plain.headers["etag"], br.headers["etag"], gz.headers["etag"]}) == 3
    none = fetch(server, "/static/css/app.css", "Accept-Encoding: br;q=0, gzip;q=0\r\n")
    assert "content-encoding" not in none.headers and none.content == TEXT
    again = fetch(server, "/static/css/app.css", f"If-None-Match: {br.headers['etag']}\r\n")
    assert again.status_code == 200  # the plain file is another representation
    conditions = f"Accept-Encoding: br\r\nIf-None-Match: {br.headers['etag']}\r\n"
    cached = fetch(server, "/static/css/app.css", conditions)
    assert cached.status_code == 304


ATTACKS = [
    "/static/../secret.txt",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2E%2Fsecret.txt",
    "/static/..%2Fsecret.txt",
    "/static%2F..%2Fsecret.txt",
    "/static/css/../../secret.txt",
    "/static/..%5Csecret.txt",
    "/static/..\\secret.txt",
    "/static/secret.txt%00.css",
    "/static/%252e%252e/secret.txt",
    "/static//" + "../" * 3 + "secret.txt",
    "/static/leak.txt",
    "/static/leakdir/secret.txt",
    "/static/.env",
    "/static/fifo",
    "/static/css",
    "/static/",
    "/static/%zz",
]


@pytest.mark.parametrize("target", ATTACKS)
def test_nothing_outside_the_root_is_ever_read(server: Server, target: str) -> None:
    raw = f"GET {target} HTTP/1.1\r\nHost: t\r\n\r\n".encode("latin-1")
    with server.connect() as sock:
        sock.sendall(raw)
        response = SocketReader(sock).read_response()
    assert response.status in (400, 403, 404), (target, response.status)
    assert SECRET.strip() not in response.body


def test_the_absolute_path_of_the_secret_stays_under_the_root(server: Server, tree: Path) -> None:
    secret = tree.parent / "secret.txt"
    response = fetch(server, "/static/" + str(secret))
    assert response.status_code == 404 and SECRET not in response.content


def test_a_symlink_inside_the_root_is_followed(server: Server) -> None:
    assert httpx.get(server.url + "/static/alias.css").content == TEXT


def test_the_server_survives_every_attack_on_one_connection(server: Server) -> None:
    with server.connect() as sock:
        reader = SocketReader(sock)
        for target in [*ATTACKS[:5], "/static/data.bin"]:
            sock.sendall(get(target))
            response = reader.read_response()
        assert response.status == 200


def test_directories_with_index_files_on(indexed: Server) -> None:
    moved = fetch(indexed, "/s/docs?x=1")
    assert moved.status_code == 301 and moved.headers["location"] == "/s/docs/?x=1"
    page = httpx.get(indexed.url + "/s/docs/")
    assert page.text == "<h1>docs</h1>\n"
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert httpx.get(indexed.url + "/s/css/").status_code == 404  # no index.html there


def test_directories_are_404_with_index_files_off(server: Server) -> None:
    assert httpx.get(server.url + "/static/docs/").status_code == 404
    assert httpx.get(server.url + "/static/docs").status_code == 404


def test_mounts_come_from_toml_and_the_environment(serve: ServeFactory, tree: Path) -> None:
    config = tree.parent / "static.toml"
    config.write_text(f'static = ["/from-file={tree}"]\nstatic-max-age = 0\n')
    from_file = serve("-w", "1", "--config", str(config))
    response = httpx.get(from_file.url + "/from-file/data.bin")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-cache"
    env = {"HYBRIDSERVE_STATIC": f"/a={tree}/css,/b={tree}/docs"}
    from_env = serve("-w", "1", env=env)
    assert httpx.get(from_env.url + "/a/app.css.br").content == b"pretend-brotli"
    assert httpx.get(from_env.url + "/b/index.html").text == "<h1>docs</h1>\n"


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("static-dir-only", "expected URL_PREFIX=DIR"),
        ("nope=/tmp", "must be a plain path starting with '/'"),
        ("/x=/no/such/dir", "is not a directory"),
    ],
)
def test_a_bad_mount_is_one_clear_error(serve: ServeFactory, flag: str, message: str) -> None:
    server = serve("--static", flag, ready=False)
    assert server.wait() == 2
    assert message in server.log and "Traceback" not in server.log


def test_static_answers_are_logged_and_counted_apart(serve: ServeFactory, tree: Path) -> None:
    server = serve(
        "-w",
        "1",
        "--static",
        f"/static={tree}",
        "--access-log",
        "-",
        "--metrics-bind",
        "127.0.0.1:0",
    )
    metrics = "http://" + server.wait_for(r"Metrics at http://([\d.:]+)/metrics")[1] + "/metrics"
    assert fetch(server, "/static/data.bin").status_code == 200
    assert fetch(server, "/static/nothing.txt").status_code == 404
    assert httpx.get(server.url + "/").status_code == 200
    line = server.wait_for(r'"GET /static/data.bin HTTP/1.1" 200 (\d+) ')
    assert int(line[1]) == 10240  # the body went out by sendfile, and is counted
    server.wait_for(r'"GET /static/nothing.txt HTTP/1.1" 404 ')

    def counted() -> bool:
        text = httpx.get(metrics).text
        return (
            'hybridserve_requests_total{class="2xx",interface="static"} 1' in text
            and 'hybridserve_requests_total{class="4xx",interface="static"} 1' in text
            and 'hybridserve_requests_total{class="2xx",interface="wsgi"} 1' in text
        )

    assert wait_until(counted, 10), httpx.get(metrics).text


def test_an_unreadable_file_is_403_and_never_500(serve: ServeFactory) -> None:
    """As root, workers run as nobody (``--user``), for whom mode 000 means unreadable."""
    root = Path(tempfile.mkdtemp(prefix="hybridserve-static-"))
    try:
        root.chmod(0o755)
        (root / "locked.txt").write_bytes(SECRET)
        (root / "locked.txt").chmod(0o000)
        (root / "open.txt").write_bytes(b"fine\n")
        (root / "open.txt").chmod(0o644)
        user = ("--user", "nobody") if os.geteuid() == 0 else ()
        server = serve("-w", "1", "--static", f"/s={root}", *user)
        locked = fetch(server, "/s/locked.txt")
        assert locked.status_code == 403 and SECRET not in locked.content
        assert fetch(server, "/s/open.txt").content == b"fine\n"
    finally:
        shutil.rmtree(root)
