"""Verdicts on the dashboard for seeded sweeps (issue 19): the BN page pairs configurations,
each side with all its seeds, and says better / worse / undecided beside the noise floor; a
sweep with one seed per configuration says the floor is unknown and what to run; the Sweeps
page ranks a seeded sweep by its best configuration's mean, never its luckiest trial.

Sweeps are written straight into a store where the answer is known: B's finals are A's
seeds (shuffled) plus a fixed effect, so an effect of 0 leaves every pair's mean unchanged.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from dashboard import compare
from dashboard.data import SweepPoints
from runner import configurations, verdicts
from runner.store import Store, open_store
from tests.helpers.apptest import open_page, texts
from tests.test_configurations import FINALS, _seeded_sweep
from tests.test_dashboard_data import make_sweep

LRS = [0.1, 0.03, 0.01, 0.003]
SEEDS = 4
NOISE = 0.01  # sd of a final over seeds


def seeded_bn_sweep(
    store: Store,
    *,
    effect: float,
    mode: str = "max",
    sweep_id: str = "bn_seeded-1",
    seeds: int = SEEDS,
    offset: float = 0.0,
) -> dict[int, float]:
    """A finished seeded sweep over lr x batch_norm: batch_norm=True's finals are
    batch_norm=False's (shuffled over seeds) plus `effect`, every final plus `offset` (the
    same seeds' noise in every sweep built). Returns each trial's final."""
    metric = "val_acc" if mode == "max" else "val_loss"
    spec = {
        "name": "bn_seeded",
        "trainable": "tests.trainables:steady",
        "metric": metric,
        "mode": mode,
        "stop": {"epochs": 3},
        "grid": {"lr": LRS, "batch_norm": [False, True]},
        "seeds": {"n": seeds, "key": "seed", "start": 0},
    }
    n = len(LRS) * 2 * seeds
    store.create_sweep(sweep_id, name="bn_seeded", spec=spec, metric=metric, mode=mode, n_trials=n)
    rng = np.random.default_rng(7)
    now, finals = time.time(), {}
    for i, lr in enumerate(LRS):
        base = offset + 0.6 + 0.05 * i + NOISE * rng.standard_normal(seeds)
        for bn, values in ((False, base), (True, np.roll(base, 1) + effect)):
            for seed, final in enumerate(values):
                config = {"lr": lr, "batch_norm": bn, "seed": seed, "epochs": 3}
                trial = store.add_trial(sweep_id, f"{lr}-{bn}-{seed}", config)
                store.set_trial_status(trial, "running")
                curve = [(metric, step, float(final) * step / 3, now + step) for step in (1, 2)]
                store.add_points(trial, [*curve, (metric, 3, float(final), now + 3)])
                store.set_trial_status(trial, "completed", last_epoch=3)
                finals[trial] = float(final)
    store.finish_sweep(sweep_id, "completed")
    return finals


# -- the statistics, without a page ----------------------------------------------------------
def test_configurations_pair_across_seeds_and_judge_the_effect(sqlite_store: Store) -> None:
    finals = seeded_bn_sweep(sqlite_store, effect=0.1)
    sweep = sqlite_store.sweep("bn_seeded-1")
    assert sweep is not None
    trials = sqlite_store.trials("bn_seeded-1")
    points = SweepPoints("bn_seeded-1")
    points.refresh(sqlite_store)
    key = configurations.seed_key(sweep["spec"])
    assert key == "seed" and compare.seeded(sweep["spec"])
    pairing = compare.pair_configurations(
        trials, "batch_norm", (False, True), ["lr", "batch_norm", "seed"], key
    )
    assert len(pairing.pairs) == len(LRS) and pairing.unpaired == ()
    assert all(
        len(a) == len(b) == SEEDS
        for a, b in zip(pairing.pairs["a"], pairing.pairs["b"], strict=True)
    )
    got = compare.finished_finals(points, trials, "val_acc")
    assert got.to_dict() == pytest.approx(finals)
    judged = compare.configuration_verdicts(pairing, got, "max")
    assert judged.decision is not None and judged.decision.verdict == "better"
    assert judged.decision.comparison.estimate == pytest.approx(0.1)
    assert list(judged.table["verdict"]) == ["better"] * len(LRS)
    assert list(judged.table["seeds A"]) == [f"{SEEDS}/{SEEDS}"] * len(LRS)
    floor = compare.seed_noise(trials, got, key)
    assert floor is not None and floor.floor is not None
    assert NOISE < floor.floor < 10 * NOISE  # about t * sqrt(2) * sd


def test_a_running_trial_is_left_out_until_it_finishes(sqlite_store: Store) -> None:
    seeded_bn_sweep(sqlite_store, effect=0.1)
    trials = sqlite_store.trials("bn_seeded-1")
    trials[0] = {**trials[0], "status": "running"}
    points = SweepPoints("bn_seeded-1")
    points.refresh(sqlite_store)
    got = compare.finished_finals(points, trials, "val_acc")
    assert int(trials[0]["id"]) not in got.index and len(got) == len(trials) - 1


def test_the_best_configuration_is_the_best_mean_not_the_luckiest_trial(
    sqlite_store: Store,
) -> None:
    _seeded_sweep(sqlite_store)
    sweep = sqlite_store.sweep("seeded-1")
    assert sweep is not None
    best = configurations.best_configuration(
        sweep,
        sqlite_store.trials("seeded-1"),
        sqlite_store.points("seeded-1", metrics=["val_acc"]),
    )
    assert best is not None and best.mean == pytest.approx(sum(FINALS[0.1]) / 4)
    assert configurations.configuration_label(str(best.config), ["lr"]) == "lr=0.1"
    assert best.low < best.mean < best.high
    no_seeds = {**sweep, "spec": {k: v for k, v in sweep["spec"].items() if k != "seeds"}}
    assert configurations.best_configuration(no_seeds, [], sqlite_store.points("seeded-1")) is None


# -- the BN page -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "effect", "said"),
    [
        ("max", 0.1, "better"),  # higher accuracy with BN
        ("min", -0.1, "better"),  # lower loss with BN
        ("min", 0.1, "worse"),  # higher loss with BN
        ("max", 0.0, "undecided"),  # the same seeds, shuffled
    ],
)
def test_bn_page_gives_the_verdict_beside_the_noise_floor(
    dashboard_url: str, mode: str, effect: float, said: str
) -> None:
    with open_store(dashboard_url, create=True) as s:
        seeded_bn_sweep(s, effect=effect, mode=mode)
    at = open_page("compare", timeout=120, sweep="bn_seeded-1")
    captions = texts(at, "caption")
    assert f"{len(LRS)} configuration pairs that differ only in batch_norm" in captions
    assert f"each side with its {SEEDS} seeds (seed)" in captions
    box = texts(at, {"better": "success", "worse": "error", "undecided": "info"}[said])
    assert f"**{said}**" in box and "**BN on**" in box and "**BN off**" in box
    markdown = texts(at, "markdown")
    assert "Noise floor ±" in markdown and "are noise on this sweep" in markdown
    metric = {m.label: m.value for m in at.metric}["mean BN on − BN off"]
    assert float(metric) == pytest.approx(effect, abs=1e-9)
    # seed is no factor to compare, and the table has one row per configuration pair
    assert "seed" not in at.selectbox(key="q_cmp_factor").options
    table = at.dataframe[0].value
    assert len(table) == len(LRS) and set(table["verdict"]) == {said}
    assert any("cmp_diffs" in c.proto.id for c in at.get("plotly_chart"))


def test_bn_page_with_one_seed_says_the_noise_floor_is_unknown(dashboard_url: str) -> None:
    with open_store(dashboard_url, create=True) as s:
        make_sweep(s, steps=100)  # seed in the grid, no `seeds`: one run per setting
    at = open_page("compare", timeout=120, sweep="bn_demo-1")
    warnings = texts(at, "warning")
    assert "Noise floor unknown" in warnings
    assert verdicts.MORE_SEEDS in warnings  # what to run to know it
    assert "pairs that differ only in batch_norm" in texts(at, "caption")
    assert "configuration pair" not in texts(at, "caption")


def test_bn_page_with_two_seeds_judges_the_whole_but_no_pair_alone(
    dashboard_url: str,
) -> None:
    with open_store(dashboard_url, create=True) as s:
        seeded_bn_sweep(s, effect=0.1, seeds=2)
    at = open_page("compare", timeout=120, sweep="bn_seeded-1")
    table = at.dataframe[0].value
    assert set(table["verdict"]) == {"undecided"}  # 2 seeds cannot judge one pair alone
    assert set(table["95% CI"]) == {""}
    # ... but 4 pairs of 2 seeds judge the whole comparison (pairs and seeds resampled)
    assert "**better**" in texts(at, "success")
    assert "Noise floor ±" in texts(at, "markdown")


# -- the Sweeps page -------------------------------------------------------------------------
def test_sweeps_page_shows_a_seeded_sweeps_best_configuration(dashboard_url: str) -> None:
    with open_store(dashboard_url, create=True) as s:
        _seeded_sweep(s)
        make_sweep(s, steps=50)
    at = open_page("sweeps")
    table = at.dataframe[0].value.set_index("sweep")
    assert table.at["seeded-1", "best"] == pytest.approx(sum(FINALS[0.1]) / 4)
    label = table.at["seeded-1", "best configuration"]
    assert label.startswith("lr=0.1: mean of 4 seeds, 95% CI [")
    # an unseeded sweep keeps the best value any trial reached
    assert math.isfinite(table.at["bn_demo-1", "best"])
    assert table.at["bn_demo-1", "best configuration"] == ""
    assert "mean final over seeds" in texts(at, "caption")


def test_sweeps_page_without_seeded_sweeps_has_no_configuration_column(dashboard_url: str) -> None:
    with open_store(dashboard_url, create=True) as s:
        make_sweep(s, steps=50)
    at = open_page("sweeps")
    table = at.dataframe[0].value
    assert "best configuration" not in table.columns and "best" in table.columns
    assert "the best value any trial reached" in texts(at, "caption")
