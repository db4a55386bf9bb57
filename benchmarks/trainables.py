"""Train functions for the benchmarks: the shipped trainable, timed from inside the trial."""

from __future__ import annotations

import math
import time
from typing import Any

from experiments.train import train
from runner import report


def timed(config: dict[str, Any]) -> None:
    """experiments.train:train, recording its own compute seconds as the point
    `compute_seconds` at step 0. With `log_steps: false` the per-step losses are checked
    for divergence but not reported: the baseline of the streaming-cost benchmark."""
    config = dict(config)
    log_steps = config.pop("log_steps", True)
    step = report.step
    if not log_steps:
        report.step = lambda s, **metrics: all(math.isfinite(v) for v in metrics.values())  # type: ignore[assignment]
    try:
        start = time.perf_counter()
        train(config)
        elapsed = time.perf_counter() - start
    finally:
        report.step = step  # type: ignore[method-assign]
    report.step(0, compute_seconds=elapsed)


def trivial(config: dict[str, Any]) -> None:
    """A trial that costs next to nothing: `epochs` epochs of `epoch_seconds` asleep, one
    loss a step (ten steps an epoch) and one per epoch. What is left of its wall time in a
    sweep is the runner's own cost per trial and per report (benchmarks.bench_scale)."""
    step = 0
    for epoch in range(1, config["epochs"] + 1):
        for _ in range(10):
            step += 1
            report.step(step, train_loss=1.0 / step)
        time.sleep(config.get("epoch_seconds", 0.01))
        report.epoch(epoch, step=step, loss=1.0 / epoch)


def trivial_plain(config: dict[str, Any]) -> None:
    """`trivial` written for plain Ray Tune: one tune.report per epoch, no per-step points."""
    from ray import tune

    for epoch in range(1, config["epochs"] + 1):
        time.sleep(config.get("epoch_seconds", 0.01))
        tune.report({"loss": 1.0 / epoch, "epoch": epoch})
