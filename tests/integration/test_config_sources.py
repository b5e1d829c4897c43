"""Settings from --config, pyproject.toml and HYBRIDSERVE_* through the real command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ServeFactory
from tests.harness import APPS


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any HYBRIDSERVE_* of the developer's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYBRIDSERVE_")}
    return {**env, **extra}


def run_cli(
    *args: str, cwd: Path = APPS, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hybridserve", *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
    )


def printed(result: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, str]]:
    """--print-config's table as {setting: (value, source)}, cut at the header's columns."""
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    value_at, source_at = header.index("VALUE"), header.index("SOURCE")
    return {
        line[:value_at].strip(): (line[value_at:source_at].strip(), line[source_at:])
        for line in lines
    }


def test_print_config_names_every_source(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text('workers = 2\nkeep-alive = 7\nbind = ["127.0.0.1:0"]\n')
    result = run_cli(
        "--config",
        "app.toml",
        "--print-config",
        "--backlog",
        "10",
        cwd=tmp_path,
        env=clean_env(HYBRIDSERVE_THREADS="3", HYBRIDSERVE_WORKERS="4"),
    )
    rows = printed(result)
    assert rows["workers"] == ("4", "env HYBRIDSERVE_WORKERS")
    assert rows["keep-alive"] == ("7.0", "file app.toml")
    assert rows["bind"] == ('["127.0.0.1:0"]', "file app.toml")
    assert rows["threads"] == ("3", "env HYBRIDSERVE_THREADS")
    assert rows["backlog"] == ("10", "cli")
    assert rows["root-path"] == ('""', "default")
    assert result.stderr == ""
    assert printed(run_cli("--config", "app.toml", "--print-config", cwd=tmp_path)) == {
        **rows,
        "workers": ("2", "file app.toml"),
        "threads": ("8", "default"),
        "backlog": ("2048", "default"),
    }


def test_pyproject_in_the_current_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.hybridserve]\nthreads = 5\n'
    )
    rows = printed(run_cli("--print-config", cwd=tmp_path))
    assert rows["threads"] == ("5", "file pyproject.toml")


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        (
            "wokers = 2",
            {},
            "hybridserve: error: config file app.toml: unknown setting 'wokers' "
            "(did you mean 'workers'?)",
        ),
        ('workers = "2"', {}, "config file app.toml: workers: expected an integer, got '2'"),
        (
            "",
            {"HYBRIDSERVE_KEEP_ALIVE": "soon"},
            "environment: HYBRIDSERVE_KEEP_ALIVE: expected a number, got 'soon'",
        ),
        ("", {"HYBRIDSERVE_WORKERS": "0"}, "HYBRIDSERVE_WORKERS must be between 1 and 1024"),
    ],
)
def test_bad_settings_exit_2_naming_key_and_source(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    (tmp_path / "app.toml").write_text(toml)
    for action in ("--print-config", "--check-config"):
        result = run_cli("--config", "app.toml", action, cwd=tmp_path, env=clean_env(**env))
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
        assert len(result.stderr.splitlines()) == 1
        assert "Traceback" not in result.stderr


def test_a_file_sets_the_number_of_workers(tmp_path: Path, serve: ServeFactory) -> None:
    config = tmp_path / "app.toml"
    config.write_text('app = "cfg_app:wsgi_app"\nworkers = 2\n')
    server = serve("--config", str(config))
    server.wait_for("Ready: 2 workers")
    assert len(server.worker_pids()) == 2
    assert server.exchange(b"GET / HTTP/1.0\r\n\r\n").endswith(b"configured")


def test_the_environment_beats_the_file(tmp_path: Path, serve: ServeFactory) -> None:
    config = tmp_path / "app.toml"
    config.write_text('app = "cfg_app:wsgi_app"\nworkers = 3\n')
    server = serve("--config", str(config), env={"HYBRIDSERVE_WORKERS": "2"})
    server.wait_for("Ready: 2 workers")
    assert len(server.worker_pids()) == 2


@pytest.mark.parametrize(
    ("args", "code", "stream", "needle"),
    [
        (["cfg_app:wsgi_app"], 0, "stdout", "config OK; app cfg_app:wsgi_app loads as wsgi"),
        (["cfg_app:asgi_app"], 0, "stdout", "config OK; app cfg_app:asgi_app loads as asgi"),
        ([], 0, "stdout", "config OK; app (the demo app) loads as wsgi"),
        (["cfg_app:wsgi_app", "-w", "0"], 2, "stderr", "workers must be between 1 and 1024"),
        (["cfg_app:wsgi_app", "--bind", "[::1"], 2, "stderr", "must look like [IPV6]:PORT"),
        (["no_such_module:app"], 3, "stderr", "cannot import module 'no_such_module'"),
        (["cfg_app:missing"], 3, "stderr", "attribute 'missing' not found"),
    ],
)
def test_check_config_exit_codes(args: list[str], code: int, stream: str, needle: str) -> None:
    result = run_cli("--check-config", *args)
    assert result.returncode == code, result.stderr
    assert needle in getattr(result, stream)
    assert "Listening at" not in result.stderr
    assert "Traceback" not in result.stderr
    if code == 0:
        assert result.stdout.count("\n") == 1


def test_a_pasted_tool_table_in_a_config_file_is_read(tmp_path: Path, serve: ServeFactory) -> None:
    config = tmp_path / "deploy.toml"
    config.write_text('[tool.hybridserve]\napp = "cfg_app:wsgi_app"\nworkers = 2\n')
    server = serve("--config", str(config))
    server.wait_for("Ready: 2 workers")
    assert server.exchange(b"GET / HTTP/1.0\r\n\r\n").endswith(b"configured")


def test_an_empty_variable_unsets_and_an_unknown_one_is_one_warning(serve: ServeFactory) -> None:
    env = clean_env(HYBRIDSERVE_WORKERS="", HYBRIDSERVE_VERSION="1.2.3", HYBRIDSERVE_THREADS="2")
    server = serve("cfg_app:wsgi_app", "-w", "1", env=env)
    assert server.exchange(b"GET / HTTP/1.0\r\n\r\n").endswith(b"configured")
    warning = "Ignoring HYBRIDSERVE_VERSION: hybridserve has no such setting"
    assert server.log.count(warning) == 1


def test_an_empty_workers_variable_falls_back_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text("workers = 3\n")
    env = clean_env(HYBRIDSERVE_WORKERS="", HYBRIDSERVE_WOKERS="2")
    result = run_cli("--config", "app.toml", "--print-config", cwd=tmp_path, env=env)
    assert printed(result)["workers"] == ("3", "file app.toml")
    assert "did you mean HYBRIDSERVE_WORKERS?" in result.stderr


@pytest.mark.parametrize(
    ("args", "key", "value"),
    [
        (["-b", "8080"], "bind", '["127.0.0.1:8080"]'),
        (["--host", "0.0.0.0", "--port", "9000"], "bind", '["0.0.0.0:9000"]'),
        (["--log-level", "WARN"], "log-level", '"warning"'),
    ],
)
def test_spellings_users_type_are_understood(args: list[str], key: str, value: str) -> None:
    assert printed(run_cli(*args, "--print-config"))[key] == (value, "cli")
