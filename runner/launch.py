"""Launch a sweep on Ray Tune, or resume one: local by default, or on a cluster with `address`.

Data path: trial -> runner.report -> Ray Tune result -> StoreCallback (driver) -> store.
Control path: store stop request -> StoreStopper (driver) -> Ray Tune stops the trial.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from runner import _ray_private as ray_private
from runner import report, sysmetrics, tune_spec
from runner.cluster import check_storage
from runner.errors import InfrastructureError, SpecError, StoreError, SweepscopeError
from runner.progress import Progress, format_seconds
from runner.spec import (
    Spec,
    locate_trainable,
    parse_spec,
    resolve_trainable,
    restore_webhook,
    stored_spec,
    user_config,
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
from runner.writer import (
    INTERRUPT_DRAIN,
    SPILL_FILE,
    StoreWriter,
    open_append,
    replay,
)

if TYPE_CHECKING:
    from runner.callback import StoreCallback

__all__ = [
    "SweepOutcome",
    "new_sweep_id",
    "resume_sweep",
    "run_sweep",
    "trial_entry",
]

# Ray Tune's own loggers and tables are replaced by the store and the progress line.
_TUNE_ENV = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",  # step flushes carry no epoch metric
    "TUNE_DISABLE_SIGINT_HANDLER": "1",  # Ctrl-C (and SIGTERM): _Interrupts below
    "RAY_AIR_NEW_OUTPUT": "0",  # the classic output, silenced by ray_private.silent_trial_lines
    "TUNE_GLOBAL_CHECKPOINT_S": "5",  # experiment state for resume, at most 5 s old
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}
DEFAULT_STORAGE = ".sweepscope/ray"


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


def new_sweep_id(name: str) -> str:
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def trial_entry(
    trainable: str,
    checkpoint_every: int,
    decision_epochs: frozenset[int] = frozenset(),
    system_metrics: float | None = None,
) -> Callable[[dict[str, Any]], None]:
    """The function Ray Tune runs for each trial: the user's trainable, plus report plumbing.

    With `system_metrics` (seconds), the trial's process is sampled that often (sys/ points,
    see runner.sysmetrics): Ray's wrapper class for the function takes the sampling mixin.
    """

    def run_trial(config: dict[str, Any]) -> None:
        import ray

        from runner.cluster import node_label

        if not ray.get_gpu_ids():  # Ray 2.60 leaves a gpu-0 trial every GPU: hide them
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        fn = resolve_trainable(trainable)
        report._reset(checkpoint_every, decision_epochs)
        report.info(node=node_label())
        try:
            fn(user_config(config))
        except SystemExit:
            # Tune ended the trial (stopper, scheduler) from inside its report: a further
            # report would block this thread forever, and the actor could not be reused.
            raise
        except BaseException:
            report._finish()  # send points still buffered, then let Tune record the error
            raise
        report._finish(completed=True)

    run_trial.__name__ = trainable.replace(":", ".").rsplit(".", 1)[-1]
    if system_metrics is not None:
        ray_private.with_mixins(run_trial, (sysmetrics.sampling(system_metrics),))
    return run_trial


def class_entry(cls: type, system_metrics: float | None = None) -> type:
    """A user's own `tune.Trainable` class, seeing the config without the runner's keys;
    sampled every `system_metrics` seconds when given (runner.sysmetrics)."""
    bases = (cls,) if system_metrics is None else (sysmetrics.sampling(system_metrics), cls)

    class Entry(*bases):  # type: ignore[misc]
        def setup(self, config: dict[str, Any]) -> None:
            super().setup(user_config(config))

    Entry.__name__ = Entry.__qualname__ = cls.__name__
    return Entry


# -- Ray -------------------------------------------------------------------------------
def _is_local(address: str | None) -> bool:
    return address in (None, "local") or str(address).split(":")[0] in ("127.0.0.1", "localhost")


def _init_ray(address: str | None, meanwhile: tuple[str, ...] = ()) -> bool:
    """Start or join Ray; returns True when this process started it (and must shut it down).

    ray.init mostly waits for the processes it starts: the modules named in `meanwhile`
    (Ray Tune's, say) are imported on a thread in that time.
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    for key, value in _TUNE_ENV.items():
        os.environ.setdefault(key, value)
    if _is_local(address):
        # Read by Ray at import: bind every Ray service to 127.0.0.1, not the LAN address.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    # Tune's result files are off (the store has the results): silence its complaint.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    # A failed trial is reported in one line by StoreCallback, its traceback kept in the store;
    # after Ctrl-C the CLI says how to resume (with sweepscope, not Tuner.restore).
    logging.getLogger("ray.tune.execution.tune_controller").addFilter(
        lambda record: not str(record.msg).startswith("Trial task failed")
    )
    logging.getLogger("ray.tune.tune").addFilter(
        lambda record: (
            not str(record.msg).startswith(
                ("Experiment has been interrupted", "Stop signal received")
            )
        )
    )
    if ray.is_initialized():
        return False
    if address in (None, "local"):
        with _importing(*meanwhile):
            ray.init(
                address="local",  # a new Ray of its own, never a cluster left on this host
                include_dashboard=False,
                configure_logging=False,
                log_to_driver=False,
                **ray_private.bind_node_ip("127.0.0.1"),
            )
        return True
    try:
        with _importing(*meanwhile):
            ray.init(address=address, configure_logging=False, log_to_driver=False)
    except (ConnectionError, RuntimeError) as exc:
        raise SweepscopeError(
            f"cannot connect to the Ray cluster at --address {address!r}: {exc}. Fix: start the "
            "cluster (ray start --head) and pass its address, e.g. --address 10.0.0.5:6380, "
            "or leave --address out to run on this machine."
        ) from None
    return True


_STOP_SIGNALS: dict[int, str] = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class _Interrupts:
    """Ctrl-C and SIGTERM (what SLURM, Kubernetes and `kill` send), over the whole drive.

    The first one ends Tune's loop the way Tune's own handler does, so trials that were
    running stay resumable from their checkpoints, and bounds the wait for the store at the
    end to a few seconds (writes it has not taken by then stay in the spill file). Before
    Tune's loop runs it aborts at once. A second one aborts Tune's loop, or, once the loop
    has ended, stops waiting for the store.
    """

    def __init__(self, writer: StoreWriter) -> None:
        self.writer = writer
        self.by: str | None = None  # what interrupted: "Ctrl-C" or "SIGTERM"
        self.count = 0
        self.tune_ended = False

    def handler(self, signum: int, frame: Any) -> None:
        self.count += 1
        self.by = self.by or _STOP_SIGNALS.get(signum, f"signal {signum}")
        if self.count > 1:
            self.writer.abandon()
            if not self.tune_ended:
                raise KeyboardInterrupt
            return
        self.writer.hurry()
        if self.tune_ended:
            return
        if not ray_private.tune_listens():  # Tune's loop has not started: nothing to save
            raise KeyboardInterrupt
        # os.write, not print: a handler that prints while the main thread prints fails
        note = f"\nstopping: saving the sweep's state to resume later ({self.by} again to abort)\n"
        os.write(2, note.encode())
        ray_private.interrupt_tune()  # Tune: save the experiment state and return

    def take_back(self) -> None:
        """Handle the signals again: ray.init sets a SIGTERM handler of its own (one that
        exits at once, taking the held writes' drain with it)."""
        if threading.current_thread() is threading.main_thread():
            for sig in _STOP_SIGNALS:
                signal.signal(sig, self.handler)

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only
            return
        previous = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}
        self.take_back()
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


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


