"""Settings from flags, HYBRIDSERVE_* variables and TOML files: conversion, precedence, errors.

No subprocesses: every test passes its own environment and working directory, so the
developer's shell and the repository's pyproject.toml never leak in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from hybridserve.catalog import BY_KEY, SETTINGS
from hybridserve.cli import format_origins
from hybridserve.config import Config
from hybridserve.errors import ConfigError
from hybridserve.flags import build_parser, load_config, parse_command_line
from hybridserve.master.sockets import INHERIT_ENV
from hybridserve.sources import DEFAULT, INTERNAL_ENV, Loaded, load


def loaded(
    tmp_path: Path,
    argv: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    toml: str | None = None,
) -> Loaded:
    """Load with ``toml`` (if given) as ./app.toml, passed with --config."""
    if toml is not None:
        (tmp_path / "app.toml").write_text(toml)
        argv = ["--config", "app.toml", *argv]
    return load(parse_command_line(argv), cwd=tmp_path, environ=env or {})


def origin(result: Loaded, key: str) -> str:
    return str(result.origins[key])


# -- the settings table -------------------------------------------------------------------


def test_every_setting_has_one_key_and_one_variable() -> None:
    keys = [s.key for s in SETTINGS]
    assert len(keys) == len(set(keys))
    assert len({s.env for s in SETTINGS}) == len(keys)
    for key in ("app", "workers", "keep-alive", "limit-request-line", "timeout", "ws-max-size"):
        assert key in BY_KEY
    assert BY_KEY["keep-alive"].env == "HYBRIDSERVE_KEEP_ALIVE"
    assert BY_KEY["keep-alive"].dest == "timeouts.keep_alive_s"


def test_internal_variables_are_not_settings() -> None:
    assert INHERIT_ENV in INTERNAL_ENV  # a USR2 re-exec must not trip over its own variable


def test_defaults_when_no_source_says_anything(tmp_path: Path) -> None:
    result = loaded(tmp_path)
    assert result.config == Config()
    assert {str(o) for o in result.origins.values()} == {"default"}


# -- files --------------------------------------------------------------------------------


def test_file_keys_are_flag_names_in_either_spelling(tmp_path: Path) -> None:
    config = loaded(
        tmp_path,
        toml="""
