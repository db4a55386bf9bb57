"""Seeded sweeps rank configurations by their mean over seeds, in the CLI and its tables."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from runner.cli import main
from runner.configurations import config_key, configuration_table, final_values
from runner.store import Store, open_store

# lr 0.1 is the better configuration on average, but lr 0.01's luckiest seed is the single
# best trial: a best-trial ranking would crown the wrong one.
FINALS = {
    0.1: [0.80, 0.82, 0.81, 0.83],
    0.01: [0.60, 0.62, 0.95, 0.61],
}


def _seeded_sweep(store: Store, sweep_id: str = "seeded-1") -> None:
    spec = {
        "name": "seeded",
        "trainable": "tests.trainables:steady",
        "metric": "val_acc",
        "mode": "max",
        "stop": {"epochs": 2},
        "grid": {"lr": list(FINALS)},
        "seeds": {"n": 4, "key": "seed", "start": 0},
    }
    store.create_sweep(sweep_id, name="seeded", spec=spec, metric="val_acc", mode="max", n_trials=8)
    now = time.time()
    for lr, finals in FINALS.items():
        for seed, final in enumerate(finals):
            trial = store.add_trial(sweep_id, f"{lr}-{seed}", {"lr": lr, "seed": seed, "epochs": 2})
            store.set_trial_status(trial, "running")
            # the first epoch's value is higher than the final one: finals are what count
            store.add_points(trial, [("val_acc", 1, 0.99, now), ("val_acc", 2, final, now)])
            store.set_trial_status(trial, "completed", last_epoch=2)
    store.finish_sweep(sweep_id, "completed")


def test_the_configuration_table_ranks_by_mean_final_with_an_interval(sqlite_url: str) -> None:
    with open_store(sqlite_url, create=True) as store:
        _seeded_sweep(store)
        trials = store.trials("seeded-1")
        finals = final_values(store.points("seeded-1", metrics=["val_acc"]))
    table = configuration_table(
        trials, finals, varied=["lr"], seed_key="seed", metric="val_acc", mode="max"
    )
    assert list(table["lr"]) == [0.1, 0.01]
    assert list(table["seeds"]) == ["4/4", "4/4"]
    assert table["mean val_acc"].iloc[0] == pytest.approx(sum(FINALS[0.1]) / 4)
    low, high = (float(x) for x in table["95% CI"].iloc[0].strip("[]").split(", "))
    assert low < sum(FINALS[0.1]) / 4 < high
    assert list(table["trials"]) == ["4 completed", "4 completed"]


def test_a_configuration_is_its_config_without_the_seed() -> None:
    a = config_key({"lr": 0.1, "seed": 0, "layers": 2}, "seed")
    b = config_key({"layers": 2, "seed": 3, "lr": 0.1}, "seed")
    assert a == b and "seed" not in a
    assert config_key({"lr": 0.1, "seed": 0}, None) != config_key({"lr": 0.1, "seed": 1}, None)


def test_final_values_take_each_trials_last_step() -> None:
    points = pd.DataFrame({"trial_id": [1, 1, 2], "step": [2, 1, 5], "value": [0.5, 0.9, math.nan]})
    finals = final_values(points)
    assert finals[1] == 0.5 and math.isnan(finals[2])
    assert final_values(points.iloc[0:0]).empty


def test_status_and_the_summary_name_the_best_configuration_not_the_luckiest_trial(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(sqlite_url, create=True) as store:
        _seeded_sweep(store)
    assert main(["status", "seeded-1", "--store", sqlite_url]) == 0
    out = capsys.readouterr().out
    best = next(line for line in out.splitlines() if line.startswith("best configuration"))
    assert "lr=0.1:" in best and "over 4 seeds" in best and "[" in best
    assert "configurations by mean final val_acc over seeds" in out
    # every trial is still listed, with its seed
    assert out.count(" completed ") >= 8 and " seed " in out


def test_ls_shows_a_seeded_sweeps_best_configuration_mean_not_its_luckiest_trial(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(sqlite_url, create=True) as store:
        _seeded_sweep(store)
    assert main(["ls", "--store", sqlite_url]) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if line.startswith("seeded-1")]
    mean = sum(FINALS[0.1]) / 4  # lr 0.1's mean; lr 0.01's luckiest seed reached 0.99
    assert f"{mean:.4g}*" in row and "0.99" not in row
    assert "* a seeded sweep: the best configuration's mean final over its seeds" in out


def test_a_sweep_without_seeds_keeps_its_trial_table(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(sqlite_url, create=True) as store:
        store.create_sweep(
            "plain-1",
            name="plain",
            spec={"grid": {"lr": [0.1]}},
            metric="val_acc",
            mode="max",
            n_trials=1,
        )
        trial = store.add_trial("plain-1", "r1", {"lr": 0.1})
        store.add_points(trial, [("val_acc", 1, 0.5, time.time())])
    assert main(["status", "plain-1", "--store", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert "best configuration" not in out and "best val_acc" in out


def test_a_trial_that_diverged_last_has_a_nan_final_not_an_earlier_value() -> None:
    points = pd.DataFrame(
        {
            "trial_id": [1, 1, 1, 2, 2],
            "step": [1, 2, 3, 2, 1],
            "value": [0.5, 0.4, np.nan, 0.7, 0.6],
        }
    )
    finals = final_values(points)
    assert math.isnan(finals[1]) and finals[2] == 0.7
