"""The dashboard's data modules, called directly: incremental reads, curves, tables,
pairing, bootstrap intervals and steps to target. `make_sweep` is shared by the other
dashboard tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard import compare
from dashboard.data import (
    Filter,
    SweepPoints,
    downsample,
    ema,
    filter_trials,
    hyperparameters,
    metric_mode,
    status_label,
    sweep_table,
    trial_table,
)
from runner.store import PointColumns, Store

SPEC: dict[str, Any] = {
    "name": "bn_demo",
    "metric": "val_acc",
    "mode": "max",
    "fixed": {"dataset": "synthetic", "hidden": 16},
    "grid": {"lr": [0.1, 0.01, 0.001], "batch_norm": [True, False], "seed": [0, 1]},
}
# Statuses a test sweep's trials end in, by position (the rest complete).
ENDINGS = {3: "diverged", 5: "error", 7: "pruned", 9: "stopped_by_user"}


def configs(spec: dict[str, Any] = SPEC) -> list[dict[str, Any]]:
    grid = spec["grid"]
    out: list[dict[str, Any]] = [{}]
    for key, values in grid.items():
        out = [{**c, key: v} for c in out for v in values]
    return [{**spec["fixed"], **c} for c in out]


def loss_curve(config: dict[str, Any], steps: np.ndarray) -> np.ndarray:
    """A made-up training loss: BN converges faster, a large lr without BN is noisier."""
    rate = (3.0 if config["batch_norm"] else 1.0) * (1 + math.log10(config["lr"] * 1000)) / 200
    rng = np.random.default_rng(config["seed"] * 7 + int(config["batch_norm"]))
    return 2.3 * np.exp(-rate * steps) + 0.05 + 0.02 * rng.standard_normal(len(steps)) ** 2


def make_sweep(
    store: Store,
    *,
    sweep_id: str = "bn_demo-1",
    steps: int = 300,
    running: Sequence[int] = (),
    endings: dict[int, str] | None = None,
    eval_every: int = 50,
    spec: dict[str, Any] = SPEC,
) -> list[int]:
    """A sweep filled through the store API as the runner would: returns the trial ids.

    Trials at the positions in `running` stay running, half-way through; `endings` gives
    the final status by position (default ENDINGS); the rest complete.
    """
    endings = ENDINGS if endings is None else endings
    cfgs = configs(spec)
    store.create_sweep(
        sweep_id,
        name=spec["name"],
        spec=spec,
        metric=spec["metric"],
        mode=spec["mode"],
        n_trials=len(cfgs),
    )
    ids = []
    for i, config in enumerate(cfgs):
        trial = store.add_trial(sweep_id, f"t{i:05d}", config)
        ids.append(trial)
        store.set_trial_status(trial, "running", device="cpu", node="testhost")
        n = steps // 2 if i in running else steps
        s = np.arange(1, n + 1)
        loss = loss_curve(config, s)
        if endings.get(i) == "diverged":
            loss[n // 2 :] = np.inf  # (NaN would violate points.value NOT NULL)
            n = n // 2 + 1
            s, loss = s[:n], loss[:n]
        t0 = 1_000_000.0 + i
        pts = [
            ("train_loss", int(k), float(v), float(t0 + 0.01 * k))
            for k, v in zip(s, loss, strict=True)
        ]
        for k in range(eval_every, n + 1, eval_every):
            acc = 1.0 - float(loss[k - 1]) / 2.5
            pts += [
                ("val_loss", k, float(loss[k - 1]) + 0.1, t0 + 0.01 * k),
                ("val_acc", k, acc, t0 + 0.01 * k),
            ]
        store.add_points(trial, pts)
        if i in running:
            store.update_trial(trial, last_step=n)
            continue
        status = endings.get(i, "completed")
        error = "RuntimeError: CUDA out of memory" if status == "error" else None
        store.set_trial_status(trial, status, detail=error, error=error, last_step=n)
    return ids


# -- incremental reads -----------------------------------------------------------------------
def test_refresh_fetches_only_new_points(sqlite_store: Store) -> None:
    ids = make_sweep(sqlite_store, steps=100, running=[0])
    points = SweepPoints("bn_demo-1")
    first = points.refresh(sqlite_store)
    assert first == points.n_points > 0
    assert points.refresh(sqlite_store) == 0  # nothing new: nothing fetched
    before = points.series(ids[0], "train_loss")
    assert before is not None and before.step[-1] == 50
    sqlite_store.add_points(ids[0], [("train_loss", 51, 0.5, 2e6), ("train_loss", 52, 0.4, 2e6)])
    assert points.refresh(sqlite_store) == 2
    after = points.series(ids[0], "train_loss")
    assert after is not None and list(after.step[-3:]) == [50, 51, 52]
    assert after.last == pytest.approx(0.4)
    assert points.n_points == first + 2
    assert points.last_step(ids[0]) == 52


def test_refresh_reads_with_after_id(sqlite_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    make_sweep(sqlite_store, steps=20)
    points = SweepPoints("bn_demo-1")
    seen: list[int] = []
    real = sqlite_store.point_columns

    def spy(sweep_id: str, **kw: Any) -> PointColumns:
        seen.append(kw["after_id"])
        return real(sweep_id, **kw)

    monkeypatch.setattr(sqlite_store, "point_columns", spy)
    points.refresh(sqlite_store)
    points.refresh(sqlite_store)
    assert seen[0] == 0 and seen[1] == points.last_id > 0


def test_refresh_holds_each_point_once_across_retries(sqlite_store: Store) -> None:
    """A retried trial re-offers steps, and a write may fill a gap: every step is held once,
    ascending, with the value first stored, exactly as a fresh full read sees the sweep."""
    ids = make_sweep(sqlite_store, steps=100, running=[0])
    points = SweepPoints("bn_demo-1")
    points.refresh(sqlite_store)
    held = points.n_points
    trial = ids[0]
    sqlite_store.add_points(trial, [("train_loss", s, 9.0, 2e6) for s in range(40, 61)])
    sqlite_store.add_points(trial, [("val_acc", 25, 0.3, 2e6), ("val_acc", 75, 0.7, 2e6)])
    sqlite_store.add_points(trial, [("val_acc", 40, 0.5, 2e6)])  # inside 25..75, by itself
    points.refresh(sqlite_store)
    assert points.n_points == held + 10 + 3
    fresh = SweepPoints("bn_demo-1")
    fresh.refresh(sqlite_store)
    assert fresh.n_points == points.n_points and fresh.metrics() == points.metrics()
    for key, series in points._series.items():
        again = fresh.series(*key)
        assert again is not None and np.array_equal(series.step, again.step)
        assert np.array_equal(series.value, again.value, equal_nan=True)
        assert (series.last, series.high, series.low) == (again.last, again.high, again.low)
    acc = points.series(trial, "val_acc")
    assert acc is not None and list(acc.step) == [25, 40, 50, 75] and acc.last == 0.7
    loss = points.series(trial, "train_loss")
    assert loss is not None and loss.value[49] != 9.0 and loss.value[55] == 9.0


def test_points_are_held_as_compact_columns(sqlite_store: Store) -> None:
    ids = make_sweep(sqlite_store, steps=100)
    points = SweepPoints("bn_demo-1")
    points.refresh(sqlite_store)
    series = points.series(ids[0], "train_loss")
    assert series is not None
    assert (series.step.dtype, series.value.dtype, series.elapsed.dtype) == (
        np.int32,
        np.float64,
        np.float32,
    )
    stored = sqlite_store.points("bn_demo-1", trial_ids=[ids[0]], metrics=["train_loss"])
    assert np.allclose(series.wall, stored["wall_time"], rtol=0, atol=0.001)


def test_out_of_order_points_are_sorted_by_step() -> None:
    points = SweepPoints("s")
    rows = [
        (1, 1, "train_loss", 5, 0.5, 10.0),
        (2, 1, "train_loss", 6, 0.4, 11.0),
        (3, 1, "train_loss", 2, 0.9, 12.0),
    ]
    points.add(
        pd.DataFrame(rows, columns=["id", "trial_id", "metric", "step", "value", "wall_time"])
    )
    series = points.series(1, "train_loss")
    assert series is not None and list(series.step) == [2, 5, 6]
    assert list(series.value) == [0.9, 0.5, 0.4]
    assert series.high == 0.9 and series.low == 0.4


def test_curve_drops_non_finite_and_caches(sqlite_store: Store) -> None:
    ids = make_sweep(sqlite_store, steps=100)
    points = SweepPoints("bn_demo-1")
    points.refresh(sqlite_store)
    x, y = points.curve(ids[3], "train_loss")  # the diverged trial
    assert np.isfinite(y).all() and len(x) == 50
    assert points.curve(ids[3], "train_loss")[0] is x  # unchanged series: cached
    xt, _ = points.curve(ids[0], "train_loss", x="time")
    assert xt[0] == 0.0 and np.all(np.diff(xt) > 0)


# -- downsampling and smoothing -----------------------------------------------------------
def test_downsample_bounds_points_and_keeps_extremes() -> None:
    x = np.arange(100_000, dtype=np.float64)
    y = np.sin(x / 5000)
    y[31_337] = 50.0  # a spike must survive
    dx, dy = downsample(x, y, 500)
    assert len(dx) == 500 and np.all(np.diff(dx) > 0)
    assert dy.max() == 50.0
    assert dx[0] == 0 and dx[-1] == 99_999  # the ends stay
    sx, sy = downsample(x[:10], y[:10], 500)
    assert len(sx) == 10  # short curves pass through


def test_downsample_rejects_too_few_points() -> None:
    with pytest.raises(ValueError, match="max_points=2"):
        downsample(np.arange(10.0), np.arange(10.0), 2)


def test_ema_matches_definition() -> None:
    v = np.array([1.0, 0.0, 0.0, 4.0])
    out = ema(v, 0.5)
    assert list(out) == [1.0, 0.5, 0.25, 2.125]
    assert ema(v, 0.0) is v
    with pytest.raises(ValueError, match="smoothing weight 1.0"):
        ema(v, 1.0)


# -- tables ------------------------------------------------------------------------------------
def test_hyperparameters_are_the_varied_keys() -> None:
    trials = [{"config": c} for c in configs()]
    assert hyperparameters(trials, SPEC) == ["lr", "batch_norm", "seed"]
    assert hyperparameters(trials) == ["batch_norm", "lr", "seed"]


def test_trial_table_and_filters(sqlite_store: Store) -> None:
    ids = make_sweep(sqlite_store, steps=100, running=[0])
    points = SweepPoints("bn_demo-1")
    points.refresh(sqlite_store)
    sweep = sqlite_store.sweep("bn_demo-1")
    assert sweep is not None
    table = trial_table(
        sqlite_store.trials("bn_demo-1"), points, sweep=sweep, params=["lr", "batch_norm", "seed"]
    )
    assert list(table["trial"]) == ids
    assert table.loc[0, "status"] == "running" and table.loc[0, "steps"] == 50
    assert table.loc[9, "status"] == "stopped by user"
    assert {"train_loss", "val_loss", "val_acc", "best val_acc"} <= set(table.columns)
    row = table.loc[1]
    best = points.series(ids[1], "val_acc")
    assert best is not None and row["best val_acc"] == best.value.max()
    assert row["val_acc"] == best.value[-1]
    bn = filter_trials(table, [Filter("batch_norm", (True,))])
    assert len(bn) == 6 and bn["batch_norm"].all()
    narrow = filter_trials(
        table, [Filter("lr", low=0.005, high=0.05), Filter("status", (status_label("completed"),))]
    )
    assert set(narrow["lr"]) == {0.01} and list(narrow["trial"]) == [ids[4], ids[6]]
    with pytest.raises(ValueError, match="'momentum'"):
        filter_trials(table, [Filter("momentum", (0.9,))])


def test_sweep_table_progress(sqlite_store: Store) -> None:
    make_sweep(sqlite_store, steps=20, running=[0, 1], eval_every=10)
    table = sweep_table(sqlite_store.sweeps())
    assert table.loc[0, "progress"] == "10 done · 2 running · 1 failed of 12"
    assert table.loc[0, "status"] == "running"
    best = max(
        float(p["value"])
        for p in sqlite_store.points("bn_demo-1", metrics=["val_acc"]).to_dict("records")
    )
    assert table.loc[0, "best"] == best
    assert table.loc[0, "metric"] == "val_acc (max)"


def test_metric_mode() -> None:
    assert metric_mode("val_acc", {"metric": "val_acc", "mode": "max"}) == "max"
    assert metric_mode("val_loss") == "min" and metric_mode("val_acc") == "max"


# -- comparison ---------------------------------------------------------------------------------
def _trials(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": i + 1, "config": c, "status": "completed"} for i, c in enumerate(rows)]


def test_pairing_matches_every_other_hyperparameter() -> None:
    trials = _trials(configs())
    pairing = compare.pair_trials(trials, "batch_norm", (False, True), ["lr", "batch_norm", "seed"])
    assert len(pairing.pairs) == 6 and not pairing.unpaired
    for row in pairing.pairs.itertuples():
        a, b = trials[row.a - 1]["config"], trials[row.b - 1]["config"]
        assert a["batch_norm"] is False and b["batch_norm"] is True
        assert (a["lr"], a["seed"]) == (b["lr"], b["seed"])
    assert pairing.pairs.loc[0, "pair"] == "lr=0.1, seed=0"


def test_pairing_reports_unpaired_and_other_factors() -> None:
    rows = [
        {"opt": "adam", "lr": 0.1},
        {"opt": "sgd", "lr": 0.1},
        {"opt": "sgd", "lr": 0.01},
        {"opt": "rmsprop", "lr": 0.1},
    ]
    pairing = compare.pair_trials(_trials(rows), "opt", ("adam", "sgd"), ["opt", "lr"])
    assert list(pairing.pairs[["a", "b"]].itertuples(index=False, name=None)) == [(1, 2)]
    assert pairing.unpaired == (3,)
    assert compare.levels(_trials(rows), "opt") == ["adam", "rmsprop", "sgd"]
    with pytest.raises(ValueError, match="'momentum' is not a hyperparameter"):
        compare.pair_trials(_trials(rows), "momentum", (0, 1), ["opt", "lr"])
    with pytest.raises(ValueError, match="both sides"):
        compare.pair_trials(_trials(rows), "opt", ("sgd", "sgd"), ["opt", "lr"])


def test_bootstrap_interval_covers_the_mean() -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(0.3, 0.1, size=40)
    iv = compare.bootstrap_mean(data)
    assert iv.low < data.mean() < iv.high and iv.n == 40
    assert iv.high - iv.low < 0.15
    assert 0.25 < iv.low < 0.3 < iv.high < 0.36
    assert compare.bootstrap_mean(data, seed=0) == compare.bootstrap_mean(data, seed=0)


def test_bootstrap_edge_cases() -> None:
    one = compare.bootstrap_mean([0.5, math.nan])
    assert one.estimate == 0.5 and one.n == 1 and math.isnan(one.low)
    same = compare.bootstrap_mean([0.2, 0.2, 0.2])
    assert (same.low, same.high) == (0.2, 0.2)
    assert compare.bootstrap_mean([]).n == 0
    with pytest.raises(ValueError, match="confidence 1.5"):
        compare.bootstrap_mean([1.0, 2.0], confidence=1.5)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-10, 10), min_size=3, max_size=30))
def test_bootstrap_interval_is_ordered(values: list[float]) -> None:
    iv = compare.bootstrap_mean(values, n_resamples=999)
    assert iv.low <= iv.estimate + 1e-9 and iv.estimate <= iv.high + 1e-9
    assert min(values) - 1e-9 <= iv.low and iv.high <= max(values) + 1e-9


def test_steps_to_target_and_speedup(sqlite_store: Store) -> None:
    ids = make_sweep(sqlite_store, steps=300, endings={})
    points = SweepPoints("bn_demo-1")
    points.refresh(sqlite_store)
    trials = sqlite_store.trials("bn_demo-1")
    steps = compare.steps_to_target(points, ids, "val_acc", 0.5, "max")
    for trial in ids:
        series = points.series(trial, "val_acc")
        assert series is not None
        hits = series.step[series.value >= 0.5]
        assert (steps[trial] == hits[0]) if len(hits) else math.isnan(steps[trial])
    never = compare.steps_to_target(points, ids, "val_acc", 2.0, "max")
    assert never.isna().all()
    down = compare.steps_to_target(points, ids[:1], "train_loss", 1.0, "min")
    loss = points.series(ids[0], "train_loss")
    assert loss is not None and down[ids[0]] == loss.step[np.argmax(loss.value <= 1.0)]
    pairing = compare.pair_trials(trials, "batch_norm", (False, True), ["lr", "batch_norm", "seed"])
    speed = compare.speedups(pairing, steps)
    both = speed[speed["outcome"] == "both reached"]
    assert (both["speed-up of B"] == both["steps A"] / both["steps B"]).all()
    assert (both["speed-up of B"] >= 1).all()  # BN learns faster in make_sweep's curves
    gm = compare.geometric_mean_speedup(speed["speed-up of B"])
    assert gm.n == len(both) and gm.estimate >= 1


def test_default_target_and_final_values(sqlite_store: Store) -> None:
    assert compare.default_target([0.5, 0.9, math.nan], "max") == pytest.approx(0.81)
    assert compare.default_target([0.2, 0.5], "min") == pytest.approx(0.2 / 0.9)
    assert math.isnan(compare.default_target([], "max"))
    ids = make_sweep(sqlite_store, steps=100)
    points = SweepPoints("bn_demo-1")
    points.refresh(sqlite_store)
    finals = compare.final_values(points, ids, "train_loss")
    diverged = points.series(ids[3], "train_loss")
    assert (
        diverged is not None and finals[ids[3]] == diverged.value[np.isfinite(diverged.value)][-1]
    )


def test_hyperparameter_values_sort_whatever_their_types() -> None:
    from dashboard.data import ordered

    mixed = [2, 0.5, None, 10.0, "relu", [1, "a"], [2, 3], {"x": 1}, True, False]
    assert ordered(mixed) == [False, True, 0.5, 2, 10.0, "relu", {"x": 1}, [1, "a"], [2, 3], None]
