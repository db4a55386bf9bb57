"""Trainables written the way a Ray Tune user writes them: they report with Ray Tune's own
API (`ray.tune.report`, or a `tune.Trainable` whose `step()` returns a dict) and never
import sweepscope's runner. Each runs until Tune stops it (the spec's `stop`), as plain
Ray Tune code does with `stop={"training_iteration": N}`."""

from __future__ import annotations

import math
import time
from typing import Any

from ray import tune

# A trainable that Tune never stops ends here, far past any test's stop.
NEVER = 1000


def reports(config: dict[str, Any]) -> None:
    """Reports `loss` and `val_acc` with `ray.tune.report`: once per iteration, or, with
    `eval_every`, every `eval_every` training steps of `steps_per_epoch`-step epochs, each
    report carrying the global `step` and the number of whole epochs done as `epoch`."""
    every = config.get("eval_every")
    for i in range(1, NEVER):
        loss = config.get("scale", 1.0) / i
        metrics = {"loss": loss, "val_acc": 1 - loss / 2}
        if every:
            step = i * every
            metrics.update(step=step, epoch=step // config["steps_per_epoch"])
        tune.report(metrics)
        time.sleep(config.get("sleep", 0.0))


class Quadratic(tune.Trainable):
    """Gradient descent on w**2 from w = 5 with learning rate `lr`; one step per iteration.
    A small `lr` gets nowhere, `lr` near 0.5 converges at once. It saves checkpoints as
    Ray Tune asks of every Trainable class (Tune checkpoints a class trial at its end)."""

    def setup(self, config: dict[str, Any]) -> None:
        self.lr = config["lr"]
        self.sleep = config.get("sleep", 0.0)
        self.w = 5.0

    def step(self) -> dict[str, Any]:
        self.w -= self.lr * 2 * self.w
        time.sleep(self.sleep)
        return {"loss": self.w * self.w, "val_acc": math.exp(-self.w * self.w)}

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        return {"w": self.w}

    def load_checkpoint(self, checkpoint: dict[str, Any] | None) -> None:
        if checkpoint is not None:
            self.w = checkpoint["w"]