def absolute_storage(storage: str) -> str:
    """A local storage path made absolute; a URI (s3://bucket/sweeps) stays as it is."""
    return storage if "://" in storage else str(Path(storage).resolve())


def spill_dir(storage_path: str, sweep_id: str) -> Path:
    """Where a sweep keeps the writes its store never took: beside Ray Tune's state, or,
    when that state lives in a cloud URI, under ~/.sweepscope/spill (an absolute path, the
    same whatever the current directory). The store records the file's path (spill_path)."""
    if "://" not in storage_path:
        return Path(storage_path).resolve() / sweep_id
    return Path.home().resolve() / ".sweepscope" / "spill" / sweep_id


def _spill_file(sweep: dict[str, Any], storage: str) -> Path:
    """The spill file of a sweep: the one its store records, else the default place."""
    return Path(sweep.get("spill_path") or spill_dir(storage, sweep["id"]) / SPILL_FILE)


# -- run and resume --------------------------------------------------------------------
def run_sweep(
    spec: Spec,
    *,
    store: Store,
    address: str | None = None,
    max_concurrent: int | None = None,
    sweep_id: str | None = None,
    storage_path: str | None = None,
    progress: bool = True,
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

    def build() -> Any:
        from ray import tune

        trainable, reuse = _trainable(spec)
        return tune.Tuner(
            trainable,
            param_space=tune_spec.param_space(spec),
            tune_config=tune_spec.tune_config(
                spec, max_concurrent=max_concurrent, reuse_actors=reuse
            ),
            run_config=tune.RunConfig(
                name=sweep_id,
                storage_path=storage,
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                # runner.report checkpoints as it goes; a user's Trainable class need not
                # implement save_checkpoint, which Ray would call at its end.
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2, checkpoint_at_end=False),
            ),
        )

    return _drive(
        build,
        spec=spec,
        store=store,
        sweep_id=sweep_id,
        address=address,
        progress=progress,
        storage=storage,
        storage_given=storage_path or spec.storage_path,
        outage_limit=outage_limit,
    )


