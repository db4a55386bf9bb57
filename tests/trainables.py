"""Small train functions for the runner's tests: each shows one kind of trial ending."""

from __future__ import annotations

import math
import time
from typing import Any

from runner import report


def steady(config: dict[str, Any]) -> None:
    """A loss that falls as 1/step; `sleep` seconds per step; stops at the spec's limit."""
    steps_per_epoch = int(config.get("steps_per_epoch", 10))
    step = 0
    for epoch in range(config["epochs"]):
        for _ in range(steps_per_epoch):
            step += 1
            report.step(step, train_loss=config.get("scale", 1.0) / step)
            time.sleep(config.get("sleep", 0.0))
        report.epoch(epoch + 1, step=step, val_acc=1 - 1 / (step + 1))


def raises(config: dict[str, Any]) -> None:
    for step in range(1, 6):
        report.step(step, train_loss=1.0 / step)
    raise RuntimeError("boom at step 5")


def diverges(config: dict[str, Any]) -> None:
    for step in range(1, 100):
        loss = math.inf if step == 7 else 1.0
        if not report.step(step, train_loss=loss):
            return
    raise AssertionError("report.step should have returned False at step 7")


def mixed(config: dict[str, Any]) -> None:
    """One trainable whose `kind` picks how the trial ends: steady, raises, diverges, hangs."""
    kinds = {"steady": steady, "raises": raises, "diverges": diverges, "hangs": hangs}
    kinds[config["kind"]](config)


def checkpointed(config: dict[str, Any]) -> None:
    """Like `steady`, but checkpoints every epoch and continues from `report.restore()`.

    Writes its pid to `pid_dir/<scale>.pid` so a test can kill its worker process.
    """
    import os
    from pathlib import Path

    if config.get("pid_dir"):
        Path(config["pid_dir"], f"{config.get('scale', 1.0)}.pid").write_text(str(os.getpid()))
    _from_checkpoint(config)


def continued(config: dict[str, Any]) -> None:
    """`checkpointed` (without the pid file), also reporting `start_epoch` (the epoch its
    state came back at, 0 on a fresh start) with every epoch: a trial continued from a
    checkpoint shows it, one that started over would not."""
    _from_checkpoint(config, report_start=True)


def _from_checkpoint(config: dict[str, Any], report_start: bool = False) -> None:
    steps_per_epoch = int(config.get("steps_per_epoch", 10))
    saved = report.restore()
    start = saved["epoch"] if saved else 0
    step = start * steps_per_epoch
    extra = {"start_epoch": start} if report_start else {}
    for epoch in range(start, config["epochs"]):
        for _ in range(steps_per_epoch):
            step += 1
            report.step(step, train_loss=config.get("scale", 1.0) / step)
            time.sleep(config.get("sleep", 0.0))
        acc = config.get("quality", 1.0) * (1 - 1 / (step + 1))
        report.epoch(epoch + 1, step=step, state={"epoch": epoch + 1}, val_acc=acc, **extra)


def hangs(config: dict[str, Any]) -> None:
    report.step(1, train_loss=1.0)
    report.epoch(1, step=1, val_acc=0.1)
    time.sleep(3600)


def steady_points(config: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """Every point `steady` reports for `config`, by metric, as (step, value) in step order:
    what the store holds for a trial that ran once, uninterrupted, to its last epoch."""
    steps_per_epoch = int(config.get("steps_per_epoch", 10))
    last = config["epochs"] * steps_per_epoch
    scale = config.get("scale", 1.0)
    return {
        "train_loss": [(step, scale / step) for step in range(1, last + 1)],
        "val_acc": [
            (step, 1 - 1 / (step + 1)) for step in range(steps_per_epoch, last + 1, steps_per_epoch)
        ],
    }
