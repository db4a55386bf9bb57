"""The Python API (`import sweepscope`): read-only, on SQLite and PostgreSQL alike.

Stores are filled through the store API as the runner writes them; every check is what a
notebook user would look at: trial numbers, values, the best, new points on a poll.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import sqlalchemy as sa

import sweepscope
from runner.configurations import best_configuration
from runner.store import Store, open_store
from runner.store import _schema as t
from tests.helpers.paths import REPO

LRS = [0.1, 0.01, 0.001]
STEPS = 30  # train_loss every step, val_loss every 10


def _loss(lr: float, step: int) -> float:
    """lr=0.01 learns best; lr=0.1 ends a little worse, 0.001 slowest."""
    return {0.1: 0.5, 0.01: 0.2, 0.001: 1.0}[lr] + 1.0 / step


def _points(lr: float, steps: range, start: float) -> list[tuple[str, int, float, float]]:
    found = [("train_loss", s, _loss(lr, s), start + s) for s in steps]
    found += [("val_loss", s, _loss(lr, s) + 0.05, start + s) for s in steps if s % 10 == 0]
    return found


def _plain_sweep(store: Store, sweep_id: str = "plain", name: str = "lr-grid") -> list[int]:
    """Three trials (one per lr) of STEPS steps; the last one diverged at its end. Returns
    the store ids of the trials, in order."""
    spec = {"name": name, "grid": {"lr": LRS}, "epochs": 3}
    store.create_sweep(sweep_id, name=name, spec=spec, metric="val_loss", mode="min", n_trials=3)
    ids = []
    for i, lr in enumerate(LRS):
        trial = store.add_trial(sweep_id, f"{sweep_id}-{i}", {"lr": lr, "epochs": 3}, at=1e9 + i)
        store.set_trial_status(trial, "running", device="cpu", node="node-a", at=1e9 + i + 1)
        store.add_points(trial, _points(lr, range(1, STEPS + 1), 1e9 + 10 * i))
        ids.append(trial)
    store.add_points(ids[2], [("val_loss", STEPS + 10, math.nan, 1e9 + 99)])
    store.set_trial_status(ids[0], "completed", at=1e9 + 50)
    store.set_trial_status(ids[1], "completed", at=1e9 + 51)
    store.set_trial_status(ids[2], "diverged", detail="val_loss is NaN", at=1e9 + 52)
    store.finish_sweep(sweep_id, "completed")
    return ids


def _seeded_sweep(store: Store, sweep_id: str = "seeded") -> None:
    """Two configurations (lr) x three seeds: the seed moves the final val_loss a little."""
    spec = {"name": "seeds", "grid": {"lr": [0.1, 0.01]}, "seeds": {"n": 3, "key": "seed"}}
    store.create_sweep(sweep_id, name="seeds", spec=spec, metric="val_loss", mode="min", n_trials=6)
    for i, (lr, seed) in enumerate((lr, s) for lr in (0.1, 0.01) for s in range(3)):
        trial = store.add_trial(sweep_id, f"{sweep_id}-{i}", {"lr": lr, "seed": seed})
        store.set_trial_status(trial, "running")
        points = _points(lr, range(1, STEPS + 1), 2e9)
        store.add_points(trial, [(m, s, v + 0.01 * seed, w) for m, s, v, w in points])
        store.set_trial_status(trial, "completed")
    store.finish_sweep(sweep_id, "completed")


@pytest.fixture
def filled(store_url: str) -> Iterator[str]:
    """A store holding a seeded sweep and, after it, the three-trial plain sweep: the
    plain sweep's trial ids are not its numbers."""
    with open_store(store_url, create=True) as store:
        _seeded_sweep(store)
        _plain_sweep(store)
    yield store_url


@pytest.fixture
def results(filled: str) -> Iterator[sweepscope.Results]:
    with sweepscope.open(filled) as opened:
        yield opened


# -- opening: read-only ---------------------------------------------------------------------
def _tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the store at `url` (nothing where it holds none)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {
                n: sorted(map(tuple, conn.execute(sa.text(f'SELECT * FROM "{n}"'))), key=repr)
                for n in names
            }
    finally:
        engine.dispose()


def test_a_missing_store_is_refused_and_not_created(store_url: str, tmp_path: Path) -> None:
    with pytest.raises(sweepscope.StoreError, match="`sweepscope migrate --store "):
        sweepscope.open(store_url)
    if store_url.startswith("sqlite"):
        assert list(tmp_path.iterdir()) == []
    else:
        assert _tables(store_url) == {}


