"""Every conformance case against ServerConnection, on both backends, at every read cut.

The live run (``test_conformance.py``) sees a few ways of cutting the bytes; here each
case is fed whole, byte by byte, and cut in two at every position, and every one of those
runs must give the case's outcome. Backends agree by construction, not by luck.
"""

from __future__ import annotations

import pytest

from tests.conformance.cases import Case
from tests.conformance.cases_rules import ALL_CASES
from tests.conformance.sansio import Outcome, cuts, run

BACKENDS = ["h11", "httptools"]


def check(case: Case, backend: str, outcome: Outcome, how: str) -> None:
    where = f"{case.rfc}, {backend}, {how}"
    if case.reject is not None:
        assert outcome.statuses, f"{where}: not refused"
        assert len(outcome.statuses) == 1, f"{where}: served before the error: {outcome}"
        if case.reject:
            assert outcome.statuses[0] == case.reject, f"{where}: {outcome}"
        else:
            assert 400 <= outcome.statuses[0] < 500, f"{where}: {outcome}"
        assert outcome.closed, f"{where}: left open after an error"
        return
    expected = case.per_backend.get(backend, case.statuses)
    assert outcome.statuses == expected, f"{where}: {outcome}"
    if case.closed is not None:
        assert outcome.closed == case.closed, f"{where}: {outcome}"
    if case.body is not None:
        assert outcome.body == case.body.encode("latin-1"), f"{where}: {outcome}"
    if case.method is not None:
        assert outcome.methods[0] == case.method.encode("latin-1"), f"{where}: {outcome}"
    if case.header is not None:
        name, value = (part.encode("latin-1") for part in case.header)
        assert (name, value) in outcome.headers, f"{where}: {outcome}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ALL_CASES, ids=[c.name for c in ALL_CASES])
def test_case_at_every_cut(case: Case, backend: str) -> None:
    data = b"".join(case.parts)
    check(case, backend, run(backend, [data], eof=case.eof), "whole")
    check(case, backend, run(backend, case.parts, eof=case.eof), "the case's parts")
    if len(data) <= 4096:
        pieces = [data[i : i + 1] for i in range(len(data))]
        check(case, backend, run(backend, pieces, eof=case.eof), "byte by byte")
    for first, second in cuts(data):
        check(case, backend, run(backend, [first, second], eof=case.eof), f"cut at {len(first)}")
