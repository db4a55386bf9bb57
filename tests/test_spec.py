"""Sweep specs: the shipped ones load, and every kind of mistake gets a clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.driver.tune_spec import decision_epochs, param_space
from runner.errors import SpecError
from runner.spec import MAX_TRIALS, POINT_KEY, load_spec, parse_spec, user_config
from tests.helpers.paths import REPO

SWEEPS = sorted((REPO / "experiments" / "sweeps").glob("*.yaml"))

GOOD = """\
name: t
trainable: tests.trainables:steady
stop: {epochs: 2}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_shipped_specs_load(path: Path) -> None:
    spec = load_spec(path)
    assert 1 <= spec.n_trials <= MAX_TRIALS


def test_seed_grid_is_the_tutorials_grid_with_and_without_bn() -> None:
    spec = load_spec(REPO / "experiments/sweeps/seed_grid.yaml")
    assert spec.n_trials == 18
    assert spec.grid == {
        "lr": [0.1, 0.01, 0.001],
        "beta1": [0.8, 0.88, 0.9],
        "batch_norm": [True, False],
    }
    assert spec.fixed["dataset"] == "digits"


def test_param_space_has_grid_samplers_and_stop(tmp_path: Path) -> None:
    from ray import tune

    spec = load_spec(
        _write(
            tmp_path,
            GOOD
            + """\
samples: 3
fixed: {dataset: digits}
grid: {lr: [0.1, 0.01]}
sample:
  wd: {loguniform: [1.0e-5, 1.0e-2]}
  hidden: {int: [16, 64]}
  act: {choice: [relu, tanh]}
  drop: {uniform: [0.0, 0.5]}
""",
        )
    )
    space = param_space(spec)
    assert spec.n_trials == 6
    assert space["dataset"] == "digits" and space["epochs"] == 2
    assert space[POINT_KEY] == tune.grid_search(list(range(6)))  # one trial per point
    assert space["hidden"].lower == 16 and space["hidden"].upper == 65  # inclusive for users
    assert space["wd"].lower == pytest.approx(1e-5)


def _tune_configs(space: dict[str, Any]) -> list[dict[str, Any]]:
    """Trial configs as Ray Tune makes them from a param_space: functions swapped for
    placeholders (ray.tune.tune.run), the variants generated, each trial's placeholders
    resolved against its own config (Trial.resolve_config_placeholders)."""
    from ray.tune.impl.placeholder import (
        create_resolvers_map,
        inject_placeholders,
        resolve_placeholders,
    )
    from ray.tune.search.variant_generator import generate_variants

    resolvers = create_resolvers_map()
    space = inject_placeholders(space, resolvers)
    configs = []
    for _, variant in generate_variants({"config": space}):
        resolve_placeholders(variant["config"], resolvers)
        configs.append(variant["config"])
    return configs


