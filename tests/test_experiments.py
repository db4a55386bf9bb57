"""The example experiment: model structure, datasets, determinism, divergence."""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch
from torch import nn

from experiments.data import load
from experiments.model import MLP, MLPConfig
from experiments.train import TrainConfig, train
from runner import report
from runner.protocol import POINTS_KEY, STATUS_KEY
from tests.helpers.paths import REPO


def _run(**config: Any) -> list[dict[str, Any]]:
    with report.collect() as reports:
        train({"dataset": "synthetic", "hidden": 16, "epochs": 2, **config})
    return reports


def _curve(reports: list[dict[str, Any]]) -> list[float]:
    return [p[2] for r in reports for p in r[POINTS_KEY] if p[0] == "train_loss"]


def test_same_config_same_curve() -> None:
    assert _curve(_run(seed=3, batch_norm=True)) == _curve(_run(seed=3, batch_norm=True))
    assert _curve(_run(seed=3)) != _curve(_run(seed=4))


def test_reports_step_losses_and_epoch_validation() -> None:
    reports = _run(epochs=3, batch_size=100)
    assert reports[-1]["epoch"] == 3
    accs = [p[2] for r in reports for p in r[POINTS_KEY] if p[0] == "val_acc"]
    losses = [p[2] for r in reports for p in r[POINTS_KEY] if p[0] == "val_loss"]
    assert len(accs) == len(losses) == 3
    assert all(0.0 <= a <= 1.0 for a in accs) and all(v > 0 for v in losses)
    steps = [p[1] for r in reports for p in r[POINTS_KEY] if p[0] == "train_loss"]
    assert steps == list(range(1, len(steps) + 1))  # every optimizer step
    assert reports[-1]["step"] == steps[-1]


def test_max_steps_stops_mid_epoch() -> None:
    reports = _run(epochs=None, max_steps=5, batch_size=100)
    assert max(p[1] for r in reports for p in r[POINTS_KEY]) == 5


def test_learning_improves_accuracy() -> None:
    reports = _run(epochs=10, lr=0.01)
    accs = [p[2] for r in reports for p in r[POINTS_KEY] if p[0] == "val_acc"]
    assert len(accs) == 10 and accs[-1] > 0.8 and accs[-1] > accs[0]


def test_huge_learning_rate_diverges_cleanly() -> None:
    reports = _run(optimizer="sgd", lr=1e6, momentum=0.9, epochs=5)
    assert reports[-1][STATUS_KEY] == "diverged"


@pytest.mark.parametrize(
    ("position", "order"),
    [
        ("pre", [nn.Linear, nn.BatchNorm1d, nn.Sigmoid]),
        ("post", [nn.Linear, nn.Sigmoid, nn.BatchNorm1d]),
    ],
)
def test_bn_position(position: str, order: list[type]) -> None:
    model = MLP(
        MLPConfig(
            n_in=4,
            n_out=2,
            hidden=8,
            layers=2,
            activation="sigmoid",
            batch_norm=True,
            bn_position=position,
        )
    )
    kinds = [type(m) for m in model.hidden]
    assert kinds == order * 2
    first = model.hidden[0]
    assert isinstance(first, nn.Linear) and (first.bias is None) == (position == "pre")


def test_no_bn_has_no_batchnorm_layers() -> None:
    model = MLP(MLPConfig(n_in=4, n_out=2, layers=3))
    assert not any(isinstance(m, nn.BatchNorm1d) for m in model.modules())
    assert model(torch.zeros(5, 4)).shape == (5, 2)


def test_small_gaussian_init() -> None:
    model = MLP(MLPConfig(n_in=64, n_out=10, hidden=100, init_std=0.01))
    weights = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, nn.Linear)])
    assert 0.005 < weights.std().item() < 0.02


def test_datasets() -> None:
    digits = load("digits")
    assert digits.n_features == 64 and digits.n_classes == 10
    assert len(digits.y_train) + len(digits.y_val) == 1797
    assert float(digits.x_train.max()) <= 1.0
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*digits, mnist1d, synthetic"):
        load("cifar")


