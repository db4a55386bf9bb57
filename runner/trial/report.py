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
the sweep's `metric` and the schedulers see. A report is also sent at once for a trial's
first step (so its curve starts as soon as it trains), when a checkpoint is due, when a loss
diverges, when the trial ends, and at the epochs where a scheduler judges trials (ASHA's
rungs), so early stopping is not delayed. Outside
a Ray Tune trial the reports go to a sink set with `collect()` (tests, the one-at-a-time
baseline) or nowhere.

What the store cannot keep is refused here, with a ValueError, the same on every backend:
metric names longer than MAX_METRIC_NAME characters, steps and epochs that are not whole
numbers in 0..MAX_STEP, and `info` values longer than MAX_INFO characters. Names beginning
with "sys/" are the runner's own system-load samples (runner.trial.sysmetrics) and are refused too.
"""

from __future__ import annotations

import contextlib
import math
import operator
import pickle
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, SupportsIndex

from runner import _ray_private
from runner.protocol import (
    CHECKPOINT_STEP_FILE,
    INFO_KEY,
    MAX_INFO,
    MAX_METRIC_NAME,
    MAX_STEP,
    POINTS_KEY,
    STATUS_KEY,
)
from runner.protocol import SYSTEM_PREFIX as SYS_PREFIX
from runner.status import TrialStatus

__all__ = [
    "FLUSH_SECONDS",
    "MAX_INFO",
    "MAX_METRIC_NAME",
    "MAX_STEP",
    "collect",
    "cpus",
    "epoch",
    "info",
    "restore",
    "step",
]

FLUSH_SECONDS = 0.5


_buffer: list[tuple[str, int, float, float]] = []
_latest: dict[str, Any] = {}  # the last epoch's metrics, carried by every report
_info: dict[str, Any] = {}
_last_flush = time.monotonic()
_ended = False  # the trial reported its own end (diverged)
_checkpoint_every = 1  # epochs between checkpoints; 0: never (set by the runner)
# A continued trial's checkpoint (`sweepscope extend --epochs`), for restore() when Ray Tune
# has none of the trial's own yet; set by the runner.
_start_checkpoint: str | None = None
_decision_epochs: frozenset[int] = frozenset()  # epochs a scheduler judges: sent at once
_STATE_FILE = "state.pkl"
_sink: Callable[[dict[str, Any]], None] | None = None
_names: set[str] = set()  # metric names already checked, so a step checks none again
_MAX_NAMES = 4096  # past this many, new names are still checked but no longer remembered


def step(step: SupportsIndex, **metrics: float) -> bool:
    """Record metric values at an optimizer step. Returns False when one is NaN or inf.

    After a False the trial should return: the runner records it as `diverged`.

    Raises:
        ValueError: `step` is not a whole number in 0..MAX_STEP, or a metric name is empty
            or longer than MAX_METRIC_NAME characters.
    """
    if type(step) is int and 0 <= step <= MAX_STEP:  # the fast path, every step
        at = step
    else:
        at = _whole("report.step", "step", step)
    if not _names.issuperset(metrics):
        _check_names("report.step", metrics)
    now = time.time()
    finite = True
    for name, value in metrics.items():
        v = float(value)
        finite = finite and math.isfinite(v)
        _buffer.append((name, at, v, now))
    if not finite:
        global _ended
        _ended = True
        _flush({"step": at, STATUS_KEY: TrialStatus.DIVERGED})
        return False
    if time.monotonic() - _last_flush >= FLUSH_SECONDS:
        _flush({"step": at})
    return True


def epoch(
    epoch: SupportsIndex, *, step: SupportsIndex, state: Any = None, **metrics: float
) -> None:
    """Record end-of-epoch metrics (e.g. val_loss, val_acc), sent with the next report.

    `epoch` counts the epochs done (1 after the first); schedulers use it as time, and
    `stop: {epochs: N}` is met when it reaches N. The metrics are what the sweep's `metric`
    and the schedulers see. `state` is anything picklable that lets the trial continue from
    here (model and optimiser state, step, RNG state): the runner saves it as a Ray Tune
    checkpoint every `checkpoint_every` epochs, and `restore()` returns it after a retry or
    a resumed sweep.

    Raises:
        ValueError: `epoch` or `step` is not a whole number in 0..MAX_STEP, or a metric name
            is empty or longer than MAX_METRIC_NAME characters.
    """
    done = _whole("report.epoch", "epoch", epoch)
    at = _whole("report.epoch", "step", step)
    if not _names.issuperset(metrics):
        _check_names("report.epoch", metrics)
    now = time.time()
    for name, value in metrics.items():
        _buffer.append((name, at, float(value), now))
    _latest.clear()
    _latest.update({k: float(v) for k, v in metrics.items()}, epoch=done, step=at)
    every = _checkpoint_every
    if state is not None and every and done % every == 0 and _in_tune():
        _flush_with_checkpoint({}, state)
    elif done in _decision_epochs or time.monotonic() - _last_flush >= FLUSH_SECONDS:
        _flush({})


def restore() -> Any:
    """The `state` of the trial's latest checkpoint, or None on a fresh start. A trial that
    continues a finished one (`sweepscope extend --epochs`) starts from that one's last."""
    if not _in_tune():
        return None
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None and _start_checkpoint is not None:
        checkpoint = tune.Checkpoint(_start_checkpoint)
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        return pickle.loads((Path(directory) / _STATE_FILE).read_bytes())