def test_an_earlier_store_is_refused_untouched_naming_migrate(store_url: str) -> None:
    open_store(store_url, create=True).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(t.meta.update().values(value=str(t.SCHEMA_VERSION - 1)))
    engine.dispose()
    before = _tables(store_url)
    with pytest.raises(sweepscope.StoreError, match="`sweepscope migrate --store "):
        sweepscope.open(store_url)
    assert _tables(store_url) == before


def test_the_default_store_is_the_clis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    """SQLite only: which URL is opened does not depend on the backend."""
    with open_store(sqlite_url, create=True) as store:
        _plain_sweep(store)
    monkeypatch.setenv("SWEEPSCOPE_STORE", sqlite_url)
    with sweepscope.open() as opened:
        assert list(opened.sweeps()["id"]) == ["plain"]
    monkeypatch.delenv("SWEEPSCOPE_STORE")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(sweepscope.StoreError, match="sweepscope.db"):
        sweepscope.open()


def test_no_call_writes_to_the_store(filled: str) -> None:
    before = _tables(filled)
    with sweepscope.open(filled) as opened:
        opened.sweeps()
        for sweep_id in ("plain", "seeded"):
            sweep = opened.sweep(sweep_id)
            sweep.trials()
            sweep.curves(wide=True)
            sweep.curves(since=sweepscope.Cursor())
            sweep.best()
            sweep.events()
            sweep._repr_html_()
            sweep.plot()
    assert _tables(filled) == before


# -- sweeps and trials ---------------------------------------------------------------------
def test_sweeps_lists_every_sweep_with_its_counts(results: sweepscope.Results) -> None:
    table = results.sweeps().set_index("id")
    assert list(table.index) == ["plain", "seeded"]  # newest first
    plain, seeded = table.loc["plain"], table.loc["seeded"]
    assert (plain["status"], plain["planned"], plain["trials"]) == ("completed", 3, 3)
    assert (plain["completed"], plain["diverged"], plain["running"]) == (2, 1, 0)
    assert plain["best"] == pytest.approx(_loss(0.01, 30) + 0.05)
    assert seeded["seeds"] == 3 and math.isnan(seeded["best"])  # never the luckiest seed
    assert isinstance(plain["created"], pd.Timestamp) and plain["created"].tzname() == "UTC"


def test_a_sweep_is_found_by_id_or_by_the_newest_of_its_name(filled: str) -> None:
    with open_store(filled, create=True) as store:
        store.create_sweep("plain-2", name="lr-grid", spec={}, metric="m", mode="max", n_trials=1)
    with sweepscope.open(filled) as opened:
        assert opened.sweep("plain").id == "plain"
        assert opened.sweep("lr-grid").id == "plain-2"
        with pytest.raises(sweepscope.SweepscopeError, match="'nope'.*plain-2 \\(lr-grid\\)"):
            opened.sweep("nope")


def test_trials_are_numbered_within_the_sweep_with_their_values(
    results: sweepscope.Results,
) -> None:
    trials = results.sweep("plain").trials()
    assert list(trials["number"]) == [1, 2, 3]
    assert list(trials.columns[:5]) == ["number", "round", "status", "lr", "epochs"]
    assert list(trials["status"]) == ["completed", "completed", "diverged"]
    assert list(trials["lr"]) == LRS and set(trials["round"]) == {1}
    assert "seed" not in trials
    assert trials.attrs["metric"] == "val_loss"
    for row, lr in zip(trials.itertuples(), LRS, strict=True):
        assert row.best == pytest.approx(_loss(lr, 30) + 0.05)
    assert trials["last"].iloc[0] == pytest.approx(_loss(0.1, 30) + 0.05)
    assert math.isnan(trials["last"].iloc[2])  # it diverged: its final value is NaN
    assert list(trials["steps"]) == [30, 30, 40]
    assert trials["created"].iloc[1] == pd.Timestamp(1e9 + 1, unit="s", tz="UTC")
    assert trials["started"].iloc[1] == pd.Timestamp(1e9 + 2, unit="s", tz="UTC")
    assert (trials["device"] == "cpu").all() and (trials["node"] == "node-a").all()


def test_a_seeded_sweeps_trials_carry_their_seed(results: sweepscope.Results) -> None:
    trials = results.sweep("seeded").trials()
    assert list(trials["number"]) == [1, 2, 3, 4, 5, 6]
    assert list(trials["seed"]) == [0, 1, 2, 0, 1, 2]
    assert "lr" in trials and "config.seed" not in trials


