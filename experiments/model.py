"""A multilayer perceptron whose every knob is a hyperparameter.

Each hidden layer computes Z = W x + b, then the activation g. With batch normalisation
(Ioffe & Szegedy 2015) Z is normalised over the mini-batch,
    Z_hat = (Z - mean_batch(Z)) / sqrt(var_batch(Z) + eps),  Z_tilde = gamma * Z_hat + beta,
before g (`bn_position="pre"`, as in the paper) or after it (`"post"`). The linear layer's
bias is dropped when BN follows it, since BN's beta replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "MLP", "MLPConfig"]

ACTIVATIONS: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}


@dataclass(frozen=True)
class MLPConfig:
    n_in: int
    n_out: int
    hidden: int = 64
    layers: int = 2  # hidden layers
    activation: str = "relu"
    batch_norm: bool = False
    bn_position: str = "pre"  # "pre": normalise Z before g; "post": after g
    init_std: float | None = (
        None  # N(0, init_std) weights (the BN paper's small init); None: torch default
    )


class MLP(nn.Module):
    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        if cfg.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {cfg.activation!r}. Fix: use one of {', '.join(ACTIVATIONS)}."
            )
        if cfg.bn_position not in ("pre", "post"):
            raise ValueError(f"unknown bn_position {cfg.bn_position!r}. Fix: use pre or post.")
        if cfg.layers < 1 or cfg.hidden < 1:
            raise ValueError(f"layers={cfg.layers}, hidden={cfg.hidden}. Fix: use values >= 1.")
        blocks: list[nn.Module] = []
        width = cfg.n_in
        for _ in range(cfg.layers):
            pre_bn = cfg.batch_norm and cfg.bn_position == "pre"
            blocks.append(nn.Linear(width, cfg.hidden, bias=not pre_bn))
            if pre_bn:
                blocks.append(nn.BatchNorm1d(cfg.hidden))
            blocks.append(ACTIVATIONS[cfg.activation]())
            if cfg.batch_norm and cfg.bn_position == "post":
                blocks.append(nn.BatchNorm1d(cfg.hidden))
            width = cfg.hidden
        self.hidden = nn.Sequential(*blocks)
        self.head = nn.Linear(width, cfg.n_out)
        if cfg.init_std is not None:
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.normal_(module.weight, 0.0, cfg.init_std)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (batch, n_in) -> logits (batch, n_out)
        return self.head(self.hidden(x))

    def last_activation(self) -> nn.Module:
        """The last hidden layer's g. Its input is what enters the nonlinearity: BN(Z) with
        `bn_position="pre"`, else Z = W x + b (the BN paper's Figure 1 b, c tracks it)."""
        kinds = tuple(ACTIVATIONS.values())
        return [m for m in self.hidden if isinstance(m, kinds)][-1]
