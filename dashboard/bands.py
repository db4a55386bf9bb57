"""Group bands: a centre line and a band around it, from many trials' curves.

Four kinds, chosen by the user; the legend says which. The default, the interquartile
range around the median, never leaves the range of values the trials actually had (an
accuracy band never passes 1.0), unlike mean ± sd over a bimodal group.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["BANDS", "DEFAULT_BAND", "band_label", "group_band", "nan_percentiles"]

#: Band kind -> what it means, as the legend says it.
BANDS: dict[str, str] = {
    "iqr": "interquartile range",
    "ci95": "mean ± 95 % CI of the mean",
    "sd": "mean ± sd",
    "minmax": "min–max",
}
DEFAULT_BAND = "iqr"

_COLUMNS = ["step", "centre", "lower", "upper", "n"]


def band_label(kind: str) -> str:
    """The legend text of a band kind, with its centre line: 'median, interquartile range'."""
    _check(kind)
    centre = "median" if kind in ("iqr", "minmax") else "mean"
    return BANDS[kind] if BANDS[kind].startswith("mean") else f"{centre}, {BANDS[kind]}"


def _check(kind: str) -> None:
    if kind not in BANDS:
        raise ValueError(f"unknown band kind {kind!r}. Fix: use one of {sorted(BANDS)}.")


def group_band(
    curves: Sequence[tuple[np.ndarray, np.ndarray]],
    kind: str = DEFAULT_BAND,
    n_grid: int = 200,
) -> pd.DataFrame:
    """The centre and band of `curves` (x, y pairs) on a common grid of `n_grid` steps.

    Columns: step, centre (the median for iqr and minmax, the mean otherwise), lower,
    upper, and n, the number of trials at that step. Each curve counts only within its own
    x range and only where its value is finite, so a trial that stopped or diverged early
    leaves the band where it ends. Where fewer than two trials remain, sd and ci95 have no
    band (NaN bounds); iqr and minmax narrow to the one value.
    """
    _check(kind)
    kept = []
    for x, y in curves:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        finite = np.isfinite(x) & np.isfinite(y)
        if finite.any():
            kept.append((x[finite], y[finite]))
    if not kept:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in _COLUMNS})
    lo = min(float(x[0]) for x, _ in kept)
    hi = max(float(x[-1]) for x, _ in kept)
    grid = np.linspace(lo, hi, n_grid) if hi > lo else np.array([lo])
    stack = _on_grid(kept, grid)
    n = np.sum(np.isfinite(stack), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: gaps between curves
        if kind in ("iqr", "minmax"):
            q = (25, 50, 75) if kind == "iqr" else (0, 50, 100)
            lower, centre, upper = nan_percentiles(stack, q)
        else:
            centre = np.nanmean(stack, axis=0)
            sd = np.nanstd(stack, axis=0, ddof=1)
            if kind == "sd":
                half = sd
            else:
                dof = np.maximum(n - 1, 1)
                half = stats.t.ppf(0.975, dof) * sd / np.sqrt(np.maximum(n, 1))
            half = np.where(n >= 2, half, np.nan)
            lower, upper = centre - half, centre + half
    return pd.DataFrame(
        {"step": grid, "centre": centre, "lower": lower, "upper": upper, "n": n.astype("int64")}
    )


def _on_grid(curves: Sequence[tuple[np.ndarray, np.ndarray]], grid: np.ndarray) -> np.ndarray:
    """Each curve (x ascending, finite) interpolated linearly on `grid`, NaN outside its own
    x range: shape (len(curves), len(grid)), what np.interp gives row by row.

    Curves with the same x (trials at the same steps: most of a large sweep's) share one
    lookup of the grid and are interpolated together: np.interp one curve at a time costs
    about 10 µs each, a tenth of a second a refresh for 10,000 trials."""
    stack = np.full((len(curves), len(grid)), np.nan)
    same: dict[bytes, list[int]] = {}
    for i, (x, _) in enumerate(curves):
        same.setdefault(x.tobytes(), []).append(i)
    for rows in same.values():
        x = curves[rows[0]][0]
        inside = np.flatnonzero((grid >= x[0]) & (grid <= x[-1]))
        at = grid[inside]
        if len(rows) == 1:
            stack[rows[0], inside] = np.interp(at, x, curves[rows[0]][1])
            continue
        ys = np.stack([curves[i][1] for i in rows])
        left = np.clip(np.searchsorted(x, at, side="right") - 1, 0, len(x) - 1)
        right = np.minimum(left + 1, len(x) - 1)
        span = x[right] - x[left]
        weight = np.where(span > 0, (at - x[left]) / np.where(span > 0, span, 1.0), 0.0)
        stack[np.ix_(np.asarray(rows, dtype=np.intp), inside)] = ys[:, left] + weight * (
            ys[:, right] - ys[:, left]
        )
    return stack


def nan_percentiles(stack: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """np.nanpercentile(stack, q, axis=0) (its default, linear method) for a 2-D stack of
    finite values and NaN gaps, in one sort: numpy's own calls Python once per column, about
    13 ms for a band of 200 steps, which a live page drawing a band per configuration (one
    per seeded configuration, every few seconds) cannot afford. All-NaN columns give NaN.

    Returns:
        An array of shape (len(q), number of columns).
    """
    ordered = np.sort(stack, axis=0)  # NaN sorts last: each column's n finite values first
    n = np.sum(~np.isnan(stack), axis=0)
    columns = np.arange(stack.shape[1])
    out = np.full((len(q), stack.shape[1]), np.nan)
    for i, p in enumerate(q):
        at = np.maximum(n - 1, 0) * (p / 100.0)
        below = np.floor(at).astype(np.intp)
        above = np.minimum(below + 1, np.maximum(n - 1, 0))
        low, high = ordered[below, columns], ordered[above, columns]
        out[i] = np.where(n > 0, low + (high - low) * (at - below), np.nan)
    return out
