"""Stand-ins for Ray's objects, for driving the callback, stopper and notifier directly
without a Ray runtime (as Ray's own tune/tests/test_logger.py does)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

__all__ = ["fake_trial"]


def fake_trial(ray_id: str, error: str | None = None, tmp: Path | None = None) -> Any:
    """A Ray Tune trial as the driver's hooks see it: its id, config and error file (with two
    failures in Ray's format, the last one `error`, when both `error` and `tmp` are given)."""
    error_file = None
    if error is not None and tmp is not None:
        error_file = tmp / f"{ray_id}.txt"
        error_file.write_text(
            f"Failure # 1 (occurred at now)\nold failure\n"
            f"Failure # 2 (occurred at later)\n{error}\n"
        )
    return SimpleNamespace(
        trial_id=ray_id,
        config={"lr": 0.1, "epochs": 2, "__trial_index__": 0},
        error_file=str(error_file) if error_file else None,
    )
