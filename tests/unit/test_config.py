"""Config and the flags built from it."""

from __future__ import annotations

import pytest

from hybridserve.cli import config_from_args
from hybridserve.config import Config, Limits, Timeouts
from hybridserve.errors import ConfigError
from hybridserve.master.sockets import parse_bind
from hybridserve.sources import build_parser


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
    "kwargs",
    [{"workers": 0}, {"threads": 0}, {"interface": "x"}, {"app": "nocolon"}, {"bind": ()}],
)
def test_invalid_values_name_the_setting(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as info:
        Config(**kwargs)  # type: ignore[arg-type]
    assert next(iter(kwargs)).replace("_", "-") in str(info.value)


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
