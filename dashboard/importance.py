"""Which hyperparameter matters: the importance of each for a final metric, with its
uncertainty.

Two maintained implementations, never hand-written statistics:

- `permutation` (the default; scikit-learn is a dependency): a random forest learns the
  final metric from the hyperparameters, and scikit-learn's `permutation_importance` says
  how much worse it predicts when one hyperparameter's values are shuffled.
- `fanova` (when Optuna is installed): Optuna's fANOVA evaluator, the share of the
  metric's variance each hyperparameter explains, as optuna-dashboard shows it.

Either runs on `n_resamples` bootstrap resamples of the trials (each with its own seed);
the bar is the mean share over resamples, the whisker the central 95 % of them. Shares
are normalised to sum to 1 per resample, so the two methods read alike.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard import axes
from dashboard.data import _hashable, ordered

__all__ = [
    "METHODS",
    "MIN_TRIALS",
    "Importance",
    "available_methods",
    "design_matrix",
    "importance",
    "importance_figure",
]

#: Method key -> its name as the page says it.
METHODS: dict[str, str] = {
    "permutation": "permutation importance of a random forest (scikit-learn)",
    "fanova": "fANOVA (Optuna)",
}
#: Fewer trials than this with the metric tell nothing about importance.
MIN_TRIALS = 4


@dataclass(frozen=True)
class Importance:
    """Per hyperparameter (most important first): `importance` (mean share over the
    resamples), `low` and `high` (the central `confidence` of the resamples)."""

    method: str
    metric: str
    table: pd.DataFrame
    n_trials: int
    n_resamples: int
    confidence: float


def available_methods() -> list[str]:
    """The methods this installation can run: fANOVA needs Optuna."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        return ["permutation"]
    return list(METHODS)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def design_matrix(
    trials: Sequence[Mapping[str, Any]], params: Sequence[str], finals: Mapping[int, float]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The trials with a finite final value, as a matrix of their hyperparameters and the
    vector of those values.

    Numeric hyperparameters stay numbers; anything else (booleans, strings, lists, None)
    becomes the index of its value in a stable order. Hyperparameters that take one value
    among these trials are left out: they explain nothing.
    """
    kept = [t for t in trials if math.isfinite(float(finals.get(int(t["id"]), math.nan)))]
    columns: dict[str, list[float]] = {}
    for p in params:
        values = [t["config"].get(p) for t in kept]
        if len({_hashable(v) for v in values}) < 2:
            continue
        if all(_is_number(v) for v in values):
            columns[p] = [float(v) for v in values]
        else:
            order = {
                _hashable(v): i
                for i, v in enumerate(ordered({_hashable(v): v for v in values}.values()))
            }
            columns[p] = [float(order[_hashable(v)]) for v in values]
    index = pd.Index([int(t["id"]) for t in kept], name="trial")
    frame = pd.DataFrame(columns, index=index)
    y = np.array([float(finals[int(t["id"])]) for t in kept], dtype=np.float64)
    return frame, y


def _shares(raw: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.nan_to_num(raw, nan=0.0), 0.0, None)
    total = clipped.sum()
    return clipped / total if total > 0 else clipped


def _permutation(X: np.ndarray, y: np.ndarray, idx: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    forest = RandomForestRegressor(n_estimators=32, random_state=seed).fit(X[idx], y[idx])
    # Scored on every trial, not only the resample, so each hyperparameter is judged on
    # all the settings the sweep tried.
    result = permutation_importance(
        forest, X, y, n_repeats=5, random_state=seed, scoring="neg_mean_squared_error"
    )
    return np.asarray(result.importances_mean, dtype=np.float64)


def _fanova(
    X: np.ndarray,
    y: np.ndarray,
    idx: np.ndarray,
    seed: int,
    names: Sequence[str],
    log: Sequence[bool],
) -> np.ndarray:
    import optuna
    from optuna.distributions import BaseDistribution, FloatDistribution
    from optuna.importance import FanovaImportanceEvaluator

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions: dict[str, BaseDistribution] = {
        p: FloatDistribution(float(X[:, j].min()), float(X[:, j].max()), log=log[j])
        for j, p in enumerate(names)
    }
    study = optuna.create_study()
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={p: float(X[i, j]) for j, p in enumerate(names)},
                distributions=distributions,
                value=float(y[i]),
            )
            for i in idx
        ]
    )
    found = FanovaImportanceEvaluator(n_trees=16, max_depth=16, seed=seed).evaluate(study)
    return np.array([found.get(p, 0.0) for p in names], dtype=np.float64)


def importance(
    trials: Sequence[Mapping[str, Any]],
    params: Sequence[str],
    finals: Mapping[int, float],
    metric: str,
    *,
    method: str = "permutation",
    n_resamples: int = 20,
    seed: int = 0,
    confidence: float = 0.95,
    max_trials: int | None = None,
) -> Importance:
    """The importance of each hyperparameter in `params` for the final values `finals`
    (trial id -> value), over bootstrap resamples of the trials; with `max_trials`, of a
    random sample of that many of them (seeded by `seed`: the same sample every time), as
    a large sweep's cost grows with its trials and its answer hardly does.

    Raises ValueError when there is nothing to explain: too few trials with a value, no
    hyperparameter that varies, or one value for every trial.
    """
    if method not in METHODS:
        raise ValueError(f"unknown importance method {method!r}. Fix: use one of {list(METHODS)}.")
    frame, y = design_matrix(trials, params, finals)
    if max_trials is not None and len(y) > max_trials:
        keep = np.sort(np.random.default_rng(seed).choice(len(y), max_trials, replace=False))
        frame, y = frame.iloc[keep], y[keep]
        frame = frame.loc[:, frame.nunique() > 1]  # a sample may leave one value
    if len(y) < MIN_TRIALS:
        raise ValueError(
            f"{len(y)} trials have a final {metric}; importance needs at least {MIN_TRIALS}."
        )
    if frame.shape[1] == 0:
        raise ValueError(f"no hyperparameter varies among the trials with a final {metric}.")
    if np.ptp(y) == 0.0:
        raise ValueError(f"every trial has the same final {metric}: there is nothing to explain.")
    X = frame.to_numpy(np.float64)
    names = list(frame.columns)
    # fANOVA splits log-spaced hyperparameters on the log scale, as Optuna would sample them.
    log = [axes.log_scale(X[:, j]) for j in range(X.shape[1])]
    rng = np.random.default_rng(seed)
    shares = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in range(n_resamples):
            idx = rng.integers(0, len(y), len(y))
            if np.ptp(y[idx]) == 0.0:
                continue  # a resample with one value: nothing to split on
            raw = (
                _permutation(X, y, idx, seed + b)
                if method == "permutation"
                else _fanova(X, y, idx, seed + b, names, log)
            )
            shares.append(_shares(raw))
    if not shares:
        raise ValueError(f"too few distinct final {metric} values to resample.")
    stack = np.array(shares)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(stack, [tail, 100 - tail], axis=0)
    table = pd.DataFrame(
        {"parameter": names, "importance": stack.mean(axis=0), "low": low, "high": high}
    ).sort_values("importance", ascending=False, ignore_index=True)
    return Importance(METHODS[method], metric, table, len(y), len(stack), confidence)


def importance_figure(result: Importance) -> go.Figure:
    """Horizontal bars, the most important on top, with the resamples' interval."""
    table = result.table.iloc[::-1]
    fig = go.Figure(
        go.Bar(
            x=table["importance"],
            y=table["parameter"],
            orientation="h",
            marker={"color": "#1f77b4"},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": table["high"] - table["importance"],
                "arrayminus": table["importance"] - table["low"],
                "color": "#444",
            },
            customdata=np.stack([table["low"], table["high"]], axis=-1),
            hovertemplate=(
                "%{y}: %{x:.2f}<br>"
                f"{result.confidence:.0%} of resamples: "
                "%{customdata[0]:.2f} – %{customdata[1]:.2f}<extra></extra>"
            ),
        )
    )
    fig.update_layout(
        margin={"l": 100, "r": 20, "t": 40, "b": 50},
        height=max(240, 120 + 40 * len(table)),
        xaxis={"title": f"share of importance for {result.metric}", "range": [0, 1.02]},
        title={"text": result.method, "font": {"size": 13}},
    )
    return fig
