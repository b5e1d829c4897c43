"""Config and the flags built from it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hybridserve.catalog import SETTINGS
from hybridserve.cli import config_from_args
from hybridserve.config import Config
from hybridserve.config_fields import SettingError, setting
from hybridserve.config_groups import TLS, Limits, Timeouts, WebSocket
from hybridserve.errors import ConfigError
from hybridserve.flags import build_parser
from hybridserve.master.sockets import parse_bind


def test_defaults() -> None:
    config = config_from_args([])
    assert config.app is None
    assert config.bind == ("127.0.0.1:8000",)
    assert config.threads == 8
    assert config.workers >= 1
    assert config.limits == Limits()
    assert config.timeouts == Timeouts()


def test_flags_fill_nested_groups() -> None:
    config = config_from_args(
        [
            "mod:app",
            "-b",
            "127.0.0.1:1",
            "--bind",
            "unix:/tmp/x.sock",
            "-w",
            "3",
            "--limit-request-line",
            "100",
            "--keep-alive",
            "2.5",
            "--no-server-header",
        ]
    )
    assert config.app == "mod:app"
    assert config.bind == ("127.0.0.1:1", "unix:/tmp/x.sock")
    assert config.workers == 3
    assert config.limits.max_request_line_bytes == 100
    assert config.timeouts.keep_alive_s == 2.5
    assert config.server_header is False


def test_every_setting_has_a_flag_and_help() -> None:
    text = build_parser().format_help()
    for flag in ("--limit-request-fields", "--timeout", "--graceful-timeout", "--max-requests"):
        assert flag in text


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.workers = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "--workers must be between 1 and 1024"),
        ({"threads": 0}, "--threads must be between 1 and 4096"),
        ({"interface": "x"}, "--interface must be one of auto, wsgi, asgi"),
        ({"app": "nocolon"}, "APP must look like MODULE:ATTRIBUTE, such as nocolon:app"),
        (
            {"app": "site.wsgi"},
            "APP must look like MODULE:ATTRIBUTE, such as site.wsgi:application",
        ),
        ({"app": ":app"}, "APP must look like MODULE:ATTRIBUTE, got ':app'"),
        ({"bind": ()}, "--bind needs at least one address"),
        ({"timeouts": {"worker_s": 0}}, "--timeout must be greater than 0"),
        ({"timeouts": {"keep_alive_s": 0}}, "--keep-alive must be greater than 0"),
        ({"limits": {"max_request_line_bytes": 0}}, "--limit-request-line must be at least 1"),
        ({"limits": {"max_head_bytes": 1}}, "--limit-request-head must be at least 256"),
        ({"websocket": {"max_size_bytes": 0}}, "--ws-max-size must be at least 1"),
        ({"tls": {"cert_reqs": 5}}, "--cert-reqs must be 0, 1 or 2"),
        ({"drain_delay_s": -1}, "--drain-delay must not be negative"),
    ],
)
def test_invalid_values_name_the_flag(kwargs: dict[str, object], message: str) -> None:
    groups = {"timeouts": Timeouts, "limits": Limits, "websocket": WebSocket, "tls": TLS}
    built = {
        key: groups[key](**value) if isinstance(value, dict) else value
        for key, value in kwargs.items()
        if key not in groups
    }
    with pytest.raises(SettingError) as info:
        for key, value in kwargs.items():
            if key in groups:
                assert isinstance(value, dict)
                groups[key](**value)
        Config(**built)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_no_two_settings_share_a_field_name() -> None:
    """Messages find a setting's flag by its field name, so names must be unique."""
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))


def test_list_defaults_are_fresh_for_every_instance() -> None:
    @dataclass
    class Holder:
        items: list[str] = setting(["a"], "items", flag="--items")  # noqa: RUF009
        table: dict[str, int] = setting({"a": 1}, "table", flag="--table")  # noqa: RUF009

    first, second = Holder(), Holder()
    first.items.append("b")
    first.table["b"] = 2
    assert second.items == ["a"]
    assert second.table == {"a": 1}


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("./okapp:app", "APP must be a module name, not a file path: try okapp:app"),
        ("src/okapp.py:app", "not a file path: try okapp:app --app-dir src"),
    ],
)
def test_a_file_path_as_app_names_the_module(app: str, message: str) -> None:
    with pytest.raises(SettingError) as info:
        Config(app=app)
    assert message in str(info.value)


def test_a_factory_call_is_a_valid_app_spec() -> None:
    assert Config(app="app:create_app()").app == "app:create_app()"
    assert Config(app='app:create_app("prod", debug=True)').app is not None


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("[::1]:8080", ("::1", 8080)),
        (":9000", ("0.0.0.0", 9000)),
        ("localhost", ("localhost", 8000)),
        ("unix:/run/app.sock", "/run/app.sock"),
    ],
)
def test_bind_forms(value: str, address: object) -> None:
    assert parse_bind(value).address == address


def test_fd_bind() -> None:
    assert parse_bind("fd://3").fd == 3


@pytest.mark.parametrize("value", ["1.2.3.4:http", "[::1", "unix:", "fd://x", "h:70000"])
def test_bad_binds(value: str) -> None:
    with pytest.raises(ConfigError):
        parse_bind(value)