def test_ray_expands_the_space_into_one_config_per_point(tmp_path: Path) -> None:

    spec = load_spec(
        _write(
            tmp_path,
            GOOD
            + """\
samples: 2
fixed: {dataset: digits}
grid:
  lr: [0.1, 0.01]
  layers: [[64, 64], [128]]
  opt: [{name: sgd}, {name: adam, beta1: 0.9}]
sample: {wd: {loguniform: [1.0e-5, 1.0e-2]}}
""",
        )
    )
    configs = [user_config(c) for c in _tune_configs(param_space(spec))]
    assert len(configs) == spec.n_trials == 16
    # list and dict values arrive whole, in the spec's order, beside fixed values and stop
    assert [{k: c[k] for k in spec.grid} for c in configs] == spec.points()
    assert all(c["dataset"] == "digits" and c["epochs"] == 2 for c in configs)
    assert len({c["wd"] for c in configs}) == 16  # drawn per trial


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (GOOD + "grid: {lr: []}\n", "grid.lr", "at least one value"),
        (GOOD + "colour: red\n", "colour", "not a known key"),
        (GOOD + "resources: {cpus: 2}\n", "resources.cpus", "not a known key"),
        (GOOD + "samples: many\n", "samples", "valid integer"),
        (GOOD + "mode: maximum\n", "mode", "'max' or 'min'"),
        (GOOD + "sample: {lr: {uniform: [0.5, 0.1]}}\n", "sample.lr", "min >= max"),
        (GOOD + "sample: {lr: {loguniform: [0, 0.1]}}\n", "sample.lr", "<= 0"),
        (GOOD + "sample: {lr: {uniform: [0, 1], choice: [1]}}\n", "sample.lr", "exactly one"),
        (GOOD + "fixed: {lr: 1}\ngrid: {lr: [1, 2]}\n", "", "in both fixed and grid"),
        (GOOD + "fixed: {epochs: 3}\n", "", "set by stop"),
        (
            "name: t\ntrainable: tests.trainables:steady\nstop: {}\n",
            "stop",
            "neither epochs nor steps",
        ),
        ("name: t\nstop: {epochs: 1}\n", "trainable", "is required"),
        (
            "name: 'bad name!'\ntrainable: a:b\nstop: {epochs: 1}\n",
            "name",
            "not a usable sweep name",
        ),
        ("name: t\ntrainable: nocolon\nstop: {epochs: 1}\n", "trainable", "module:function"),
        (GOOD + "resources: {gpu: 1.5}\n", "resources.gpu", "whole GPUs"),
        (GOOD + "max_concurrent: 0\n", "max_concurrent", "greater than 0"),
    ],
)
def test_each_kind_of_mistake_names_the_field_and_the_fix(
    tmp_path: Path, text: str, field: str, words: str
) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, text))
    message = str(info.value)
    assert message.startswith(str(tmp_path / "spec.yaml"))
    assert words in message
    assert "Fix:" in message
    assert any(f == field for f, _, _ in info.value.problems), info.value.problems


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, GOOD + "grid: {lr: []}\ncolour: red\n"))
    assert {f for f, _, _ in info.value.problems} == {"grid.lr", "colour"}


@pytest.mark.parametrize(
    ("trainable", "words"),
    [
        ("no_such_module_xyz:train", "does not import"),
        ("tests.trainables:no_such_fn", "has no function 'no_such_fn'"),
    ],
)
def test_trainable_must_import(tmp_path: Path, trainable: str, words: str) -> None:
    text = GOOD.replace("tests.trainables:steady", trainable)
    with pytest.raises(SpecError, match=words):
        load_spec(_write(tmp_path, text))


def test_large_grids_need_allow_large(tmp_path: Path) -> None:
    values = list(range(40))
    text = GOOD + f"grid: {{a: {values}, b: {values}}}\n"  # 1,600 trials
    with pytest.raises(SpecError, match="--allow-large"):
        load_spec(_write(tmp_path, text))
    assert load_spec(_write(tmp_path, text), allow_large=True).n_trials == 1600


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name: [unclosed\n", "not valid YAML at line"),
        ("- a\n- b\n", "must be a mapping"),
        ("!!python/object/apply:os.system ['echo hi']\n", "not valid YAML"),
    ],
)
def test_unreadable_documents(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(SpecError, match=words):
        load_spec(_write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the spec file"):
        load_spec(tmp_path / "absent.yaml")


def test_asha_decision_epochs_are_its_rungs(tmp_path: Path) -> None:
    spec = load_spec(
        _write(
            tmp_path,
            GOOD.replace("{epochs: 2}", "{epochs: 27}")
            + "scheduler: {type: asha, grace_period: 1, reduction_factor: 3}\n",
        )
    )
    assert decision_epochs(spec) == {1, 3, 9, 27}
    median = spec.model_copy(
        update={
            "scheduler": spec.scheduler.model_copy(update={"type": "median", "grace_period": 25})
        }
    )
    assert decision_epochs(median) == {25, 26, 27}


def test_trial_order_is_the_grid_or_one_fixed_shuffle(tmp_path: Path) -> None:
    from ray import tune
    from ray.tune.search.variant_generator import generate_variants

    grid = GOOD + "samples: 2\ngrid: {lr: [0.1, 0.01, 0.001], bn: [true, false]}\n"
    # Ray Tune's grid order: keys sorted by name, the first (bn) varying fastest
    in_grid_order = [{"lr": lr, "bn": bn} for lr in (0.1, 0.01, 0.001) for bn in (True, False)] * 2
    plain = load_spec(_write(tmp_path, grid))
    assert plain.points() == in_grid_order  # no scheduler: the grid in Ray Tune's order
    grid_search = {k: tune.grid_search(v) for k, v in plain.grid.items()}
    ray_order = [s["config"] for _, s in generate_variants({"config": grid_search})]
    assert ray_order == in_grid_order[:6]

    asha = load_spec(_write(tmp_path, grid + "scheduler: {type: asha}\n"))
    shuffled = asha.points()
    assert shuffled != in_grid_order
    assert sorted(map(repr, shuffled)) == sorted(map(repr, in_grid_order))  # every trial, once each
    assert load_spec(_write(tmp_path, grid + "scheduler: {type: asha}\n")).points() == shuffled

    kept = load_spec(_write(tmp_path, grid + "scheduler: {type: asha}\norder: grid\n"))
    assert kept.points() == in_grid_order
    assert load_spec(_write(tmp_path, grid + "order: shuffled\n")).points() == shuffled
    assert load_spec(_write(tmp_path, GOOD)).points() == [{}]


def test_unknown_order_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, GOOD + "order: random\n"))
    assert "'grid' or 'shuffled'" in str(info.value)
    assert [f for f, _, _ in info.value.problems] == ["order"]


