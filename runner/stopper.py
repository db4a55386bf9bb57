"""The runner's side of stop requests: a Tune stopper that reads them from the store.

The dashboard and `sweepscope stop` write requests to the store; this stopper, on the
driver, polls them at most every `poll_seconds` and tells Ray Tune which trials to end.
On a resumed sweep it also ends at once any trial the store already has as finished, so a
trial finishes exactly once even if Ray Tune's saved state is older than the store.
"""

from __future__ import annotations

import time
from typing import Any

from ray import tune

from runner.store import Store

__all__ = ["StoreStopper"]


class StoreStopper(tune.Stopper):
    def __init__(
        self,
        *,
        store: Store,
        sweep_id: str,
        poll_seconds: float = 0.5,
        done_before: set[str] | None = None,
    ) -> None:
        self._store = store
        self._sweep_id = sweep_id
        self._poll_seconds = poll_seconds
        self._polled_at = 0.0
        self._sweep_requested = False
        self._trial_requests: set[str] = set()
        self._done_before = done_before or set()

    def requested(self, ray_id: str) -> bool:
        """Whether the user asked for this trial, or its whole sweep, to stop."""
        return self._sweep_requested or ray_id in self._trial_requests

    def _poll(self) -> None:
        now = time.monotonic()
        if now - self._polled_at >= self._poll_seconds:
            self._polled_at = now
            self._sweep_requested, self._trial_requests = self._store.stop_requests(self._sweep_id)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self._poll()
        return trial_id in self._done_before or self.requested(trial_id)

    def stop_all(self) -> bool:
        self._poll()
        return self._sweep_requested
