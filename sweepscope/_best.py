"""A sweep's best: its best trial, or with seeds its best configuration by mean over seeds.

The seeded answer is runner.configurations.best_configuration (the one the CLI's `status`
and the dashboard's sweeps page give): a configuration ranked by its mean final value over
its seeds, with a bootstrap interval, never the single luckiest seed. Without seeds, the
best trial is the one whose best value of the sweep's metric is best, as the live page
marks it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from runner import configurations
from sweepscope._tables import metric_summary

__all__ = ["Best", "best_of"]


@dataclass(frozen=True)
class Best:
    """The best of a sweep by its metric.

    Attributes:
        metric: the sweep's metric.
        mode: "max" or "min": which end of the metric is best.
        value: the best trial's best value, or the best configuration's mean final value.
        low: the lower end of that mean's 95 % interval over seeds; NaN without seeds,
            or below runner.verdicts.MIN_SEEDS seeds with a final.
        high: its upper end (NaN alike).
        trials: the trial numbers: the best trial, or every trial of the configuration.
        config: the best trial's config, or the configuration (its config without seed).
        n: the seeds whose final value makes the mean (1 for a single trial).
        seeded: whether this is a configuration over seeds.
        tied_with: the configurations that the best cannot be told apart from by their
            seeds (empty without seeds).
        message: the answer in words.
    """

    metric: str
    mode: str
    value: float
    low: float
    high: float
    trials: tuple[int, ...]
    config: dict[str, Any]
    n: int
    seeded: bool
    tied_with: tuple[dict[str, Any], ...] = field(default=())
    message: str = ""


def _ordered(config: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    """A config with the spec's grid and sample keys first (as `Sweep.trials` shows them)."""
    declared = [k for k in (*spec.get("grid", {}), *spec.get("sample", {})) if k in config]
    return {k: config[k] for k in dict.fromkeys([*declared, *sorted(config)])}


def best_of(
    sweep: Mapping[str, Any], trials: Sequence[Mapping[str, Any]], points: pd.DataFrame
) -> Best | None:
    """The best of a sweep, from its trials and the points of its metric (`Store.points`
    with the sweep's metric); None before any trial has a finite value (or, with seeds,
    a finite final)."""
    metric, mode = str(sweep["metric"]), str(sweep["mode"])
    key = configurations.seed_key(sweep["spec"])
    if key is not None:
        found = configurations.best_configuration(sweep, trials, points)
        if found is None:
            return None
        members = tuple(
            int(t["number"])
            for t in trials
            if configurations.config_key(t["config"], key) == found.config
        )
        return Best(
            metric=metric,
            mode=mode,
            value=found.mean,
            low=found.low,
            high=found.high,
            trials=members,
            config=_ordered(json.loads(str(found.config)), sweep["spec"]),
            n=found.n,
            seeded=True,
            tied_with=tuple(json.loads(str(c)) for c in found.tied_with),
            message=found.message,
        )
    best, _, _ = metric_summary(points, mode)
    if best.empty:
        return None
    trial_id = int(best.idxmax() if mode == "max" else best.idxmin())
    trial = next(t for t in trials if int(t["id"]) == trial_id)
    value = float(best[trial_id])
    return Best(
        metric=metric,
        mode=mode,
        value=value,
        low=math.nan,
        high=math.nan,
        trials=(int(trial["number"]),),
        config=_ordered(trial["config"], sweep["spec"]),
        n=1,
        seeded=False,
        message=f"trial {trial['number']} has the best {metric} ({mode}): {value:.6g}",
    )