def test_yaml_1_2_numbers_are_floats_ints_stay_ints_quoted_stay_strings(tmp_path: Path) -> None:
    spec = load_spec(
        _write(
            tmp_path,
            GOOD
            + """\
trial_timeout: 1e3
fixed: {wd: 1E5, shift: -2.5e-4, big: +1e3, eps: 1.0e-5, n: 3, text: '1e-3', opts: {lo: 1e-2}}
grid: {lr: [1e-1, 1e-2, 1e-3]}
sample: {decay: {loguniform: [1e-5, 1e-2]}}
""",
        )
    )
    assert spec.grid["lr"] == [0.1, 0.01, 0.001]
    assert all(type(v) is float for v in spec.grid["lr"])
    assert spec.fixed == {
        "wd": 100000.0,
        "shift": -0.00025,
        "big": 1000.0,
        "eps": 1e-5,
        "n": 3,
        "text": "1e-3",
        "opts": {"lo": 0.01},
    }
    assert type(spec.fixed["n"]) is int and type(spec.fixed["wd"]) is float
    assert spec.trial_timeout == 1000.0
    assert spec.sample["decay"].loguniform == (1e-5, 1e-2)


def test_the_yaml_1_2_loader_leaves_pyyaml_alone() -> None:
    import yaml

    assert yaml.safe_load("lr: 1e-3") == {"lr": "1e-3"}  # no global change to SafeLoader


@pytest.mark.parametrize(
    ("text", "field", "key", "lines"),
    [
        (GOOD + "name: u\n", "name", "name", "lines 1 and 4"),
        (GOOD + "grid:\n  lr: [0.1]\n  bs: [8]\n  lr: [0.2]\n", "grid.lr", "lr", "lines 5 and 7"),
        (GOOD + "fixed:\n  seed: 1\n  seed: 2\n", "fixed.seed", "seed", "lines 5 and 6"),
        (
            GOOD + "grid:\n  opt:\n  - {name: adam, beta1: 0.9, beta1: 0.8}\n",
            "grid.opt[0].beta1",
            "beta1",
            "lines 6 and 6",
        ),
        (
            GOOD + "fixed:\n  net:\n    depth: 2\n    depth: 3\n",
            "fixed.net.depth",
            "depth",
            "lines 6 and 7",
        ),
    ],
)
def test_a_key_given_twice_is_refused_with_both_lines(
    tmp_path: Path, text: str, field: str, key: str, lines: str
) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, text))
    message = str(info.value)
    assert f"{field}: key {key!r} is given twice, at {lines}" in message
    assert "Fix: keep one of them" in message
    assert [f for f, _, _ in info.value.problems] == [field]