def resume_sweep(
    sweep_id: str,
    *,
    store: Store,
    address: str | None = None,
    spec_file: Spec | None = None,
    progress: bool = True,
    outage_limit: float = DEFAULT_OUTAGE_LIMIT,
    on_start: Callable[[str], None] | None = None,
) -> SweepOutcome:
    """Continue a stopped or interrupted sweep: finished trials are not rerun, unfinished ones
    resume from their latest checkpoints, trials never started start. Writes its store missed
    (kept in the spill file when the store stayed away) go to the store first."""
    started = time.monotonic()
    sweep = require_sweep(store, sweep_id)
    if sweep["status"] == SweepStatus.RUNNING and not driver_gone(sweep):
        _refuse_running(sweep)  # before replay: a live driver may still append to the file
    storage = sweep["storage_path"] or absolute_storage(DEFAULT_STORAGE)
    spill = _spill_file(sweep, storage)
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
        _clear_spill(store, sweep_id, spill)
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
    path = f"{storage.rstrip('/')}/{sweep_id}"
    if "://" not in storage and not Path(path, "tuner.pkl").exists():
        raise SweepscopeError(
            f"sweep {sweep_id} has no Ray Tune state at {path}, so it cannot resume. Fix: run "
            "`sweepscope resume` where the sweep ran (or with its shared storage_path mounted)."
        )
    store.reopen_sweep(sweep_id, outage_limit=outage_limit)  # fences out any older driver
    if on_start is not None:
        on_start(sweep_id)
    trials = store.trials(sweep_id)
    done = {t["ray_id"]: t["status"] for t in trials if TrialStatus(t["status"]).is_final}
    stored_steps = {t["ray_id"]: t["last_step"] for t in trials}

    def build() -> Any:
        from ray import tune

        trainable, _ = _trainable(spec)
        return tune.Tuner.restore(
            path,
            trainable=trainable,
            # Tune saves the space's sample_from functions as placeholders: give them back
            # (a searcher's state, the trials it suggested and their results, Tune restores)
            param_space=tune_spec.param_space(spec),
            resume_unfinished=True,
            resume_errored=False,
            restart_errored=False,
        )

    return _drive(
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


def _drive(
    build: Callable[[], Any],
    *,
    spec: Spec,
    store: Store,
    sweep_id: str,
    address: str | None,
    progress: bool,
    storage: str,
    done_before: dict[str, str] | None = None,
    stored_steps: dict[str, int | None] | None = None,
    storage_given: str | None = None,
    outage_limit: float = DEFAULT_OUTAGE_LIMIT,
    spill: Path | None = None,
) -> SweepOutcome:
    """Start Ray, fit the tuner with our callback and stopper, and settle the sweep's status.
    `spill`: the spill file (default: SPILL_FILE in `spill_dir`)."""
    from runner.notify import Notifier

    started = time.monotonic()
    spill = spill or spill_dir(storage, sweep_id) / SPILL_FILE
    try:
        _record_spill(store, sweep_id, spill)
    except OSError as exc:
        with contextlib.suppress(StoreError):
            store.finish_sweep(sweep_id, SweepStatus.FAILED, f"cannot make the spill file: {exc}")
        raise InfrastructureError(
            f"sweep {sweep_id} cannot keep the writes its store may miss in {spill}: {exc}. "
            "Fix: make that directory writable (it is beside Ray Tune's state, or "
            "~/.sweepscope/spill for cloud storage), or pass a --storage-path this user may "
            "write, then run the sweep again."
        ) from exc
    writer = StoreWriter(store, sweep_id, spill_path=spill, outage_limit=outage_limit)
    line = Progress(total=spec.n_trials, metric=spec.metric) if progress else None
    webhook = spec.notify.webhook if spec.notify is not None else None
    notifier = Notifier(webhook, sweep_id=sweep_id, name=spec.name)
    callback: StoreCallback | None = None
    signals = _Interrupts(writer)
    restore = contextlib.ExitStack()
    restore.enter_context(signals.installed())
    status, message = SweepStatus.FAILED, None
    error: SweepscopeError | None = None
    owns_ray = False
    try:
        owns_ray = _init_ray(
            address, meanwhile=("runner.callback", "runner.checkpoints", "runner.stopper")
        )
        signals.take_back()
        from runner.callback import StoreCallback
        from runner.checkpoints import SurvivingCheckpoints
        from runner.stopper import StoreStopper

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
        tuner.fit()
        signals.tune_ended = True
        counts = callback.statuses()
        gave_up = writer.health().gave_up
        if callback.metric_problem is not None:
            error = callback.metric_problem
            status, message = SweepStatus.FAILED, str(error)
        elif gave_up is not None:
            status = SweepStatus.STOPPED
            message = f"stopped: {gave_up}; continue with `sweepscope resume {sweep_id}`"
        elif signals.by is not None:
            status = SweepStatus.STOPPED
            message = f"interrupted with {signals.by}; continue with `sweepscope resume {sweep_id}`"
        elif writer.stop_requests()[0]:
            status, message = SweepStatus.STOPPED, "stopped by user"
        elif counts and counts.get(TrialStatus.ERROR, 0) == sum(counts.values()):
            status, message = SweepStatus.FAILED, "every trial failed"
        else:
            status = SweepStatus.COMPLETED
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
                _clear_spill(store, sweep_id, spill)
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
    notes = []
    if health.rejected:
        notes.append(
            f"the store refused {health.rejected:,} writes for good (a value it cannot hold); "
            f"they are set aside, with the reason, in {writer.rejects_path}, and the sweep "
            "went on without them"
        )
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
        notes=tuple(notes),
    )


