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
