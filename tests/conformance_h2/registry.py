"""The list every HTTP/2 conformance case registers into, with the section it follows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.conformance_h2.client import H2Client

CaseRun = Callable[[H2Client], None]


@dataclass(frozen=True)
class Case:
    name: str
    section: str  # "RFC 9113 §6.5", "RFC 7541 §5.2"
    run: CaseRun
    live: bool = True  # False: needs the in-process server (it inspects no socket)
    misses: tuple[tuple[str, str], ...] = ()  # (backend, why): a known miss of that backend

    @property
    def id(self) -> str:
        return f"{self.name} [{self.section}]"


CASES: list[Case] = []


def case(
    section: str, *, live: bool = True, misses: dict[str, str] | None = None
) -> Callable[[CaseRun], CaseRun]:
    """Register the decorated function as a case; its name (minus ``case_``) names it."""

    def register(run: CaseRun) -> CaseRun:
        known = tuple((misses or {}).items())
        CASES.append(Case(run.__name__.removeprefix("case_"), section, run, live, known))
        return run

    return register
