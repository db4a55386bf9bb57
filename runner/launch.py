"""Launch a sweep on Ray Tune: local by default, or on a running cluster with `address`.

Data path: trial -> runner.report -> Ray Tune result -> StoreCallback (driver) -> store.
Control path: store stop request -> StoreStopper (driver) -> Ray Tune stops the trial.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import report
from runner.errors import SweepscopeError
from runner.progress import Progress
from runner.spec import Spec, resolve_trainable
from runner.store import SWEEP_COMPLETED, SWEEP_FAILED, SWEEP_STOPPED, Store

__all__ = ["SweepOutcome", "new_sweep_id", "run_sweep", "trial_entry"]

# Ray Tune's own loggers and tables are replaced by the store and the progress line.
_TUNE_ENV = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",  # step flushes carry no epoch metric
    "TUNE_DISABLE_SIGINT_HANDLER": "1",  # Ctrl-C goes through our stopper instead
    "RAY_AIR_NEW_OUTPUT": "0",  # the classic output, silenced by _SilentTrialLines below
}


@dataclass(frozen=True)
class SweepOutcome:
    sweep_id: str
    status: str
    counts: dict[str, int]
    best: float | None
    elapsed: float


def new_sweep_id(name: str) -> str:
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def trial_entry(trainable: str) -> Callable[[dict[str, Any]], None]:
    """The function Ray Tune runs for each trial: the user's trainable, plus report plumbing."""

    def run_trial(config: dict[str, Any]) -> None:
        fn = resolve_trainable(trainable)
        report._reset()
        try:
            fn(config)
        except BaseException:
            report._finish()  # send points still buffered, then let Tune record the error
            raise
        report._finish(completed=True)

    run_trial.__name__ = trainable.replace(":", ".").rsplit(".", 1)[-1]
    return run_trial


def _is_local(address: str | None) -> bool:
    return (
        address is None
        or address in ("local", "127.0.0.1", "localhost")
        or address.startswith(("127.0.0.1:", "localhost:"))
    )


def _init_ray(address: str | None) -> bool:
    """Start or join Ray; returns True when this process started it (and must shut it down)."""
    for key, value in _TUNE_ENV.items():
        os.environ.setdefault(key, value)
    if _is_local(address):
        # Read by Ray at import: bind every Ray service to 127.0.0.1, not the LAN address.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import logging

    import ray

    # Tune's result files are off (the store has the results): silence its complaint.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    # A failed trial is reported in one line by StoreCallback, its traceback kept in the store.
    logging.getLogger("ray.tune.execution.tune_controller").addFilter(
        lambda record: not str(record.msg).startswith("Trial task failed")
    )
    if ray.is_initialized():
        return False
    if address is None or address == "local":
        ray.init(
            include_dashboard=False,
            configure_logging=False,
            log_to_driver=False,
            _node_ip_address="127.0.0.1",
        )
        return True
    try:
        ray.init(address=address, configure_logging=False, log_to_driver=False)
    except (ConnectionError, RuntimeError) as exc:
        raise SweepscopeError(
            f"cannot connect to the Ray cluster at --address {address!r}: {exc}. Fix: start the "
            "cluster (ray start --head) and pass its address, e.g. --address 10.0.0.5:6380, "
            "or leave --address out to run on this machine."
        ) from None
    return True


@contextmanager
def _ctrl_c(on_first: Callable[[], None]) -> Iterator[None]:
    """First Ctrl-C: stop the sweep cleanly through `on_first`; a second one: abort."""
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, previous)
        on_first()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _silent_trial_lines() -> Any:
    """Tune prints a line per trial result unless a TrialProgressCallback is given: one that
    prints nothing."""
    from ray.tune.progress_reporter import TrialProgressCallback

    class _SilentTrialLines(TrialProgressCallback):
        def _print(self, msg: str) -> None:
            pass

    return _SilentTrialLines()


