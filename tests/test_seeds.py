"""Seeds in the spec: every configuration runs once per seed, the trainable gets its seed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.driver import tune_spec
from runner.errors import SpecError
from runner.spec import POINT_KEY, configuration, parse_spec
from runner.store import open_store
from tests.helpers.cli import cli

BASE: dict[str, Any] = {
    "name": "seeded",
    "trainable": "experiments.train:train",
    "stop": {"epochs": 2},
    "grid": {"lr": [0.1, 0.01], "batch_norm": [True, False]},
}


def spec(**changes: Any) -> Any:
    return parse_spec({**BASE, **changes})


def _refusal(**changes: Any) -> str:
    with pytest.raises(SpecError) as caught:
        spec(**changes)
    return str(caught.value)


def test_a_grid_runs_every_configuration_once_per_seed() -> None:
    s = spec(seeds=3)
    points = s.points()
    assert s.n_trials == len(points) == 12
    by_config = Counter(tuple(sorted(configuration(p, s.seed_key).items())) for p in points)
    assert len(by_config) == 4 and set(by_config.values()) == {3}
    assert sorted({p["seed"] for p in points}) == [0, 1, 2]
    # seed by seed: every configuration has run with seed 0 before any runs with seed 1
    assert [p["seed"] for p in points] == [0] * 4 + [1] * 4 + [2] * 4


def test_the_seed_key_and_first_seed_can_be_named() -> None:
    s = spec(seeds={"n": 2, "key": "random_state", "start": 10})
    assert s.seed_key == "random_state"
    assert sorted({p["random_state"] for p in s.points()}) == [10, 11]
    assert all("seed" not in p for p in s.points())


def test_without_seeds_nothing_changes() -> None:
    s = spec()
    assert s.seed_key is None and s.n_trials == 4
    assert all("seed" not in p for p in s.points())


def test_the_trainable_gets_its_seed_in_the_param_space() -> None:
    s = spec(seeds=2)
    space = tune_spec.param_space(s)
    indices = space[POINT_KEY]["grid_search"]
    seeds = [space["seed"].func({POINT_KEY: i}) for i in indices]
    assert Counter(seeds) == {0: 4, 1: 4}


def test_a_random_search_draws_configurations_once_and_runs_each_with_every_seed() -> None:
    s = spec(
        search={"type": "random", "trials": 5, "seed": 7},
        grid={"batch_norm": [True, False]},
        sample={"lr": {"loguniform": [1e-4, 1e-1]}},
        seeds=3,
    )
    assert s.n_trials == 15
    points = tune_spec.random_points(s)
    assert len(points) == 15
    configs = Counter(tuple(sorted(configuration(p, "seed").items())) for p in points)
    assert len(configs) == 5 and set(configs.values()) == {3}
    assert tune_spec.random_points(s) == points  # drawn the same again on resume
    assert tune_spec.searcher(s) is None  # run as a grid of the drawn points
    space = tune_spec.param_space(s)
    assert len(space[POINT_KEY]["grid_search"]) == 15
    assert space["lr"].func({POINT_KEY: 0}) == points[0]["lr"]


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"seeds": 0}, "seeds"),
        ({"seeds": True}, "seeds"),
        ({"seeds": 3, "fixed": {"seed": 0}}, "remove seed from fixed"),
        ({"seeds": 3, "grid": {"seed": [0, 1], "lr": [0.1]}}, "remove seed from grid"),
        (
            {"seeds": 2, "search": {"type": "tpe", "trials": 8}},
            "use search type random or a grid with seeds",
        ),
        ({"seeds": 2, "samples": 2}, "remove samples and keep seeds"),
        (
            {"seeds": 2, "sample": {"wd": {"uniform": [0.0, 0.1]}}},
            "use search: {type: random, trials: N}",
        ),
        ({"seeds": {"n": 2, "key": "__seed"}}, "reserved"),
    ],
)
def test_seeds_that_cannot_work_are_refused_with_the_fix(
    changes: dict[str, Any], named: str
) -> None:
    text = _refusal(**changes)
    assert "seeds" in text and named in text, text


# -- a real sweep ------------------------------------------------------------------------
def seeded(config: dict[str, Any]) -> None:
    """Reports its own seed and lr, so the test sees what each trial was given."""
    from runner import report

    for epoch in range(1, config["epochs"] + 1):
        report.epoch(epoch, step=epoch, val_acc=config["seed"] / 10 + config["lr"])


@pytest.mark.ray
def test_a_seeded_random_search_gives_every_trial_its_seed(tmp_path: Path) -> None:
    path = tmp_path / "seeded.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "seeded",
                "trainable": "tests.test_seeds:seeded",
                "stop": {"epochs": 2},
                "checkpoint_every": 0,
                "search": {"type": "random", "trials": 2, "seed": 1},
                "sample": {"lr": {"uniform": [0.0, 0.01]}},
                "grid": {"width": [8, 16]},
                "seeds": 2,
            }
        )
    )
    url = f"sqlite:///{tmp_path / 's.db'}"
    done = cli("run", str(path), "--store", url)
    assert done.returncode == 0, done.stderr
    assert "4 trials of tests.test_seeds:seeded" in done.stdout
    with open_store(url) as store:
        (sweep,) = store.sweeps()
        trials = store.trials(sweep["id"])
        points = store.points(sweep["id"], metrics=["val_acc"])
    finals = points.sort_values("step").groupby("trial_id")["value"].last()
    assert sweep["status"] == "completed" and len(trials) == 4
    configs = Counter(tuple(sorted(configuration(t["config"], "seed").items())) for t in trials)
    assert len(configs) == 2 and set(configs.values()) == {2}
    for t in trials:  # the trainable saw the seed and lr the store records
        assert finals[t["id"]] == pytest.approx(t["config"]["seed"] / 10 + t["config"]["lr"])
