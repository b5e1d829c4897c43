"""The command line: spellings users type, one-line errors, and a --help grouped by topic."""

from __future__ import annotations

import re

import pytest

from hybridserve.catalog import SETTINGS
from hybridserve.config_fields import SECTIONS
from hybridserve.errors import ConfigError
from hybridserve.flags import build_parser, parse_command_line, section_of


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--wokers", "3"], "unrecognized arguments: --wokers (did you mean --workers?)"),
        (["--thread", "2"], "unrecognized arguments: --thread (did you mean --threads?)"),
        (["--keepalive=5"], "unrecognized arguments: --keepalive=5 (did you mean --keep-alive?)"),
        (["--zzzzzz"], "unrecognized arguments: --zzzzzz"),
    ],
)
def test_an_unknown_flag_suggests_the_closest(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_command_line(argv)
    assert str(info.value) == message


def test_prefixes_of_flags_are_not_accepted() -> None:
    with pytest.raises(ConfigError, match="unrecognized arguments: --work"):
        parse_command_line(["--work", "2"])


@pytest.mark.parametrize(
    ("text", "level"),
    [("INFO", "info"), ("Debug", "debug"), ("warn", "warning"), ("WARN", "warning")],
)
def test_log_level_in_any_case_and_warn(text: str, level: str) -> None:
    assert parse_command_line(["--log-level", text]).values["log-level"] == level


def test_a_bad_choice_still_lists_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"invalid choice: 'loud' \(choose from"):
        parse_command_line(["--log-level", "loud"])


@pytest.mark.parametrize(
    ("argv", "bind"),
    [
        (["-b", "8080"], ("127.0.0.1:8080",)),
        (["-b", "8080", "-b", "unix:/tmp/a.sock"], ("127.0.0.1:8080", "unix:/tmp/a.sock")),
        (["--port", "9000"], ("127.0.0.1:9000",)),
        (["--host", "0.0.0.0"], ("0.0.0.0:8000",)),
        (["--host", "0.0.0.0", "--port", "80"], ("0.0.0.0:80",)),
        (["--host", "::1", "--port", "80"], ("[::1]:80",)),
    ],
)
def test_bind_spellings(argv: list[str], bind: tuple[str, ...]) -> None:
    assert parse_command_line(argv).values["bind"] == bind


def test_host_and_bind_do_not_mix() -> None:
    with pytest.raises(ConfigError, match="--host/--port and --bind do not mix"):
        parse_command_line(["--port", "80", "-b", "127.0.0.1:81"])


def _help_sections(text: str) -> dict[str, str]:
    """Each ``title:`` block of --help by its title."""
    blocks = re.split(r"\n(?=\S[^\n]*:\n)", text)
    return {block.split(":\n", 1)[0]: block for block in blocks if ":\n" in block}


def test_help_is_grouped_by_topic() -> None:
    sections = _help_sections(build_parser().format_help())
    for name in ("binding", "workers", "HTTP", "timeouts and limits", "TLS", "proxies"):
        assert name in sections
    for name in ("WebSockets", "logging and metrics", "process", "config"):
        assert name in sections
    assert "--keep-alive SECONDS" in sections["timeouts and limits"]
    assert "--certfile FILE" in sections["TLS"]
    assert "--host HOST" in sections["binding"]
    assert "--check-config" in sections["config"]
    assert "other" not in sections  # every setting says where it belongs


def test_every_setting_is_in_a_known_section() -> None:
    assert {section_of(s) for s in SETTINGS if s.key != "app"} <= set(SECTIONS) - {"other"}


def test_help_shows_each_default_once_and_no_placeholder_metavars() -> None:
    text = build_parser().format_help()
    assert "VALUE" not in text
    assert "default: None" not in text
    assert "[default:" not in text
    flat = " ".join(text.split())
    assert flat.count("(default: 127.0.0.1:8000)") == 1
    assert "(default: $WEB_CONCURRENCY, else the CPUs this process may use" in flat
    assert flat.count("the CPUs this process may use") == 1
