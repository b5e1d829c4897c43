"""The HTTP/2 conformance cases over a socket, against a real server (h2c, prior knowledge).

Cases that need to see inside the server (``live=False``) run only in-process.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance_h2.client import CaseFailed, H2Client
from tests.conformance_h2.registry import CASES, Case
from tests.conformance_h2.socket_driver import SocketDriver
from tests.conformance_h2.test_conformance_h2 import MODULES
from tests.harness import Server

assert MODULES  # the cases are registered


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    server = Server("-w", "1", "--graceful-timeout", "2", "h2_apps:app").start()
    yield server
    assert server.stop() == 0, server.log


@pytest.mark.parametrize("case", [c for c in CASES if c.live], ids=lambda case: case.id)
def test_case_live(case: Case, server: Server) -> None:
    driver = SocketDriver(server.host, server.port)
    try:
        why = dict(case.misses).get("ngh2")
        if why is None:
            case.run(H2Client(driver))
            return
        with pytest.raises(CaseFailed):
            case.run(H2Client(driver))
        pytest.xfail(why)
    finally:
        driver.close()
