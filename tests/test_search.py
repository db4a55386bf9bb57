"""Search beyond the grid: random and TPE (Ray Tune's OptunaSearch) over the spec's grid values
and sample distributions. Spec checks and the Ray Tune objects first (no Ray runtime), then
real sweeps: trials and max_concurrent respected, ASHA pruning, resume after Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from runner.driver.tune_spec import SearchSpace, param_space, searcher, tune_config
from runner.errors import SpecError
from runner.spec import MAX_TRIALS, load_spec
from runner.store import open_store
from tests.helpers.cli import SWEEPSCOPE, cli
from tests.helpers.paths import REPO
from tests.helpers.waiting import wait_for

BASE: dict[str, Any] = {
    "name": "searched",
    "trainable": "tests.trainables:checkpointed",
    "stop": {"epochs": 3},
    "checkpoint_every": 0,
    "fixed": {"steps_per_epoch": 5, "sleep": 0.0},
    "grid": {"quality": [0.2, 0.4, 0.6, 0.8, 1.0], "flag": [True, False]},
    "sample": {"wd": {"loguniform": [1.0e-5, 1.0e-2]}},
}


def _spec(tmp_path: Path, **changes: Any) -> Path:
    body = {**BASE, **changes}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in body.items() if v is not None}))
    return path


# -- the spec ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"search": {"type": "tpe"}}, "search", "type 'tpe' needs trials"),
        ({"search": {"type": "random", "trials": 0}}, "search.trials", "0 trials would run"),
        ({"search": {"type": "grid", "seed": 3}}, "search", "seed: 3 is for a searcher"),
        ({"search": {"type": "grid", "trials": 9}}, "search", "trials: 9 is for a searcher"),
        ({"search": {"type": "tpd", "trials": 5}}, "search.type", "did you mean 'tpe'?"),
        ({"search": {"type": "randon", "trials": 5}}, "search.type", "did you mean 'random'?"),
        ({"search": {"type": "bayes", "trials": 5}}, "search.type", "give one of grid"),
        ({"search": {"type": "tpe", "trials": 5, "seed": -1}}, "search.seed", "greater than"),
        ({"search": {"type": "tpe", "trials": 5}, "samples": 3}, "", "samples: 3 is for a grid"),
        ({"search": {"type": "tpe", "trials": 5}, "order": "grid"}, "", "order: grid is for a"),
        (
            {"search": {"type": "tpe", "trials": 5}, "grid": {"q": [1.0]}, "sample": None},
            "",
            "search type 'tpe' has nothing to search",
        ),
    ],
)
def test_each_search_mistake_names_the_field_the_value_and_the_fix(
    tmp_path: Path, changes: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(_spec(tmp_path, **changes))
    message = str(info.value)
    assert words in message and "Fix:" in message, message
    assert any(f == field for f, _, _ in info.value.problems), info.value.problems


def test_many_searched_trials_need_allow_large(tmp_path: Path) -> None:
    path = _spec(tmp_path, search={"type": "random", "trials": MAX_TRIALS + 1})
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.problems[0][0] == "search.trials" and "--allow-large" in str(info.value)
    assert load_spec(path, allow_large=True).n_trials == MAX_TRIALS + 1


def test_no_search_key_is_the_grid_and_a_searched_sweep_counts_its_trials(tmp_path: Path) -> None:
    grid = load_spec(_spec(tmp_path))
    assert grid.search.type == "grid" and grid.n_trials == 10
    assert searcher(grid) is None
    config = tune_config(grid, max_concurrent=3, reuse_actors=True)
    assert config.num_samples == 1 and config.max_concurrent_trials == 3

    tpe = load_spec(_spec(tmp_path, search={"type": "tpe", "trials": 7}))
    assert tpe.n_trials == 7
    # the searcher suggests the grid and sample keys: the space holds only what never varies
    assert param_space(tpe) == {"steps_per_epoch": 5, "sleep": 0.0, "epochs": 3}
    config = tune_config(tpe, max_concurrent=None, reuse_actors=True)
    assert config.num_samples == 7 and config.max_concurrent_trials is None
    assert config.scheduler is None


@pytest.mark.parametrize("kind", ["asha", "median"])
def test_a_searcher_goes_with_either_scheduler(tmp_path: Path, kind: str) -> None:
    from ray.tune.schedulers import AsyncHyperBandScheduler, MedianStoppingRule

    spec = load_spec(_spec(tmp_path, search={"type": "tpe", "trials": 7}, scheduler={"type": kind}))
    config = tune_config(spec, max_concurrent=2, reuse_actors=True)
    expected = AsyncHyperBandScheduler if kind == "asha" else MedianStoppingRule
    assert isinstance(config.scheduler, expected)
    assert config.search_alg.max_concurrent == 2 and config.num_samples == 7


def _sampler(search: Any) -> Any:
    """The Optuna sampler behind Ray Tune's OptunaSearch."""
    return search._ot_study.sampler


