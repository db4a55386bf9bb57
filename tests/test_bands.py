"""Group bands: each kind's centre and bounds, ranges, and the bimodal no-BN case."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dashboard.bands import BANDS, DEFAULT_BAND, band_label, group_band


def _flat(values: list[float], steps: int = 10) -> list[tuple[np.ndarray, np.ndarray]]:
    x = np.arange(steps, dtype=np.float64)
    return [(x, np.full(steps, v)) for v in values]


def test_kinds_and_default() -> None:
    assert set(BANDS) == {"iqr", "ci95", "sd", "minmax"}
    assert DEFAULT_BAND == "iqr"
    assert band_label("iqr") == "median, interquartile range"
    assert band_label("sd") == "mean ± sd"
    with pytest.raises(ValueError, match="band kind"):
        group_band(_flat([1.0]), kind="stderr")


def test_each_kind_on_known_values() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    curves = _flat(values)
    iqr = group_band(curves, "iqr", n_grid=5)
    assert list(iqr.columns) == ["step", "centre", "lower", "upper", "n"]
    assert iqr["centre"].tolist() == [3.0] * 5
    assert iqr["lower"].tolist() == [2.0] * 5 and iqr["upper"].tolist() == [4.0] * 5
    assert iqr["n"].tolist() == [5] * 5
    minmax = group_band(curves, "minmax", n_grid=3).iloc[0]
    assert (minmax.centre, minmax.lower, minmax.upper) == (3.0, 1.0, 10.0)
    mean, sd = np.mean(values), np.std(values, ddof=1)
    row = group_band(curves, "sd", n_grid=3).iloc[0]
    assert row.centre == pytest.approx(mean)
    assert (row.lower, row.upper) == (pytest.approx(mean - sd), pytest.approx(mean + sd))
    ci = group_band(curves, "ci95", n_grid=3).iloc[0]
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=sd / np.sqrt(5))
    assert (ci.lower, ci.upper) == (pytest.approx(low), pytest.approx(high))


def test_bimodal_no_bn_group_band_stays_within_what_trials_had() -> None:
    """Without BN, half the trials learn (accuracy near 0.98) and half stay at chance (0.1):
    mean ± sd passes 1.0 and goes below any trial; the default band does not."""
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1000, 101)
    learnt = [(x, 0.98 - 0.88 * np.exp(-x / 100) + rng.normal(0, 0.005, x.size)) for _ in range(6)]
    stuck = [(x, 0.1 + rng.normal(0, 0.005, x.size)) for _ in range(6)]
    curves = [np.clip(c, 0.0, 1.0) for c in (y for _, y in learnt + stuck)]
    pairs = [(x, y) for y in curves]
    everything = np.concatenate(curves)
    sd = group_band(pairs, "sd")
    assert sd["upper"].max() > 1.0 and sd["lower"].min() < everything.min()
    for kind in ("iqr", "minmax"):
        band = group_band(pairs, kind)
        assert band["upper"].max() <= everything.max()
        assert band["lower"].min() >= everything.min()
        assert (band["lower"] <= band["centre"]).all() and (band["centre"] <= band["upper"]).all()
    default = group_band(pairs)
    assert default["upper"].max() <= 1.0


def test_curves_count_only_within_their_range_and_where_finite() -> None:
    a = (np.array([0.0, 10.0]), np.array([1.0, 1.0]))
    b = (np.array([0.0, 5.0]), np.array([3.0, 3.0]))
    diverged = (np.array([0.0, 2.0, 4.0]), np.array([2.0, np.inf, np.nan]))
    band = group_band([a, b, diverged], "sd", n_grid=11)
    assert band.loc[0, "n"] == 3 and band.loc[0, "centre"] == 2.0
    assert band.loc[0, "upper"] == pytest.approx(3.0)
    assert band.loc[1, "n"] == 2 and band.loc[6, "n"] == 1  # diverged ends at 0, b at 5
    assert band.loc[10, "n"] == 1 and band.loc[10, "centre"] == 1.0
    assert np.isnan(band.loc[10, "upper"])  # one trial: no sd
    one = group_band([a, b], "iqr", n_grid=11)
    assert one.loc[10, "lower"] == one.loc[10, "upper"] == 1.0


def test_empty_and_single_step_inputs() -> None:
    empty = group_band([])
    assert empty.empty and list(empty.columns) == ["step", "centre", "lower", "upper", "n"]
    assert group_band([(np.array([]), np.array([]))]).empty
    single = group_band([(np.array([3.0]), np.array([0.5])), (np.array([3.0]), np.array([0.7]))])
    assert single["step"].tolist() == [3.0] and single["centre"].tolist() == [pytest.approx(0.6)]