# -- curves ----------------------------------------------------------------------------------
def test_curves_hold_every_point_by_trial_number(results: sweepscope.Results) -> None:
    curves = results.sweep("plain").curves()
    assert list(curves.columns) == ["trial", "metric", "step", "value", "wall_time"]
    assert len(curves) == 3 * (STEPS + 3) + 1
    assert sorted(set(curves["trial"])) == [1, 2, 3]
    row = curves[(curves["trial"] == 2) & (curves["metric"] == "train_loss")].iloc[4]
    assert (row["step"], row["value"]) == (5, pytest.approx(_loss(0.01, 5)))
    assert row["wall_time"] == pd.Timestamp(1e9 + 15, unit="s", tz="UTC")
    keys = list(zip(curves["trial"], curves["metric"].astype(str), curves["step"], strict=True))
    assert keys == sorted(keys, key=lambda k: (k[0], k[1] != "train_loss", k[2]))


def test_curves_keep_the_metrics_and_trials_asked_for(results: sweepscope.Results) -> None:
    sweep = results.sweep("plain")
    picked = sweep.curves("val_loss", trials=[1, 3])
    assert set(picked["metric"]) == {"val_loss"} and sorted(set(picked["trial"])) == [1, 3]
    assert len(picked) == 3 + 4
    assert sweep.curves(["nothing-yet"]).empty
    assert list(sweep.curves(trials=2)["trial"].unique()) == [2]
    with pytest.raises(ValueError, match="trials=\\[0\\].*sweep.trials\\(\\)\\['number'\\]"):
        sweep.curves(trials=[0])


def test_wide_curves_have_a_column_per_metric(results: sweepscope.Results) -> None:
    table = results.sweep("plain").curves(wide=True)
    assert list(table.columns) == ["trial", "step", "train_loss", "val_loss"]
    assert len(table) == 3 * STEPS + 1
    at = table[(table["trial"] == 1) & (table["step"] == 10)].iloc[0]
    assert at["val_loss"] == pytest.approx(at["train_loss"] + 0.05)
    assert math.isnan(table[(table["trial"] == 1) & (table["step"] == 9)].iloc[0]["val_loss"])


def test_a_cursor_returns_only_new_points_even_when_a_trial_reports_steps_again(
    filled: str,
) -> None:
    with sweepscope.open(filled) as opened, open_store(filled, create=True) as writer:
        sweep = opened.sweep("plain")
        first, cursor = sweep.curves(since=sweepscope.Cursor())
        assert len(first) == len(sweep.curves())
        nothing, same = sweep.curves(since=cursor)
        assert nothing.empty and same.last_id == cursor.last_id
        trial = writer.trial_ids("plain")["plain-1"]
        # A resumed trial reports steps 21..35: 21..30 are stored already, 31..35 are new.
        writer.add_points(trial, [("train_loss", s, 9.0, 2e9 + s) for s in range(21, 36)])
        new, after = sweep.curves(since=cursor)
        assert list(new["step"]) == [31, 32, 33, 34, 35] and set(new["trial"]) == {2}
        assert (new["value"] == 9.0).all()
        again, _ = sweep.curves(since=cursor)  # a cursor is never used up
        pd.testing.assert_frame_equal(again, new)
        assert sweep.curves(since=after).points.empty
        assert after.n_points == len(first) + 5
        with pytest.raises(ValueError, match="from a poll of sweep 'plain'.*one cursor per sweep"):
            opened.sweep("seeded").curves(since=after)


def test_a_filtered_poll_returns_the_new_points_of_its_metric(filled: str) -> None:
    with sweepscope.open(filled) as opened, open_store(filled, create=True) as writer:
        sweep = opened.sweep("plain")
        _, cursor = sweep.curves("val_loss", since=sweepscope.Cursor())
        trial = writer.trial_ids("plain")["plain-0"]
        writer.add_points(trial, [("train_loss", 99, 1.0, 2e9), ("val_loss", 99, 2.0, 2e9)])
        update = sweep.curves("val_loss", wide=True, since=cursor)
        assert update.points.to_dict("list") == {"trial": [1], "step": [99], "val_loss": [2.0]}


# -- best, events, notebook view ---------------------------------------------------------------
def test_best_of_a_plain_sweep_is_its_best_trial(results: sweepscope.Results) -> None:
    best = results.sweep("plain").best()
    assert best is not None and not best.seeded
    assert best.trials == (2,) and best.config == {"lr": 0.01, "epochs": 3}
    assert best.value == pytest.approx(_loss(0.01, 30) + 0.05)
    assert math.isnan(best.low) and best.n == 1 and "trial 2" in best.message


