"""The command line: clear errors with the right exit codes, never a traceback wall."""

from __future__ import annotations

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
        (["--keep-alive", "0"], "keep-alive-s must be greater than 0"),
        (["--no-such-flag"], "unrecognized arguments"),
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
