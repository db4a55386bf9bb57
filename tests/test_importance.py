"""Hyperparameter importance: the design matrix, the ranking of each method on sweeps whose
answer is known, what it refuses, and the Hyperparameters page's empty and partial states."""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import importance
from runner.store import open_store
from tests.helpers.apptest import open_page
from tests.test_dashboard_data import make_sweep


def _trials(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": i + 1, "config": c} for i, c in enumerate(configs)]


def seed_grid_like() -> tuple[list[dict[str, Any]], dict[int, float]]:
    """The seed grid's shape (lr x beta1 x batch_norm) and its outcome: every trial reaches
    about 0.98 accuracy except lr=0.1 without BN, which stays near chance; beta1 barely
    matters."""
    rng = np.random.default_rng(1)
    grid = itertools.product([0.1, 0.01, 0.001], [0.8, 0.88, 0.9], [True, False])
    trials = _trials([{"lr": lr, "beta1": b1, "batch_norm": bn} for lr, b1, bn in grid])
    finals = {}
    for t in trials:
        c = t["config"]
        failed = c["lr"] == 0.1 and not c["batch_norm"]
        finals[t["id"]] = (0.15 if failed else 0.975) + float(rng.normal(0, 0.005))
    return trials, finals


@functools.cache
def seed_grid_importance(method: str) -> importance.Importance:
    """The importance of the seed grid's hyperparameters by `method`, computed once for the
    tests that read it (none changes it)."""
    trials, finals = seed_grid_like()
    return importance.importance(
        trials, ["lr", "beta1", "batch_norm"], finals, "val_acc", method=method
    )


def test_design_matrix_encodes_and_drops() -> None:
    trials = _trials(
        [
            {"lr": 0.1, "act": "relu", "bn": True, "width": 64, "extra": None},
            {"lr": 0.01, "act": "tanh", "bn": False, "width": 64, "extra": [1, 2]},
            {"lr": 0.001, "act": "relu", "bn": False, "width": 64, "extra": None},
            {"lr": 0.5, "act": "gelu", "bn": True, "width": 32, "extra": None},
        ]
    )
    finals = {1: 0.5, 2: 0.6, 3: 0.7, 4: math.nan}  # trial 4 has no final value
    frame, y = importance.design_matrix(trials, ["lr", "act", "bn", "width", "extra"], finals)
    assert list(frame.index) == [1, 2, 3] and y.tolist() == [0.5, 0.6, 0.7]
    assert list(frame.columns) == ["lr", "act", "bn", "extra"]  # width: 64 for all three
    assert frame["lr"].tolist() == [0.1, 0.01, 0.001]
    assert frame["act"].tolist() == [0.0, 1.0, 0.0]  # relu, tanh in sorted order
    assert frame["bn"].tolist() == [1.0, 0.0, 0.0]
    assert frame["extra"].tolist() == [1.0, 0.0, 1.0]  # None sorts last


@pytest.mark.parametrize("method", importance.available_methods())
def test_ranks_the_hyperparameter_that_decides(method: str) -> None:
    rng = np.random.default_rng(0)
    configs = [
        {"lr": lr, "wd": wd, "noise": n}
        for lr in (1e-4, 1e-3, 1e-2, 1e-1)
        for wd in (0.0, 1e-4)
        for n in ("a", "b", "c")
    ]
    trials = _trials(configs)
    finals = {
        t["id"]: -abs(math.log10(t["config"]["lr"]) + 2.5)
        + (0.05 if t["config"]["wd"] else 0.0)
        + float(rng.normal(0, 0.01))
        for t in trials
    }
    found = importance.importance(trials, ["lr", "wd", "noise"], finals, "acc", method=method)
    table = found.table
    assert table["parameter"].tolist()[0] == "lr"
    assert table["importance"].iloc[0] > 0.6
    assert table["importance"].sum() == pytest.approx(1.0)
    assert (table["low"] <= table["importance"]).all()
    assert (table["importance"] <= table["high"]).all()
    assert found.n_trials == 24 and found.n_resamples == 20
    assert found.method == importance.METHODS[method]


@pytest.mark.parametrize("method", importance.available_methods())
def test_seed_grid_shape_ranks_the_learning_rate_first(method: str) -> None:
    """lr and batch_norm interact (only lr=0.1 without BN fails); lr still explains more,
    since two of its three values are safe whatever BN does, and beta1 explains least."""
    found = seed_grid_importance(method)
    assert found.table["parameter"].tolist() == ["lr", "batch_norm", "beta1"]


def test_the_same_seed_gives_the_same_answer_and_another_seed_varies() -> None:
    trials, finals = seed_grid_like()
    params = ["lr", "beta1", "batch_norm"]
    once = importance.importance(trials, params, finals, "val_acc", n_resamples=5)
    again = importance.importance(trials, params, finals, "val_acc", n_resamples=5)
    other = importance.importance(trials, params, finals, "val_acc", n_resamples=5, seed=7)
    assert once.table.equals(again.table)
    assert not once.table.equals(other.table)


def test_refuses_what_it_cannot_explain() -> None:
    trials, finals = seed_grid_like()
    params = ["lr", "beta1", "batch_norm"]
    with pytest.raises(ValueError, match="at least 4"):
        importance.importance(trials[:3], params, finals, "val_acc")
    with pytest.raises(ValueError, match="same final val_acc"):
        importance.importance(trials, params, dict.fromkeys(finals, 0.5), "val_acc")
    with pytest.raises(ValueError, match="no hyperparameter varies"):
        importance.importance(trials, ["absent"], finals, "val_acc")
    with pytest.raises(ValueError, match="unknown importance method"):
        importance.importance(trials, params, finals, "val_acc", method="shap")


def test_figure_puts_the_most_important_on_top() -> None:
    found = seed_grid_importance("permutation")  # the default method
    fig = importance.importance_figure(found)
    bar = fig.data[0]
    assert list(bar.y)[-1] == "lr"  # plotly draws the last category on top
    assert fig.layout.title.text == importance.METHODS["permutation"]


# -- the page ------------------------------------------------------------------------------
def _page(sweep: str) -> AppTest:
    return open_page("hparams", timeout=120, sweep=sweep)


def test_page_with_a_finished_sweep_shows_importance(dashboard_url: str) -> None:
    with open_store(dashboard_url, create=True) as s:
        make_sweep(s, steps=100)
    at = _page("bn_demo-1")
    keys = {c.proto.id.split("-")[-1] for c in at.get("plotly_chart")}
    assert at.selectbox(key="q_hp_metric").value == "val_acc"
    assert any("hp_importance" in c.proto.id for c in at.get("plotly_chart")), keys
    captions = " | ".join(c.value for c in at.caption)
    assert "bootstrap resamples" in captions and importance.METHODS["permutation"] in captions


def test_page_with_too_few_finished_trials_says_so(dashboard_url: str) -> None:
    """Partial: three trials finished, three still running (their last value is not final)."""
    with open_store(dashboard_url, create=True) as s:
        make_sweep(s, steps=100)
        s.create_sweep("partial", name="partial", spec={}, metric="val_acc", mode="max", n_trials=6)
        for i, lr in enumerate([0.1, 0.01, 0.001, 0.3, 0.03, 0.003]):
            trial = s.add_trial("partial", f"p{i}", {"lr": lr})
            s.set_trial_status(trial, "running")
            s.add_points(trial, [("val_acc", 10, 0.5 + i / 10, 1e6 + i)])
            if i < 3:
                s.set_trial_status(trial, "completed", last_step=10)
    at = _page("partial")
    infos = " | ".join(str(e.value) for e in at.info)
    assert "No importance yet: among finished trials, 3 trials have a final val_acc" in infos
    assert "3 unfinished trials join when they end" in infos
    assert any("hp_parcoords" in c.proto.id for c in at.get("plotly_chart"))


def test_page_without_points_says_nothing_to_draw(dashboard_url: str) -> None:
    with open_store(dashboard_url, create=True) as s:
        s.create_sweep(
            "empty",
            name="empty",
            spec={"grid": {"lr": [0.1, 0.2]}},
            metric="val_acc",
            mode="max",
            n_trials=2,
        )
        s.add_trial("empty", "a", {"lr": 0.1})
        s.add_trial("empty", "b", {"lr": 0.2})
    at = _page("empty")
    assert "Nothing to draw yet" in " | ".join(str(e.value) for e in at.info)