def test_best_of_a_seeded_sweep_is_the_configurations_mean_over_seeds(
    results: sweepscope.Results, filled: str
) -> None:
    best = results.sweep("seeded").best()
    with open_store(filled) as store:
        sweep = store.sweep("seeded")
        assert sweep is not None
        trials = store.trials("seeded")
        expected = best_configuration(sweep, trials, store.points("seeded", metrics=["val_loss"]))
    assert best is not None and expected is not None and best.seeded
    assert best.config == {"lr": 0.01} == json.loads(str(expected.config))
    assert best.trials == (4, 5, 6) and best.n == 3
    assert best.value == pytest.approx(_loss(0.01, 30) + 0.05 + 0.01) == expected.mean
    assert (best.low, best.high) == (expected.low, expected.high) and best.low < best.high
    assert best.tied_with == () and best.message == expected.message


def test_best_is_none_before_any_value(store_url: str) -> None:
    with open_store(store_url, create=True) as store:
        store.create_sweep("new", name="new", spec={}, metric="acc", mode="max", n_trials=2)
        store.add_trial("new", "r0", {"lr": 0.1})
    with sweepscope.open(store_url) as opened:
        sweep = opened.sweep("new")
        assert sweep.best() is None
        assert sweep.curves().empty and list(sweep.trials()["number"]) == [1]
        assert "none yet" in sweep._repr_html_()


def test_events_name_trials_by_number(results: sweepscope.Results) -> None:
    events = results.sweep("plain").events()
    assert list(events.columns) == ["trial", "at", "status", "detail"]
    third = events[events["trial"] == 3]
    assert list(third["status"]) == ["pending", "running", "diverged"]
    assert third["detail"].iloc[-1] == "val_loss is NaN"
    assert third["at"].iloc[-1] == pd.Timestamp(1e9 + 52, unit="s", tz="UTC")
    assert events["at"].is_monotonic_increasing


def test_the_notebook_view_shows_counts_and_the_best(results: sweepscope.Results) -> None:
    page = results.sweep("plain")._repr_html_()
    assert "lr-grid" in page and "completed, 3 of 3 trials" in page
    assert "<td>completed</td><td style='text-align:right'>2</td>" in page
    assert "trial 2: lr=0.01, epochs=3" in page
    seeded = results.sweep("seeded")._repr_html_()
    assert "over 3 seeds (lr=0.01; trials 4, 5, 6)" in seeded


def test_plot_draws_the_live_panel_with_trial_numbers(results: sweepscope.Results) -> None:
    fig = results.sweep("plain").plot("train_loss")
    go.Figure(fig.to_dict())  # validates every trace and layout property
    (targets,) = [tr for tr in fig.data if tr.name == "click to highlight"]
    assert "trial %{customdata[1]}" in targets.hovertemplate  # the number, not the store id
    assert sorted(set(np.asarray(targets.customdata)[:, 1].tolist())) == [1, 2, 3]
    assert "lr-grid" in fig.layout.title.text and "train loss" in fig.layout.title.text
    lines = [tr for tr in fig.data if tr.mode == "lines"]
    widths = [tr.line.width or 0 for tr in lines]
    assert lines and max(widths) > min(widths)  # the best trial is drawn thick
    with pytest.raises(ValueError, match="'acc'.*\\['train_loss', 'val_loss'\\]"):
        results.sweep("plain").plot("acc")


def test_plot_of_a_seeded_sweep_draws_one_band_per_configuration(
    results: sweepscope.Results,
) -> None:
    fig = results.sweep("seeded").plot()
    names = {tr.name for tr in fig.data if tr.showlegend is not False and tr.name}
    assert any("lr=0.1" in n for n in names) and any("lr=0.01" in n for n in names)


@pytest.mark.slow
def test_the_api_imports_no_streamlit_ray_or_driver(filled: str) -> None:
    """A notebook that plots a sweep loads neither Streamlit nor Ray nor the runner's
    driver or CLI (a fresh interpreter: this test process has them all loaded). The
    `runner` package itself loads runner.trial.report, its `report` function."""
    script = (
        "import sys, sweepscope\n"
        f"with sweepscope.open({filled!r}) as r:\n"
        "    r.sweep('plain').plot(); r.sweep('plain').curves()\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('streamlit', 'ray')\n"
        "       or m.startswith(('runner.driver', 'runner.cli'))]\n"
        "print(bad)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