def test_the_searchers_are_seeded_optuna_samplers_behind_a_concurrency_limit(
    tmp_path: Path,
) -> None:
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    tpe: Any = searcher(load_spec(_spec(tmp_path, search={"type": "tpe", "trials": 5, "seed": 4})))
    assert isinstance(tpe, OptunaSearch)
    assert isinstance(_sampler(tpe), optuna.samplers.TPESampler)
    assert (tpe.metric, tpe.mode) == ("val_acc", "max")
    limited: Any = searcher(load_spec(_spec(tmp_path, search={"type": "random", "trials": 5})), 2)
    assert isinstance(limited, ConcurrencyLimiter) and limited.max_concurrent == 2
    assert isinstance(_sampler(limited.searcher), optuna.samplers.RandomSampler)


def _draws(spec_path: Path, n: int, seed: int) -> list[dict[str, Any]]:
    """What SearchSpace yields from an Optuna study with a seeded random sampler."""
    space = SearchSpace(load_spec(spec_path))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [space(study.ask()) for _ in range(n)]


def test_the_space_draws_grid_values_whole_and_sample_distributions(tmp_path: Path) -> None:
    path = _spec(
        tmp_path,
        search={"type": "random", "trials": 3},
        grid={"lr": [0.1, 1.0e-3, 0.01], "layers": [[64, 64], [128]], "bn": [True, False]},
        sample={
            "wd": {"loguniform": [1.0e-5, 1.0e-2]},
            "width": {"int": [16, 64]},
            "act": {"choice": ["relu", "tanh"]},
            "one": {"choice": [{"a": 1}]},
        },
    )
    draws = _draws(path, 200, seed=0)
    assert {d["lr"] for d in draws} == {0.1, 1.0e-3, 0.01}
    assert {tuple(d["layers"]) for d in draws} == {(64, 64), (128,)}
    assert {d["bn"] for d in draws} == {True, False}
    assert {d["act"] for d in draws} == {"relu", "tanh"}
    assert all(d["one"] == {"a": 1} for d in draws)
    assert all(1.0e-5 <= d["wd"] <= 1.0e-2 and 16 <= d["width"] <= 64 for d in draws)
    assert {type(d["width"]) for d in draws} == {int}
    assert _draws(path, 5, seed=1) == _draws(path, 5, seed=1) != _draws(path, 5, seed=2)

    # numbers are ordered choices (an integer index, ascending); anything else a category
    study = optuna.create_study()
    SearchSpace(load_spec(path))(study.ask())
    kinds = study.trials[0].distributions
    assert kinds["lr"] == optuna.distributions.IntDistribution(0, 2)
    assert isinstance(kinds["layers"], optuna.distributions.CategoricalDistribution)
    assert "one" not in kinds  # one value: nothing to suggest


def test_results_without_the_metric_are_not_told_to_optuna(tmp_path: Path) -> None:
    """runner.trial.report sends steps before the first epoch's metrics: the searcher waits."""
    search = searcher(load_spec(_spec(tmp_path, search={"type": "tpe", "trials": 2})))
    search.suggest("t1")
    search.on_trial_result("t1", {"training_iteration": 1, "step": 5})  # no val_acc yet
    search.on_trial_result("t1", {"training_iteration": 2, "val_acc": 0.5, "epoch": 1})
    search.on_trial_complete("t1", {"training_iteration": 3, "val_acc": 0.75, "epoch": 2})
    (trial,) = search._ot_study.trials
    assert trial.intermediate_values == {2: 0.5} and trial.value == 0.75


# -- real sweeps ---------------------------------------------------------------------------
def _sweep(url: str) -> tuple[dict[str, Any], list[dict[str, Any]], dict[int, list[Any]]]:
    """The only sweep in the store, its trials and each trial's events."""
    with open_store(url) as store:
        (sweep,) = store.sweeps()
        trials = store.trials(sweep["id"])
        return sweep, trials, {t["id"]: store.trial_events(t["id"]) for t in trials}


