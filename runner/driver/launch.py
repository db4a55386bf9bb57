"""Launch a sweep on Ray Tune, extend a finished one, or resume either: local by default, or
on a cluster with `address`.

What to run is decided here (a new sweep's id and store rows; an extension's round; for a
resume, the writes its store missed, the refusals, the stored spec, the round to resume and
Ray Tune's saved state); running it is runner.driver.drive's.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from runner import _ray_private as ray_private
from runner.driver import tune_spec
from runner.driver.drive import SweepOutcome, drive
from runner.driver.progress import Progress
from runner.driver.storage import DEFAULT_STORAGE, absolute_storage, clear_spill, spill_file
from runner.driver.writer import replay
from runner.errors import SpecError, SweepscopeError
from runner.protocol import CONTINUES_KEY, START_CHECKPOINT_KEY
from runner.spec import (
    Spec,
    locate_trainable,
    parse_spec,
    resolve_trainable,
    restore_webhook,
    stored_spec,
)
from runner.store import (
    DEFAULT_OUTAGE_LIMIT,
    Store,
    SweepStatus,
    TrialStatus,
    driver_gone,
    reconcile,
    require_sweep,
)
from runner.trial.entry import class_entry, trial_entry

if TYPE_CHECKING:  # planned by `sweepscope extend`; a plain run needs neither pandas nor SciPy
    from runner.extensions import Plan

__all__ = ["SweepOutcome", "extend_sweep", "new_sweep_id", "resume_sweep", "run_sweep"]


def new_sweep_id(name: str) -> str:
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


# -- Ray -------------------------------------------------------------------------------
def _trainable(spec: Spec) -> tuple[Any, bool]:
    """What Ray Tune runs for each trial, and whether its actors can be reused (a user's
    `tune.Trainable` class may not implement reset_config)."""
    from ray import tune

    resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    every = spec.system_metrics_every if spec.system_metrics else None
    # A function is imported by the trials only (its module's imports, torch say, would cost
    # the driver seconds before the first trial starts); a class Tune needs here.
    if locate_trainable(spec.trainable) != "function":
        target = resolve_trainable(spec.trainable)
        if isinstance(target, type) and issubclass(target, tune.Trainable):
            return tune.with_resources(class_entry(target, every), resources), False
    entry = trial_entry(
        spec.trainable, spec.checkpoint_every, tune_spec.decision_epochs(spec), every
    )
    return tune.with_resources(entry, resources), True


# -- run and resume --------------------------------------------------------------------
def run_sweep(
    spec: Spec,
    *,
    store: Store,
    address: str | None = None,
    max_concurrent: int | None = None,
    sweep_id: str | None = None,
    storage_path: str | None = None,
    progress: bool | Progress = True,
    outage_limit: float = DEFAULT_OUTAGE_LIMIT,
    on_start: Callable[[str], None] | None = None,
) -> SweepOutcome:
    """Run every trial of `spec`, writing the sweep, its trials and their points to `store`.

    Returns when all trials have ended, the user stopped the sweep (store request or
    Ctrl-C), the store stayed away past `outage_limit` seconds, or the driver failed; the
    sweep's final status is in the store (or in its spill file) either way.
    """
    sweep_id = sweep_id or new_sweep_id(spec.name)
    storage = absolute_storage(storage_path or spec.storage_path or DEFAULT_STORAGE)
    store.create_sweep(
        sweep_id,
        name=spec.name,
        spec=stored_spec(spec),  # the webhook as scheme and host: its path is its token
        metric=spec.metric,
        mode=spec.mode,
        n_trials=spec.n_trials,
        storage_path=storage,
        outage_limit=outage_limit,  # others judge this driver's heartbeat by it
    )
    if on_start is not None:
        on_start(sweep_id)

    return drive(
        lambda: _tuner(spec, sweep_id, storage, max_concurrent),
        spec=spec,
        store=store,
        sweep_id=sweep_id,
        address=address,
        progress=progress,
        storage=storage,
        storage_given=storage_path or spec.storage_path,
        outage_limit=outage_limit,
    )


def _tuner(
    spec: Spec,
    experiment: str,
    storage: str,
    max_concurrent: int | None,
    points: list[dict[str, Any]] | None = None,
) -> Any:
    """A new sweep's Tuner, or an extension's (`points`: the trials it runs)."""
    from ray import tune

    trainable, reuse = _trainable(spec)
    return tune.Tuner(
        trainable,
        param_space=tune_spec.param_space(spec, points),
        tune_config=tune_spec.tune_config(spec, max_concurrent=max_concurrent, reuse_actors=reuse),
        run_config=tune.RunConfig(
            name=experiment,
            storage_path=storage,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            # runner.trial.report checkpoints as it goes; a user's Trainable class need not
            # implement save_checkpoint, which Ray would call at its end.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2, checkpoint_at_end=False),
        ),
    )


def extend_sweep(
    sweep_id: str,
    plan: Plan,
    *,
    store: Store,
    address: str | None = None,
    max_concurrent: int | None = None,
    progress: bool | Progress = True,
    outage_limit: float = DEFAULT_OUTAGE_LIMIT,
    on_start: Callable[[str, int], None] | None = None,
) -> SweepOutcome:
    """Run an extension of a finished sweep (runner.extensions plans it) as its next round:
    the same sweep id and store rows, a Ray Tune experiment of its own beside the sweep's
    (`SWEEP-roundN`), so that Ctrl-C and `resume` work on it as on any sweep."""
    sweep = require_sweep(store, sweep_id)
    storage = sweep["storage_path"] or absolute_storage(DEFAULT_STORAGE)
    experiment = f"{sweep_id}-round{{round}}"  # the store fills in the round's number
    points = plan.points
    if plan.kind == "epochs":
        points = _with_checkpoints(store, sweep_id, storage, points)
    round_ = store.add_round(
        sweep_id,
        kind=plan.kind,
        detail=plan.detail,
        points=points,
        experiment=experiment,
        spec=stored_spec(plan.spec) if plan.kind in ("grid", "epochs") else None,
        outage_limit=outage_limit,
    )
    if on_start is not None:
        on_start(sweep_id, round_)
    return drive(
        lambda: _tuner(plan.spec, experiment.format(round=round_), storage, max_concurrent, points),
        spec=plan.spec,
        store=store,
        sweep_id=sweep_id,
        address=address,
        progress=progress,
        storage=storage,
        storage_given=sweep["storage_path"],
        outage_limit=outage_limit,
        total=len(points),
    )


def _with_checkpoints(
    store: Store, sweep_id: str, storage: str, points: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Continued trials' points with the checkpoint each starts from; refused where a trial
    has none that runner.trial.report wrote (only those carry the step they were taken at,
    and only report.restore() can be handed one for a new Ray trial)."""
    from runner.driver.checkpoints import last_checkpoints

    trials = {t["id"]: t for t in store.trials(sweep_id)}
    continued = [trials[p[CONTINUES_KEY]] for p in points]
    experiments = [sweep_id, *(r["experiment"] for r in store.rounds(sweep_id))]
    found = last_checkpoints(storage, experiments, {t["ray_id"]: t["last_step"] for t in continued})
    missing = [t["number"] for t in continued if found[t["ray_id"]] is None]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise SweepscopeError(
            f"--epochs: trial {shown} of sweep {sweep_id} left no checkpoint to continue from "
            f"under {storage}. A trial continues from the state it passed to "
            "runner.report.epoch(..., state=...) and reads it back with report.restore(); a "
            "trainable that never does (or a plain Ray Tune one, or checkpoint_every: 0) can "
            "only be run again. Fix: checkpoint in the trainable, run the sweep again, then "
            "extend it; or extend with --seeds."
        )
    return [
        {**p, START_CHECKPOINT_KEY: found[t["ray_id"]]}
        for p, t in zip(points, continued, strict=True)
    ]


