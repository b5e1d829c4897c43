"""The master's log tells the truth once (issue #10, part 4)."""

from __future__ import annotations

import signal

from tests.harness import Server, get


def test_a_second_ctrl_c_says_it_stops_now_not_that_time_ran_out() -> None:
    server = Server("announce_app:wsgi", "-w", "1", "--graceful-timeout", "30").start()
    try:
        with server.connect() as sock:
            sock.sendall(get("/delay?ms=5000"))
            server.wait_entered("/delay?ms=5000")
            server.send_signal(signal.SIGINT)
            server.wait_for("Stopping gracefully")
            server.send_signal(signal.SIGINT)
            server.wait(20)
    finally:
        server.stop()
    log = server.log
    assert sum(line.endswith("] Stopping now") for line in server.lines) == 1, log
    assert "after the graceful timeout" not in log, log
    assert "closing 1 open connection(s)" in log, log


def test_siblings_stopped_because_one_worker_failed_are_not_reported_as_killed() -> None:
    server = Server("broken_import:app", "-w", "3")
    server.start(ready=False)
    assert server.wait(20) == 3
    log = server.log
    assert "killed by" not in log, log
    assert sum(line.endswith("] Stopping now") for line in server.lines) == 1, log
    assert log.count("RuntimeError: this module refuses to import") == 1, log
