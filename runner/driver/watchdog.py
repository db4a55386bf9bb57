"""`trial_timeout`: a trial that reports nothing for that long is hung, and is ended.

Tune then reports the trial failed; the callback records it as `timeout`, not `error`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from runner import _ray_private as ray_private

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

__all__ = ["SilentTrials"]


class SilentTrials:
    """Knows when each trial last reported, and kills the actor of one silent past `limit` s."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._seen_at: dict[str, float] = {}  # Ray trial id -> when it last reported
        self._timed_out: set[str] = set()

    def started(self, trial_id: str) -> None:
        self._seen_at[trial_id] = time.monotonic()
        self._timed_out.discard(trial_id)

    def reported(self, trial_id: str) -> None:
        self._seen_at[trial_id] = time.monotonic()

    def timed_out(self, trial_id: str) -> bool:
        """True for a trial this watchdog ended."""
        return trial_id in self._timed_out

    def end_silent(self, trials: Iterable[Trial], running: set[str]) -> None:
        """Kill the actor of each running trial silent past the limit (once per trial)."""
        import ray

        now = time.monotonic()
        for trial in trials:
            seen = self._seen_at.get(trial.trial_id)
            actor = ray_private.trial_actor(trial)
            if (
                seen is not None
                and actor is not None
                and now - seen > self.limit
                and trial.trial_id in running
                and trial.trial_id not in self._timed_out
            ):
                self._timed_out.add(trial.trial_id)
                ray.kill(actor)  # Tune then reports the trial failed
