"""The folders say where code runs: these import rules keep them true.

A trial (runner/trial/) runs inside a Ray worker: it must never pull in the driver or open
the store. The shared modules (every module at runner/'s top level but the command line, and
the store and exporters packages) are imported by both sides, the dashboard and the Python
API, so they import neither side. The dashboard and the Python API (sweepscope/) read the
store and the shared modules only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = sorted(p.stem for p in (ROOT / "runner").glob("*.py") if p.stem not in ("cli", "__init__"))
SIDES = ("runner.driver", "runner.trial", "runner.cli")


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of its code (lazy imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _offending(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in paths
        for name in _imports(path)
        if name.startswith(forbidden)
    )


def test_a_trial_imports_neither_the_driver_nor_the_store() -> None:
    trial = sorted((ROOT / "runner" / "trial").glob("*.py"))
    assert trial, "runner/trial/ holds no module"
    assert _offending(trial, ("runner.driver", "runner.store", "runner.cli")) == []


@pytest.mark.parametrize("module", SHARED)
def test_shared_modules_import_neither_side(module: str) -> None:
    path = ROOT / "runner" / f"{module}.py"
    assert _offending([path], ("runner.driver", "runner.trial", "runner.cli")) == []


@pytest.mark.parametrize("package", ["runner/store", "runner/exporters"])
def test_shared_packages_import_neither_side(package: str) -> None:
    modules = sorted((ROOT / package).glob("*.py"))
    assert modules, f"{package}/ holds no module"
    assert _offending(modules, SIDES) == []


@pytest.mark.parametrize("reader", ["dashboard", "sweepscope"])
def test_the_dashboard_and_the_api_read_only_shared_modules(reader: str) -> None:
    modules = sorted((ROOT / reader).rglob("*.py"))
    assert modules, f"{reader}/ holds no module"
    assert _offending(modules, SIDES) == []


def test_a_lazy_import_inside_a_function_counts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from runner.driver.writer import StoreWriter\n")
    assert {"runner.driver.writer", "runner.driver.writer.StoreWriter"} <= _imports(bad)
