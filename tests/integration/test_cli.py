"""The command line: clear errors with the right exit codes, never a traceback wall."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import APPS, ROOT, Server


def run_cli(*args: str, timeout_s: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hybridserve", *args],
        cwd=APPS,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--workers", "abc"], "invalid int value"),
        (["--workers", "0"], "workers must be between 1 and 1024"),
        (["--threads", "-1"], "threads must be between 1 and 4096"),
        (["--interface", "cgi"], "invalid choice"),
        (["--bind", "127.0.0.1:99999"], "port must be a number from 0 to 65535"),
        (["--bind", "[::1"], "must look like [IPV6]:PORT"),
        (["--keep-alive", "0"], "--keep-alive must be greater than 0"),
        (["--timeout", "0"], "--timeout must be greater than 0"),
        (["--limit-request-line", "0"], "--limit-request-line must be at least 1"),
        (["--no-such-flag"], "unrecognized arguments"),
        (["--thread", "2"], "unrecognized arguments: --thread (did you mean --threads?)"),
        (["./okapp:app"], "APP must be a module name, not a file path: try okapp:app"),
        (["--port", "1", "-b", "127.0.0.1:0"], "--host/--port and --bind do not mix"),
        (["--pid", "/nonexistent/x.pid"], "--pid /nonexistent/x.pid: cannot write in /nonexistent"),
        (["nocolon"], "must look like MODULE:ATTRIBUTE"),
        (["--root-path", "api"], "root-path must start with '/'"),
    ],
)
def test_bad_usage_exits_2_with_one_clear_message(args: list[str], needle: str) -> None:
    result = run_cli(*args, "--bind", "127.0.0.1:0") if "--bind" not in args else run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("app", "needle"),
    [
        ("no_such_module:app", "cannot import module 'no_such_module': not found"),
        ("cli_apps:no_such_attr", "attribute 'no_such_attr' not found in module 'cli_apps'"),
        ("broken_import:app", "RuntimeError: this module refuses to import"),
        ("broken_import_dep:app", "No module named 'a_dependency_that_is_missing'"),
        ("cli_apps:NOT_CALLABLE", "is a int, not a callable app"),
        ("exit_app:app", "SystemExit: DATABASE_URL is not set"),
        ("cli_apps:create_app", "takes no arguments, so it is not a WSGI or ASGI app; if it"),
        ("cli_apps.py:app", "cannot import module 'cli_apps.py': not found (drop the .py: "),
    ],
)
def test_app_that_cannot_load_exits_3_once_without_respawning(app: str, needle: str) -> None:
    result = run_cli(app, "--workers", "3", "--bind", "127.0.0.1:0")
    assert result.returncode == 3, result.stderr
    assert result.stderr.count(needle) == 1, result.stderr
    assert result.stderr.count("failed to load the app") == 1
    assert "Traceback (most recent call last)" not in result.stderr


def test_preload_reports_a_missing_app_from_the_master() -> None:
    result = run_cli("no_such_module:app", "--preload", "--bind", "127.0.0.1:0")
    assert result.returncode == 3
    assert "Cannot load the app: cannot import module 'no_such_module': not found" in result.stderr


def test_factory_that_raises_exits_3() -> None:
    result = run_cli("cli_apps:failing_factory", "--factory", "--bind", "127.0.0.1:0")
    assert result.returncode == 3
    assert "app factory 'cli_apps:failing_factory' failed" in result.stderr
    assert "ValueError: no config" in result.stderr


def test_port_in_use_exits_1_naming_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--bind", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_flags_and_signals() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for flag in ("--bind", "--workers", "--threads", "--interface", "--factory", "--app-dir"):
        assert flag in result.stdout
    assert "HUP" in result.stdout


def test_console_script_is_the_same_command() -> None:
    script = Path(sys.executable).parent / "hybridserve"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0
    assert result.stdout.startswith("hybridserve ")


def test_app_dir_and_chdir_make_the_app_importable(tmp_path: Path) -> None:
    (tmp_path / "elsewhere_app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'from elsewhere']\n"
    )
    for flag in ("--app-dir", "--chdir"):
        with Server("elsewhere_app:app", flag, str(tmp_path), "-w", "1", cwd=ROOT) as server:
            assert server.exchange(b"GET / HTTP/1.0\r\n\r\n").endswith(b"from elsewhere")


def test_factory_builds_the_app() -> None:
    with Server("cli_apps:create_app", "--factory", "-w", "1") as server:
        assert server.exchange(b"GET / HTTP/1.0\r\n\r\n").endswith(b"made by a factory")


def test_a_misspelt_flag_prints_one_usage_line_the_error_and_a_suggestion() -> None:
    result = run_cli("--wokers", "3")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "usage: hybridserve [OPTIONS] [APP]",
        "hybridserve: error: unrecognized arguments: --wokers (did you mean --workers?)",
    ]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["exit_app:app"], "SystemExit: DATABASE_URL is not set"),
        (["cli_apps:create_app"], "add --factory (or write 'cli_apps:create_app()')"),
        (["cli_apps:app", "--interface", "asgi"], "--interface asgi, but 'cli_apps:app' is a"),
        (["cli_apps:asgi_app", "--interface", "wsgi"], "--interface wsgi, but 'cli_apps:asgi_app"),
        (["cli_apps.py:app"], "(drop the .py: cli_apps:app)"),
    ],
)
def test_check_config_reports_load_errors_with_exit_3(args: list[str], needle: str) -> None:
    result = run_cli("--check-config", *args)
    assert result.returncode == 3, result.stderr
    assert result.stderr.count(needle) == 1, result.stderr
    assert "Traceback (most recent call last)" not in result.stderr


def test_a_forced_interface_that_does_not_fit_stops_the_server_at_load() -> None:
    result = run_cli("cli_apps:app", "--interface", "asgi", "-w", "2", "--bind", "127.0.0.1:0")
    assert result.returncode == 3, result.stderr
    assert result.stderr.count("--interface asgi, but 'cli_apps:app' is a WSGI app") == 1


@pytest.mark.parametrize(
    ("spec", "body"),
    [("cli_apps:create_app()", b"made by a factory"), ('cli_apps:named_factory("hi")', b"hi")],
)
def test_a_factory_call_in_the_app_spec_builds_the_app(spec: str, body: bytes) -> None:
    with Server(spec, "-w", "1") as server:
        assert server.exchange(b"GET / HTTP/1.0\r\n\r\n").endswith(b"\r\n\r\n" + body)


@pytest.mark.parametrize(
    "args",
    [["-b", "0"], ["--port", "0"], ["--host", "127.0.0.1", "--port", "0"]],
)
def test_a_bare_port_and_host_port_flags_bind_loopback(args: list[str]) -> None:
    with Server("cli_apps:app", "-w", "1", *args) as server:
        assert server.host == "127.0.0.1"
        assert server.exchange(b"GET / HTTP/1.0\r\n\r\n").endswith(b"plain")


def test_reload_without_watchfiles_exits_2_saying_what_to_install(tmp_path: Path) -> None:
    # sitecustomize runs at interpreter start: it makes watchfiles look not installed.
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['watchfiles'] = None\n")
    result = subprocess.run(
        [sys.executable, "-m", "hybridserve", "cli_apps:app", "--reload", "-b", "127.0.0.1:0"],
        cwd=APPS,
        env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"},
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "hybridserve: error: --reload needs watchfiles, which is not installed: "
        "pip install 'hybridserve[reload]'"
    ]


def test_help_is_grouped_with_meaningful_metavars() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for title in ("binding:", "workers:", "timeouts and limits:", "TLS:", "WebSockets:"):
        assert f"\n{title}\n" in result.stdout
    assert "--timeout SECONDS" in result.stdout
    assert "VALUE" not in result.stdout
    assert "default: None" not in result.stdout


@pytest.mark.parametrize(
    ("app", "loop", "serving"),
    [
        ("lifespan_app:app", "asyncio", "serving asgi, lifespan on (loop asyncio, HTTP h11)"),
        ("cli_apps:asgi_app", "auto", "serving asgi, lifespan unsupported by the app (loop "),
        ("cli_apps:app", "auto", "serving wsgi (loop "),
    ],
)
def test_the_startup_lines_say_what_is_served_and_how(app: str, loop: str, serving: str) -> None:
    args = ("-w", "2", "--threads", "3", "--loop", loop, "--http", "h11")
    with Server(app, *args) as server:
        banner = server.wait_for(r"master pid \d+: (.*)")[1]
        used = "uvloop" if loop == "auto" and importlib.util.find_spec("uvloop") else "asyncio"
        assert banner == (
            f"app {app}, interface auto, lifespan auto, 2 workers x 3 threads, "
            f"loop {used}, HTTP h11"
        )
        server.wait_for("Ready: ")
        assert server.log.count(serving) == 2, server.log
        assert f"(loop {used}, HTTP h11)" in server.log


def test_a_module_one_directory_down_gets_an_app_dir_hint(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "nested_app.py").write_text("def app(environ, start_response): ...\n")
    result = subprocess.run(
        [sys.executable, "-m", "hybridserve", "--check-config", "nested_app:app"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 3, result.stderr
    assert (
        "cannot import module 'nested_app': not found here; it is in src/: add --app-dir src"
        in result.stderr
    )