def _most_running_at_once(events: dict[int, list[Any]]) -> int:
    edges = []
    for history in events.values():
        start = next(e["at"] for e in history if e["status"] == "running")
        edges += [(start, 1), (history[-1]["at"], -1)]
    running = most = 0
    for _, change in sorted(edges, key=lambda edge: (edge[0], edge[1])):  # ends before starts
        running += change
        most = max(most, running)
    return most


@pytest.mark.ray
@pytest.mark.parametrize("kind", ["random", "tpe"])
def test_a_searched_sweep_runs_its_trials_within_max_concurrent(tmp_path: Path, kind: str) -> None:
    spec = _spec(tmp_path, max_concurrent=1, search={"type": kind, "trials": 5, "seed": 3})
    url = f"sqlite:///{tmp_path / 's.db'}"
    done = cli("run", str(spec), "--store", url)
    assert done.returncode == 0, done.stderr
    assert "5 trials of tests.trainables:checkpointed" in done.stdout
    sweep, trials, events = _sweep(url)
    assert sweep["status"] == "completed" and sweep["n_trials"] == 5
    assert len(trials) == 5 and {t["status"] for t in trials} == {"completed"}
    assert _most_running_at_once(events) == 1
    configs = [{k: t["config"][k] for k in ("quality", "flag", "wd")} for t in trials]
    if kind == "random":  # seeded: the same draws as Optuna's own random sampler gives
        assert configs == _draws(spec, 5, seed=3)
    for c in configs:
        assert c["quality"] in BASE["grid"]["quality"] and 1.0e-5 <= c["wd"] <= 1.0e-2


@pytest.mark.ray
def test_tpe_with_asha_prunes_poor_trials(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        stop={"epochs": 9},
        max_concurrent=2,
        scheduler={"type": "asha", "grace_period": 1, "reduction_factor": 3},
        search={"type": "tpe", "trials": 8, "seed": 0},
        grid={"quality": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]},
        sample=None,
    )
    url = f"sqlite:///{tmp_path / 's.db'}"
    done = cli("run", str(spec), "--store", url)
    assert done.returncode == 0, done.stderr
    sweep, trials, events = _sweep(url)
    assert sweep["status"] == "completed" and len(trials) == 8
    statuses = [t["status"] for t in trials]
    assert "pruned" in statuses and set(statuses) <= {"completed", "pruned"}
    assert _most_running_at_once(events) <= 2
    for t in trials:
        assert (t["last_epoch"] < 9) == (t["status"] == "pruned")


@pytest.mark.ray
def test_resume_after_ctrl_c_runs_the_rest_and_repeats_no_finished_trial(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        stop={"epochs": 4},
        checkpoint_every=1,
        max_concurrent=2,
        search={"type": "tpe", "trials": 6, "seed": 0},
        fixed={"steps_per_epoch": 10, "sleep": 0.05},
    )
    url = f"sqlite:///{tmp_path / 's.db'}"
    proc = subprocess.Popen(
        [SWEEPSCOPE, "run", str(spec), "--store", url],
        cwd=REPO,
        env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def trials() -> list[dict[str, Any]]:
        try:
            return _sweep(url)[1]
        except Exception:  # not created yet
            return []

    try:
        wait_for(
            "a completed trial and a running one",
            lambda: (
                any(t["status"] == "completed" for t in trials())
                and any(t["status"] == "running" and t["last_epoch"] for t in trials())
            ),
            120,
        )
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    sweep, before, _ = _sweep(url)
    assert sweep["status"] == "stopped" and len(before) < 6
    finished = {t["id"]: t["config"] for t in before if t["status"] == "completed"}

    resumed = cli("resume", sweep["id"], "--store", url)
    assert resumed.returncode == 0, resumed.stderr
    sweep, after, events = _sweep(url)
    assert sweep["status"] == "completed" and sweep["n_trials"] == 6
    assert len(after) == 6 and {t["status"] for t in after} == {"completed"}
    for t in after:
        history = [e["status"] for e in events[t["id"]]]
        assert history.count("completed") == 1, history
        if t["id"] in finished:  # finished before Ctrl-C: never run again
            assert history.count("running") == 1 and t["config"] == finished[t["id"]]
