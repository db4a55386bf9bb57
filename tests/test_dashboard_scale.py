"""The dashboard at 10,000 trials (issue 18): the faster data paths give what the plain
ones gave, a live panel of many trials draws bands and the best curves instead of every
curve, a large sweep's importance runs in the background, and every page names trials by
their number within the sweep, never the store's id."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dashboard import bands, charts, compare, control, live, stopping
from dashboard.data import SweepPoints, hyperparameters, shown_table, trial_table
from runner.store import Store, open_store
from tests.helpers.apptest import chart, open_page, texts
from tests.test_dashboard_data import make_sweep


# -- the faster paths give the plain ones' answers ------------------------------------------------
def test_bands_on_a_grid_match_numpy_interp_curve_by_curve() -> None:
    """Curves sharing their x (interpolated together) and curves of their own, ragged
    ranges, a one-point curve and a repeated x: the same values as np.interp row by row,
    NaN outside each curve's range."""
    rng = np.random.default_rng(3)
    shared = [np.arange(1.0, 31.0) * 3, np.array([5.0]), np.array([2.0, 2.0, 9.0])]
    curves = []
    for i in range(300):
        if i % 3 == 0:
            x = np.sort(rng.choice(np.arange(0, 100, 0.5), rng.integers(1, 40), replace=False))
        else:
            x = shared[i % len(shared)]
        curves.append((x + (i % 3 == 0) * rng.integers(-5, 30), rng.normal(size=len(x))))
    grid = np.linspace(-10.0, 140.0, 200)
    expected = np.full((len(curves), len(grid)), np.nan)
    for i, (x, y) in enumerate(curves):
        inside = (grid >= x[0]) & (grid <= x[-1])
        expected[i, inside] = np.interp(grid[inside], x, y)
    got = bands._on_grid(curves, grid)
    assert np.isnan(got).sum() == np.isnan(expected).sum() > 0
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_hyperparameters_tell_values_apart_as_json_did() -> None:
    """1, 1.0 and True are three values; equal lists are one; a key only some trials have
    varies (None against a value)."""
    configs: list[dict[str, Any]] = [
        {"a": 1, "b": [1, 2], "c": "x", "d": 0.1},
        {"a": 1.0, "b": [1, 2], "c": "x", "d": 0.1},
        {"a": True, "b": [1, 2], "c": "x", "d": 0.1, "e": None},
        {"a": 1, "b": [1, 2], "c": "x", "d": 0.1, "f": 3},
    ]
    trials = [{"id": i, "config": c} for i, c in enumerate(configs)]

    def by_json(trials: list[dict[str, Any]]) -> list[str]:  # the rule before issue 18
        keys = sorted({k for t in trials for k in t["config"]})
        return [
            k
            for k in keys
            if len({json.dumps(t["config"].get(k), sort_keys=True) for t in trials}) > 1
        ]

    assert hyperparameters(trials) == by_json(trials) == ["a", "f"]
    same = [{"id": i, "config": {"a": True, "b": [1]}} for i in range(3)]
    assert hyperparameters(same) == by_json(same) == []


def test_finals_and_lengths_read_what_the_series_hold() -> None:
    """The last finite value (a trial that ended on NaN or inf keeps its last finite one),
    NaN for a trial without the metric; lengths without copying a series."""
    points = SweepPoints("s")
    rows = []
    values = {1: [3.0, 2.0, 1.0], 2: [3.0, 2.0, math.nan], 3: [math.inf, math.inf], 4: [5.0]}
    for trial, ys in values.items():
        rows += [(trial, "loss", step, y) for step, y in enumerate(ys, start=1)]
    frame = pd.DataFrame(rows, columns=["trial_id", "metric", "step", "value"])
    frame.insert(0, "id", range(1, len(frame) + 1))
    frame["wall_time"] = 1e6 + frame["step"]
    points.add(frame)
    finals = compare.final_values(points, [1, 2, 3, 4, 5], "loss")
    assert finals.to_dict() == pytest.approx(
        {1: 1.0, 2: 2.0, 3: math.nan, 4: 5.0, 5: math.nan}, nan_ok=True
    )
    held = [points.series(t, "loss") for t in (1, 2, 3, 4)]
    assert points.lengths([1, 2, 3, 4, 5], "loss") == [len(s.step) for s in held if s]


