"""Drive one sweep on Ray Tune: start Ray, fit the tuner with the store's callback and
stopper, and settle the sweep's status, whatever ends it (its trials, a stop request,
Ctrl-C or SIGTERM, a store that stayed away, a failure).

Data path: trial -> runner.trial.report -> Ray Tune result -> StoreCallback -> StoreWriter
-> store. Control path: store stop request -> StoreStopper -> Ray Tune stops the trial.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import _ray_private as ray_private
from runner.driver.cluster import check_storage
from runner.driver.interrupts import Interrupts
from runner.driver.progress import Progress
from runner.driver.ray_env import init_ray
from runner.driver.storage import clear_spill, record_spill, spill_dir
from runner.driver.writer import INTERRUPT_DRAIN, SPILL_FILE, StoreWriter
from runner.errors import InfrastructureError, SpecError, StoreError, SweepscopeError
from runner.spec import Spec
from runner.store import DEFAULT_OUTAGE_LIMIT, Store, SweepStatus, TrialStatus
from runner.timefmt import format_seconds

if TYPE_CHECKING:
    from runner.driver.callback import StoreCallback

__all__ = ["SweepOutcome", "drive"]


@dataclass(frozen=True)
class SweepOutcome:
    sweep_id: str
    status: str
    counts: dict[str, int]
    best: float | None
    elapsed: float
    # Why the sweep could not finish, for the CLI: a SpecError (the metric is not reported)
    # or an InfrastructureError (the store stayed away); None otherwise.
    error: SweepscopeError | None = None
    # Interrupted while the store was away: the file holding what it has not taken yet.
    spill: str | None = None
    held_points: int = 0  # points in that file
    notes: tuple[str, ...] = ()  # for the user, after the summary


def drive(
    build: Callable[[], Any],
    *,
    spec: Spec,
    store: Store,
    sweep_id: str,
    address: str | None,
    progress: bool | Progress,
    storage: str,
    done_before: dict[str, str] | None = None,
    stored_steps: dict[str, int | None] | None = None,
    storage_given: str | None = None,
    outage_limit: float = DEFAULT_OUTAGE_LIMIT,
    spill: Path | None = None,
    total: int | None = None,
) -> SweepOutcome:
    """Start Ray, fit the tuner with our callback and stopper, and settle the sweep's status.
    `spill`: the spill file (default: SPILL_FILE in `spill_dir`). `total`: the trials this
    run plans, for the progress line (default: the spec's; an extension runs fewer).

    One function on purpose, though long: the try/except/finally around Tune's loop must
    see everything set up before it (the signal handlers, Ray, the writer, the callback, the
    notifier) to settle the sweep however it ends; the decisions are in _status_after_fit,
    _drain and _left_error."""
    from runner.driver.notify import Notifier

    started = time.monotonic()
    spill = spill or spill_dir(storage, sweep_id) / SPILL_FILE
    _make_spill(store, sweep_id, spill)
    writer = StoreWriter(store, sweep_id, spill_path=spill, outage_limit=outage_limit)
    if isinstance(progress, Progress):  # the CLI's choice: JSON lines (runner.driver.progress)
        line: Progress | None = progress
    else:
        line = Progress(total=total or spec.n_trials, metric=spec.metric) if progress else None
    if line is not None:  # trials the store holds keep their numbers (a resume, an extension)
        line.know(store.trials(sweep_id))
    webhook = spec.notify.webhook if spec.notify is not None else None
    notifier = Notifier(webhook, sweep_id=sweep_id, name=spec.name)
    callback: StoreCallback | None = None
    signals = Interrupts(writer)
    restore = contextlib.ExitStack()
    restore.enter_context(signals.installed())
    status: str = SweepStatus.FAILED
    message: str | None = None
    error: SweepscopeError | None = None
    owns_ray = False
    try:
        owns_ray = init_ray(
            address,
            meanwhile=(
                "runner.driver.callback",
                "runner.driver.checkpoints",
                "runner.driver.stopper",
            ),
        )
        signals.take_back()
        from runner.driver.callback import StoreCallback
        from runner.driver.checkpoints import SurvivingCheckpoints
        from runner.driver.stopper import StoreStopper

        stopper = StoreStopper(writer=writer, stop=spec.stop, done_before=set(done_before or ()))
        callback = StoreCallback(
            writer=writer,
            spec=spec,
            stopper=stopper,
            progress=line,
            done_before=done_before,
            notifier=notifier,
        )
        check_storage(storage_given)  # a multi-node cluster needs shared storage
        tuner = build()
        # Our callback and stopper hold live state (and a restored tuner carries pickled
        # copies of the old ones): set them on the run config right before fit.
        run_config = ray_private.run_config(tuner)
        run_config.callbacks = [callback, ray_private.silent_trial_lines()]
        if stored_steps is not None:  # resumed: continue from checkpoints that survived
            run_config.callbacks.append(SurvivingCheckpoints(stored_steps=stored_steps))
        run_config.stop = stopper
        ray_private.skip_callback_census()
        tuner.fit()
        signals.tune_ended = True
        status, message, error = _status_after_fit(callback, writer, signals.by, sweep_id)
    except KeyboardInterrupt:  # a second Ctrl-C or SIGTERM, or one before Tune's loop ran
        signals.tune_ended = True
        signals.by = signals.by or "Ctrl-C"
        writer.hurry()
        status = SweepStatus.STOPPED
        message = f"interrupted with {signals.by}; continue with `sweepscope resume {sweep_id}`"
    except BaseException as exc:
        signals.tune_ended = True
        message = "".join(traceback.format_exception_only(exc)).strip().splitlines()[0]
        raise
    finally:
        signals.tune_ended = True
        if callback is not None:
            callback.close_open_trials(
                "the driver was interrupted; resumable"
                if status == SweepStatus.STOPPED
                else "the sweep ended"
            )
        if owns_ray:
            import ray

            ray.shutdown()  # the trials are done: free the cores while the writer drains
        writer.finish_sweep(status, message)
        try:  # our signal handlers stay until the last wait: a Ctrl-C there only hurries it
            left = _drain(writer, line, hurried=signals.by is not None)
            if left is None:
                clear_spill(store, sweep_id, spill)
            counts = callback.statuses() if callback is not None else Counter[str]()
            best = callback.best if callback is not None else None
            if line is not None:
                line.update(counts, best, force=True)
                line.close()
            ended = SweepStatus.STOPPED if left is not None else status
            notifier.sweep(ended, message=message, counts=counts, best=best)
            # Bounded: a failing webhook holds a normal end at most one post's budget
            # (21 s), an interrupted one (the user waits for the prompt) a few seconds.
            notifier.close(wait=5.0 if signals.by is not None else None)
        finally:
            restore.close()
    health = writer.health()
    kept: str | None = None
    if left is not None:
        if signals.by is not None and not health.taken_over:
            kept = str(left)  # the user stopped it: exit 130, the CLI says where they are
        elif not isinstance(error, SpecError):
            error = _left_error(writer, left)
    return SweepOutcome(
        sweep_id=sweep_id,
        status=ended,
        counts=dict(counts),
        best=best,
        elapsed=time.monotonic() - started,
        error=error,
        spill=kept,
        held_points=health.held_points if left is not None else 0,
        notes=_notes(writer),
    )


def _make_spill(store: Store, sweep_id: str, spill: Path) -> None:
    """Make the spill file before anything can need it; a sweep that cannot fails at once."""
    try:
        record_spill(store, sweep_id, spill)
    except OSError as exc:
        with contextlib.suppress(StoreError):
            store.finish_sweep(sweep_id, SweepStatus.FAILED, f"cannot make the spill file: {exc}")
        raise InfrastructureError(
            f"sweep {sweep_id} cannot keep the writes its store may miss in {spill}: {exc}. "
            "Fix: make that directory writable (it is beside Ray Tune's state, or "
            "~/.sweepscope/spill for cloud storage), or pass a --storage-path this user may "
            "write, then run the sweep again."
        ) from exc


def _status_after_fit(
    callback: StoreCallback, writer: StoreWriter, interrupted_by: str | None, sweep_id: str
) -> tuple[str, str | None, SweepscopeError | None]:
    """The sweep's status once Tune's loop returned, its message, and the error to report:
    a metric the trials do not report, a store that stayed away, an interrupt, a user's
    stop request, every trial failed, trials whose Ray node was lost, or completed."""
    resume = f"continue with `sweepscope resume {sweep_id}`"
    gave_up = writer.health().gave_up
    counts = callback.statuses()
    if callback.metric_problem is not None:
        return SweepStatus.FAILED, str(callback.metric_problem), callback.metric_problem
    if gave_up is not None:
        return SweepStatus.STOPPED, f"stopped: {gave_up}; {resume}", None
    if interrupted_by is not None:
        return SweepStatus.STOPPED, f"interrupted with {interrupted_by}; {resume}", None
    if writer.stop_requests()[0]:
        return SweepStatus.STOPPED, "stopped by user", None
    if counts and counts.get(TrialStatus.ERROR, 0) == sum(counts.values()):
        return SweepStatus.FAILED, "every trial failed", None
    lost = counts.get(TrialStatus.STOPPED, 0)  # uninterrupted, only a lost node stops one
    if lost:
        return SweepStatus.STOPPED, f"{lost} trial(s) lost their Ray node; {resume}", None
    return SweepStatus.COMPLETED, None, None


def _notes(writer: StoreWriter) -> tuple[str, ...]:
    """What the user should know after the summary."""
    rejected = writer.health().rejected
    if not rejected:
        return ()
    return (
        f"the store refused {rejected:,} writes for good (a value it cannot hold); they are "
        f"set aside, with the reason, in {writer.rejects_path}, and the sweep went on "
        "without them",
    )


def _drain(writer: StoreWriter, line: Progress | None, *, hurried: bool) -> Path | None:
    """Let the writer write what it holds: up to the outage limit at a normal end, a few
    seconds after an interrupt. What the store has not taken by then stays on disk: returns
    the file that holds it (None when everything is in the store)."""
    health = writer.health()
    if line is not None and health.held_points and health.away_for is not None:
        wait = INTERRUPT_DRAIN if hurried else writer.outage_limit
        line.note(
            f"waiting for the store to write {health.held_points:,} held points "
            f"(at most {format_seconds(wait)}; they are kept in {writer.spill_path} meanwhile)"
        )
    # Interrupted while the store is away: what it holds is on disk already, so the prompt
    # need not wait for a store that is not answering.
    away = health.away_for is not None or health.gave_up is not None
    if writer.close(1.0 if hurried and away else None):
        return None
    return writer.spill()


def _left_error(writer: StoreWriter, path: Path) -> InfrastructureError:
    """Why the writes in `path` are not in the store, and what to do."""
    health = writer.health()
    url = writer.store.url
    resume = f"`sweepscope resume {writer.sweep_id} --store {url}`"
    if health.taken_over:
        return InfrastructureError(
            f"{health.gave_up}. This driver stopped without writing more to the store {url}; "
            f"the {health.held_points:,} points it held are kept in {path}. Fix: see "
            f"`sweepscope status {writer.sweep_id}`; the sweep is its other driver's now "
            f"({resume} writes those points, once that driver has stopped)."
        )
    last = (health.last_error or "").split(" Fix: ")[0].rstrip(".")
    failed = "failed" if "writer failed" not in (health.gave_up or "") else "could not be written"
    return InfrastructureError(
        f"the store {url} {failed}: {health.gave_up}"
        f"{f' (last error: {last})' if last else ''}. The sweep "
        f"stopped and can be resumed; the {health.held_points:,} points and the status "
        f"changes the store missed are kept in {path}. Fix: bring the store back (or free its "
        f"lock), then run {resume}: it writes them to the store first, then continues the sweep."
    )
