"""Planning an extension (runner.extensions), without Ray: which configurations get more
seeds, which grid combinations are new, and what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from runner.errors import SweepscopeError
from runner.extensions import grid_plan, parse_grid_values, refuse_unfinished, seeds_plan
from runner.spec import parse_spec, stored_spec
from runner.store import Store, open_store

BASE: dict[str, Any] = {
    "name": "ext",
    "trainable": "tests.trainables:checkpointed",
    "metric": "val_acc",
    "mode": "max",
    "stop": {"epochs": 1},
    "fixed": {"steps_per_epoch": 2},
    "grid": {"lr": [0.1, 0.01], "bn": [True, False]},
    "seeds": 3,
}

# Final val_acc by (lr, bn), one value per seed 0, 1, 2: (0.1, True) is clearly best, and
# (0.1, False) cannot be told apart from it; the 0.01 pair is far behind.
FINALS = {
    (0.1, True): [0.90, 0.92, 0.91],
    (0.1, False): [0.88, 0.93, 0.90],
    (0.01, True): [0.50, 0.51, 0.52],
    (0.01, False): [0.40, 0.41, 0.42],
}


def _sweep(store: Store, body: dict[str, Any], finals: dict[Any, list[float]]) -> dict[str, Any]:
    spec = stored_spec(parse_spec(body))
    store.create_sweep("s1", name="ext", spec=spec, metric="val_acc", mode="max", n_trials=12)
    key = parse_spec(body).seed_key
    for (lr, bn), values in finals.items():
        for seed, value in enumerate(values):
            config = {"lr": lr, "bn": bn, "steps_per_epoch": 2, "epochs": 1}
            if key:
                config[key] = seed
            trial = store.add_trial("s1", f"r-{lr}-{bn}-{seed}", config)
            store.add_points(trial, [("val_acc", 2, value, 1.0)])
            store.set_trial_status(trial, "completed")
    store.finish_sweep("s1", "completed")
    sweep = store.sweep("s1")
    assert sweep is not None
    return sweep


@pytest.fixture
def store(store_url: str) -> Any:
    with open_store(store_url, create=True) as s:
        yield s


def _plan(store: Store, **kwargs: Any) -> Any:
    sweep = store.sweep("s1")
    assert sweep is not None
    return seeds_plan(sweep, store.trials("s1"), store.points("s1", metrics=["val_acc"]), **kwargs)


def test_seeds_for_every_configuration_continue_each_ones_seeds(store: Store) -> None:
    _sweep(store, BASE, FINALS)
    plan = _plan(store, n=2)
    assert plan.kind == "seeds" and len(plan.points) == 8 and plan.note is None
    assert sorted({p["seed"] for p in plan.points}) == [3, 4]
    # A point holds the grid values and the seed: the spec gives the fixed values.
    assert all(set(p) == {"lr", "bn", "seed"} for p in plan.points)
    assert plan.detail == "2 more seed(s) for every configuration (4): 8 trials"


def test_seeds_for_the_top_configurations_by_mean(store: Store) -> None:
    _sweep(store, BASE, FINALS)
    plan = _plan(store, n=1, where="top", top=2)
    assert [(p["lr"], p["bn"]) for p in plan.points] == [(0.1, True), (0.1, False)]


def test_seeds_where_undecided_go_to_the_best_and_those_tied_with_it(store: Store) -> None:
    _sweep(store, BASE, FINALS)
    plan = _plan(store, n=2, where="undecided")
    assert {(p["lr"], p["bn"]) for p in plan.points} == {(0.1, True), (0.1, False)}
    assert len(plan.points) == 4


def test_a_decided_sweep_gets_no_seeds_and_says_why(store: Store) -> None:
    decided = {k: v for k, v in FINALS.items() if k != (0.1, False)}
    _sweep(store, BASE, decided)
    plan = _plan(store, n=2, where="undecided")
    assert plan.points == [] and plan.note is not None and plan.note.startswith("decided:")


def test_the_plan_says_which_configurations_the_margin_leaves(store: Store) -> None:
    _sweep(store, BASE, FINALS)
    plan = _plan(store, n=1, where="undecided")
    assert plan.detail == (
        "1 more seed(s) for the best configuration and those that could still beat it by "
        "more than the margin (2): 2 trials"
    )


def test_a_wide_margin_ties_the_close_ones_and_decides_the_sweep(store: Store) -> None:
    _sweep(store, BASE, FINALS)
    plan = _plan(store, n=2, where="undecided", margin=0.5)
    assert plan.points == [] and plan.note is not None
    assert plan.note.startswith("decided: '")
    assert "margin 0.5 at 95% confidence: 1 tied with it within the margin, 2 worse" in plan.note


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"margin": -0.01}, r"--margin -0.01: not a number >= 0\. Fix: .*--margin 0.005"),
        ({"margin": float("nan")}, r"--margin nan: not a number >= 0"),
        ({"margin": float("inf")}, r"--margin inf: not a number >= 0"),
        ({"margin": 0.01, "where": "all"}, r"--margin 0.01: .*goes with --where undecided"),
        ({"margin": 0.01, "where": "top", "top": 2}, r"Fix: add --where undecided"),
    ],
)
def test_a_bad_margin_is_refused_with_the_fix(
    store: Store, kwargs: dict[str, Any], match: str
) -> None:
    _sweep(store, BASE, FINALS)
    with pytest.raises(SweepscopeError, match=match):
        _plan(store, n=1, **({"where": "undecided"} | kwargs))


def test_seeds_refused_for_a_sweep_run_without_seeds(store: Store) -> None:
    body = {k: v for k, v in BASE.items() if k != "seeds"}
    _sweep(store, body, {k: v[:1] for k, v in FINALS.items()})
    with pytest.raises(SweepscopeError, match=r"--seeds: sweep s1 was run without seeds.*Fix"):
        _plan(store, n=1)


def test_top_needs_a_count(store: Store) -> None:
    _sweep(store, BASE, FINALS)
    with pytest.raises(SweepscopeError, match=r"--top None"):
        _plan(store, n=1, where="top")


def test_grid_values_run_only_the_new_combinations_with_every_seed(store: Store) -> None:
    sweep = _sweep(store, BASE, FINALS)
    plan = grid_plan(sweep, store.trials("s1"), parse_grid_values(["lr=1e-3,0.1"]))
    assert plan.kind == "grid" and plan.spec.grid["lr"] == [0.1, 0.01, 0.001]
    assert sorted((p["lr"], p["bn"], p["seed"]) for p in plan.points) == sorted(
        (0.001, bn, seed) for bn in (True, False) for seed in range(3)
    )
    assert plan.spec.n_trials == 18 and "lr += 0.001, 0.1: 6 new trials" in plan.detail


@pytest.mark.parametrize(
    ("body", "values", "words"),
    [
        (BASE, ["depth=2,3"], r"'depth' is not a grid key of sweep s1 \(its grid keys: bn, lr\)"),
        (BASE, ["lr=0.1"], "every value given is in sweep s1's grid already"),
        (
            {
                **BASE,
                "grid": {"bn": [True, False]},
                "search": {"type": "random", "trials": 2},
                "sample": {"lr": {"uniform": [0.0, 0.1]}},
            },
            ["bn=true"],
            "is a random search",
        ),
    ],
)
def test_grid_refusals_name_the_key_and_the_fix(
    store: Store, body: dict[str, Any], values: list[str], words: str
) -> None:
    sweep = _sweep(store, body, FINALS)
    with pytest.raises(SweepscopeError, match=words):
        grid_plan(sweep, store.trials("s1"), parse_grid_values(values))


@pytest.mark.parametrize("item", ["lr", "lr=", "=1,2"])
def test_a_malformed_grid_argument_shows_the_form(item: str) -> None:
    with pytest.raises(SweepscopeError, match=r"expected KEY=V1,V2"):
        parse_grid_values([item])


def test_an_extension_starts_only_from_a_sweep_that_ran_to_its_end(store: Store) -> None:
    sweep = _sweep(store, BASE, FINALS)
    refuse_unfinished(sweep, store.trials("s1"))  # completed: fine
    left = store.add_trial("s1", "late", {"lr": 0.1, "bn": True, "seed": 9})
    with pytest.raises(SweepscopeError, match=r"1 trial\(s\) left to run \(trial 13\).*resume s1"):
        refuse_unfinished(sweep, store.trials("s1"))
    store.set_trial_status(left, "completed")
    running = {**sweep, "status": "running"}
    with pytest.raises(SweepscopeError, match=r"sweep s1 is running.*sweepscope stop s1"):
        refuse_unfinished(running, store.trials("s1"))


def test_a_round_is_recorded_and_its_trials_numbered_after_the_sweeps(store: Store) -> None:
    _sweep(store, BASE, FINALS)
    plan = _plan(store, n=1, where="top", top=1)
    round_ = store.add_round(
        "s1", kind=plan.kind, detail=plan.detail, points=plan.points, experiment="s1-round{round}"
    )
    assert round_ == 2
    sweep = store.sweep("s1")
    assert sweep is not None and sweep["status"] == "running" and sweep["n_trials"] == 13
    (recorded,) = store.rounds("s1")
    assert recorded["experiment"] == "s1-round2" and recorded["points"] == plan.points
    trial = store.add_trial("s1", "new", {"lr": 0.1, "bn": True, "seed": 3})
    assert (store.trial(trial)["number"], store.trial(trial)["round"]) == (13, 2)
    with pytest.raises(Exception, match=r"sweep s1 .* is running.*then extend"):
        store.add_round("s1", kind="seeds", detail="", points=[], experiment="x")