def test_a_key_given_twice_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, GOOD + "colour: red\nfixed: {a: 1, a: 2}\n"))
    assert {f for f, _, _ in info.value.problems} == {"colour", "fixed.a"}


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        (GOOD + "grid: {lr: [0.1, .nan]}\n", "grid.lr[1]", "nan"),
        (GOOD + "grid: {layers: [[64], [64, .inf]]}\n", "grid.layers[1]", "inf (inside [64, inf])"),
        (GOOD + "grid: {opt: [{name: sgd, lr: -.inf}]}\n", "grid.opt[0]", "-inf (inside {"),
        (GOOD + "fixed: {eps: .nan}\n", "fixed.eps", "nan"),
        (GOOD + "fixed: {net: {widths: [1, .inf]}}\n", "fixed.net", "inf (inside {"),
        (GOOD + "resources: {cpu: .nan}\n", "resources.cpu", "got nan"),
        (GOOD + "resources: {gpu: .inf}\n", "resources.gpu", "got inf"),
        (GOOD + "trial_timeout: .inf\n", "trial_timeout", "got inf"),
        (
            GOOD + "scheduler: {type: asha, reduction_factor: .inf}\n",
            "scheduler.reduction_factor",
            "got inf",
        ),
        (GOOD + "scheduler: {type: asha, max_t: .nan}\n", "scheduler.max_t", "got nan"),
        (GOOD + "sample: {lr: {uniform: [0, .inf]}}\n", "sample.lr.uniform[1]", "got inf"),
        (GOOD + "sample: {lr: {loguniform: [.nan, 1]}}\n", "sample.lr.loguniform[0]", "got nan"),
        (GOOD + "sample: {n: {int: [-.inf, 3]}}\n", "sample.n.int[0]", "got -inf"),
        (GOOD + "sample: {act: {choice: [relu, .nan]}}\n", "sample.act.choice[1]", "nan"),
    ],
)
def test_nan_and_infinity_are_refused(tmp_path: Path, text: str, field: str, value: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, text))
    message = str(info.value)
    assert f"{field}: " in message and value in message
    assert "finite number" in message and "Fix: give a finite number" in message
    assert [f for f, _, _ in info.value.problems] == [field]


def test_nan_from_a_dict_is_refused_too() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(
            {
                "name": "t",
                "trainable": "a:b",
                "stop": {"epochs": 1},
                "grid": {"lr": [0.1, float("nan")]},
                "fixed": {"eps": float("-inf")},
            }
        )
    assert [f for f, _, _ in info.value.problems] == ["fixed.eps", "grid.lr[1]"]
    assert "grid.lr[1]: nan is not a finite number" in str(info.value)


def test_renamed_checks_the_new_name(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, GOOD + "grid: {lr: [0.1, 0.01]}\n"))
    copy = spec.renamed("seed_grid.v2")
    assert copy.name == "seed_grid.v2" and spec.name == "t"
    assert copy.model_dump() == {**spec.model_dump(), "name": "seed_grid.v2"}
    with pytest.raises(SpecError) as info:
        spec.renamed("my sweep!")
    message = str(info.value)
    assert message.startswith("--name: ")
    assert "'my sweep!' is not a usable sweep name" in message
    assert "Fix: use letters, digits" in message


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("fixed: {__point: 3}", "fixed.__point"),
        ("grid: {__seed: [1, 2]}", "grid.__seed"),
        ("sample: {__lr: {uniform: [0, 1]}}", "sample.__lr"),
    ],
)
def test_parameter_names_beginning_with_two_underscores_are_reserved(
    tmp_path: Path, section: str, field: str
) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, GOOD + section + "\n"))
    name = field.partition(".")[2]
    message = str(info.value)
    assert f"{field}: parameter {name!r} begins with '__', which is reserved" in message
    assert f"Fix: rename it, e.g. {name.lstrip('_')!r}" in message
    assert [f for f, _, _ in info.value.problems] == [field]


def test_a_merge_key_overridden_is_not_a_key_given_twice(tmp_path: Path) -> None:
    text = GOOD + "fixed:\n  base: &b {x: 1, y: 2}\n  over:\n    <<: *b\n    x: 2\n"
    assert load_spec(_write(tmp_path, text)).fixed["over"] == {"x": 2, "y": 2}
