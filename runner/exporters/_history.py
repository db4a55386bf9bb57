"""A sweep as the exporters need it: each trial with its flat configuration and its points.

The points come from one columnar read (`Store.point_columns`), sorted once with numpy and
cut into per-trial slices (views, no copy), so an exporter walks a trial's points as plain
arrays; no Python object is made per point before the target's own API asks for one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from runner.store import Store, require_sweep

__all__ = ["SweepHistory", "TrialHistory", "flat_config", "read_history"]


@dataclass(frozen=True)
class TrialHistory:
    """One trial and its points, ordered by step, then metric.

    Attributes:
        trial: the trial's dict, as `Store.trials` gives it (number, status, config, ...).
        params: its configuration, flattened (see `flat_config`).
        metric: int indexes into `SweepHistory.metrics`, one a point.
        step, value, wall_time: the points' steps, values and Unix times (seconds).
    """

    trial: dict[str, Any]
    params: dict[str, Any]
    metric: np.ndarray
    step: np.ndarray
    value: np.ndarray
    wall_time: np.ndarray

    @property
    def name(self) -> str:
        """The run's name in every target: what users see as the trial's number."""
        return f"trial-{self.trial['number']}"


@dataclass(frozen=True)
class SweepHistory:
    """A sweep, its metric names, and its trials in creation order."""

    sweep: dict[str, Any]
    metrics: list[str]
    trials: list[TrialHistory]

    @property
    def points(self) -> int:
        return sum(len(t.step) for t in self.trials)


def read_history(store: Store, sweep_id: str) -> SweepHistory:
    """Read a sweep whole: its row, its trials, and every point in one columnar read.

    Raises:
        SweepscopeError: no such sweep in the store.
        StoreError: the store cannot be read.
    """
    sweep = require_sweep(store, sweep_id)
    trials = store.trials(sweep_id)
    cols = store.point_columns(sweep_id)
    order = np.lexsort((cols.metric, cols.step, cols.trial_id))  # by trial, step, metric
    trial_id = cols.trial_id[order]
    metric, step = cols.metric[order], cols.step[order]
    value, wall = cols.value[order], cols.wall_time[order]
    ids = np.array([t["id"] for t in trials], dtype=np.int64)
    starts = np.searchsorted(trial_id, ids, side="left")
    ends = np.searchsorted(trial_id, ids, side="right")
    histories = [
        TrialHistory(
            trial=t,
            params=flat_config(t["config"]),
            metric=metric[a:b],
            step=step[a:b],
            value=value[a:b],
            wall_time=wall[a:b],
        )
        for t, a, b in zip(trials, starts.tolist(), ends.tolist(), strict=True)
    ]
    return SweepHistory(sweep=sweep, metrics=list(cols.metrics), trials=histories)


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A configuration with nested mappings flattened to "outer/inner" keys, as Ray Tune's
    own TensorBoard and MLflow loggers do: both targets take one level of names."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flat_config(value, f"{name}/"))
        else:
            flat[name] = value
    return flat