def _scheduler(spec: Spec) -> Any:
    from ray.tune.schedulers import AsyncHyperBandScheduler, MedianStoppingRule

    s = spec.scheduler
    if s.type == "asha":
        max_t = s.max_t or spec.stop.epochs or 100
        return AsyncHyperBandScheduler(
            time_attr="epoch",
            metric=spec.metric,
            mode=spec.mode,
            grace_period=s.grace_period,
            reduction_factor=s.reduction_factor,
            max_t=max_t,
        )
    if s.type == "median":
        return MedianStoppingRule(
            time_attr="epoch",
            metric=spec.metric,
            mode=spec.mode,
            grace_period=s.grace_period,
            min_samples_required=s.min_samples,
        )
    return None


def run_sweep(
    spec: Spec,
    *,
    store: Store,
    address: str | None = None,
    max_concurrent: int | None = None,
    sweep_id: str | None = None,
    storage_path: str | None = None,
    progress: bool = True,
    on_start: Callable[[str], None] | None = None,
) -> SweepOutcome:
    """Run every trial of `spec`, writing the sweep, its trials and their points to `store`.

    Returns when all trials have ended, the user stopped the sweep (store request or
    Ctrl-C), or the driver failed; the sweep's final status is in the store either way.
    """
    from runner.callback import StoreCallback
    from runner.stopper import StoreStopper

    sweep_id = sweep_id or new_sweep_id(spec.name)
    store.create_sweep(
        sweep_id,
        name=spec.name,
        spec=spec.model_dump(mode="json"),
        metric=spec.metric,
        mode=spec.mode,
        n_trials=spec.n_trials,
    )
    if on_start is not None:
        on_start(sweep_id)
    started = time.monotonic()
    stopper = StoreStopper(store=store, sweep_id=sweep_id)
    callback = StoreCallback(
        store=store,
        sweep_id=sweep_id,
        spec=spec,
        stopper=stopper,
        progress=Progress(total=spec.n_trials, metric=spec.metric) if progress else None,
    )
    status, message = SWEEP_FAILED, None
    owns_ray = False
    try:
        owns_ray = _init_ray(address)
        from ray import tune

        trainable = tune.with_resources(
            trial_entry(spec.trainable),
            {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
        )
        scheduler = _scheduler(spec)
        tuner = tune.Tuner(
            trainable,
            param_space=spec.param_space(),
            tune_config=tune.TuneConfig(
                num_samples=spec.samples,
                max_concurrent_trials=max_concurrent or spec.max_concurrent,
                reuse_actors=True,
                scheduler=scheduler,
            ),
            run_config=tune.RunConfig(
                name=sweep_id,
                storage_path=str(
                    Path(storage_path or spec.storage_path or ".sweepscope/ray").resolve()
                ),
                callbacks=[callback, _silent_trial_lines()],
                stop=stopper,
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            ),
        )
        with _ctrl_c(stopper.interrupt):
            tuner.fit()
        counts = callback.statuses()
        if stopper.interrupted or stopper.stop_all():
            status = SWEEP_STOPPED
        elif counts and counts.get("error", 0) == sum(counts.values()):
            status, message = SWEEP_FAILED, "every trial failed"
        else:
            status = SWEEP_COMPLETED
    except BaseException as exc:
        message = "".join(traceback.format_exception_only(exc)).strip()
        if isinstance(exc, KeyboardInterrupt):
            status = SWEEP_STOPPED
        raise
    finally:
        reason = "the sweep was stopped" if status == SWEEP_STOPPED else "the sweep ended"
        callback.close_open_trials(reason)
        store.finish_sweep(sweep_id, status, message)
        if progress and callback._progress is not None:
            callback._progress.update(callback.statuses(), callback.best, force=True)
            callback._progress.close()
        if owns_ray:
            import ray

            ray.shutdown()
    return SweepOutcome(
        sweep_id=sweep_id,
        status=status,
        counts=dict(callback.statuses()),
        best=callback.best,
        elapsed=time.monotonic() - started,
    )
