"""The trial-side API: what a training function calls to report its curves.

    from runner import report

    def train(config):
        for epoch in range(config["epochs"]):
            for batch in ...:
                step += 1
                if not report.step(step, train_loss=loss):   # False once a loss is NaN/inf
                    return                                      # the trial ends as `diverged`
            report.epoch(epoch, step=step, val_loss=vl, val_acc=va)

Points (every step's, every epoch's) are buffered in the trial and travel to the driver
together in one Ray Tune report every FLUSH_SECONDS, so logging every step costs one list
append, and short epochs do not each cost a Ray round trip (a report blocks the trial until
the driver has taken it). Every report carries the latest epoch's metrics, which is what
the sweep's `metric` and the schedulers see. A report is also sent at once when a
checkpoint is due, when a loss diverges, when the trial ends, and at the epochs where a
scheduler judges trials (ASHA's rungs), so early stopping is not delayed. Outside
a Ray Tune trial the reports go to a sink set with `collect()` (tests, the one-at-a-time
baseline) or nowhere.
"""

from __future__ import annotations

import contextlib
import math
import pickle
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["FLUSH_SECONDS", "collect", "cpus", "epoch", "info", "restore", "step"]

FLUSH_SECONDS = 0.5

# Keys the runner adds to each Ray Tune result; the driver callback takes them apart.
POINTS_KEY = "_points"
INFO_KEY = "_info"
STATUS_KEY = "_status"

_buffer: list[tuple[str, int, float, float]] = []
_latest: dict[str, Any] = {}  # the last epoch's metrics, carried by every report
_info: dict[str, Any] = {}
_last_flush = time.monotonic()
_ended = False  # the trial reported its own end (diverged)
_checkpoint_every = 1  # epochs between checkpoints; 0: never (set by the runner)
_decision_epochs: frozenset[int] = frozenset()  # epochs a scheduler judges: sent at once
_STATE_FILE = "state.pkl"
_sink: Callable[[dict[str, Any]], None] | None = None


def step(step: int, **metrics: float) -> bool:
    """Record metric values at an optimizer step. Returns False when one is NaN or inf.

    After a False the trial should return: the runner records it as `diverged`.
    """
    now = time.time()
    finite = True
    for name, value in metrics.items():
        v = float(value)
        finite = finite and math.isfinite(v)
        _buffer.append((name, step, v, now))
    if not finite:
        global _ended
        _ended = True
        _flush({"step": step, STATUS_KEY: "diverged"})
        return False
    if time.monotonic() - _last_flush >= FLUSH_SECONDS:
        _flush({"step": step})
    return True


def epoch(epoch: int, *, step: int, state: Any = None, **metrics: float) -> None:
    """Record end-of-epoch metrics (e.g. val_loss, val_acc), sent with the next report.

    `epoch` counts the epochs done (1 after the first); schedulers use it as time, and
    `stop: {epochs: N}` is met when it reaches N. The metrics are what the sweep's `metric`
    and the schedulers see. `state` is anything picklable that lets the trial continue from
    here (model and optimiser state, step, RNG state): the runner saves it as a Ray Tune
    checkpoint every `checkpoint_every` epochs, and `restore()` returns it after a retry or
    a resumed sweep.
    """
    now = time.time()
    for name, value in metrics.items():
        _buffer.append((name, step, float(value), now))
    _latest.clear()
    _latest.update({k: float(v) for k, v in metrics.items()}, epoch=epoch, step=step)
    every = _checkpoint_every
    if state is not None and every and epoch % every == 0 and _in_tune():
        _flush_with_checkpoint({}, state)
    elif epoch in _decision_epochs or time.monotonic() - _last_flush >= FLUSH_SECONDS:
        _flush({})


def restore() -> Any:
    """The `state` of the trial's latest checkpoint, or None on a fresh start."""
    if not _in_tune():
        return None
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        return pickle.loads((Path(directory) / _STATE_FILE).read_bytes())


def _flush_with_checkpoint(result: dict[str, Any], state: Any) -> None:
    from ray import tune

    with tempfile.TemporaryDirectory(prefix="sweepscope-ckpt-") as directory:
        (Path(directory) / _STATE_FILE).write_bytes(pickle.dumps(state, protocol=5))
        _flush(result, checkpoint=tune.Checkpoint.from_directory(directory))


INFO_FIELDS = frozenset({"device", "node"})


def info(**fields: Any) -> None:
    """Describe the trial: device="cuda:0 (NVIDIA H100)" (node is set by the runner).

    Sent with the next report and shown by `sweepscope status` and the dashboard.
    """
    unknown = sorted(set(fields) - INFO_FIELDS)
    if unknown:
        raise ValueError(
            f"report.info got {unknown}; it takes {sorted(INFO_FIELDS)}. "
            "Fix: report numbers with report.step or report.epoch instead."
        )
    _info.update({k: str(v) for k, v in fields.items()})


def cpus() -> int:
    """The CPU threads Ray gave this trial (1 outside Ray); size torch's threads with it."""
    if not _in_tune():
        return 1
    from ray import tune

    resources = tune.get_context().get_trial_resources()
    return max(1, int(resources.required_resources.get("CPU", 1)))


def _in_tune() -> bool:
    if _sink is not None or "ray" not in sys.modules:
        return False
    from ray.tune.trainable.trainable_fn_utils import _in_tune_session

    return bool(_in_tune_session())


@contextlib.contextmanager
def collect() -> Iterator[list[dict[str, Any]]]:
    """Outside Ray: collect every report in a list (for tests and baselines)."""
    global _sink
    reports: list[dict[str, Any]] = []
    previous, _sink = _sink, reports.append
    _reset()
    try:
        yield reports
    finally:
        _finish()
        _sink = previous


def _reset(checkpoint_every: int = 1, decision_epochs: frozenset[int] = frozenset()) -> None:
    global _last_flush, _ended, _checkpoint_every, _decision_epochs
    _ended = False
    _checkpoint_every = checkpoint_every
    _decision_epochs = decision_epochs
    _buffer.clear()
    _latest.clear()
    _info.clear()
    _last_flush = time.monotonic()


def _finish(completed: bool = False) -> None:
    """Send what is still buffered; the runner calls this when the trainable returns.

    With `completed`, the trial also says it ran to its end, unless it already ended
    itself (diverged).
    """
    result: dict[str, Any] = {}
    if _buffer:
        result["step"] = _buffer[-1][1]
    if completed and not _ended:
        result[STATUS_KEY] = "completed"
    if result or _info:
        _flush(result)


def _flush(result: dict[str, Any], checkpoint: Any = None) -> None:
    global _last_flush
    result = {**_latest, **result}
    result[POINTS_KEY] = list(_buffer)
    if _info:
        result[INFO_KEY] = dict(_info)
        _info.clear()
    _buffer.clear()
    _last_flush = time.monotonic()
    if _sink is not None:
        _sink(result)
    elif _in_tune():
        from ray import tune

        tune.report(result, checkpoint=checkpoint)
