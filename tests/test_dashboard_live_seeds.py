"""The live page collapses a seeded sweep's seeds (issue 19): one median curve with a band
across seeds per configuration, a table row per configuration with its mean final and
interval, and "Each seed" to expand to the single trials. An unseeded sweep is unchanged.

The sweep is written through the store API in a known partial state: lr=0.1 has finished
all its seeds, lr=0.01 has two seeds running (one further along) and one waiting, lr=0.001
has not started.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import live
from dashboard.data import SweepPoints
from runner import configurations as runner_configurations
from runner.store import Store
from tests.helpers.apptest import open_page, texts
from tests.test_dashboard_data import make_sweep

SWEEP = "live_seeded-1"
SEEDS = 3
STEPS = 40
# lr -> each seed's (status, steps reported): the sweep's partial state
PLAN: dict[float, list[tuple[str, int]]] = {
    0.1: [("completed", STEPS)] * SEEDS,
    0.01: [("running", STEPS // 2), ("running", STEPS // 4), ("pending", 0)],
    0.001: [("pending", 0)] * SEEDS,
}


def final_acc(lr: float, seed: int) -> float:
    return 0.8 - 2 * lr + 0.03 * seed


def seeded_live_sweep(store: Store, sweep_id: str = SWEEP) -> dict[tuple[float, int], int]:
    """A running seeded sweep over lr (see PLAN); returns (lr, seed) -> trial id. Each
    trial reports train_loss every step and val_acc every 10."""
    spec = {
        "name": "live_seeded",
        "trainable": "tests.trainables:steady",
        "metric": "val_acc",
        "mode": "max",
        "stop": {"epochs": STEPS // 10},
        "grid": {"lr": list(PLAN)},
        "seeds": {"n": SEEDS, "key": "seed", "start": 0},
    }
    store.create_sweep(
        sweep_id, name="live_seeded", spec=spec, metric="val_acc", mode="max", n_trials=9
    )
    ids = {}
    for lr, seeds in PLAN.items():
        for seed, (status, steps) in enumerate(seeds):
            config = {"lr": lr, "seed": seed, "epochs": STEPS // 10}
            trial = store.add_trial(sweep_id, f"{lr}-{seed}", config)
            ids[(lr, seed)] = trial
            if status == "pending":
                continue
            store.set_trial_status(trial, "running")
            t0 = 1_000_000.0 + seed
            k = np.arange(1, steps + 1)
            loss = (1.0 + 0.3 * seed) / np.sqrt(k) + lr
            acc = final_acc(lr, seed) * k / STEPS
            store.add_points(
                trial,
                [("train_loss", int(s), float(v), t0 + s) for s, v in zip(k, loss, strict=True)]
                + [("val_acc", int(s), float(acc[s - 1]), t0 + s) for s in k if s % 10 == 0],
            )
            if status == "completed":
                store.set_trial_status(trial, "completed", last_epoch=STEPS // 10)
    return ids


def _frame(store: Store) -> tuple[live.LiveFrame, SweepPoints]:
    sweep = store.sweep(SWEEP)
    assert sweep is not None
    points = SweepPoints(SWEEP)
    return live.refresh(store, points, sweep, live.configurations_for(sweep)), points


def _bands(figure: dict[str, Any] | go.Figure) -> tuple[list[str], int]:
    """(names of the centre lines, number of filled bands) of a panel."""
    data = figure["data"] if isinstance(figure, dict) else [t.to_plotly_json() for t in figure.data]
    centres = [t["name"] for t in data if str(t.get("name", "")).endswith("seeds)")]
    return centres, sum(1 for t in data if t.get("fill") == "toself")


# -- the data path, without a page -----------------------------------------------------------
def test_trials_map_to_configurations_once(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded_live_sweep(sqlite_store)
    frame, _ = _frame(sqlite_store)
    configs = frame.configurations
    assert configs is not None and configs.seed_key == "seed" and configs.n_seeds == SEEDS
    assert list(configs.labels.values()) == ["lr=0.1", "lr=0.01", "lr=0.001"]
    assert configs.label(frame.trials[4]["id"]) == "lr=0.01"
    keyed = []
    monkeypatch.setattr(live, "config_key", lambda *a: keyed.append(a) or "x")
    configs.update(frame.trials, frame.params)  # the next refresh: nothing new to key
    assert keyed == []


def test_unseeded_and_single_seed_sweeps_have_no_configurations(sqlite_store: Store) -> None:
    make_sweep(sqlite_store, steps=20)
    sweep = sqlite_store.sweep("bn_demo-1")
    assert sweep is not None and live.configurations_for(sweep) is None
    one = {"spec": {"seeds": {"n": 1, "key": "seed", "start": 0}}}
    assert live.configurations_for(one) is None


def test_collapsed_panel_is_a_median_and_band_per_configuration(sqlite_store: Store) -> None:
    seeded_live_sweep(sqlite_store)
    frame, points = _frame(sqlite_store)
    options = live.LiveOptions(collapse=True, smoothing=0.0)
    best = live.best_trial(frame)
    grid = live.panels(
        points,
        frame.trials,
        options,
        params=frame.params,
        best=best,
        configurations=frame.configurations,
    )
    train = grid[0]
    go.Figure(train.figure.to_dict())  # a valid figure
    centres, fills = _bands(train.figure)
    # lr=0.001 has no points: no curve; lr=0.01 has 2 of its 3 seeds started
    assert centres == ["lr=0.1 (3/3 seeds)", "lr=0.01 (2/3 seeds)"] and fills == 2
    layout = train.figure.layout.to_plotly_json()
    assert layout["legend"]["title"]["text"] == "median, interquartile range across seeds:"
    names = [t.name for t in train.figure.data]
    assert not any(str(n).startswith("best so far") for n in names)  # no lucky seed crowned
    centre = next(t for t in train.figure.data if t.name == "lr=0.01 (2/3 seeds)")
    assert "over %{customdata[3]} seeds" in centre.hovertemplate
    trial, n = np.asarray(centre.customdata)[:, 0], np.asarray(centre.customdata)[:, 3]
    assert (trial == -1).all()  # a click on a band names no trial to highlight
    assert n[0] == 2 and n[-1] == 1  # the seed further along alone carries the end
    # the median of lr=0.1's three seeds at step 1 is the middle seed's value
    first = next(t for t in train.figure.data if t.name == "lr=0.1 (3/3 seeds)")
    assert float(first.y[0]) == pytest.approx(1.3 + 0.1, rel=1e-5)
    assert live.band_legend(options) == "median, interquartile range across seeds"


def test_a_highlighted_seed_is_drawn_over_the_bands(sqlite_store: Store) -> None:
    ids = seeded_live_sweep(sqlite_store)
    frame, points = _frame(sqlite_store)
    options = live.LiveOptions(collapse=True, highlight=frozenset({ids[(0.01, 0)]}))
    train = live.panel(
        points,
        frame.trials,
        "train_loss",
        options,
        params=frame.params,
        configurations=frame.configurations,
    )
    assert train is not None
    number = {t["id"]: t["number"] for t in frame.trials}
    assert f"trial {number[ids[(0.01, 0)]]}" in [t.name for t in train.figure.data]


def test_collapse_needs_configurations(sqlite_store: Store) -> None:
    seeded_live_sweep(sqlite_store)
    frame, points = _frame(sqlite_store)
    with pytest.raises(ValueError, match="configurations=frame.configurations"):
        live.panel(points, frame.trials, "train_loss", live.LiveOptions(collapse=True))


def test_configuration_rows_give_mean_finals_over_finished_seeds(sqlite_store: Store) -> None:
    ids = seeded_live_sweep(sqlite_store)
    frame, points = _frame(sqlite_store)
    table, rows = live.configuration_rows(frame, points, frame.trials)
    assert list(table["lr"]) == [0.1, 0.01, 0.001]
    assert list(table["seeds"]) == ["3/3", "0/3", "0/3"]  # a running seed has no final yet
    mean = np.mean([final_acc(0.1, s) for s in range(SEEDS)])
    assert table["mean val_acc"].iloc[0] == pytest.approx(mean)
    low, high = json.loads(table["95% CI"].iloc[0])
    assert low < mean < high
    assert math.isnan(table["mean val_acc"].iloc[1])
    assert list(table["trials"]) == ["3 completed", "1 pending, 2 running", "3 pending"]
    assert rows == [[ids[(lr, s)] for s in range(SEEDS)] for lr in PLAN]
    best = live.best_configuration(table, "val_acc")
    assert best is not None and best["lr"] == 0.1
    assert live.without_points(frame, points, frame.trials) == ["lr=0.001"]
    # the same numbers runner.configurations gives the CLI
    finals = points.summary("val_acc", "max")["latest"].loc[[ids[(0.1, s)] for s in range(3)]]
    same = runner_configurations.configuration_table(
        frame.trials, finals, varied=["lr"], seed_key="seed", metric="val_acc", mode="max"
    )
    assert same["mean val_acc"].iloc[0] == table["mean val_acc"].iloc[0]


# -- the page ---------------------------------------------------------------------------------
def _panels(at: AppTest) -> dict[str, dict[str, Any]]:
    found = {}
    for element in at.get("plotly_chart"):
        if "live_chart_" in element.proto.id:
            found[element.proto.id.split("live_chart_", 1)[1]] = json.loads(element.proto.spec)
    return found


def test_live_page_collapses_seeds_by_default(dashboard_url: str) -> None:
    from runner.store import open_store

    with open_store(dashboard_url, create=True) as store:
        seeded_live_sweep(store)
    at = open_page("live", sweep=SWEEP)
    assert at.toggle(key="q_seeds").value is False
    assert at.selectbox(key="q_colour").disabled and at.selectbox(key="q_group").disabled
    assert not at.selectbox(key="q_band").disabled
    panels = _panels(at)
    assert list(panels) == ["train_loss", "val_acc"]
    for spec in panels.values():
        centres, fills = _bands(spec)
        assert centres == ["lr=0.1 (3/3 seeds)", "lr=0.01 (2/3 seeds)"] and fills == 2
    table = at.dataframe[0].value
    assert list(table["lr"]) == [0.1, 0.01, 0.001] and "trial" not in table
    assert list(table["seeds"]) == ["3/3", "0/3", "0/3"]
    shown = texts(at, "caption")
    assert "9 trials in 3 configurations of 3 seeds" in shown
    assert "median, interquartile range across seeds" in shown
    assert "no points yet: lr=0.001" in shown
    assert "best configuration so far: lr=0.1 (mean final val_acc" in shown
    assert "Stopping is per trial" in shown


def test_each_seed_expands_to_every_trial(dashboard_url: str) -> None:
    from runner.store import open_store

    with open_store(dashboard_url, create=True) as store:
        seeded_live_sweep(store)
    at = open_page("live", sweep=SWEEP)
    at.toggle(key="q_seeds").set_value(True).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 9 and {"trial", "status", "lr", "seed"} <= set(table.columns)
    train = _panels(at)["train_loss"]
    assert _bands(train) == ([], 0)
    lines = [t for t in train["data"] if t.get("mode") == "lines" and t.get("opacity", 1) > 0.5]
    assert len(lines) >= 5  # a curve per started trial (the best one thick)
    assert any(str(t.get("name", "")).startswith("best so far") for t in train["data"])
    # a copied URL opens expanded
    again = open_page("live", sweep=SWEEP, q_seeds="true")
    assert len(again.dataframe[0].value) == 9


def test_a_configuration_row_highlights_its_seeds(dashboard_url: str) -> None:
    from runner.store import open_store

    with open_store(dashboard_url, create=True) as store:
        ids = seeded_live_sweep(store)
    at = open_page("live", sweep=SWEEP)
    at.session_state["q_trials"] = [ids[(0.1, s)] for s in range(SEEDS)]  # as a row selects
    at.run()
    names = [t.get("name") for t in _panels(at)["train_loss"]["data"]]
    with open_store(dashboard_url) as store:
        number = {t["id"]: t["number"] for t in store.trials(SWEEP)}
    assert all(f"trial {number[ids[(0.1, s)]]}" in names for s in range(SEEDS))


def test_stop_one_seed_from_the_collapsed_page(dashboard_url: str) -> None:
    from runner.store import open_store

    with open_store(dashboard_url, create=True) as store:
        ids = seeded_live_sweep(store)
        at = open_page("live", sweep=SWEEP)
        running = ids[(0.01, 1)]
        at.selectbox(key="live_trial").set_value(running).run()
        at.button(key="live_stop_trial").click().run()
        at.button(key="live_confirm_yes").click().run()
        ray_id = next(t["ray_id"] for t in store.trials(SWEEP) if t["id"] == running)
        assert store.stop_requests(SWEEP) == (False, {ray_id})
        assert at.toggle(key="q_seeds").value is False  # still collapsed


def test_a_seeded_sweep_without_points_yet(dashboard_url: str) -> None:
    from runner.store import open_store

    with open_store(dashboard_url, create=True) as store:
        store.create_sweep(
            "empty_seeded-1",
            name="empty_seeded",
            spec={
                "metric": "val_acc",
                "mode": "max",
                "grid": {"lr": [0.1, 0.01]},
                "seeds": {"n": 2, "key": "seed", "start": 0},
            },
            metric="val_acc",
            mode="max",
            n_trials=4,
        )
        for lr in (0.1, 0.01):
            for seed in range(2):
                store.add_trial("empty_seeded-1", f"{lr}-{seed}", {"lr": lr, "seed": seed})
    at = open_page("live", sweep="empty_seeded-1")
    assert "No points yet" in texts(at, "info")
    table = at.dataframe[0].value
    assert list(table["seeds"]) == ["0/2", "0/2"] and list(table["trials"]) == ["2 pending"] * 2


def test_an_unseeded_sweep_is_unchanged(dashboard_url: str) -> None:
    from runner.store import open_store

    with open_store(dashboard_url, create=True) as store:
        make_sweep(store, steps=40, running=[0])
    at = open_page("live", sweep="bn_demo-1")
    assert not [t for t in at.toggle if t.key == "q_seeds"]
    assert len(at.dataframe[0].value) == 12 and "trial" in at.dataframe[0].value
    assert not at.selectbox(key="q_colour").disabled


def test_nan_percentiles_match_numpys() -> None:
    from dashboard.bands import nan_percentiles

    rng = np.random.default_rng(3)
    stack = rng.standard_normal((7, 300))
    stack[rng.random(stack.shape) < 0.4] = np.nan
    stack[:, 5] = np.nan  # a column with no curve
    stack[1:, 6] = np.nan  # one with a single value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the all-NaN column
        expected = np.nanpercentile(stack, (0, 25, 50, 75, 100), axis=0)
    got = nan_percentiles(stack, (0, 25, 50, 75, 100))
    np.testing.assert_allclose(got, expected, rtol=1e-12, equal_nan=True)
