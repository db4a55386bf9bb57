"""Comparing two settings of one hyperparameter (batch_norm by default) across a sweep.

Trials are paired by every other hyperparameter, so each pair differs only in the
factor. The page then shows the difference in the final metric per pair with a
bootstrap interval of its mean, and the steps each trial needs to reach a target value,
whose ratio per pair is the BN paper's headline "speed-up".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from dashboard.data import SweepPoints, _hashable, ordered

__all__ = [
    "Interval",
    "Pairing",
    "bootstrap_mean",
    "default_levels",
    "default_target",
    "final_values",
    "geometric_mean_speedup",
    "levels",
    "mean_band",
    "pair_trials",
    "paired_differences",
    "speedups",
    "steps_to_target",
]


def levels(trials: Sequence[Mapping[str, Any]], factor: str) -> list[Any]:
    """The distinct values `factor` takes across the trials, sorted (None last)."""
    seen = {_hashable(t["config"].get(factor)): t["config"].get(factor) for t in trials}
    return ordered(seen.values())


def default_levels(values: Sequence[Any]) -> tuple[Any, Any] | None:
    """(A, B) to compare, B - A: for booleans (False, True), i.e. with BN minus without."""
    if len(values) < 2:
        return None
    return values[0], values[1]


@dataclass(frozen=True)
class Pairing:
    """Trials matched on every hyperparameter but `factor`.

    `pairs` has one row per pair: `pair` (a label of the shared settings), `a` and `b`
    (trial ids with factor = levels[0] and levels[1]) and the shared hyperparameters.
    `unpaired` lists trials with the factor at A or B that found no partner.
    """

    factor: str
    levels: tuple[Any, Any]
    others: tuple[str, ...]
    pairs: pd.DataFrame
    unpaired: tuple[int, ...]


def pair_trials(
    trials: Sequence[Mapping[str, Any]],
    factor: str,
    compared: tuple[Any, Any],
    params: Sequence[str],
) -> Pairing:
    """Pair trials that share every hyperparameter in `params` except `factor`.

    Repeated settings (a spec with `samples` > 1 and no seed in the grid) pair in order of
    trial id.
    """
    if factor not in params:
        raise ValueError(
            f"factor {factor!r} is not a hyperparameter of this sweep. "
            f"Fix: pick one of {list(params)}."
        )
    a_key, b_key = _hashable(compared[0]), _hashable(compared[1])
    if a_key == b_key:
        raise ValueError(
            f"both sides of the comparison are {factor}={compared[0]!r}. "
            "Fix: pick two different values."
        )
    others = tuple(p for p in params if p != factor)
    groups: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for t in sorted(trials, key=lambda t: int(t["id"])):
        side = _hashable(t["config"].get(factor))
        if side not in (a_key, b_key):
            continue
        shared = _hashable([t["config"].get(p) for p in others])
        groups.setdefault(shared, {a_key: [], b_key: []})[side].append(t)
    rows, unpaired = [], []
    for sides in groups.values():
        a_list, b_list = sides[a_key], sides[b_key]
        for ta, tb in zip(a_list, b_list, strict=False):
            label = ", ".join(f"{p}={ta['config'].get(p)}" for p in others) or "all"
            rows.append(
                {
                    "pair": label,
                    "a": int(ta["id"]),
                    "b": int(tb["id"]),
                    **{p: ta["config"].get(p) for p in others},
                }
            )
        n = min(len(a_list), len(b_list))
        unpaired += [int(t["id"]) for t in a_list[n:] + b_list[n:]]
    pairs = pd.DataFrame(rows, columns=["pair", "a", "b", *others])
    return Pairing(factor, compared, others, pairs, tuple(sorted(unpaired)))


def final_values(points: SweepPoints, trial_ids: Sequence[int], metric: str) -> pd.Series:
    """Each trial's last finite value of `metric` (NaN when it has none)."""
    out = {}
    for trial in trial_ids:
        series = points.series(int(trial), metric)
        finite = series.value[np.isfinite(series.value)] if series is not None else []
        out[int(trial)] = float(finite[-1]) if len(finite) else math.nan
    return pd.Series(out, dtype="float64")


def paired_differences(pairing: Pairing, finals: pd.Series) -> pd.DataFrame:
    """Per pair: the final metric at A and at B, and B - A."""
    frame = pairing.pairs[["pair", "a", "b"]].copy()
    frame["final A"] = frame["a"].map(finals).astype("float64")
    frame["final B"] = frame["b"].map(finals).astype("float64")
    frame["B - A"] = frame["final B"] - frame["final A"]
    return frame


