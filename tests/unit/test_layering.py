"""Imports point one way: cli -> master -> worker -> apps -> sansio (DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "hybridserve"
ORDER = ["cli", "master", "worker", "apps", "sansio"]
LEAVES = {"config", "errors", "log", "__init__"}
SANSIO_FORBIDDEN = {"asyncio", "socket", "threading", "signal", "time", "selectors"}


def layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "hybridserve" or len(parts) < 2:
        return None
    return parts[1]


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_module_imports_upward() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if own not in ORDER:
            continue
        for module in imports(path):
            other = layer(module)
            if other is None or other in LEAVES or other == own or other not in ORDER:
                continue
            if ORDER.index(other) < ORDER.index(own):
                problems.append(f"{path.name} ({own}) imports {module}")
    assert not problems


def test_sansio_does_no_io() -> None:
    for path in (PACKAGE / "sansio").glob("*.py"):
        assert not imports(path) & SANSIO_FORBIDDEN, path.name