app = "mod:app"
workers = 4
bind = ["127.0.0.1:1", "[::1]:2"]
keep-alive = 5
limit_request_line = 100
timeout = 12.5
ws-max-size = 1024
factory = true
pid = "run/server.pid"
""",
    ).config
    assert config.app == "mod:app"
    assert config.workers == 4
    assert config.bind == ("127.0.0.1:1", "[::1]:2")
    assert config.timeouts.keep_alive_s == 5.0
    assert isinstance(config.timeouts.keep_alive_s, float)
    assert config.limits.max_request_line_bytes == 100
    assert config.timeouts.worker_s == 12.5
    assert config.websocket.max_size_bytes == 1024
    assert config.factory is True
    assert config.pid_file == "run/server.pid"


def test_a_tool_table_pasted_into_a_config_file_is_read(tmp_path: Path) -> None:
    result = loaded(
        tmp_path, toml='threads = 3\n[tool.hybridserve]\nworkers = 2\nlog-level = "WARN"'
    )
    assert (result.config.workers, result.config.threads) == (2, 3)
    assert result.config.log_level == "warning"
    assert origin(result, "workers") == "file app.toml"


def test_a_lone_string_is_a_one_item_list(tmp_path: Path) -> None:
    assert loaded(tmp_path, toml='bind = "127.0.0.1:1"').config.bind == ("127.0.0.1:1",)


def test_pyproject_table_is_read_when_no_file_is_given(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.hybridserve]\nthreads = 3\n'
    )
    result = loaded(tmp_path)
    assert result.config.threads == 3
    assert origin(result, "threads") == "file pyproject.toml"


def test_pyproject_without_our_table_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert loaded(tmp_path).config == Config()


def test_an_explicit_file_replaces_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.hybridserve]\nthreads = 3\nworkers = 5\n")
    result = loaded(tmp_path, toml="workers = 2")
    assert result.config.workers == 2
    assert result.config.threads == 8
    assert origin(result, "threads") == "default"


def test_a_pyproject_given_with_config_is_read_from_its_table(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pyproject.toml").write_text("[tool.hybridserve]\nthreads = 4\n")
    result = load(parse_command_line(["--config", "sub/pyproject.toml"]), cwd=tmp_path, environ={})
    assert result.config.threads == 4
    assert origin(result, "threads") == "file sub/pyproject.toml"


def test_relative_config_path_is_found_from_the_given_directory(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text("threads = 6")
    assert load_config(["--config", "app.toml"], cwd=tmp_path, environ={}).threads == 6


def test_load_config_reads_the_file_again(tmp_path: Path) -> None:
    """What SIGHUP relies on: the same argv, a changed file, a new Config."""
    path = tmp_path / "app.toml"
    argv = ["--config", str(path)]
    path.write_text("workers = 2")
    assert load_config(argv, cwd=tmp_path, environ={}).workers == 2
    path.write_text("workers = 3")
    assert load_config(argv, cwd=tmp_path, environ={}).workers == 3
    assert load_config(argv, cwd=tmp_path, environ={"HYBRIDSERVE_WORKERS": "4"}).workers == 4


# -- environment --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("var", "text", "key", "expected"),
    [
        ("HYBRIDSERVE_WORKERS", "4", "workers", 4),
        ("HYBRIDSERVE_BIND", "127.0.0.1:1,[::1]:2", "bind", ("127.0.0.1:1", "[::1]:2")),
        ("HYBRIDSERVE_BIND", " unix:/tmp/a.sock , ", "bind", ("unix:/tmp/a.sock",)),
        ("HYBRIDSERVE_KEEP_ALIVE", "5", "keep-alive", 5.0),
        ("HYBRIDSERVE_LIMIT_REQUEST_LINE", "100", "limit-request-line", 100),
        ("HYBRIDSERVE_INTERFACE", "asgi", "interface", "asgi"),
        ("HYBRIDSERVE_APP", "mod:app", "app", "mod:app"),
        ("HYBRIDSERVE_PID", "", "pid", None),
        ("HYBRIDSERVE_LOG_LEVEL", "WARN", "log-level", "warning"),
        ("HYBRIDSERVE_BIND", "8080", "bind", ("127.0.0.1:8080",)),
    ],
)
def test_environment_values_take_the_field_type(
    tmp_path: Path, var: str, text: str, key: str, expected: object
) -> None:
    result = loaded(tmp_path, env={var: text})
    assert result.value(BY_KEY[key]) == expected
    assert origin(result, key) == f"env {var}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *[(text, True) for text in ("true", "TRUE", "1", "yes")],
        *[(text, False) for text in ("false", "0", "no", "No")],
    ],
)
def test_environment_booleans(tmp_path: Path, text: str, expected: bool) -> None:
    assert loaded(tmp_path, env={"HYBRIDSERVE_PRELOAD": text}).config.preload is expected


def test_an_empty_variable_unsets_an_optional_setting_from_the_file(tmp_path: Path) -> None:
    result = loaded(tmp_path, env={"HYBRIDSERVE_PID": ""}, toml='pid = "x.pid"')
    assert result.config.pid_file is None
    assert origin(result, "pid") == "env HYBRIDSERVE_PID"


@pytest.mark.parametrize(
    ("var", "key"),
    [
        ("HYBRIDSERVE_WORKERS", "workers"),
        ("HYBRIDSERVE_ROOT_PATH", "root-path"),
        ("HYBRIDSERVE_RELOAD_DIR", "reload-dir"),
        ("HYBRIDSERVE_BIND", "bind"),
    ],
)
def test_an_empty_variable_unsets_a_setting(tmp_path: Path, var: str, key: str) -> None:
    toml = 'workers = 3\nroot-path = "/api"\nreload-dir = ["src"]\nbind = "127.0.0.1:1"'
    result = loaded(tmp_path, env={var: "  "}, toml=toml)
    assert origin(result, key) == "file app.toml"
    assert loaded(tmp_path, env={var: ""}).origins[key] == DEFAULT


def test_an_unknown_variable_is_a_warning_naming_the_closest_setting(tmp_path: Path) -> None:
    env = {"HYBRIDSERVE_WOKERS": "2", "HYBRIDSERVE_VERSION": "1.2.3", "HYBRIDSERVE_THREADS": "3"}
    result = loaded(tmp_path, env=env)
    assert result.config.threads == 3
    assert result.warnings == (
        "Ignoring HYBRIDSERVE_VERSION: hybridserve has no such setting",
        "Ignoring HYBRIDSERVE_WOKERS: hybridserve has no such setting; "
        "did you mean HYBRIDSERVE_WORKERS?",
    )


def test_other_variables_are_ignored(tmp_path: Path) -> None:
    env = {"PATH": "/bin", "HYBRIDSERVEX": "1", INHERIT_ENV: "3,4"}
    assert loaded(tmp_path, env=env).config == Config()


# -- precedence ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "env", "workers", "source"),
    [
        (["-w", "4"], {"HYBRIDSERVE_WORKERS": "3"}, 4, "cli"),
        ([], {"HYBRIDSERVE_WORKERS": "3"}, 3, "env HYBRIDSERVE_WORKERS"),
        ([], {}, 2, "file app.toml"),
    ],
)
def test_cli_beats_environment_beats_file(
    tmp_path: Path, argv: list[str], env: dict[str, str], workers: int, source: str
) -> None:
    result = loaded(tmp_path, argv, env=env, toml="workers = 2\nthreads = 5")
    assert result.config.workers == workers
    assert origin(result, "workers") == source
    assert result.config.threads == 5  # untouched by the higher sources
    assert origin(result, "threads") == "file app.toml"


def test_a_flag_list_replaces_the_file_list(tmp_path: Path) -> None:
    result = loaded(tmp_path, ["-b", "127.0.0.1:3"], toml='bind = ["127.0.0.1:1", "127.0.0.1:2"]')
    assert result.config.bind == ("127.0.0.1:3",)


# -- errors -------------------------------------------------------------------------------

FILE_ERRORS = [
    ("wokers = 2", "config file app.toml: unknown setting 'wokers' (did you mean 'workers'?)"),
    ('workers = "4"', "config file app.toml: workers: expected an integer, got '4'"),
    ("workers = true", "config file app.toml: workers: expected an integer, got True"),
    ('keep_alive = "5s"', "config file app.toml: keep_alive: expected a number, got '5s'"),
    ("factory = 1", "config file app.toml: factory: expected true or false, got 1"),
    ("bind = [1]", "config file app.toml: bind: expected a list of strings, got [1]"),
    ('interface = "cgi"', "config file app.toml: interface: expected one of auto, wsgi, asgi"),
    ("workers = 0", "config file app.toml: workers must be between 1 and 1024"),
    ("keep_alive = 0", "config file app.toml: keep-alive must be greater than 0"),
    ("limit-request-line = 0", "config file app.toml: limit-request-line must be at least 1"),
    ('log-level = "loud"', "config file app.toml: log-level: expected one of critical, error,"),
    ("[tool.other]\nx = 1", "config file app.toml: of a [tool] table only [tool.hybridserve]"),
    (
        "workers = 2\n[tool.hybridserve]\nworkers = 3",
        "config file app.toml: 'workers' is set twice",
    ),
    ("workers =", "config file app.toml: not valid TOML: "),
    ("keep-alive = 1\nkeep_alive = 2", "config file app.toml: 'keep-alive' is set twice"),
]


@pytest.mark.parametrize(("toml", "message"), FILE_ERRORS)
def test_file_errors_name_the_file_and_key(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        loaded(tmp_path, toml=toml)
    assert str(info.value).startswith(message)


def test_no_suggestion_when_nothing_is_close(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        loaded(tmp_path, toml="zzzzzz = 2")
    assert str(info.value) == "config file app.toml: unknown setting 'zzzzzz'"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file nope\.toml: cannot read it: No such file"):
        load(parse_command_line(["--config", "nope.toml"]), cwd=tmp_path, environ={})


@pytest.mark.parametrize("toml", ['[tool]\nhybridserve = "x"\n', 'tool = "x"\n'])
def test_our_pyproject_table_must_be_a_table(tmp_path: Path, toml: str) -> None:
    (tmp_path / "pyproject.toml").write_text(toml)
    with pytest.raises(ConfigError, match=r"pyproject.toml: \[tool.hybridserve\] must be a table"):
        loaded(tmp_path)


ENV_ERRORS = [
    ({"HYBRIDSERVE_WORKERS": "two"}, "environment: HYBRIDSERVE_WORKERS: expected an integer"),
    ({"HYBRIDSERVE_PRELOAD": "maybe"}, "environment: HYBRIDSERVE_PRELOAD: expected true or false"),
    ({"HYBRIDSERVE_LOOP": "trio"}, "environment: HYBRIDSERVE_LOOP: expected one of auto, uvloop"),
    ({"HYBRIDSERVE_WORKERS": "0"}, "environment: HYBRIDSERVE_WORKERS must be between 1 and 1024"),
    ({"HYBRIDSERVE_TIMEOUT": "0"}, "environment: HYBRIDSERVE_TIMEOUT must be greater than 0"),
]


@pytest.mark.parametrize(("env", "message"), ENV_ERRORS)
def test_environment_errors_name_the_variable(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        loaded(tmp_path, env=env)
    assert str(info.value).startswith(message)


def test_a_check_on_a_flag_value_is_not_blamed_on_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        loaded(tmp_path, ["-w", "0"], toml="workers = 2")
    assert str(info.value) == "--workers must be between 1 and 1024"


@pytest.mark.parametrize(
    "argv",
    [["--workers", "abc"], ["--no-such-flag"], ["--print-config", "--check-config"]],
)
def test_bad_flags_raise_instead_of_exiting(argv: list[str]) -> None:
    with pytest.raises(ConfigError):
        parse_command_line(argv)


def test_flags_that_are_not_settings() -> None:
    command = parse_command_line(["--config", "a.toml", "--print-config", "-b", "x:1", "-b", "y:2"])
    assert command.config_file == "a.toml"
    assert command.print_config and not command.check_config
    assert command.values == {"bind": ("x:1", "y:2")}


# -- --print-config -----------------------------------------------------------------------


def test_print_config_rows_are_aligned_and_in_declaration_order(tmp_path: Path) -> None:
    env = {"HYBRIDSERVE_KEYFILE_PASSWORD": "hunter2", "HYBRIDSERVE_ROOT_PATH": "/api"}
    result = loaded(tmp_path, ["-w", "3"], env=env, toml="threads = 2")
    lines = format_origins(result).splitlines()
    header = lines[0]
    assert header.split() == ["SETTING", "VALUE", "SOURCE"]
    value_at, source_at = header.index("VALUE"), header.index("SOURCE")
    rows = {
        line[:value_at].strip(): (line[value_at:source_at].strip(), line[source_at:])
        for line in lines[1:]
    }
    assert list(rows) == [s.key for s in SETTINGS]
    assert rows["workers"] == ("3", "cli")
    assert rows["threads"] == ("2", "file app.toml")
    assert rows["root-path"] == ('"/api"', "env HYBRIDSERVE_ROOT_PATH")
    assert rows["bind"] == ('["127.0.0.1:8000"]', "default")
    assert rows["app"] == ("(none)", "default")
    assert rows["keyfile-password"] == ('"***"', "env HYBRIDSERVE_KEYFILE_PASSWORD")
    assert "hunter2" not in format_origins(result)


def test_help_tells_where_settings_come_from() -> None:
    text = build_parser().format_help()
    for needle in ("--config FILE", "--print-config", "--check-config", "HYBRIDSERVE_<FLAG>"):
        assert needle in text
