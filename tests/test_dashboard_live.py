"""The live page's data path and axis rules, called directly: log axes, y-ranges no spike
can flatten, the panel grid, notices, and the URL-state helpers."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard import axes, charts, live, urlstate
from dashboard.data import SweepPoints, ema
from runner.store import Store
from tests.test_dashboard_data import make_sweep


# -- axes --------------------------------------------------------------------------------
def test_log_scale_for_values_spanning_decades() -> None:
    assert axes.log_scale([0.1, 0.01, 0.001])  # a learning-rate grid
    assert axes.log_scale(2.3 * np.exp(-np.arange(1000) / 100))  # a loss over 4 decades
    assert not axes.log_scale(np.linspace(0.1, 0.99, 50))  # an accuracy
    assert not axes.log_scale([0.5, -0.1, 3.0])  # not all positive
    assert not axes.log_scale([np.nan, np.inf, 1.0])  # one finite value
    flat = np.full(500, 0.5)
    flat[10] = 200.0  # one spike does not make a panel logarithmic
    assert not axes.log_scale(flat)


def test_robust_range_leaves_a_spike_out_and_keeps_a_steep_start() -> None:
    steps = np.arange(1, 500)
    loss = 2.0 / np.sqrt(steps)
    loss[24] = 500.0
    low, high = axes.robust_range([loss, loss * 1.1]) or (0, 0)
    assert 2.0 * 1.1 <= high < 3.0  # the first (largest) value in view, the spike not
    assert low <= loss[-1]
    end = np.r_[np.linspace(0.2, 0.9, 40), -500.0]  # the newest value is the spike
    low, high = axes.robust_range([end]) or (0, 0)
    assert -0.1 < low < 0.2 and 0.85 <= high < 1.0  # (the spike's neighbour may erode)
    assert axes.robust_range([np.array([np.nan, np.inf])]) is None
    low, high = axes.robust_range([np.full(10, 3.0)]) or (0, 0)
    assert low < 3.0 < high  # a flat curve gets a window around it


def test_robust_range_of_smoothed_curves_uses_the_raw_spike() -> None:
    raw = np.full(300, 1.0) + 0.01 * np.sin(np.arange(300))
    raw[100] = 500.0
    smooth = ema(raw, 0.95)
    assert smooth.max() > 20  # smoothing spreads the spike over the steps after it
    _, high = axes.robust_range([smooth], raw=[raw]) or (0, 0)
    assert high < 1.2
    _, alone = axes.robust_range([smooth]) or (0, 0)
    assert alone > 20


def test_robust_range_on_a_log_axis_is_in_log_units() -> None:
    low, high = axes.robust_range([np.logspace(0, -4, 50)], log=True) or (0, 0)
    assert -4.5 < low < -3.9 and 0.0 < high < 0.5


def test_despiked_keeps_trends_and_drops_isolated_values() -> None:
    v = np.array([5.0, 4.0, 3.0, 100.0, 2.0, 1.5, 1.0])
    assert axes.despiked(v).max() == 5.0
    assert list(axes.despiked(np.array([1.0, 2.0]))) == [1.0, 2.0]


# -- the panel grid ----------------------------------------------------------------------
def _frame(store: Store, running: tuple[int, ...] = (0,)) -> tuple[live.LiveFrame, SweepPoints]:
    make_sweep(store, steps=200, running=running)
    sweep = store.sweep("bn_demo-1")
    assert sweep is not None
    points = SweepPoints("bn_demo-1")
    return live.refresh(store, points, sweep), points


def test_panels_one_per_metric_with_the_best_trial(sqlite_store: Store) -> None:
    frame, points = _frame(sqlite_store)
    best = live.best_trial(frame)
    table = frame.table.set_index("trial")["best val_acc"]
    assert best == int(table.idxmax())
    grid = live.panels(points, frame.trials, live.LiveOptions(), params=frame.params, best=best)
    assert [p.metric for p in grid] == ["train_loss", "val_loss", "val_acc"]
    train, _, acc = grid
    assert train.smoothed and not acc.smoothed  # per step vs every 50 steps
    assert 0 < train.n_points <= charts.DEFAULT_POINT_BUDGET * 2
    names = [t.name for t in train.figure.data]
    number = {t["id"]: t["number"] for t in frame.trials}
    assert f"best so far: trial {number[best]}" in names
    go.Figure(train.figure.to_dict())  # a valid figure (it is built unvalidated)


def test_panels_with_bands_and_a_user_metric(sqlite_store: Store) -> None:
    frame, points = _frame(sqlite_store)
    trial = frame.trials[0]["id"]
    sqlite_store.add_points(trial, [("grad_norm", k, 1.0 / k, 2e6) for k in range(1, 20)])
    sqlite_store.add_points(trial, [("sys/cpu_percent", k, 50.0, 2e6) for k in range(1, 5)])
    frame = live.refresh(sqlite_store, points, frame.sweep)
    options = live.LiveOptions(group_by="batch_norm", band="sd")
    grid = live.panels(points, frame.trials, options, params=frame.params)
    assert [p.metric for p in grid] == ["train_loss", "val_loss", "val_acc", "grad_norm"]
    fills = [t for t in grid[2].figure.data if t.fill == "toself"]
    assert len(fills) == 2
    system = live.LiveOptions(system=True)
    assert live.panel_metrics(points, system=system.system)[-1] == "sys/cpu_percent"


def test_news_announces_each_bad_ending_once() -> None:
    trials = [
        {"id": 1, "status": "diverged", "config": {"lr": 0.1}, "last_step": 1234},
        {"id": 2, "status": "completed", "config": {"lr": 0.01}},
        {"id": 3, "status": "error", "config": {"lr": 0.001}, "error": "Traceback\nOOM: out"},
        {"id": 4, "status": "pruned", "config": {"lr": 0.5}, "last_epoch": 3},
    ]
    seen: set[int] = set()
    fresh = live.news(trials, seen)
    assert [t["id"] for t in fresh] == [1, 3, 4]
    assert live.news(trials, seen) == []
    texts = [live.announcement(t, ["lr"]) for t in fresh]
    assert texts[0] == "Trial 1 diverged at step 1,234 (lr=0.1)."
    assert texts[1] == "Trial 3 failed (lr=0.001): OOM: out."
    assert texts[2] == "Trial 4 was pruned at epoch 3 (lr=0.5)."


# -- URL state ---------------------------------------------------------------------------
def test_stale_values_compare_as_the_widget_shows_them() -> None:
    assert urlstate.stale_values(["val_acc", "nope"], ["train_loss", "val_acc"]) == ["nope"]
    assert urlstate.stale_values(["BN on"], [True], lambda v: "BN on" if v else "BN off") == []
    assert urlstate.stale_values(["3", "9"], [1, 2, 3]) == ["9"]


def test_view_state_keys_begin_with_q() -> None:
    with pytest.raises(ValueError, match="begin with 'q_'"):
        urlstate.bound("metric")
