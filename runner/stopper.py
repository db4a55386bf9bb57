"""The runner's side of stopping: a Tune stopper fed by the store and by the driver.

The dashboard and `sweepscope stop` write stop requests to the store; the writer's
thread reads them (runner.writer), and this stopper tells Ray Tune which trials to end,
without ever waiting on the store itself. It also ends the whole sweep when the driver
halts it (a metric the trials do not report, a store away past its limit), ends a plain
Ray Tune trainable's trial once it reaches the spec's `stop`, and, on a resumed sweep,
ends at once any trial the store already has as finished.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray import tune

from runner.report import POINTS_KEY

if TYPE_CHECKING:
    from runner.spec import Stop
    from runner.writer import StoreWriter

__all__ = ["StoreStopper"]


class StoreStopper(tune.Stopper):
    def __init__(
        self, *, writer: StoreWriter, stop: Stop, done_before: set[str] | None = None
    ) -> None:
        self._writer = writer
        self._stop = stop
        self._done_before = done_before or set()
        self.halted: str | None = None

    def requested(self, ray_id: str) -> bool:
        """Whether the user asked for this trial, or its whole sweep, to stop."""
        whole, trials = self._writer.stop_requests()
        return whole or ray_id in trials

    def halt(self, reason: str) -> None:
        """End every trial now (the driver found a reason the sweep cannot go on)."""
        self.halted = reason

    def _reached_stop(self, result: dict[str, Any]) -> bool:
        """A plain Ray Tune result (no runner.report points) at the spec's stop."""
        if POINTS_KEY in result:
            return False  # runner.report trials end themselves
        epoch = result.get("epoch", result.get("training_iteration", 0))
        return (self._stop.epochs is not None and epoch >= self._stop.epochs) or (
            self._stop.steps is not None and result.get("step", 0) >= self._stop.steps
        )

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return (
            trial_id in self._done_before or self.requested(trial_id) or self._reached_stop(result)
        )

    def stop_all(self) -> bool:
        return (
            self.halted is not None
            or self._writer.stop_requests()[0]
            or self._writer.health().gave_up is not None
        )