def _flush_with_checkpoint(result: dict[str, Any], state: Any) -> None:
    from ray import tune

    with tempfile.TemporaryDirectory(prefix="sweepscope-ckpt-") as directory:
        (Path(directory) / _STATE_FILE).write_bytes(pickle.dumps(state, protocol=5))
        (Path(directory) / CHECKPOINT_STEP_FILE).write_text(str(_latest["step"]))
        _flush(result, checkpoint=tune.Checkpoint.from_directory(directory))


INFO_FIELDS = frozenset({"device", "node"})


def info(**fields: Any) -> None:
    """Describe the trial: device="cuda:0 (NVIDIA H100)" (node is set by the runner).

    Sent with the next report and shown by `sweepscope status` and the dashboard.

    Raises:
        ValueError: an unknown field, or a value longer than MAX_INFO characters.
    """
    unknown = sorted(set(fields) - INFO_FIELDS)
    if unknown:
        raise ValueError(
            f"report.info got {unknown}; it takes {sorted(INFO_FIELDS)}. "
            "Fix: report numbers with report.step or report.epoch instead."
        )
    texts = {k: str(v) for k, v in fields.items()}
    for key, text in texts.items():
        if len(text) > MAX_INFO:
            raise ValueError(
                f"report.info got {key}={_show(text)}, {len(text)} characters; the store keeps "
                f"at most {MAX_INFO}. Fix: describe the {key} in {MAX_INFO} characters or fewer."
            )
    _info.update(texts)


def _whole(where: str, name: str, value: Any) -> int:
    """`value` as an int when it is a whole number in 0..MAX_STEP (numpy integers too)."""
    unit = "optimizer step" if name == "step" else "epoch"
    if not isinstance(value, bool):  # True is an int to Python, never a step
        try:
            number = operator.index(value)
        except TypeError:
            pass
        else:
            if 0 <= number <= MAX_STEP:
                return number
            fix = (
                f"count {name}s from 0 upwards"
                if number < 0
                else f"pass the count of {unit}s, not samples seen or a timestamp"
            )
            raise ValueError(
                f"{where} got {name}={_show(number)}; the store keeps {name}s from 0 to "
                f"{MAX_STEP} (2**31 - 1). Fix: {fix}."
            )
    raise ValueError(
        f"{where} got {name}={_show(value)} ({type(value).__name__}); a {name} is a whole "
        f"number. Fix: pass an int counter, e.g. `{name} += 1` once per {unit}."
    )


def _check_names(where: str, metrics: dict[str, Any]) -> None:
    """Refuse a metric name the store cannot keep; remember the good ones."""
    for name in metrics:
        if isinstance(name, str) and 0 < len(name) <= MAX_METRIC_NAME:
            if name.startswith(SYS_PREFIX):
                raise ValueError(
                    f"{where} got the metric name {_show(name)}; names beginning with "
                    f"{SYS_PREFIX!r} are the runner's own system-load samples "
                    "(runner.trial.sysmetrics). Fix: name it without that prefix, e.g. "
                    f"{name.replace('/', '_', 1)}."
                )
            if len(_names) < _MAX_NAMES:
                _names.add(name)
            continue
        if not isinstance(name, str):
            got, fix = f"{_show(name)} ({type(name).__name__})", "name it with a str"
        elif name:
            got, fix = f"{_show(name)}, {len(name)} characters", "shorten the name"
        else:
            got, fix = "''", "name the metric"
        raise ValueError(
            f"{where} got the metric name {got}; a metric name is a non-empty str of at most "
            f"{MAX_METRIC_NAME} characters. Fix: {fix}, e.g. {where}(..., val_loss=0.25)."
        )


def _show(value: Any, limit: int = 80) -> str:
    """repr(value), cut in the middle when long, so a huge value cannot flood the message."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit for str()
        return f"<a {type(value).__name__} of {value.bit_length()} bits>"
    if len(text) <= limit:
        return text
    half = (limit - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


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
    return _ray_private.in_tune_session()


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


def _reset(
    checkpoint_every: int = 1,
    decision_epochs: frozenset[int] = frozenset(),
    start_checkpoint: str | None = None,
) -> None:
    global _last_flush, _ended, _checkpoint_every, _decision_epochs, _start_checkpoint
    _ended = False
    _checkpoint_every = checkpoint_every
    _decision_epochs = decision_epochs
    _start_checkpoint = start_checkpoint
    _buffer.clear()
    _latest.clear()
    _info.clear()
    _last_flush = -math.inf  # the first step is sent at once


def _finish(completed: bool = False) -> None:
    """Send what is still buffered; the runner calls this when the trainable returns.

    With `completed`, the trial also says it ran to its end, unless it already ended
    itself (diverged).
    """
    result: dict[str, Any] = {}
    if _buffer:
        result["step"] = _buffer[-1][1]
    if completed and not _ended:
        result[STATUS_KEY] = TrialStatus.COMPLETED
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
