"""The driver-side Tune callback that writes every trial's life and curves to the store.

It is the store's only writer during a sweep: trials send their points inside Ray Tune
results (see runner.report), so no trial ever opens the store, and a cluster needs no
shared files for it.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import tune

from runner.progress import Progress
from runner.report import INFO_KEY, POINTS_KEY, STATUS_KEY
from runner.spec import Spec, user_config
from runner.stopper import StoreStopper
from runner.store import (
    Store,
    TrialStatus,
)

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

__all__ = ["StoreCallback"]

HEARTBEAT_SECONDS = 5.0


class StoreCallback(tune.Callback):
    def __init__(
        self,
        *,
        store: Store,
        sweep_id: str,
        spec: Spec,
        stopper: StoreStopper,
        progress: Progress | None = None,
        done_before: dict[str, str] | None = None,
    ) -> None:
        self._store = store
        # A resumed sweep's trials that finished before: Ray id -> final status, left alone.
        self._done_before = done_before or {}
        self._seen_at: dict[str, float] = {}  # Ray trial id -> when it last reported
        self._timed_out: set[str] = set()
        self._sweep_id = sweep_id
        self._spec = spec
        self._stopper = stopper
        self._progress = progress
        self._ids: dict[str, int] = {}  # Ray trial id -> store id
        self._status: dict[str, str] = {}  # Ray trial id -> status last written
        self._ended_as: dict[str, str] = {}  # a status the trial itself reported
        self._last: dict[str, dict[str, int]] = {}  # Ray trial id -> last step / epoch
        self._best: float | None = None
        self._beat_at = 0.0

    # -- bookkeeping ---------------------------------------------------------------------
    def _id(self, trial: Trial) -> int:
        if trial.trial_id not in self._ids:
            self._ids[trial.trial_id] = self._store.add_trial(
                self._sweep_id, trial.trial_id, user_config(trial.config)
            )
            self._status[trial.trial_id] = self._done_before.get(
                trial.trial_id, TrialStatus.PENDING
            )
        return self._ids[trial.trial_id]

    def _set(self, trial: Trial, status: str, detail: str | None = None, **fields: Any) -> None:
        self._store.set_trial_status(self._id(trial), status, detail=detail, **fields)
        self._status[trial.trial_id] = status

    def statuses(self) -> Counter[str]:
        return Counter(self._status.values())

    @property
    def best(self) -> float | None:
        return self._best

    def _final_status(self, trial: Trial) -> tuple[str, str | None]:
        """Why a trial that Tune calls complete ended."""
        if trial.trial_id in self._ended_as:
            return self._ended_as[trial.trial_id], None
        last = self._last.get(trial.trial_id, {})
        stop = self._spec.stop
        if (stop.epochs is not None and last.get("epoch", 0) >= stop.epochs) or (
            stop.steps is not None and last.get("step", 0) >= stop.steps
        ):
            return TrialStatus.COMPLETED, None
        if self._stopper.requested(trial.trial_id):
            return TrialStatus.STOPPED_BY_USER, "stop requested from the store"
        if self._spec.scheduler.type != "none":
            return TrialStatus.PRUNED, f"stopped early by the {self._spec.scheduler.type} scheduler"
        return TrialStatus.STOPPED, None

    # -- Tune hooks ----------------------------------------------------------------------
    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        for trial in trials:  # register trials as soon as Tune creates them: pending
            self._id(trial)
        now = time.monotonic()
        if self._spec.trial_timeout is not None:
            self._kill_silent_trials(trials, now)
        if now - self._beat_at >= HEARTBEAT_SECONDS:
            self._beat_at = now
            self._store.heartbeat(self._sweep_id)
        if self._progress is not None:
            self._progress.update(self.statuses(), self._best)

    def _kill_silent_trials(self, trials: list[Trial], now: float) -> None:
        """End trials that reported nothing for `trial_timeout` seconds (a hung trial)."""
        import ray

        limit = self._spec.trial_timeout
        for trial in trials:
            seen = self._seen_at.get(trial.trial_id)
            actor = getattr(trial.temporary_state, "ray_actor", None)
            if (
                limit is not None
                and seen is not None
                and actor is not None
                and now - seen > limit
                and self._status.get(trial.trial_id) == TrialStatus.RUNNING
                and trial.trial_id not in self._timed_out
            ):
                self._timed_out.add(trial.trial_id)
                ray.kill(actor)  # Tune then reports the trial failed: on_trial_error below

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        if trial.trial_id in self._done_before:
            return
        self._seen_at[trial.trial_id] = time.monotonic()
        self._timed_out.discard(trial.trial_id)
        self._set(trial, TrialStatus.RUNNING)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        if trial.trial_id in self._done_before:
            return
        self._seen_at[trial.trial_id] = time.monotonic()
        trial_id = self._id(trial)
        self._store.add_points(trial_id, result.pop(POINTS_KEY, ()))
        fields: dict[str, Any] = dict(result.pop(INFO_KEY, None) or {})
        last = self._last.setdefault(trial.trial_id, {})
        if not last:  # the first result says where the trial runs
            fields.setdefault("node", result.get("hostname") or result.get("node_ip"))
        for key in ("step", "epoch"):
            if key in result:
                last[key] = int(result[key])
                fields[f"last_{key}"] = last[key]
        status = result.pop(STATUS_KEY, None)
        if status is not None:
            self._ended_as[trial.trial_id] = status
        if self._status.get(trial.trial_id) != TrialStatus.RUNNING:
            self._set(trial, TrialStatus.RUNNING, **fields)
        elif fields:
            self._store.update_trial(trial_id, **fields)
        value = result.get(self._spec.metric)
        if isinstance(value, int | float) and value == value:
            better = max if self._spec.mode == "max" else min
            self._best = value if self._best is None else better(self._best, value)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        if trial.trial_id in self._done_before:
            return
        status, detail = self._final_status(trial)
        self._set(trial, status, detail)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        if trial.trial_id in self._done_before:
            return
        if trial.trial_id in self._timed_out:
            text = f"no report for {self._spec.trial_timeout:g} s (trial_timeout): ended"
            self._set(trial, TrialStatus.TIMEOUT, text, error=text)
            return
        text = _error_text(trial)
        self._set(trial, TrialStatus.ERROR, text, error=text)
        if self._progress is not None:
            last_line = text.strip().splitlines()[-1] if text.strip() else "unknown error"
            self._progress.note(
                f"trial {self._id(trial)} failed: {last_line} "
                f"(traceback: sweepscope status {self._sweep_id})"
            )

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        if trial.trial_id in self._done_before:
            return
        text = _error_text(trial)
        self._store.set_trial_status(
            self._id(trial), TrialStatus.PENDING, detail=f"retrying after: {text}", error=text
        )
        self._status[trial.trial_id] = TrialStatus.PENDING

    def close_open_trials(self, reason: str) -> None:
        """After Tune returns: no trial may stay pending or running in the store."""
        for ray_id, status in list(self._status.items()):
            if status not in TrialStatus.finished() and ray_id not in self._done_before:
                final = (
                    TrialStatus.STOPPED_BY_USER
                    if self._stopper.requested(ray_id)
                    else TrialStatus.STOPPED
                )
                self._store.set_trial_status(self._ids[ray_id], final, detail=reason)
                self._status[ray_id] = final


def _error_text(trial: Trial) -> str:
    """The latest failure Tune wrote for the trial (its local error file holds them all)."""
    try:
        path = trial.error_file
        text = Path(path).read_text() if path and Path(path).exists() else ""
    except OSError as exc:
        return f"(error text unavailable: {exc})"
    latest = text.rsplit("Failure # ", 1)[-1]
    latest = latest.split("\n", 1)[1] if latest.startswith(tuple("0123456789")) else latest
    return latest.strip() or "the trial failed without an error message"
