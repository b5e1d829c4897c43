"""Static file scenarios: a 1 KiB and a 1 MiB file under ``/static/``, ``wrk -c32``.

Against nginx (Debian's, sendfile on, 1 worker), granian's static mount (1 worker) and
gunicorn gthread + WhiteNoise (gunicorn sends WhiteNoise's file_wrapper with sendfile).
hybridserve runs twice: its zero-copy path, and the same server with ``--no-sendfile``
(the bounded-read path TLS takes), so the two paths can be compared in the same rounds.
Every server also answers ``GET /`` with the hello app, which the harness probes.
"""

import shutil
from pathlib import Path

from harness import BENCH_DIR, Load, Scenario, ServerSpec

FILES_DIR = BENCH_DIR / ".static" / "static"  # the mount's directory (made on import)
NGINX_TEMPLATE = """worker_processes 1;
daemon off;
pid {dir}/nginx-@PORT@.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    types {{ text/plain txt; application/octet-stream bin; }}
    server {{
        listen 127.0.0.1:@PORT@;
        location = / {{ return 200 "Hello, world!"; }}
        location /static/ {{ alias {files}/; etag on; }}
    }}
}}
"""
Env = tuple[tuple[str, str], ...]


def make_files() -> Path:
    """The files every server serves (deterministic bytes), and nginx's config template."""
    FILES_DIR.mkdir(parents=True, exist_ok=True)
    pattern = bytes(range(32, 127))
    for name, size in (("1k.txt", 1024), ("1m.bin", 1 << 20)):
        path = FILES_DIR / name
        if not path.exists() or path.stat().st_size != size:
            path.write_bytes((pattern * (size // len(pattern) + 1))[:size])
    work = FILES_DIR.parent
    (work / "tmp").mkdir(exist_ok=True)
    template = work / "nginx.conf.in"
    template.write_text(NGINX_TEMPLATE.format(dir=work, files=FILES_DIR))
    return template


def nginx(template: Path) -> ServerSpec:
    """nginx from the system, its config written for the port the harness picked."""
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    conf = template.with_name("nginx-{port}.conf")
    script = f"sed 's/@PORT@/{{port}}/g' {template} > {conf} && exec {exe} -e stderr -c {conf}"
    return ServerSpec("nginx", ("/bin/sh", "-c", script))


def static_specs(
    hybridserve: str, vbin: Path, pypath: tuple[tuple[str, str], ...]
) -> list[ServerSpec]:
    """hybridserve (sendfile and copy paths) and the three peers."""
    mount = f"/static={FILES_DIR}"
    ours = (hybridserve, "apps:wsgi_app", "--app-dir", str(BENCH_DIR), "--bind", "127.0.0.1:0")
    ours += ("--workers", "1", "--static", mount, "--log-level", "info")
    ready = r"Ready: \d+ worker"
    granian = (str(vbin / "granian"), "--interface", "wsgi", "--host", "127.0.0.1")
    granian += ("--port", "{port}", "--workers", "1", "--working-dir", str(BENCH_DIR))
    granian += ("--static-path-route", "/static", "--static-path-mount", str(FILES_DIR))
    granian += ("--log-level", "warning", "apps:wsgi_app")
    gunicorn = (str(vbin / "gunicorn"), "static_apps:whitenoise_app", "--bind", "127.0.0.1:{port}")
    gunicorn += ("--workers", "1", "--worker-class", "gthread", "--threads", "8")
    gunicorn += ("--chdir", str(BENCH_DIR), "--log-level", "warning")
    whitenoise_env = (*pypath, ("STATIC_DIR", str(FILES_DIR)))
    return [
        ServerSpec("hybridserve", ours, port_from_log=True, ready=ready),
        ServerSpec("hybridserve --no-sendfile", (*ours, "--no-sendfile"), True, ready),
        nginx(make_files()),
        ServerSpec("granian static", granian, env=pypath),
        ServerSpec("gunicorn gthread + WhiteNoise", gunicorn, env=whitenoise_env),
    ]


def static_scenarios(
    hybridserve: str, vbin: Path, pypath: tuple[tuple[str, str], ...]
) -> list[Scenario]:
    """The two static file scenarios, each against every peer in the same rounds."""
    specs = static_specs(hybridserve, vbin, pypath)
    return [
        Scenario(
            "static-1k",
            "Static file, 1 KiB, 1 worker, `wrk -c32`",
            "granian static",
            specs,
            Load(threads=1, connections=32, path="/static/1k.txt"),
        ),
        Scenario(
            "static-1m",
            "Static file, 1 MiB, 1 worker, `wrk -c32`",
            "nginx",
            specs,
            Load(threads=1, connections=32, path="/static/1m.bin"),
        ),
    ]
