"""The folders say where code runs: these import rules keep them true.

A trial (runner/trial/) runs inside a Ray worker: it must never pull in the driver or open
the store. The shared modules are imported by both sides and by the dashboard, so they import
neither side. The dashboard reads the store and the shared modules only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ["spec", "status", "protocol", "errors", "redact", "timefmt", "_ray_private", "webhook"]


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


def test_the_store_imports_neither_side() -> None:
    store = sorted((ROOT / "runner" / "store").glob("*.py"))
    assert _offending(store, ("runner.driver", "runner.trial", "runner.cli")) == []


def test_the_dashboard_reads_only_shared_modules() -> None:
    dashboard = sorted((ROOT / "dashboard").rglob("*.py"))
    assert _offending(dashboard, ("runner.driver", "runner.trial", "runner.cli")) == []


def test_a_lazy_import_inside_a_function_counts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from runner.driver.writer import StoreWriter\n")
    assert {"runner.driver.writer", "runner.driver.writer.StoreWriter"} <= _imports(bad)
