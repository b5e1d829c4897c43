"""Control requests: parsing and what each one may ask, without a socket."""

from __future__ import annotations

import json
import signal

import pytest

from hybridserve.master.control import ControlError, Request, answer, parse_request, plan


def test_requests_parse_with_and_without_a_count() -> None:
    assert parse_request(b'{"command": "status"}') == Request("status")
    assert parse_request(b'{"command": "add", "n": 3}') == Request("add", 3)
    assert parse_request(b'{"command": "remove"}') == Request("remove", 1)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b"", "not a JSON object"),
        (b"[1]", "not a JSON object"),
        (b"\xff\xfe", "not a JSON object"),
        (b'{"command": 7}', "unknown command 7"),
        (b'{"command": "add", "n": "2"}', "whole number"),
        (b'{"command": "add", "n": true}', "whole number"),
        (b'{"command": "remove", "n": -1}', "whole number"),
    ],
)
def test_bad_requests_say_what_is_wrong(line: bytes, words: str) -> None:
    with pytest.raises(ControlError, match=words):
        parse_request(line)


def test_answer_wraps_results_and_errors_in_one_line() -> None:
    def handler(request: Request) -> object:
        if request.command == "stop":
            raise ControlError("the server is stopping")
        return {"seen": request.command}

    assert json.loads(answer(handler, b'{"command": "status"}')) == {
        "ok": True,
        "result": {"seen": "status"},
    }
    assert answer(handler, b'{"command": "stop"}') == (
        b'{"ok":false,"error":"the server is stopping"}\n'
    )


def test_plan_maps_commands_to_signals_within_the_worker_limits() -> None:
    assert plan(Request("reload"), 2, most=63) == (signal.SIGHUP, "reload", 1)
    assert plan(Request("add", 3), 2, most=63) == (signal.SIGTTIN, "add 3", 3)
    assert plan(Request("remove", 1), 2, most=63) == (signal.SIGTTOU, "remove 1", 1)
    with pytest.raises(ControlError, match="at most 63"):
        plan(Request("add", 62), 2, most=63)
    with pytest.raises(ControlError, match="at least 1 must stay"):
        plan(Request("remove", 2), 2, most=63)
