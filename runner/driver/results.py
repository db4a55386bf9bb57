"""What a Ray Tune result holds for the store, read on the driver.

A trainable that reports through runner.trial.report sends its points under
runner.protocol.POINTS_KEY; one written for plain Ray Tune (`ray.tune.report(metrics)`, or a
`tune.Trainable` whose `step()` returns a dict) sends only metrics: each numeric one becomes a
point at the result's `step`, else at its `training_iteration`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune.result import AUTO_RESULT_KEYS, DEBUG_METRICS

from runner.protocol import MAX_METRIC_NAME, MAX_STEP

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

__all__ = ["NOT_METRICS", "error_text", "node_lost", "result_points"]

# Keys of a Ray Tune result that are bookkeeping, not metrics.
NOT_METRICS = (
    frozenset(AUTO_RESULT_KEYS)
    | frozenset(DEBUG_METRICS)
    | {
        "done",
        "should_checkpoint",
        "step",
        "epoch",
        "experiment_tag",
        "trial_id",
    }
)


def result_points(result: dict[str, Any], wall_time: float) -> list[tuple[str, int, float, float]]:
    """The points of a plain Ray Tune result: every numeric metric at its `step`, else at
    its `training_iteration`. Names and steps the store cannot hold are left out."""
    step = result.get("step", result.get("training_iteration", 0))
    if not isinstance(step, int) or not 0 <= step <= MAX_STEP:
        return []
    return [
        (name, step, float(value), wall_time)
        for name, value in result.items()
        if name not in NOT_METRICS
        and not name.startswith("_")
        and len(name) <= MAX_METRIC_NAME
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ]


def error_text(trial: Trial) -> str:
    """The latest failure Tune wrote for the trial (its local error file holds them all)."""
    try:
        path = trial.error_file
        text = Path(path).read_text() if path and Path(path).exists() else ""
    except OSError as exc:
        return f"(error text unavailable: {exc})"
    latest = text.rsplit("Failure # ", 1)[-1]
    latest = latest.split("\n", 1)[1] if latest.startswith(tuple("0123456789")) else latest
    return latest.strip() or "the trial failed without an error message"


# What Ray says of an actor that died with its node (an ActorDiedError's context, from Ray's
# core): the node went away (a SLURM step killed or cancelled, a machine lost), not the
# trial's own code.
_NODE_DIED = "The actor died because its node has died."


def node_lost(text: str) -> bool:
    """Whether a trial's failure (`error_text`) is its Ray node's death, not its own error."""
    return _NODE_DIED in text
