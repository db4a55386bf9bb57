"""Export a sweep to MLflow: one experiment named by the sweep's id, one run per trial.

A run carries the trial's configuration as params, its metric histories with their steps and
wall times, its status mapped to MLflow's, and tags naming the sweep and the trial. Written
through `MlflowClient` against any tracking URI it takes (sqlite:///mlflow.db, a tracking
server's http://host:5000, ...); `mlflow-skinny` is enough.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from runner.errors import SweepscopeError
from runner.exporters._history import SweepHistory, TrialHistory, read_history
from runner.redact import mask_url
from runner.status import TrialStatus
from runner.store import Store, require_sweep

__all__ = ["RUN_STATUS", "export_mlflow", "mlflow_key"]

# MLflow's RunStatus of each trial status. Pruned is a normal end (the scheduler stopped a
# trial that was behind); stopped ones were killed from outside, resumable or not.
RUN_STATUS = {
    TrialStatus.PENDING: "SCHEDULED",
    TrialStatus.RUNNING: "RUNNING",
    TrialStatus.COMPLETED: "FINISHED",
    TrialStatus.PRUNED: "FINISHED",
    TrialStatus.DIVERGED: "FAILED",
    TrialStatus.ERROR: "FAILED",
    TrialStatus.STOPPED: "KILLED",
    TrialStatus.STOPPED_BY_USER: "KILLED",
    TrialStatus.TIMEOUT: "KILLED",
}
TAG = "sweepscope."  # the prefix of the tags this export sets
# MLflow's limits (mlflow.utils.validation): entities per log_batch call, and the longest
# param value and tag value it stores.
METRICS_PER_BATCH = 1000
PARAMS_PER_BATCH = 100
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
_REFUSED = re.compile(r"[^\w./\- :]")  # MLflow names: alphanumerics, _ . / - space colon

T = TypeVar("T")


def export_mlflow(store: Store, sweep_id: str, uri: str) -> str:
    """Write one MLflow run per trial of the sweep under its experiment at `uri`; return the
    CLI's summary line. The experiment is made (or found empty) before the points are read.

    Raises:
        SweepscopeError: no such sweep; an empty `uri`, one MLflow refuses, or an experiment
            of that name that is deleted or already holds runs (an earlier export).
        StoreError: the store cannot be read.
    """
    client, experiment_id = _experiment(uri, require_sweep(store, sweep_id))
    history = read_history(store, sweep_id)
    for trial in history.trials:
        _write_run(client, experiment_id, history, trial)
    return (
        f"wrote {len(history.trials)} trials ({history.points:,} points) of sweep "
        f"{history.sweep['id']} as runs trial-N of the MLflow experiment "
        f"{history.sweep['id']!r} (id {experiment_id}) at {mask_url(uri)}"
    )


def _experiment(uri: str, sweep: dict[str, Any]) -> tuple[Any, str]:
    """The client and the id of the sweep's experiment, new or empty."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    shown = mask_url(uri)
    if not uri.strip():
        raise SweepscopeError(
            "--to mlflow: the tracking URI is empty. Fix: give one, e.g. --to mlflow "
            "sqlite:///mlflow.db (a local file) or http://HOST:5000 (a tracking server)."
        )
    name = sweep["id"]
    try:
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(name)
        if found is None:
            tags = {
                f"{TAG}sweep_id": sweep["id"],
                f"{TAG}name": sweep["name"],
                f"{TAG}metric": sweep["metric"],
                f"{TAG}mode": sweep["mode"],
            }
            return client, client.create_experiment(name, tags=tags)
        if found.lifecycle_stage == "deleted":
            raise SweepscopeError(
                f"--to mlflow {shown!r}: the experiment {name!r} is deleted there, and MLflow "
                "keeps its name. Fix: restore it and delete its runs, or remove it for good "
                "(`mlflow gc`), or export to another tracking URI."
            )
        runs = client.search_runs([found.experiment_id], max_results=1)
    except MlflowException as exc:
        raise SweepscopeError(
            f"--to mlflow {shown!r}: MLflow refused this tracking URI: {exc.message} Fix: give "
            "a tracking URI MLflow can write, e.g. sqlite:///mlflow.db (a local file) or "
            "http://HOST:5000 (a tracking server)."
        ) from exc
    if runs:
        raise SweepscopeError(
            f"--to mlflow {shown!r}: the experiment {name!r} holds runs already (an earlier "
            "export of this sweep?). Fix: delete that experiment first, or export to another "
            "tracking URI."
        )
    return client, found.experiment_id


def _write_run(client: Any, experiment_id: str, history: SweepHistory, t: TrialHistory) -> None:
    """Create the trial's run, log its params, tags and points, and set its status."""
    from mlflow.entities import Metric, Param

    trial = t.trial
    started = trial["started_at"] or trial["created_at"]
    run = client.create_run(
        experiment_id, start_time=_ms(started), tags=_tags(history, trial), run_name=t.name
    )
    run_id = run.info.run_id
    params = [Param(mlflow_key(k), str(v)[:MAX_PARAM_VALUE]) for k, v in sorted(t.params.items())]
    for some in _chunks(params, PARAMS_PER_BATCH):
        client.log_batch(run_id, params=some, synchronous=True)
    keys = [mlflow_key(m) for m in history.metrics]
    metrics = (
        Metric(keys[m], v, int(w * 1000), s)
        for m, s, v, w in zip(
            t.metric.tolist(), t.step.tolist(), t.value.tolist(), t.wall_time.tolist(), strict=True
        )
    )
    for chunk in _chunks(metrics, METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=chunk, synchronous=True)
    status = RUN_STATUS[TrialStatus(trial["status"])]
    if TrialStatus(trial["status"]).is_finished:
        client.set_terminated(run_id, status, end_time=_ms(trial["ended_at"] or started))
    else:
        client.update_run(run_id, status=status)


def _tags(history: SweepHistory, trial: dict[str, Any]) -> dict[str, str]:
    tags = {
        f"{TAG}sweep_id": history.sweep["id"],
        f"{TAG}trial_number": str(trial["number"]),
        f"{TAG}trial_id": str(trial["id"]),
        f"{TAG}ray_id": trial["ray_id"],
        f"{TAG}status": trial["status"],
    }
    if trial["error"]:
        tags[f"{TAG}error"] = trial["error"][:MAX_TAG_VALUE]
    return tags


def mlflow_key(name: str) -> str:
    """A metric or param name MLflow accepts: each character it refuses becomes "_", and
    empty, "." and ".." path parts are dropped (MLflow refuses names that a file path would
    read differently)."""
    parts = [p for p in _REFUSED.sub("_", name).split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or "_"


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
