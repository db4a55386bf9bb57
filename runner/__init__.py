"""sweepscope's runner: sweep specs, the Ray Tune launch, the store, and the CLI.

A training function needs only `runner.report` (see its docstring).
"""

from __future__ import annotations

from runner import report

__all__ = ["report"]