def resume_sweep(
    sweep_id: str,
    *,
    store: Store,
    address: str | None = None,
    spec_file: Spec | None = None,
    progress: bool | Progress = True,
    outage_limit: float = DEFAULT_OUTAGE_LIMIT,
    on_start: Callable[[str], None] | None = None,
) -> SweepOutcome:
    """Continue a stopped or interrupted sweep: finished trials are not rerun, unfinished ones
    (and those whose Ray node was lost) resume from their latest checkpoints, trials never
    started start. Writes its store missed (kept in the spill file when the store stayed
    away) go to the store first.

    Long on purpose: it is the resume's checklist in the order it must run (refuse a live
    driver before replaying, replay before reconciling, refuse a changed spec, fence older
    drivers), each step a few lines with its refusal beside it."""
    started = time.monotonic()
    sweep = require_sweep(store, sweep_id)
    if sweep["status"] == SweepStatus.RUNNING and not driver_gone(sweep):
        _refuse_running(sweep)  # before replay: a live driver may still append to the file
    storage = sweep["storage_path"] or absolute_storage(DEFAULT_STORAGE)
    spill = spill_file(sweep, storage)
    if sweep.get("spill_path") and not spill.exists():
        raise SweepscopeError(
            f"sweep {sweep_id} keeps the writes its store missed in {spill}, which is not "
            f"here ({socket.gethostname()}): its driver was {sweep['driver']}. Fix: run "
            "`sweepscope resume` on that host, or copy the file to that path here. It holds "
            "writes only if the store was away when that driver stopped; if the store was up, "
            f"the file was empty, and resuming without it loses nothing: touch {spill}"
        )
    replayed = replay(store, sweep_id, spill)
    for skipped in replayed.notes:
        print(f"note: {skipped}", file=sys.stderr)
    if replayed.ops and progress:
        print(f"wrote {replayed.points:,} points the store had missed", file=sys.stderr)
    reconcile(store)  # after replay: a replayed status must not reopen a trial
    sweep = require_sweep(store, sweep_id)
    if sweep["status"] == SweepStatus.RUNNING:
        _refuse_running(sweep)
    if sweep["status"] != SweepStatus.STOPPED and replayed.ops:
        # What the user asked for is done: the writes are in; no trial is left to run.
        if progress:
            print(f"sweep {sweep_id} is {sweep['status']}: no trial left to run", file=sys.stderr)
        clear_spill(store, sweep_id, spill)
        return SweepOutcome(
            sweep_id=sweep_id,
            status=sweep["status"],
            counts=dict(sweep["counts"]),
            best=sweep["best"],
            elapsed=time.monotonic() - started,
        )
    if sweep["status"] != SweepStatus.STOPPED:
        raise SweepscopeError(
            f"sweep {sweep_id} is {sweep['status']}: nothing to resume. Fix: resume only a "
            "stopped or interrupted sweep; start a new one with `sweepscope run SPEC`."
        )
    spec = parse_spec(sweep["spec"], source=f"sweep {sweep_id} in the store")
    if spec_file is not None:
        _refuse_changed_spec(spec, spec_file, sweep_id)
    spec, note = restore_webhook(spec, spec_file, os.environ)  # the store keeps its host only
    if note is not None:
        print(note, file=sys.stderr)
    rounds = store.rounds(sweep_id)  # an extension resumes its own round's experiment
    last = rounds[-1] if rounds else None
    path = f"{storage.rstrip('/')}/{last['experiment'] if last else sweep_id}"
    if "://" not in storage and not Path(path, "tuner.pkl").exists():
        raise SweepscopeError(
            f"sweep {sweep_id} has no Ray Tune state at {path}, so it cannot resume. Fix: run "
            "`sweepscope resume` where the sweep ran (or with its shared storage_path mounted)."
        )
    store.reopen_sweep(sweep_id, outage_limit=outage_limit)  # fences out any older driver
    if on_start is not None:
        on_start(sweep_id)
    trials = store.trials(sweep_id)  # Ray ids are per experiment: others' never show up
    done = {t["ray_id"]: t["status"] for t in trials if TrialStatus(t["status"]).is_final}
    # A trial that lost its Ray node is `stopped` here, errored in Tune's state: resumed too
    stopped = [t["ray_id"] for t in trials if t["status"] == TrialStatus.STOPPED]
    stored_steps = {t["ray_id"]: t["last_step"] for t in trials}
    points = last["points"] if last else None

    def build() -> Any:
        from ray import tune

        trainable, _ = _trainable(spec)
        return tune.Tuner.restore(
            path,
            trainable=trainable,
            # Tune saves the space's sample_from functions as placeholders: give them back
            # (a searcher's state, the trials it suggested and their results, Tune restores)
            param_space=tune_spec.param_space(spec, points),
            resume_unfinished=True,
            resume_errored=False,
            restart_errored=False,
        )

    with ray_private.resume_lost_trials(stopped):
        return drive(
            build,
            spec=spec,
            store=store,
            sweep_id=sweep_id,
            address=address,
            progress=progress,
            done_before=done,
            stored_steps=stored_steps,
            storage=storage,
            storage_given=sweep["storage_path"],
            outage_limit=outage_limit,
            spill=spill,
            total=len(points) if points is not None else None,
        )


def _refuse_running(sweep: dict[str, Any]) -> NoReturn:
    raise SweepscopeError(
        f"sweep {sweep['id']} is running: its driver ({sweep['driver']}) is alive. Fix: stop it "
        f"first (sweepscope stop {sweep['id']}, or Ctrl-C its `sweepscope run`), then resume."
    )


def _refuse_changed_spec(stored: Spec, given: Spec, sweep_id: str) -> None:
    # Compared as the store keeps them: the stored webhook is masked, the given one is not.
    old, new = stored_spec(stored), stored_spec(given)
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if changed:
        raise SpecError(
            f"sweep {sweep_id}",
            [
                (
                    key,
                    f"differs from the spec the sweep started with ({old.get(key)!r} there, "
                    f"{new.get(key)!r} now).",
                    "resume without --spec (the stored spec is used), or start a new sweep with "
                    "`sweepscope run` for the changed spec",
                )
                for key in changed
            ],
        )
