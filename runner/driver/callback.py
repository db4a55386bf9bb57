"""The driver-side Tune callback that turns every trial's life and curves into store writes.

Trials send their points inside Ray Tune results (see runner.trial.report), so no trial ever
opens the store, and a cluster needs no shared files for it; runner.driver.results reads
them, plain Ray Tune results included. The callback only queues writes on the StoreWriter,
which returns at once: a slow or absent store never holds up the Tune loop.

It is Tune's seam, and it hands each job to a class of its own: the metric check
(runner.driver.metric_check), the hung-trial watchdog (runner.driver.watchdog), the progress
line (runner.driver.progress) and alerts (runner.driver.notify). What it keeps is the store's
view of each trial: its status, its points, its last step and epoch.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from ray import tune

from runner.driver.metric_check import MetricCheck
from runner.driver.notify import Notifier
from runner.driver.progress import Progress
from runner.driver.results import error_text, node_lost, result_points
from runner.driver.stopper import StoreStopper
from runner.driver.watchdog import SilentTrials
from runner.driver.writer import StoreWriter
from runner.errors import SpecError
from runner.protocol import CONTINUES_KEY, INFO_KEY, MAX_STEP, POINTS_KEY, STATUS_KEY, SYS_KEY
from runner.spec import Spec, user_config
from runner.status import TrialStatus

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

__all__ = ["StoreCallback", "result_points"]


class StoreCallback(tune.Callback):
    def __init__(
        self,
        *,
        writer: StoreWriter,
        spec: Spec,
        stopper: StoreStopper,
        progress: Progress | None = None,
        done_before: dict[str, str] | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self._writer = writer
        self._notifier = notifier
        # A resumed sweep's trials that finished before: Ray id -> final status, left alone.
        self._done_before = done_before or {}
        self._silent = SilentTrials(spec.trial_timeout) if spec.trial_timeout else None
        self._metric = MetricCheck(spec.metric)
        self._spec = spec
        self._stopper = stopper
        self._progress = progress
        self._status: dict[str, str] = {}  # Ray trial id -> status last written
        self._ended_as: dict[str, str] = {}  # a status the trial itself reported
        self._last: dict[str, dict[str, int]] = {}  # Ray trial id -> last step / epoch
        self._best: float | None = None

    # -- bookkeeping ---------------------------------------------------------------------
    def _register(self, trial: Trial) -> None:
        if trial.trial_id not in self._status:
            continues = trial.config.get(CONTINUES_KEY)  # extend --epochs: the trial it goes on
            self._writer.add_trial(trial.trial_id, user_config(trial.config), continues)
            self._status[trial.trial_id] = self._done_before.get(
                trial.trial_id, TrialStatus.PENDING
            )
            if self._progress is not None:  # it numbers the trial as the store will
                self._progress.trial_added(trial.trial_id, user_config(trial.config))

    def _set(self, trial: Trial, status: str, detail: str | None = None, **fields: Any) -> None:
        self._register(trial)
        self._writer.set_status(trial.trial_id, status, detail=detail, **fields)
        self._status[trial.trial_id] = status
        if self._progress is not None:
            self._progress.trial_status(trial.trial_id, status, detail)

    def statuses(self) -> Counter[str]:
        return Counter(self._status.values())

    @property
    def best(self) -> float | None:
        return self._best

    @property
    def metric_problem(self) -> SpecError | None:
        """The spec's metric is missing from the first epoch report: the sweep was halted."""
        return self._metric.problem

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
            self._register(trial)
        if self._silent is not None:
            running = {t for t, s in self._status.items() if s == TrialStatus.RUNNING}
            self._silent.end_silent(trials, running)  # Tune then calls on_trial_error
        if self._progress is not None:
            health = self._writer.health()
            self._progress.store_changed(health, self._writer.outage_limit)
            self._progress.update(self.statuses(), self._best, store=health)

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        if trial.trial_id in self._done_before:
            return
        if self._silent is not None:
            self._silent.started(trial.trial_id)
        self._set(trial, TrialStatus.RUNNING)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        if trial.trial_id in self._done_before:
            return
        if self._silent is not None:
            self._silent.reported(trial.trial_id)
        self._register(trial)
        plain = POINTS_KEY not in result  # a trainable that calls ray.tune.report itself
        points = result_points(result, time.time()) if plain else result.pop(POINTS_KEY)
        load = result.pop(SYS_KEY, None)  # sys/ samples: stored, never judged (see sysmetrics)
        self._writer.add_points(trial.trial_id, points + load if load else points)
        if self._metric.check(trial.trial_id, result, points, plain) is not None:
            self._stopper.halt(str(self._metric.problem))
        fields: dict[str, Any] = dict(result.pop(INFO_KEY, None) or {})
        last = self._last.setdefault(trial.trial_id, {})
        if not last:  # the first result says where the trial runs
            fields.setdefault("node", result.get("hostname") or result.get("node_ip"))
        epoch = result.get("epoch", result.get("training_iteration") if plain else None)
        for key, value in (("step", result.get("step")), ("epoch", epoch)):
            if isinstance(value, int) and 0 <= value <= MAX_STEP:
                last[key] = value
                fields[f"last_{key}"] = value
        status = result.pop(STATUS_KEY, None)
        if status is not None:
            self._ended_as[trial.trial_id] = status
        if self._status.get(trial.trial_id) != TrialStatus.RUNNING:
            self._set(trial, TrialStatus.RUNNING, **fields)
        elif fields:
            self._writer.update_trial(trial.trial_id, **fields)
        value = result.get(self._spec.metric)
        if isinstance(value, int | float) and math.isfinite(value):
            better = max if self._spec.mode == "max" else min
            self._best = value if self._best is None else better(self._best, value)
        if self._progress is not None:
            self._progress.trial_reported(
                trial.trial_id, epoch=last.get("epoch"), step=last.get("step"), value=value
            )

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        if trial.trial_id in self._done_before:
            return
        status, detail = self._final_status(trial)
        self._set(trial, status, detail)
        if status == TrialStatus.DIVERGED:
            self._notify("trial_diverged", trial, status)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        if trial.trial_id in self._done_before:
            return
        if self._silent is not None and self._silent.timed_out(trial.trial_id):
            text = f"no report for {self._spec.trial_timeout:g} s (trial_timeout): ended"
            self._set(trial, TrialStatus.TIMEOUT, text, error=text)
            self._notify("trial_failed", trial, TrialStatus.TIMEOUT, text)
            return
        text = error_text(trial)
        if node_lost(text):  # not the trial's doing: it ends resumable, as on Ctrl-C
            self._set(trial, TrialStatus.STOPPED, "its Ray node was lost", error=text)
            self._notify("trial_failed", trial, TrialStatus.STOPPED, "its Ray node was lost")
            if self._progress is not None:
                self._progress.note(
                    f"trial {self._progress.number(trial.trial_id)} lost its Ray node; it "
                    f"ends stopped, and `sweepscope resume {self._writer.sweep_id}` continues "
                    "it from its last checkpoint"
                )
            return
        self._set(trial, TrialStatus.ERROR, text, error=text)
        self._notify("trial_failed", trial, TrialStatus.ERROR, text)
        if self._progress is not None:
            self._progress.trial_failed(trial.trial_id, text, self._writer.sweep_id)

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        if trial.trial_id in self._done_before:
            return
        text = error_text(trial)
        self._set(trial, TrialStatus.PENDING, f"retrying after: {text}", error=text)

    def _notify(self, event: str, trial: Trial, status: str, detail: str | None = None) -> None:
        if self._notifier is not None:
            self._notifier.trial(
                event, trial.trial_id, status, config=user_config(trial.config), detail=detail
            )

    def close_open_trials(self, reason: str) -> None:
        """After Tune returns: no trial may stay pending or running in the store."""
        for ray_id, status in list(self._status.items()):
            if not TrialStatus(status).is_finished and ray_id not in self._done_before:
                final = (
                    TrialStatus.STOPPED_BY_USER
                    if self._stopper.requested(ray_id)
                    else TrialStatus.STOPPED
                )
                self._writer.set_status(ray_id, final, detail=reason)
                self._status[ray_id] = final
                if self._progress is not None:
                    self._progress.trial_status(ray_id, final, reason)
