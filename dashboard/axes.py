"""Axis rules every page shares: when an axis is logarithmic, and a y-range that no single
spike can flatten.

One rule for log axes across the dashboard: `log_scale`. A loss that falls from 2.3 to
0.01 reads on a log axis; an accuracy between 0.1 and 0.99 reads on a linear one; a
learning rate grid of 0.1, 0.01, 0.001 is spaced by decades.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy.ndimage import median_filter

__all__ = ["LOG_DECADES", "finite", "log_scale", "robust_range"]

# Values spread over this many decades (or more) go on a log axis.
LOG_DECADES = 2.0
# `log_scale` judges the spread between these quantiles.
TAIL = 0.01
# An end value is a spike when its jump from its neighbour is this many times the jump
# between that neighbour and the next.
SPIKE_JUMP = 10.0
PAD = 0.04


def finite(values: Iterable[float] | np.ndarray) -> np.ndarray:
    """The finite values as a float64 array (NaN and inf dropped)."""
    v = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64)
    return v[np.isfinite(v)]


def log_scale(values: Iterable[float] | np.ndarray, *, decades: float = LOG_DECADES) -> bool:
    """Whether values belong on a log axis: all positive, and their robust spread (the 1st to
    the 99th percentile, taken at observed values) covers `decades` or more.

    The percentiles keep one stray value from deciding: a loss curve that spikes once to
    100 does not turn a panel logarithmic, a loss falling over three decades does.
    """
    v = finite(values)
    if len(v) < 2 or bool((v <= 0).any()):
        return False
    low, high = np.quantile(v, [TAIL, 1 - TAIL], method="nearest")
    return bool(high / low >= 10**decades * (1 - 1e-9))


def despiked(v: np.ndarray) -> np.ndarray:
    """A curve without its isolated spikes: each value replaced by the median of the five
    around it (a run of one or two values unlike those on either side goes), and an end
    value that jumps far more than the step before it replaced by its neighbour. Trends,
    plateaus and a steep start stay as they are."""
    if len(v) < 5:
        return v
    out = median_filter(v, size=5, mode="nearest")
    for end, a, b in ((0, 1, 2), (-1, -2, -3)):
        if abs(v[end] - v[a]) > SPIKE_JUMP * abs(v[a] - v[b]) + 1e-12:
            out[end] = out[a]
    return out


def _robust_bounds(kept: Sequence[np.ndarray]) -> tuple[float, float]:
    """The lowest and highest value of the curves without their isolated spikes: `despiked`
    for all curves at once (one table, a row per curve, NaN past each curve's end)."""
    n = np.array([len(v) for v in kept])
    k, width = len(kept), int(n.max())
    table = np.full((k, width + 4), np.nan)
    for i, v in enumerate(kept):
        table[i, 2 : 2 + len(v)] = v
    rows = np.arange(k)
    first, last = table[:, 2].copy(), table[rows, n + 1].copy()
    table[:, :2] = first[:, None]  # the ends repeated, as median_filter's mode="nearest"
    table[rows, n + 2], table[rows, n + 3] = last, last
    clean = np.median(np.lib.stride_tricks.sliding_window_view(table, 5, axis=1), axis=2)
    raw = table[:, 2:-2]
    for end, a, b in ((np.zeros(k, np.int64), 1, 2), (n - 1, -1, -2)):
        at_a, at_b = end + a, end + b  # the end's neighbour and the next one inwards
        ok = (at_b >= 0) & (at_b < n)
        va = raw[rows, np.clip(at_a, 0, width - 1)]
        vb = raw[rows, np.clip(at_b, 0, width - 1)]
        spike = ok & (np.abs(raw[rows, end] - va) > SPIKE_JUMP * np.abs(va - vb) + 1e-12)
        clean[rows[spike], end[spike]] = clean[rows[spike], np.clip(at_a, 0, width - 1)[spike]]
    short = n < 5
    clean[short] = raw[short]
    valid = np.arange(width)[None, :] < n[:, None]
    return float(np.min(clean, where=valid, initial=np.inf)), float(
        np.max(clean, where=valid, initial=-np.inf)
    )


def _axis_values(curves: Sequence[np.ndarray] | np.ndarray, log: bool) -> list[np.ndarray]:
    """Each curve's finite values in axis units (log10 of the positive ones on a log axis)."""
    arrays = [curves] if isinstance(curves, np.ndarray) else list(curves)
    kept = []
    for c in arrays:
        v = finite(c)
        if log:
            v = np.log10(v[v > 0])
        if len(v):
            kept.append(v)
    return kept


def robust_range(
    curves: Sequence[np.ndarray] | np.ndarray,
    *,
    log: bool = False,
    raw: Sequence[np.ndarray] | None = None,
) -> tuple[float, float] | None:
    """A y-range for a panel of curves, in axis units (log10 of the values on a log axis,
    as plotly takes it), that no single spike can flatten.

    The range spans every curve but its isolated spikes (`despiked`): a spike to 500 over
    losses between 0.1 and 2 stays outside (draw it at the edge), a steep start, a plateau
    or a whole curve far from the others does not. None when there is nothing to show.

    With `raw`, the unsmoothed values of the same curves, the bounds are also kept within
    theirs: smoothing spreads a spike over the steps after it, where it is no longer
    isolated; in the raw curve it still is.
    """
    kept = _axis_values(curves, log)
    if not kept:
        return None
    low, high = _robust_bounds(kept)
    if raw is not None and (unsmoothed := _axis_values(raw, log)):
        r_low, r_high = _robust_bounds(unsmoothed)
        if max(low, r_low) < min(high, r_high):
            low, high = max(low, r_low), min(high, r_high)
    if high - low <= 0:  # a flat curve: a small window around it
        half = 0.5 if log else max(abs(high) * 0.1, 1e-9)
        return low - half, high + half
    pad = PAD * (high - low)
    return low - pad, high + pad
