"""The driver-side Tune callback that turns every trial's life and curves into store writes.

Trials send their points inside Ray Tune results (see runner.report), so no trial ever
opens the store, and a cluster needs no shared files for it. A trainable written for plain
Ray Tune (`ray.tune.report(metrics)`, or a `tune.Trainable` whose `step()` returns a dict)
works too: each numeric metric of its results becomes a point at the result's `step`, else
at its `training_iteration`. The callback only queues writes on the StoreWriter, which
returns at once: a slow or absent store never holds up the Tune loop.
"""

from __future__ import annotations

import difflib
import math
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import tune
from ray.tune.result import AUTO_RESULT_KEYS, DEBUG_METRICS

from runner import _ray_private as ray_private
from runner.errors import SpecError
from runner.notify import Notifier
from runner.progress import Progress, format_seconds
from runner.report import INFO_KEY, MAX_METRIC_NAME, MAX_STEP, POINTS_KEY, STATUS_KEY
from runner.spec import Spec, user_config
from runner.status import TrialStatus
from runner.stopper import StoreStopper
from runner.sysmetrics import SYS_KEY, is_system_metric
from runner.writer import StoreWriter

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

__all__ = ["StoreCallback", "result_points"]

# Keys of a Ray Tune result that are bookkeeping, not metrics.
_NOT_METRICS = (
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
        if name not in _NOT_METRICS
        and not name.startswith("_")
        and len(name) <= MAX_METRIC_NAME
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ]


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
        self._seen_at: dict[str, float] = {}  # Ray trial id -> when it last reported
        self._timed_out: set[str] = set()
        self._spec = spec
        self._stopper = stopper
        self._progress = progress
        self._status: dict[str, str] = {}  # Ray trial id -> status last written
        self._ended_as: dict[str, str] = {}  # a status the trial itself reported
        self._last: dict[str, dict[str, int]] = {}  # Ray trial id -> last step / epoch
        self._best: float | None = None
        self._metric_checked = False
        self.metric_problem: SpecError | None = None
        self._store_away = False

    # -- bookkeeping ---------------------------------------------------------------------
    def _register(self, trial: Trial) -> None:
        if trial.trial_id not in self._status:
            self._writer.add_trial(trial.trial_id, user_config(trial.config))
            self._status[trial.trial_id] = self._done_before.get(
                trial.trial_id, TrialStatus.PENDING
            )

    def _set(self, trial: Trial, status: str, detail: str | None = None, **fields: Any) -> None:
        self._register(trial)
        self._writer.set_status(trial.trial_id, status, detail=detail, **fields)
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

    def _check_metric(
        self, trial: Trial, result: dict[str, Any], points: list[Any], plain: bool
    ) -> None:
        """The first epoch report (any result of a plain Ray Tune trainable) must carry the
        spec's metric; otherwise the sweep is halted at once with the closest match."""
        if self._metric_checked or not (plain or "epoch" in result):
            return
        self._metric_checked = True
        if self._spec.metric in result:
            return
        reported = sorted(
            name
            for name in {name for name, *_ in points}
            | {k for k, v in result.items() if k not in _NOT_METRICS and isinstance(v, int | float)}
            - {k for k in result if k.startswith("_")}
            if not is_system_metric(name)  # the runner's load readings are no trial's metric
        )
        close = difflib.get_close_matches(self._spec.metric, reported, n=1)
        fix = (
            f"did you mean {close[0]}? Set metric: {close[0]} in the spec"
            if close
            else "set metric to one of the reported metrics, or report it with "
            f"report.epoch(..., {self._spec.metric}=value)"
        )
        self.metric_problem = SpecError(
            "the sweep's spec",
            [
                (
                    "metric",
                    f"{self._spec.metric!r} is not reported: trial {trial.trial_id}'s first "
                    f"epoch report has {', '.join(reported) or 'no metrics'}.",
                    fix,
                )
            ],
        )
        self._stopper.halt(str(self.metric_problem))

    # -- Tune hooks ----------------------------------------------------------------------
    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        for trial in trials:  # register trials as soon as Tune creates them: pending
            self._register(trial)
        now = time.monotonic()
        if self._spec.trial_timeout is not None:
            self._kill_silent_trials(trials, now)
        if self._progress is not None:
            health = self._writer.health()
            self._note_store_changes(health.away_for, health.held_points)
            self._progress.update(self.statuses(), self._best, store=health)

    def _note_store_changes(self, away_for: float | None, held: int) -> None:
        assert self._progress is not None
        if away_for is not None and not self._store_away:
            self._progress.note(
                f"the store is not answering; trials go on and their points are held "
                f"(the sweep stops if it stays away {format_seconds(self._writer.outage_limit)})"
            )
        elif away_for is None and self._store_away:
            self._progress.note("the store answers again; the held points are written")
        self._store_away = away_for is not None

    def _kill_silent_trials(self, trials: list[Trial], now: float) -> None:
        """End trials that reported nothing for `trial_timeout` seconds (a hung trial)."""
        import ray

        limit = self._spec.trial_timeout
        for trial in trials:
            seen = self._seen_at.get(trial.trial_id)
            actor = ray_private.trial_actor(trial)
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
        self._register(trial)
        plain = POINTS_KEY not in result  # a trainable that calls ray.tune.report itself
        points = result_points(result, time.time()) if plain else result.pop(POINTS_KEY)
        load = result.pop(SYS_KEY, None)  # sys/ samples: stored, never judged (see sysmetrics)
        self._writer.add_points(trial.trial_id, points + load if load else points)
        self._check_metric(trial, result, points, plain)
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
        if trial.trial_id in self._timed_out:
            text = f"no report for {self._spec.trial_timeout:g} s (trial_timeout): ended"
            self._set(trial, TrialStatus.TIMEOUT, text, error=text)
            self._notify("trial_failed", trial, TrialStatus.TIMEOUT, text)
            return
        text = _error_text(trial)
        self._set(trial, TrialStatus.ERROR, text, error=text)
        self._notify("trial_failed", trial, TrialStatus.ERROR, text)
        if self._progress is not None:
            last_line = text.strip().splitlines()[-1] if text.strip() else "unknown error"
            self._progress.note(
                f"trial {trial.trial_id} failed: {last_line} "
                f"(traceback: sweepscope status {self._writer.sweep_id})"
            )

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        if trial.trial_id in self._done_before:
            return
        text = _error_text(trial)
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
