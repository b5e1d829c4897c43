"""Imports point one way: cli -> master -> worker -> apps -> sansio (DESIGN.md).

Every module of the package has a layer: a package's modules take the package's, and each
top-level module is named below, so a new one must choose its place before it lands. And
every module stays small enough to read whole: 400 lines at most, functions 40.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "hybridserve"
ORDER = ["cli", "master", "worker", "apps", "sansio"]
# Any module may import these: the settings (config*), and what every layer shares.
LEAVES = {"config", "config_fields", "config_groups", "config_values"}
LEAVES |= {"cpus", "errors", "hooks", "log", "__init__"}
TOP_LEVEL = {
    "__main__": "cli",
    "cli": "cli",
    "flags": "cli",
    "sources": "cli",  # where settings come from: the CLI reads them (and HUP, through it)
    "catalog": "cli",  # the settings as the sources name them, and their conversions
    "pyconfig": "cli",  # a gunicorn.conf.py, one of those sources
    "ctl": "cli",
    "top": "cli",
    "demo": "apps",  # an app like any other: it may use the app types, nothing above
}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 40
SANSIO_FORBIDDEN = {"asyncio", "socket", "threading", "signal", "time", "selectors"}


def layer_of(parts: tuple[str, ...]) -> str:
    """The layer of the module at ``parts`` (its path inside the package)."""
    head = parts[0].removesuffix(".py")
    if len(parts) > 1:
        return head
    if head in LEAVES:
        return "leaf"
    return TOP_LEVEL.get(head, "unplaced")


def layer_of_import(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "hybridserve" or len(parts) < 2:
        return None
    if (PACKAGE / parts[1]).is_dir():
        return parts[1]  # a package (or a module inside one): the package's layer
    return layer_of((parts[1] + ".py",))


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def modules() -> list[tuple[Path, str]]:
    return [(p, layer_of(p.relative_to(PACKAGE).parts)) for p in sorted(PACKAGE.rglob("*.py"))]


def test_every_module_has_a_layer() -> None:
    assert [str(p.relative_to(PACKAGE)) for p, layer in modules() if layer == "unplaced"] == []


def test_no_module_imports_upward() -> None:
    problems = []
    for path, own in modules():
        for module in imports(path):
            other = layer_of_import(module)
            if other is None or other == "leaf" or other == own:
                continue
            if own == "leaf" or ORDER.index(other) < ORDER.index(own):
                problems.append(f"{path.relative_to(PACKAGE)} ({own}) imports {module} ({other})")
    assert problems == []


def test_leaves_import_no_layer() -> None:
    for path, own in modules():
        if own == "leaf":
            assert {layer_of_import(m) for m in imports(path)} <= {None, "leaf"}, path.name


def test_sansio_does_no_io() -> None:
    for path in (PACKAGE / "sansio").glob("*.py"):
        assert not imports(path) & SANSIO_FORBIDDEN, path.name


def test_no_module_over_400_lines() -> None:
    sizes = {p.relative_to(PACKAGE): len(p.read_text().splitlines()) for p, _ in modules()}
    assert {str(p): n for p, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_no_function_over_40_lines() -> None:
    long = []
    for path, _ in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1  # decorators aside, docstring in
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} {lines}")
    assert long == []