def test_mnist1d_is_generated_locally(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import experiments.data as data

    monkeypatch.setenv("SWEEPSCOPE_CACHE", str(tmp_path))
    load.cache_clear()
    try:
        ds = data.load("mnist1d")
        assert ds.n_features == 40 and len(ds.y_train) == 4000 and len(ds.y_val) == 1000
        assert (tmp_path / "mnist1d_default.npz").exists()
    finally:
        load.cache_clear()


@pytest.mark.slow  # a fresh Python that imports torch: ~10 s
def test_digits_are_read_from_the_cache_once_made(tmp_path: Any) -> None:
    """A worker's first trial reads digits from a small .npz instead of importing scikit-learn."""
    import subprocess
    import sys

    code = (
        "import sys; from experiments.data import load; d = load('digits'); "
        "print(len(d.y_train), float(d.x_train.sum()), 'sklearn' in sys.modules)"
    )
    env = {**os.environ, "SWEEPSCOPE_CACHE": str(tmp_path)}

    def run() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    first, second = run(), run()
    assert (tmp_path / "digits.npz").exists()
    assert first[:2] == second[:2]  # the same split, to the last bit
    assert first[2] == "True" and second[2] == "False"

    (tmp_path / "digits.npz").write_bytes(b"half a file")  # a damaged cache is made again
    assert run() == first and run() == second
    assert [p.name for p in tmp_path.iterdir()] == ["digits.npz"]  # no temporary files left

    (tmp_path / "file").write_text("")  # a cache folder that cannot be made: not used
    env["SWEEPSCOPE_CACHE"] = str(tmp_path / "file" / "cache")
    assert run() == first


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"colour": "red"}, "unknown hyperparameters \\['colour'\\]"),
        ({"optimizer": "rmsprop"}, "unknown optimizer"),
        ({"activation": "gelu"}, "unknown activation"),
    ],
)
def test_bad_hyperparameters(config: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        _run(**config)


def test_config_defaults_are_the_tutorials() -> None:
    cfg = TrainConfig.from_dict({"epochs": 1})
    assert (cfg.beta1, cfg.beta2, cfg.eps) == (0.9, 0.999, 1e-8)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_track_input_follows_one_last_layer_sigmoid_input(batch_norm: bool) -> None:
    from experiments.train import INPUT_QUANTILES, TRACKED_UNIT, _track_input

    torch.manual_seed(0)
    cfg = MLPConfig(
        n_in=6, n_out=3, hidden=5, layers=3, activation="sigmoid", batch_norm=batch_norm
    )
    model = MLP(cfg)
    percentiles = _track_input(model)
    x = torch.randn(50, 6)
    model.train()
    model(x)  # training batches leave BN's running stats moved, and are not kept
    model.eval()
    model(x)
    # What enters the last sigmoid: BN(W x) with BN before g, else W x + b.
    *below, last_g = list(model.hidden)
    assert isinstance(last_g, nn.Sigmoid) and isinstance(below[-1], nn.BatchNorm1d) == batch_norm
    with torch.no_grad():
        z = nn.Sequential(*below)(x)[:, TRACKED_UNIT]
    expected = torch.quantile(z, torch.tensor(list(INPUT_QUANTILES.values()))).tolist()
    got = percentiles()
    assert list(got) == ["input_p15", "input_p50", "input_p85"]
    assert list(got.values()) == pytest.approx(expected)

    model.train()
    model(torch.randn(7, 6) * 100)
    assert list(percentiles().values()) == pytest.approx(expected)  # still the eval pass's


def test_track_input_reports_percentiles_at_every_evaluation() -> None:
    reports = _run(
        epochs=None,
        max_steps=30,
        batch_size=100,
        eval_every=10,
        activation="sigmoid",
        batch_norm=True,
        track_input=True,
    )
    points = [p for r in reports for p in r[POINTS_KEY]]
    by_metric: dict[str, dict[int, float]] = {}
    for name, step, value, _ in points:
        by_metric.setdefault(name, {})[step] = value
    for step in (10, 20, 30):
        p15, p50, p85 = (by_metric[f"input_p{q}"][step] for q in (15, 50, 85))
        assert p15 <= p50 <= p85
    assert set(by_metric["input_p50"]) == set(by_metric["val_acc"])  # same evaluations
    assert "input_p50" not in {p[0] for r in _run(epochs=1) for p in r[POINTS_KEY]}