@dataclass(frozen=True)
class Interval:
    """A statistic with its bootstrap confidence interval over `n` values."""

    estimate: float
    low: float
    high: float
    n: int
    confidence: float


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    seed: int = 0,
    n_resamples: int = 9999,
) -> Interval:
    """The mean of `values` (NaNs dropped) with a BCa bootstrap interval.

    Fewer than two values give no interval (NaN bounds); identical values give a zero-width
    one. Falls back to the percentile method where BCa is undefined.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence {confidence!r} is outside (0, 1). Fix: use e.g. 0.95.")
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    n = len(data)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, confidence)
    mean = float(data.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, confidence)
    if np.ptp(data) == 0.0:
        same = float(data[0])
        return Interval(same, same, same, n, confidence)
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = stats.bootstrap(
                (data,),
                np.mean,
                confidence_level=confidence,
                n_resamples=n_resamples,
                method=method,
                rng=np.random.default_rng(seed),
                vectorized=True,
            )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return Interval(mean, low, high, n, confidence)
    return Interval(mean, math.nan, math.nan, n, confidence)


def steps_to_target(
    points: SweepPoints,
    trial_ids: Sequence[int],
    metric: str,
    target: float,
    mode: str,
) -> pd.Series:
    """The first step at which each trial's `metric` reaches `target` (>= for mode max,
    <= for min); NaN where it never did."""
    out = {}
    for trial in trial_ids:
        series = points.series(int(trial), metric)
        step = math.nan
        if series is not None and len(series.value):
            with np.errstate(invalid="ignore"):
                hit = series.value >= target if mode == "max" else series.value <= target
            if hit.any():
                step = float(series.step[int(np.argmax(hit))])
        out[int(trial)] = step
    return pd.Series(out, dtype="float64")


def default_target(values: Sequence[float] | np.ndarray, mode: str, fraction: float = 0.9) -> float:
    """A target most good trials reach: `fraction` of the best value (for max metrics such
    as accuracy), or the best divided by `fraction` (for min metrics such as loss)."""
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    if not len(data):
        return math.nan
    if mode == "max":
        return float(fraction * data.max())
    return float(data.min() / fraction)


def speedups(pairing: Pairing, steps: pd.Series) -> pd.DataFrame:
    """Per pair: steps to target at A and B, and the speed-up of B, steps(A) / steps(B).

    `outcome` says which side reached the target; the ratio is NaN unless both did.
    """
    frame = pairing.pairs[["pair", "a", "b"]].copy()
    frame["steps A"] = frame["a"].map(steps).astype("float64")
    frame["steps B"] = frame["b"].map(steps).astype("float64")
    frame["speed-up of B"] = frame["steps A"] / frame["steps B"]
    reached_a, reached_b = frame["steps A"].notna(), frame["steps B"].notna()
    frame["outcome"] = np.select(
        [reached_a & reached_b, reached_b, reached_a],
        ["both reached", "only B reached", "only A reached"],
        default="neither reached",
    )
    return frame


def geometric_mean_speedup(ratios: pd.Series, *, confidence: float = 0.95) -> Interval:
    """The geometric mean of speed-up ratios, with a bootstrap interval (on log ratios)."""
    logs = np.log(ratios[np.isfinite(ratios) & (ratios > 0)].to_numpy(np.float64))
    interval = bootstrap_mean(logs, confidence=confidence)
    return Interval(
        math.exp(interval.estimate) if interval.n else math.nan,
        math.exp(interval.low),
        math.exp(interval.high),
        interval.n,
        confidence,
    )


def mean_band(curves: Sequence[tuple[np.ndarray, np.ndarray]], n_grid: int = 200) -> pd.DataFrame:
    """Mean and standard deviation of curves on a common x grid.

    Each curve is interpolated within its own x range only, so a trial that stopped early
    leaves the mean where it ends; `n` says how many trials each point averages.
    """
    curves = [(x, y) for x, y in curves if len(x)]
    if not curves:
        return pd.DataFrame(columns=["x", "mean", "std", "n"])
    lo = min(float(x[0]) for x, _ in curves)
    hi = max(float(x[-1]) for x, _ in curves)
    grid = np.linspace(lo, hi, n_grid) if hi > lo else np.array([lo])
    stack = np.full((len(curves), len(grid)), np.nan)
    for i, (x, y) in enumerate(curves):
        inside = (grid >= x[0]) & (grid <= x[-1])
        stack[i, inside] = np.interp(grid[inside], x, y)
    n = np.sum(np.isfinite(stack), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(stack, axis=0)
        std = np.nanstd(stack, axis=0)
    return pd.DataFrame({"x": grid, "mean": mean, "std": std, "n": n})