# -- a live panel of many trials ------------------------------------------------------------------
def _many(n: int) -> tuple[SweepPoints, list[dict[str, Any]]]:
    """`n` completed trials of 20 steps each, trial k's loss scaled by a factor of its own
    (the best: the smallest factor), numbered within their sweep 1..n (ids from 1001)."""
    factor = {1001 + k: 1.0 + (k * 0.6180339887) % 1.0 for k in range(n)}
    steps = np.arange(1, 21)
    frame = pd.DataFrame(
        {
            "trial_id": np.repeat(list(factor), len(steps)),
            "metric": "loss",
            "step": np.tile(steps, n),
            "value": np.concatenate([f / steps for f in factor.values()]),
        }
    )
    frame.insert(0, "id", np.arange(1, len(frame) + 1))
    frame["wall_time"] = 1e6 + frame["step"]
    points = SweepPoints("many")
    points.add(frame)
    trials = [
        {"id": t, "number": t - 1000, "config": {"i": t - 1001}, "status": "completed"}
        for t in factor
    ]
    return points, trials


def _frame(points: SweepPoints, trials: list[dict[str, Any]]) -> live.LiveFrame:
    sweep = {"id": "many", "metric": "loss", "mode": "min", "spec": {"grid": {"i": []}}}
    table = trial_table(trials, points, sweep=sweep, params=["i"])
    return live.LiveFrame(sweep, trials, ["i"], table, 0)


def test_a_panel_of_many_trials_draws_bands_and_the_best_curves() -> None:
    points, trials = _many(live.MANY_TRIALS + 200)
    frame = _frame(points, trials)
    ranked = live.ranked_trials(frame)
    best = live.best_trial(frame)
    assert best == ranked[0]
    options = live.LiveOptions(smoothing=0.0)
    panel = live.panel(points, trials, "loss", options, params=["i"], best=best, ranked=ranked)
    assert panel is not None
    data = panel.figure.data
    filled = [t for t in data if t.fill == "toself"]
    assert len(filled) == 1  # one colour group: all trials, as one band
    centre = next(t for t in data if t.name and t.name.startswith("all trials ("))
    assert "interquartile range" in centre.name
    curves = [t for t in data if t.mode == "lines" and t.hoverinfo == "skip" and not t.fill]
    # the TOP_CURVES best, thin; the best of them once more on top, thick and black
    assert len(curves) == live.TOP_CURVES
    black = [t for t in data if t.name == f"best so far: trial {best - 1000}"]
    assert len(black) == 1 and black[0].line.color == charts.BEST_COLOUR
    targets = next(t for t in data if t.name == "click to highlight")
    drawn = {int(row[0]) for row in targets.customdata}
    assert drawn == set(ranked[: live.TOP_CURVES])  # clicks select the drawn trials' ids
    assert {int(row[1]) for row in targets.customdata} == {t - 1000 for t in drawn}
    assert panel.n_points < 5_000  # not 1,200 curves' worth


def test_a_panel_at_the_limit_still_draws_every_trial() -> None:
    points, trials = _many(live.MANY_TRIALS)
    frame = _frame(points, trials)
    options = live.LiveOptions(smoothing=0.0)
    panel = live.panel(points, trials, "loss", options, ranked=live.ranked_trials(frame))
    assert panel is not None
    assert not [t for t in panel.figure.data if t.fill == "toself"]
    joined = [t for t in panel.figure.data if t.mode == "lines" and t.name == "all trials"]
    # every trial's curve, joined into one trace with gaps between them
    assert sum(np.isnan(np.asarray(t.y, dtype=float)).sum() for t in joined) == len(trials)


# -- trials by their number within the sweep ------------------------------------------------------
@pytest.fixture
def two_sweeps(sqlite_store: Store) -> Store:
    """Two sweeps in one store: the second's trials have ids 11.. but numbers 1.."""
    make_sweep(sqlite_store, sweep_id="first", steps=60)
    make_sweep(sqlite_store, sweep_id="bn_demo-1", steps=60)
    return sqlite_store