def _record_spill(store: Store, sweep_id: str, spill: Path) -> None:
    """Make the (empty) spill file and record its path in the store, so that `resume` from
    another directory or host finds it, or says that it is missing. Best effort: the
    default place (spill_dir) is where resume looks when nothing is recorded."""
    os.close(open_append(spill))
    try:
        store.set_spill_path(sweep_id, str(spill))
    except StoreError as exc:
        logging.getLogger(__name__).info("could not record the spill file's path: %s", exc)


def _clear_spill(store: Store, sweep_id: str, spill: Path) -> None:
    """Everything is in the store: forget the spill file (kept where the store could not be
    told, so that a resume finds it, empty)."""
    try:
        store.set_spill_path(sweep_id, None)
    except StoreError:
        return
    with contextlib.suppress(OSError):
        spill.unlink()


@contextmanager
def _importing(*modules: str) -> Iterator[None]:
    """Import `modules` on a thread while the block runs (one that mostly waits, so the
    import gets the interpreter meanwhile); the block's end waits for the import. A failed
    import is left for the block's caller to meet when it imports the module itself."""

    def load() -> None:
        with contextlib.suppress(Exception):
            for name in modules:
                importlib.import_module(name)

    thread = threading.Thread(target=load, name="sweepscope-import", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


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
