"""The HTTP/2 conformance cases against the sans-IO connection, once per installed backend.

The same cases run over a socket against the real server in tests/integration (the driver
differs, the client and the cases do not).
"""

from __future__ import annotations

import pytest

from hybridserve.sansio.h2backend import available_backends
from tests.conformance_h2 import (
    cases_attacks,
    cases_connection,
    cases_control,
    cases_flow,
    cases_hpack,
    cases_http,
)
from tests.conformance_h2.client import CaseFailed, H2Client
from tests.conformance_h2.registry import CASES, Case
from tests.conformance_h2.sansio_driver import SansioDriver

MODULES = (
    cases_attacks,
    cases_connection,
    cases_control,
    cases_flow,
    cases_hpack,
    cases_http,
)  # each registers its cases


def test_enough_cases_each_citing_its_section() -> None:
    assert len(CASES) >= 80
    assert all(case.section.startswith(("RFC 9113 §", "RFC 7541 §")) for case in CASES)
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("backend", available_backends())
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_case(case: Case, backend: str) -> None:
    client = H2Client(SansioDriver(backend), escalation_ok=backend == "h2")
    why = dict(case.misses).get(backend)
    if why is None:
        case.run(client)
        return
    with pytest.raises(CaseFailed):  # still a miss: when it passes, drop it from the case
        case.run(client)
    pytest.xfail(f"known miss of the {backend} backend: {why}")
