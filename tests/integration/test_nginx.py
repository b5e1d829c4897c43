"""A real nginx in front of hybridserve over a Unix socket (the Makefile installs nginx)."""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServeFactory
from tests.harness import Server, start_on_free_port, wait_until

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed")

CONFIG = """
daemon off;
master_process {master};
worker_processes 1;
user {user};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream app {{
        server unix:{socket};
        keepalive 4;
        keepalive_timeout 4s;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
        }}
    }}
}}
"""


def total(text: str, line_start: str) -> float:
    """The sum of the metric lines that start with ``line_start``."""
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)
    )


def start_nginx(
    folder: Path, socket: Path, user: str = "root"
) -> tuple[subprocess.Popen[bytes], int]:
    """nginx cannot bind port 0: one of a few random loopback ports.

    With a ``user`` other than root, a master process runs the worker as that user."""
    master = "off" if user == "root" else "on"

    def launch(port: int) -> subprocess.Popen[bytes]:
        conf = folder / "nginx.conf"
        conf.write_text(
            CONFIG.format(dir=folder, socket=socket, port=port, user=user, master=master)
        )
        return subprocess.Popen([NGINX, "-c", str(conf), "-p", str(folder)], stderr=subprocess.PIPE)

    def probe(port: int) -> None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
        except httpx.TransportError as exc:
            raise OSError(str(exc)) from exc

    return start_on_free_port("nginx", launch, probe)


@pytest.fixture
def behind_nginx(serve: ServeFactory, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    socket = tmp_path / "app.sock"
    server = serve(
        "scheme_app:wsgi",
        "-w",
        "1",
        "-b",
        f"unix:{socket}",
        "-b",
        "127.0.0.1:0",
        "--metrics-bind",
        "127.0.0.1:0",
    )
    proc, port = start_nginx(tmp_path, socket)
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_client_and_scheme_come_through_nginx(behind_nginx: tuple[Server, str]) -> None:
    _, url = behind_nginx
    assert httpx.get(url + "/").json() == {"scheme": "https", "client": "127.0.0.1"}


def test_upstream_keep_alive_reuses_connections(behind_nginx: tuple[Server, str]) -> None:
    server, url = behind_nginx
    with httpx.Client() as client:
        for _ in range(20):
            assert client.get(url + "/").status_code == 200
    metrics = "http://" + server.wait_for(r"Metrics at http://([\d.:]+)/metrics")[1]
    text = ""

    def published() -> bool:  # the worker publishes its counters once a second
        nonlocal text
        text = httpx.get(metrics + "/metrics").text
        return total(text, 'hybridserve_requests_total{class="2xx"') == 21  # and start's probe

    assert wait_until(published, 5), text
    accepted = total(text, "hybridserve_connections_accepted_total{")
    assert 1 <= accepted <= 4, f"nginx opened {accepted} upstream connections for 20 requests"


@pytest.mark.skipif(os.geteuid() != 0, reason="running nginx's worker as nobody needs root")
@pytest.mark.parametrize(("umask", "status"), [("007", 200), ("022", 502)])
def test_nginx_worker_reaches_the_socket_through_its_group(
    serve: ServeFactory, tmp_path: Path, umask: str, status: int
) -> None:
    """As the README says: the socket in a directory of nginx's group (setgid, so the file
    gets that group too) and --umask 007; under 022 the group may not connect (502)."""
    shared = Path(tempfile.mkdtemp(prefix="hybridserve-nginx-", dir="/tmp"))
    try:
        os.chown(shared, 0, grp.getgrnam("nogroup").gr_gid)
        shared.chmod(0o2770)
        socket = shared / "app.sock"
        serve(
            "scheme_app:wsgi",
            "-w",
            "1",
            "--umask",
            umask,
            "-b",
            f"unix:{socket}",
            "-b",
            "127.0.0.1:0",
        )
        assert socket.stat().st_gid == grp.getgrnam("nogroup").gr_gid
        proc, port = start_nginx(tmp_path, socket, user="nobody nogroup")
        try:
            assert httpx.get(f"http://127.0.0.1:{port}/").status_code == status
        finally:
            proc.terminate()
            proc.wait(10)
            if proc.stderr is not None:
                proc.stderr.close()
    finally:
        shutil.rmtree(shared, ignore_errors=True)
