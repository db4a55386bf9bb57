"""The runner's side of stopping: a Tune stopper fed by the store and by the driver.

The dashboard and `sweepscope stop` write stop requests to the store; the writer's
thread reads them (runner.driver.writer), and this stopper tells Ray Tune which trials to end,
without ever waiting on the store itself. It also ends the whole sweep when the driver
halts it (a metric the trials do not report), ends a plain Ray Tune trainable's trial once
it reaches the spec's `stop`, and, on a resumed sweep, ends at once any trial the store
already has as finished. When the store stays away past
its limit, it interrupts Tune as Ctrl-C does, so the sweep stops resumable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray import tune

from runner import _ray_private as ray_private
from runner.protocol import POINTS_KEY

if TYPE_CHECKING:
    from runner.driver.writer import StoreWriter
    from runner.spec import Stop

__all__ = ["StoreStopper"]

# The stopper of each sweep this process drives. Ray Tune saves the stopper in its experiment
# state and a resumed Tune puts the saved one back in charge: unpickled, it becomes the live
# stopper of its sweep (see __reduce__).
_LIVE: dict[str, StoreStopper] = {}


class StoreStopper(tune.Stopper):
    def __init__(
        self, *, writer: StoreWriter, stop: Stop, done_before: set[str] | None = None
    ) -> None:
        self._writer = writer
        self._stop = stop
        self._done_before = done_before or set()
        self.halted: str | None = None
        self._interrupted = False
        _LIVE[writer.sweep_id] = self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_live_stopper, (self._writer.sweep_id,))

    def requested(self, ray_id: str) -> bool:
        """Whether the user asked for this trial, or its whole sweep, to stop."""
        whole, trials = self._writer.stop_requests()
        return whole or ray_id in trials

    def halt(self, reason: str) -> None:
        """End every trial now (the driver found a reason the sweep cannot go on)."""
        self.halted = reason

    def _reached_stop(self, result: dict[str, Any]) -> bool:
        """A plain Ray Tune result (no runner.trial.report points) at the spec's stop."""
        if POINTS_KEY in result:
            return False  # runner.trial.report trials end themselves
        epoch = result.get("epoch", result.get("training_iteration", 0))
        return (self._stop.epochs is not None and epoch >= self._stop.epochs) or (
            self._stop.steps is not None and result.get("step", 0) >= self._stop.steps
        )

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return (
            trial_id in self._done_before or self.requested(trial_id) or self._reached_stop(result)
        )

    def stop_all(self) -> bool:
        if self._writer.health().gave_up is not None:
            self._interrupt()
        return self.halted is not None or self._writer.stop_requests()[0]

    def _interrupt(self) -> None:
        """End Tune's loop the way Ctrl-C does (runner.driver.interrupts): its saved state keeps the
        unfinished trials unfinished, so `sweepscope resume` runs them (stopping them here
        would finish them for good). Only where Tune listens, once."""
        if not self._interrupted and ray_private.tune_listens():
            self._interrupted = True
            ray_private.interrupt_tune()


def _live_stopper(sweep_id: str) -> tune.Stopper:
    """A stopper restored from Ray Tune's saved state: the live one of its sweep, or (where
    no sweep of that id runs in this process) one that stops nothing."""
    from ray.tune.stopper import NoopStopper

    return _LIVE.get(sweep_id) or NoopStopper()