def test_tables_hovers_and_messages_name_the_number(two_sweeps: Store) -> None:
    trials = two_sweeps.trials("bn_demo-1")
    assert [t["number"] for t in trials] == list(range(1, len(trials) + 1))
    assert trials[0]["id"] != 1
    sweep = two_sweeps.sweep("bn_demo-1")
    assert sweep is not None
    points = SweepPoints("bn_demo-1")
    points.refresh(two_sweeps)
    frame = live.refresh(two_sweeps, points, sweep)
    assert list(frame.table["trial"]) == [t["id"] for t in trials]  # internal: the ids
    shown = shown_table(frame.table)
    assert list(shown["trial"]) == list(range(1, len(trials) + 1))
    assert "number" not in shown and "round" not in shown  # one round: no round column
    best = live.best_trial(frame)
    assert best is not None
    options = live.LiveOptions(highlight=frozenset({trials[2]["id"]}))
    panel = live.panel(points, frame.trials, "val_acc", options, params=frame.params, best=best)
    assert panel is not None
    names = {t.name for t in panel.figure.data}
    number = {t["id"]: t["number"] for t in trials}
    assert {"trial 3", f"best so far: trial {number[best]}"} <= names
    targets = next(t for t in panel.figure.data if t.name == "click to highlight")
    assert "trial %{customdata[1]}" in targets.hovertemplate
    diverged = next(t for t in trials if t["status"] == "diverged")
    assert live.announcement(diverged, frame.params).startswith(
        f"Trial {diverged['number']} diverged"
    )
    assert stopping._describe(trials[4], ["lr"]).startswith("trial 5 (")
    permission = control.stop_permission("127.0.0.1", "")
    running = trials[0]["id"]
    two_sweeps.set_trial_status(running, "running")
    said = control.request_stop(two_sweeps, "bn_demo-1", running, permission=permission)
    assert "trial 1;" in said.message and f"trial {running}" not in said.message


def test_an_extended_sweep_shows_each_trials_round(sqlite_store: Store) -> None:
    make_sweep(sqlite_store, steps=40)
    sqlite_store.finish_sweep("bn_demo-1", "completed")
    sqlite_store.add_round(
        "bn_demo-1", kind="seeds", detail="one more seed", points=[{}], experiment="r{round}"
    )
    added = sqlite_store.add_trial("bn_demo-1", "extra", {"lr": 0.1, "batch_norm": True})
    trials = sqlite_store.trials("bn_demo-1")
    points = SweepPoints("bn_demo-1")
    points.refresh(sqlite_store)
    table = shown_table(trial_table(trials, points, sweep={"metric": "val_acc"}, params=["lr"]))
    assert list(table.columns[:3]) == ["trial", "round", "status"]
    row = table.iloc[-1]
    assert (row["trial"], row["round"]) == (len(trials), 2)
    assert added == trials[-1]["id"]
    assert set(table["round"].iloc[:-1]) == {1}


def test_live_page_urls_name_trials_by_number(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, fresh_dashboard: None
) -> None:
    """?q_trials=3 highlights the sweep's third trial, whatever its store id, and the
    trial page's ?trial=3 opens it."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("SWEEPSCOPE_STORE", url)
    with open_store(url, create=True) as s:
        make_sweep(s, sweep_id="first", steps=60)
        make_sweep(s, steps=60)
        third = s.trials("bn_demo-1")[2]
    at = open_page("live", sweep="bn_demo-1", q_trials="3")
    assert at.multiselect(key="q_trials").value == [third["id"]]
    spec = chart(at, "live_chart_val_acc")
    assert "trial 3" in {t.get("name") for t in spec["data"]}
    at = open_page("trial", sweep="bn_demo-1", trial="3")
    assert "Trial 3 · " in texts(at, "caption")
    assert at.selectbox(key="trial_id").value == third["id"]


# -- the hyperparameters page of a large sweep ----------------------------------------------------
def test_a_large_sweeps_importance_comes_from_the_background(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, fresh_dashboard: None
) -> None:
    """Over INLINE_TRIALS finished trials, the page answers at once with a notice, and the
    chart once the background job is done."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("SWEEPSCOPE_STORE", url)
    n = 320
    with open_store(url, create=True) as s:
        s.create_sweep("big", name="big", spec={}, metric="loss", mode="min", n_trials=n)
        with s.batch():
            for i in range(n):
                lr = [0.1, 0.01, 0.001][i % 3]
                trial = s.add_trial("big", f"t{i}", {"lr": lr, "seed": i})
                s.add_points(trial, [("loss", 10, lr * 10 + 0.01 * (i % 7), 1e6 + i)])
                s.set_trial_status(trial, "completed", last_step=10)
    at = open_page("hparams", timeout=120, sweep="big")
    assert "in the background" in texts(at, "info")
    assert not [c for c in at.get("plotly_chart") if "hp_importance" in c.proto.id]
    deadline = time.monotonic() + 120
    while not [c for c in at.get("plotly_chart") if "hp_importance" in c.proto.id]:
        assert time.monotonic() < deadline, "the importance never arrived"
        time.sleep(0.5)
        at.run()
    assert f"the {n:,} finished trials" in texts(at, "caption")
