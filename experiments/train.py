"""The train function the shipped sweeps run: `experiments.train:train`.

It reads its hyperparameters from `config` (see TrainConfig), reports the training loss
at every optimizer step and the validation loss and accuracy at every epoch through
`runner.report`, and returns early, as `diverged`, if the loss stops being finite.
With `track_input`, every evaluation also reports the 15th/50th/85th percentiles, over the
validation set, of the input to one fixed unit of the last hidden nonlinearity (the BN
paper's Figure 1 b, c) as input_p15, input_p50 and input_p85.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from experiments.data import load
from experiments.model import MLP, MLPConfig
from runner import report

__all__ = ["INPUT_QUANTILES", "TRACKED_UNIT", "TrainConfig", "evaluate", "train"]

# track_input follows this unit of the last hidden layer, at these quantiles.
TRACKED_UNIT = 0
INPUT_QUANTILES = {"input_p15": 0.15, "input_p50": 0.50, "input_p85": 0.85}


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "digits"
    # algorithm level
    optimizer: str = "adam"  # adam | sgd (with momentum)
    lr: float = 1e-3  # alpha
    beta1: float = 0.9  # Adam's first-moment decay
    beta2: float = 0.999  # Adam's second-moment decay
    eps: float = 1e-8  # Adam's epsilon
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0  # lambda (L2)
    batch_size: int = 64
    # network level
    hidden: int = 64
    layers: int = 2
    activation: str = "relu"
    batch_norm: bool = False
    bn_position: str = "pre"
    init_std: float | None = None
    # run
    epochs: int | None = None  # set by the spec's stop
    max_steps: int | None = None  # set by the spec's stop
    eval_every: int = 0  # also evaluate every N steps (0: only at epoch ends)
    track_input: bool = False  # report percentiles of one last-layer unit's input per evaluation
    seed: int = 0
    device: str = "auto"  # auto: CUDA when this trial was given a GPU, else CPU

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(
                f"unknown hyperparameters {unknown} for experiments.train. "
                f"Fix: use only {sorted(known)}."
            )
        cfg = cls(**config)
        if cfg.epochs is None and cfg.max_steps is None:
            raise ValueError("neither epochs nor max_steps is set. Fix: give the spec a stop.")
        if cfg.optimizer not in ("adam", "sgd"):
            raise ValueError(f"unknown optimizer {cfg.optimizer!r}. Fix: use adam or sgd.")
        return cfg


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "auto":
        # The runner hides every GPU (CUDA_VISIBLE_DEVICES="") from a trial given none.
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def _optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(
            model.parameters(),
            lr=cfg.lr,
            betas=(cfg.beta1, cfg.beta2),
            eps=cfg.eps,
            weight_decay=cfg.weight_decay,
        )
    return torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )


def _track_input(model: MLP) -> Callable[[], dict[str, float]]:
    """Watch the input to unit TRACKED_UNIT of the last hidden nonlinearity.

    A forward hook keeps that input from the latest eval-mode pass (the validation set;
    training batches are ignored). The returned function gives its INPUT_QUANTILES.
    """
    seen: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if not module.training:
            seen[:] = [inputs[0][:, TRACKED_UNIT].detach()]  # (n_val,)

    model.last_activation().register_forward_hook(keep)

    def percentiles() -> dict[str, float]:
        q = torch.tensor(list(INPUT_QUANTILES.values()), device=seen[0].device)
        values = torch.quantile(seen[0].float(), q).tolist()
        return dict(zip(INPUT_QUANTILES, values, strict=True))

    return percentiles


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) on a whole split, in eval mode (BN uses running stats)."""
    was_training = model.training
    model.eval()
    logits = model(x)
    loss = F.cross_entropy(logits, y).item()
    acc = (logits.argmax(dim=1) == y).float().mean().item()
    model.train(was_training)
    return loss, acc


def train(config: dict[str, Any]) -> None:
    cfg = TrainConfig.from_dict(config)
    torch.set_num_threads(report.cpus())
    torch.manual_seed(cfg.seed)
    device = _device(cfg)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    report.info(device=f"{device} ({name})" if device.type == "cuda" else "cpu")

    data = load(cfg.dataset)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_val, y_val = data.x_val.to(device), data.y_val.to(device)
    model = MLP(
        MLPConfig(
            n_in=data.n_features,
            n_out=data.n_classes,
            hidden=cfg.hidden,
            layers=cfg.layers,
            activation=cfg.activation,
            batch_norm=cfg.batch_norm,
            bn_position=cfg.bn_position,
            init_std=cfg.init_std,
        )
    ).to(device)
    optimizer = _optimizer(cfg, model)
    tracked = _track_input(model) if cfg.track_input else None

    def validate() -> dict[str, float]:
        val_loss, val_acc = evaluate(model, x_val, y_val)
        extra = tracked() if tracked is not None else {}
        return {"val_loss": val_loss, "val_acc": val_acc, **extra}

    n = len(y_train)
    batch = min(cfg.batch_size, n)
    per_epoch = n // batch  # the last partial batch is dropped: BN needs > 1 sample
    epochs = cfg.epochs if cfg.epochs is not None else math.ceil(cfg.max_steps / per_epoch)  # type: ignore[operator]
    shuffle = torch.Generator().manual_seed(cfg.seed)

    step, start_epoch = 0, 0
    saved = report.restore()  # after a retry or a resumed sweep: continue where it stopped
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        shuffle.set_state(saved["shuffle"])
        torch.set_rng_state(saved["torch_rng"])
        step, start_epoch = saved["step"], saved["epoch"]

    for epoch in range(start_epoch, epochs):
        order = torch.randperm(n, generator=shuffle).to(device)
        for i in range(per_epoch):
            idx = order[i * batch : (i + 1) * batch]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if not report.step(step, train_loss=loss.item()):
                return  # non-finite loss: the runner records the trial as diverged
            if cfg.eval_every and step % cfg.eval_every == 0:
                report.step(step, **validate())
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
        metrics = validate()
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "shuffle": shuffle.get_state(),
            "torch_rng": torch.get_rng_state(),
            "step": step,
            "epoch": epoch + 1,
        }
        report.epoch(epoch + 1, step=step, state=state, **metrics)
        if cfg.max_steps is not None and step >= cfg.max_steps:
            return
