"""The first epoch report must carry the sweep's metric: a typo halts the sweep at once.

Without this check a sweep whose spec names `val_accuracy` while the trials report `val_acc`
would run every trial to its end with nothing to rank, schedulers judging nothing.
"""

from __future__ import annotations

import difflib
from typing import Any

from runner.driver.results import NOT_METRICS
from runner.errors import SpecError
from runner.protocol import is_system_metric

__all__ = ["MetricCheck"]


class MetricCheck:
    """Checks the sweep's first epoch report (any result of a plain Ray Tune trainable)."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.problem: SpecError | None = None
        self._done = False

    def check(
        self, trial_id: str, result: dict[str, Any], points: list[Any], plain: bool
    ) -> SpecError | None:
        """The problem with this result, the first time one is found; None otherwise (and
        for every result after the first epoch report)."""
        if self._done or not (plain or "epoch" in result):
            return None
        self._done = True
        if self.metric in result:
            return None
        reported = sorted(
            name
            for name in {name for name, *_ in points}
            | {k for k, v in result.items() if k not in NOT_METRICS and isinstance(v, int | float)}
            - {k for k in result if k.startswith("_")}
            if not is_system_metric(name)  # the runner's load readings are no trial's metric
        )
        close = difflib.get_close_matches(self.metric, reported, n=1)
        fix = (
            f"did you mean {close[0]}? Set metric: {close[0]} in the spec"
            if close
            else "set metric to one of the reported metrics, or report it with "
            f"report.epoch(..., {self.metric}=value)"
        )
        self.problem = SpecError(
            "the sweep's spec",
            [
                (
                    "metric",
                    f"{self.metric!r} is not reported: trial {trial_id}'s first "
                    f"epoch report has {', '.join(reported) or 'no metrics'}.",
                    fix,
                )
            ],
        )
        return self.problem
