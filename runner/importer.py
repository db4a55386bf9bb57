"""`sweepscope import DIR`: a Ray Tune experiment that sweepscope never ran becomes a sweep in
the store, so old runs open in the dashboard beside new ones.

DIR is the folder Tune writes under `storage_path/name`. What maps to what (docs/import.md
says it for users), read from the files Ray Tune 2.60 writes:

- the newest readable `experiment_state-*.json`: `trial_data` holds one pair of JSON texts
  a trial, [its state (trial_id, config, status, relative_logdir), its run metadata
  (start_time, last_result_time)]; `runner_data._metric` is TuneConfig's metric. A torn
  newer state gives way to an older one, and trial folders that state does not list are
  imported too: nothing Tune wrote is lost.
- `tuner.pkl`: TuneConfig's mode, read opcode by opcode (pickletools), never unpickled.
- each trial's folder: `params.json` its config, `result.json` (else `progress.csv`) its
  results, `error.txt` its error. A result line that does not parse is skipped with a note.
- every numeric metric of a result becomes a point (nested ones as `a/b`) at the result's
  `step` when every result of the trial carries one, else at `training_iteration`: the axis
  a live sweep of the same trainable gets (runner.driver.results), so imported and live
  sweeps compare on one axis. `epoch` is the trial's last epoch, as in a live sweep.

Nothing is unpickled and Ray is not started. The whole import is one store transaction: a
failure writes nothing. The same experiment imported again is refused with the sweep it is.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import pickletools
import re
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import SweepscopeError
from runner.protocol import MAX_INFO, MAX_METRIC_NAME, MAX_STEP, is_system_metric
from runner.status import SweepStatus, TrialStatus

if TYPE_CHECKING:
    from collections.abc import Callable

    from runner.store import Point, Store

__all__ = [
    "Experiment",
    "ImportSummary",
    "TrialPoints",
    "TrialRecord",
    "cmd_import",
    "import_experiment",
    "import_summary",
    "read_experiment",
    "register",
    "trial_points",
]

STATE_GLOB = "experiment_state-*.json"  # TuneController.CKPT_FILE_TMPL
TRIAL_FILES = ("params.json", "result.json", "progress.csv")  # ray.air.constants EXPR_*
# Ray Tune's statuses (ray.tune.experiment.Trial) -> ours. A trial Tune had not finished
# when it last saved its state never will: the experiment is over.
TUNE_STATUS = {
    "TERMINATED": TrialStatus.COMPLETED,
    "ERROR": TrialStatus.ERROR,
    "RUNNING": TrialStatus.STOPPED,
    "PAUSED": TrialStatus.STOPPED,
    "PENDING": TrialStatus.STOPPED,
}
# Keys of a result that are not metrics, beyond Ray Tune's own (runner.driver.results).
_NOT_METRICS_EXTRA = ("done", "should_checkpoint", "step", "epoch", "experiment_tag", "trial_id")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # a sweep name, as runner.spec's
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PICKLED = "CLOUDPICKLE_FALLBACK"  # ray.tune.utils.serialization: a value Tune pickled


# -- what the folder holds ---------------------------------------------------------------
@dataclass
class TrialRecord:
    """One trial as the folder describes it."""

    ray_id: str
    config: dict[str, Any]
    tune_status: str | None  # Ray Tune's; None: a folder the experiment state does not list
    folder: Path | None
    started_at: float | None = None
    ended_at: float | None = None


@dataclass
class Experiment:
    """A Ray Tune experiment folder, read: its trials, the metric and mode Tune recorded
    (None where it recorded none), and notes on what was skipped."""

    path: Path
    state_file: Path
    metric: str | None
    mode: str | None
    start_time: float
    trials: list[TrialRecord]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImportSummary:
    sweep_id: str
    counts: dict[str, int]  # trial status -> trials
    points: int
    notes: list[str]


def read_experiment(path: str | Path) -> Experiment:
    """Read a Ray Tune experiment folder (JSON and CSV only; nothing is unpickled).

    Raises:
        SweepscopeError: not a folder, or no readable experiment state in it.
    """
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise SweepscopeError(
            f"DIR {str(path)!r} {what}. Fix: give the folder Ray Tune wrote for the "
            "experiment (storage_path/name), the one that holds experiment_state-*.json."
        )
    notes: list[str] = []
    state_file, state = _newest_state(folder, notes)
    runner_data, stats = _mapping(state.get("runner_data")), _mapping(state.get("stats"))
    start = _number(stats.get("start_time")) or _number(runner_data.get("_start_time"))
    start = start or state_file.stat().st_mtime
    trials = _state_trials(folder, state["trial_data"], notes)
    listed = {t.folder for t in trials if t.folder is not None}
    known = {t.ray_id for t in trials}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p not in listed):
        if any((sub / name).is_file() for name in TRIAL_FILES):
            orphan = _folder_trial(sub, known, notes)
            if orphan is not None:
                trials.append(orphan)
                known.add(orphan.ray_id)
    metric = runner_data.get("_metric")
    return Experiment(
        path=folder,
        state_file=state_file,
        metric=metric if isinstance(metric, str) and metric else None,
        mode=_recorded_mode(folder / "tuner.pkl"),
        start_time=start,
        trials=sorted(trials, key=lambda t: t.ray_id),  # Tune's ids count up: creation order
        notes=notes,
    )


def _newest_state(folder: Path, notes: list[str]) -> tuple[Path, dict[str, Any]]:
    """The newest experiment state that parses (Tune resumes from the newest by name too);
    a torn newer one is noted and passed over."""
    files = sorted(folder.glob(STATE_GLOB), reverse=True)
    if not files:
        inside = sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.glob(STATE_GLOB)))
        hint = (
            f" It holds experiments of its own: give one of them, e.g. {folder / inside[0]} "
            f"({len(inside)} in all: {', '.join(inside[:5])}{', ...' if len(inside) > 5 else ''})."
            if inside
            else " If it is a trial's folder, give the folder above it."
        )
        raise SweepscopeError(
            f"DIR {folder}: no {STATE_GLOB} in it, so it is not a Ray Tune experiment folder."
            f"{hint} Fix: give the folder Ray Tune wrote under storage_path/name."
        )
    problems = []
    for file in files:
        try:
            state = json.loads(file.read_text())
            if not isinstance(state, dict) or not isinstance(state.get("trial_data"), list):
                raise ValueError("it has no trial_data list")
        except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
            problems.append(f"{file.name}: {exc}")
            continue
        if problems:
            notes.append(
                f"skipped the newer experiment state(s) that do not read ({'; '.join(problems)});"
                f" imported {file.name}, and the trial folders it does not list"
            )
        return file, state
    raise SweepscopeError(
        f"DIR {folder}: no experiment state reads as Ray Tune's ({'; '.join(problems)}). "
        "Fix: give a folder whose experiment_state-*.json Ray Tune finished writing (copy it "
        "again if it was cut short)."
    )


def _state_trials(folder: Path, trial_data: list[Any], notes: list[str]) -> list[TrialRecord]:
    trials = []
    for index, entry in enumerate(trial_data):
        try:
            text, meta_text = entry
            state, meta = json.loads(text), json.loads(meta_text)
            ray_id, status = str(state["trial_id"]), str(state["status"])
        except (TypeError, ValueError, KeyError) as exc:
            notes.append(
                f"trial_data[{index}] of the experiment state does not read ({exc!r}):"
                " skipped (its folder, if any, is imported as not listed)"
            )
            continue
        logdir = state.get("relative_logdir")
        sub = folder / logdir if isinstance(logdir, str) and logdir else None
        if sub is None or not sub.is_dir():
            sub = next((p for p in folder.glob(f"*_{ray_id}_*") if p.is_dir()), None)
        params = _read_json(sub / "params.json") if sub is not None else None
        config = params if isinstance(params, dict) else _unpickled(state.get("config") or {})
        meta = meta if isinstance(meta, dict) else {}
        trials.append(
            TrialRecord(
                ray_id=ray_id,
                config=config,
                tune_status=status,
                folder=sub,
                started_at=_number(meta.get("start_time")),
                ended_at=_number(meta.get("last_result_time")),
            )
        )
    return trials


def _folder_trial(sub: Path, known: set[str], notes: list[str]) -> TrialRecord | None:
    """A trial folder the experiment state does not list (Tune started the trial after it
    last saved its state), known by the trial_id its results carry."""
    rows = _results(sub, [])  # its notes come when its points are read
    ray_id = next((str(r["trial_id"]) for r in rows if r.get("trial_id")), None)
    if ray_id is None or ray_id in known:
        if ray_id is None:
            notes.append(f"folder {sub.name}: not in the experiment state, no results: skipped")
        return None
    params = _read_json(sub / "params.json")
    config = params if isinstance(params, dict) else rows[0].get("config") or {}
    return TrialRecord(ray_id=ray_id, config=config, tune_status=None, folder=sub)


def _recorded_mode(path: Path) -> str | None:
    """TuneConfig's `mode` in tuner.pkl, found by walking the pickle's opcodes: the value
    after the first "mode" key that follows the TuneConfig class. Nothing is unpickled (that
    would run code from the file); anything unexpected gives None (ask the user)."""
    try:
        ops = pickletools.genops(path.read_bytes())
        seen_class = after_key = False
        previous: Any = None
        for op, arg, _ in ops:
            if "PUT" in op.name or op.name in ("MEMOIZE", "FRAME"):
                continue
            if after_key:
                return arg if arg in ("min", "max") else None
            if not seen_class:
                seen_class = arg == "ray.tune.tune_config TuneConfig" or (
                    arg == "TuneConfig" and previous == "ray.tune.tune_config"
                )
                previous = arg
            elif arg == "mode" and "UNICODE" in op.name:
                after_key = True
    except (OSError, ValueError, EOFError):
        return None
    return None


# -- results and points ------------------------------------------------------------------
def _results(folder: Path, notes: list[str]) -> list[dict[str, Any]]:
    """A trial's results, oldest first: result.json (one JSON object a line), else
    progress.csv. A line that does not parse is skipped and noted."""
    if not (folder / "result.json").exists() and not (folder / "progress.csv").exists():
        notes.append(
            f"{folder.name}: no result.json or progress.csv (Ray Tune's result loggers were "
            "off, e.g. TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1): its trial comes in without points"
        )
        return []
    lines = _text(folder / "result.json", notes)
    if lines is None:
        return _csv_results(folder / "progress.csv", notes)
    rows, bad = [], []
    for number, line in enumerate(lines.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad.append(number)
    if bad:
        notes.append(_skipped(folder / "result.json", bad, "not a JSON object (a torn write?)"))
    return rows


def _csv_results(path: Path, notes: list[str]) -> list[dict[str, Any]]:
    text = _text(path, notes)
    if text is None:
        return []
    rows, bad = [], []
    reader = csv.DictReader(text.splitlines())
    for row in reader:
        if None in row or None in row.values():  # more or fewer fields than the header
            bad.append(reader.line_num)
            continue
        rows.append({k: _csv_value(v) for k, v in row.items()})
    if bad:
        notes.append(_skipped(path, bad, "not as many fields as the header (a torn write?)"))
    return rows


def _csv_value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text  # "True"/"False" stay text: not a metric


def _flat(result: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested metrics as `a/b` (Ray Tune's progress.csv names them so too)."""
    flat: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _not_metrics() -> frozenset[str]:
    from ray.tune.result import AUTO_RESULT_KEYS, DEBUG_METRICS  # public; ~2 s: only here

    return frozenset(AUTO_RESULT_KEYS) | frozenset(DEBUG_METRICS) | set(_NOT_METRICS_EXTRA)


@dataclass
class TrialPoints:
    points: list[Point]
    fields: dict[str, Any]  # node, last_step, last_epoch
    last_time: float | None


def trial_points(
    results: list[dict[str, Any]],
    *,
    wall_time: float,
    not_metrics: frozenset[str] | None = None,
) -> tuple[TrialPoints, list[str]]:
    """The points of one trial's results, its last step and epoch, and what was left out.
    The axis: `step` when every result carries a usable one, else `training_iteration`.
    `wall_time` stands in for a result without a timestamp; `not_metrics`: Tune's own keys
    (default: read from Ray; pass them when calling for many trials)."""
    not_metrics = _not_metrics() if not_metrics is None else not_metrics
    problems: list[str] = []
    use_step = bool(results) and all(_step(r.get("step")) is not None for r in results)
    if not use_step and any("step" in r for r in results):
        problems.append(
            "`step` is missing or not a whole number in some results: "
            "every point is at training_iteration"
        )
    points: dict[tuple[str, int], Point] = {}
    fields: dict[str, Any] = {}
    repeated = no_step = 0
    too_long: set[str] = set()
    last_time: float | None = None
    for result in results:
        step = _step(result.get("step") if use_step else result.get("training_iteration"))
        when = _number(result.get("timestamp")) or wall_time
        last_time = when
        if step is None:
            no_step += 1
            continue
        node = result.get("hostname") or result.get("node_ip")
        if "node" not in fields and isinstance(node, str) and node:
            fields["node"] = node[:MAX_INFO]
        epoch = _step(result.get("epoch", result.get("training_iteration")))
        fields.update({"last_epoch": epoch} if epoch is not None else {})
        fields.update({"last_step": step} if use_step else {})
        for name, value in _flat({k: v for k, v in result.items() if k != "config"}).items():
            if (
                name in not_metrics
                or name.startswith("_")
                or not isinstance(value, int | float)
                or isinstance(value, bool)
            ):
                continue
            if len(name) > MAX_METRIC_NAME:
                too_long.add(name)
            elif (name, step) in points:
                repeated += 1
            else:
                points[name, step] = (name, step, float(value), when)
    if no_step:
        problems.append(f"{no_step} result(s) without a usable step: left out")
    if too_long:
        problems.append(
            f"metric(s) named with more than {MAX_METRIC_NAME} characters, which the store "
            f"cannot hold, left out: {', '.join(sorted(too_long))}"
        )
    if repeated:
        problems.append(
            f"{repeated} value(s) at a step already reported (a restored trial "
            "reports again): the first one is kept, as in a live sweep"
        )
    return TrialPoints(list(points.values()), fields, last_time), problems


# -- the store ---------------------------------------------------------------------------
def import_experiment(
    store: Store,
    path: str | Path,
    *,
    name: str | None = None,
    metric: str | None = None,
    mode: str | None = None,
    on_note: Callable[[str], None] | None = None,
) -> str:
    """Import the Ray Tune experiment folder `path` into `store` as a finished sweep.

    Args:
        store: an open store with its schema.
        path: the folder Ray Tune wrote under storage_path/name.
        name: the sweep's name (default: the folder's name, made a valid sweep name).
        metric, mode: the sweep's metric and which end is best; default: what Tune recorded
            (TuneConfig's metric and mode).
        on_note: called with a line for each thing skipped (a torn line, say).

    Returns:
        The new sweep's id.

    Raises:
        SweepscopeError: a folder that is no Ray Tune experiment, a metric or mode neither
            given nor recorded, a metric no trial reported, an invalid name, or an
            experiment the store holds already (the message names its sweep).
        StoreError: the store cannot be written; nothing of the import was.
    """
    return import_summary(
        store, path, name=name, metric=metric, mode=mode, on_note=on_note
    ).sweep_id


def import_summary(
    store: Store,
    path: str | Path,
    *,
    name: str | None = None,
    metric: str | None = None,
    mode: str | None = None,
    on_note: Callable[[str], None] | None = None,
) -> ImportSummary:
    """`import_experiment`, returning what it wrote (trials by status, points, notes)."""
    experiment = read_experiment(path)
    sweep_name = _sweep_name(name, experiment.path)
    metric, mode = _metric_and_mode(experiment, metric, mode)
    not_metrics = _not_metrics()
    read: list[tuple[TrialRecord, TrialPoints]] = []
    notes = list(experiment.notes)
    for trial in experiment.trials:
        mine: list[str] = []
        rows = _results(trial.folder, mine) if trial.folder is not None else []
        found, problems = trial_points(
            rows, not_metrics=not_metrics, wall_time=trial.started_at or experiment.start_time
        )
        notes += mine + [f"trial {trial.ray_id}: {p}" for p in problems]
        read.append((trial, found))
    _check_metric(metric, {p[0] for _, tp in read for p in tp.points})
    _refuse_imported(store, experiment)
    for note in notes:
        if on_note is not None:
            on_note(note)
    return _write(store, experiment, read, name=sweep_name, metric=metric, mode=mode, notes=notes)


def _write(
    store: Store,
    experiment: Experiment,
    read: list[tuple[TrialRecord, TrialPoints]],
    *,
    name: str,
    metric: str,
    mode: str,
    notes: list[str],
) -> ImportSummary:
    """Every row of the import in one transaction, in the order a live sweep writes them."""
    from runner.spec import user_config

    sweep_id = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    counts: Counter[str] = Counter()
    total = 0
    with store.batch():
        store.create_sweep(
            sweep_id,
            name=name,
            spec=_spec(experiment, name, metric, mode),
            metric=metric,
            mode=mode,
            n_trials=len(read),
        )
        for trial, found in read:
            created = trial.started_at or experiment.start_time
            tid = store.add_trial(sweep_id, trial.ray_id, user_config(trial.config), at=created)
            status, detail, error, failed_at = _final(trial)
            ended = failed_at or trial.ended_at or found.last_time or created
            if found.points or trial.started_at is not None:
                store.set_trial_status(tid, TrialStatus.RUNNING, at=created, **found.fields)
            elif found.fields:
                store.update_trial(tid, **found.fields)
            fields = {"error": error} if error else {}
            store.set_trial_status(tid, status, detail=detail, at=max(ended, created), **fields)
            total += len(found.points)
            store.add_points(tid, found.points)
            counts[status] += 1
        failed = bool(counts) and counts[TrialStatus.ERROR] == sum(counts.values())
        message = f"imported from the Ray Tune experiment {experiment.path}" + (
            f" ({len(notes)} note(s): lines or values left out)" if notes else ""
        )
        store.finish_sweep(
            sweep_id,
            SweepStatus.FAILED if failed else SweepStatus.COMPLETED,
            "every trial failed; " + message if failed else message,
        )
    return ImportSummary(sweep_id, dict(counts), total, notes)


def _final(trial: TrialRecord) -> tuple[TrialStatus, str | None, str | None, float | None]:
    """The trial's status in the store, a note for its history, its error text, and when it
    ended if the folder says better than the state (the error file's time)."""
    error_file = trial.folder / "error.txt" if trial.folder is not None else None
    has_error_file = error_file is not None and error_file.is_file()
    if trial.tune_status == "ERROR" or (trial.tune_status is None and has_error_file):
        text = _error_text(error_file) or "Ray Tune marked the trial failed (no error.txt)"
        failed_at = (
            error_file.stat().st_mtime if error_file is not None and has_error_file else None
        )
        return TrialStatus.ERROR, text, text, failed_at
    if trial.tune_status is None:
        why = (
            "not in the experiment state (started after Tune last saved it): "
            "how it ended is unknown"
        )
        return TrialStatus.STOPPED, why, None, None
    status = TUNE_STATUS.get(trial.tune_status, TrialStatus.STOPPED)
    if status == TrialStatus.STOPPED:
        why = (
            f"Ray Tune status {trial.tune_status} when the experiment state was last saved: "
            "the experiment ended before the trial did"
        )
        return status, why, None, None
    return status, None, None, None


def _error_text(path: Path | None) -> str | None:
    """The latest failure in Tune's error.txt (it holds them all), without colour codes."""
    if path is None or not path.is_file():
        return None
    try:
        text = _ANSI.sub("", path.read_text(errors="replace"))
    except OSError as exc:
        return f"(error text unavailable: {exc})"
    latest = text.rsplit("Failure # ", 1)[-1]
    latest = latest.split("\n", 1)[1] if latest[:1].isdigit() and "\n" in latest else latest
    return latest.strip() or None


def _spec(experiment: Experiment, name: str, metric: str, mode: str) -> dict[str, Any]:
    """The sweep's spec: what a reader of the store needs (the dashboard reads metric, mode
    and system_metrics), and where it came from; no trainable or search: sweepscope did not
    run it, so it cannot be resumed."""
    return {
        "name": name,
        "metric": metric,
        "mode": mode,
        "system_metrics": False,
        "imported": {
            "from": str(experiment.path),
            "experiment_state": experiment.state_file.name,
            "tool": "ray-tune",
        },
    }


def _sweep_name(name: str | None, folder: Path) -> str:
    if name is not None:
        if not _NAME.match(name):
            raise SweepscopeError(
                f"--name {name!r} is not a usable sweep name. Fix: use letters, digits, '_', "
                "'-' or '.', at most 64 characters, e.g. old_lr_sweep"
            )
        return name
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", folder.name).lstrip("_.-")[:64]
    return cleaned or "imported"


def _metric_and_mode(exp: Experiment, metric: str | None, mode: str | None) -> tuple[str, str]:
    """The option, else what Tune recorded; the recorded mode only with the recorded metric."""
    chosen = metric or exp.metric
    if chosen is None:
        raise SweepscopeError(
            f"metric: the experiment state {exp.state_file.name} records none (the run set no "
            "TuneConfig(metric=...)). Fix: pass --metric NAME --mode min|max, NAME a metric "
            "the trials reported."
        )
    if mode is None and chosen == exp.metric:
        mode = exp.mode
    if mode is None:
        why = (
            f"{exp.path / 'tuner.pkl'} records none"
            if chosen == exp.metric
            else f"the mode Tune recorded is for its metric {exp.metric!r}"
        )
        raise SweepscopeError(
            f"mode: unknown for the metric {chosen!r} ({why}). Fix: pass --mode min or "
            "--mode max (which end of the metric is best)."
        )
    if mode not in ("min", "max"):
        raise SweepscopeError(f"mode: {mode!r} is not min or max. Fix: pass --mode min or max.")
    if is_system_metric(chosen) or len(chosen) > MAX_METRIC_NAME:
        raise SweepscopeError(
            f"--metric {chosen!r}: a sweep's metric is one the trials report, of at most "
            f"{MAX_METRIC_NAME} characters, not sys/... Fix: pass --metric NAME."
        )
    return chosen, mode


def _check_metric(metric: str, reported: set[str]) -> None:
    if reported and metric not in reported:
        raise SweepscopeError(
            f"metric {metric!r}: no trial of the experiment reported it; they reported "
            f"{', '.join(sorted(reported)[:20])}. Fix: pass --metric with one of those (and "
            "--mode min|max)."
        )


def _refuse_imported(store: Store, experiment: Experiment) -> None:
    """Refuse an experiment the store holds already: a sweep with a trial of the same Ray
    id and config (imported before, from this folder or a copy, or run by sweepscope)."""
    from runner.spec import user_config

    mine = {t.ray_id: user_config(t.config) for t in experiment.trials}
    for sweep in store.sweeps():
        same = set(store.trial_ids(sweep["id"])) & set(mine)
        if not same:
            continue
        held = {t["ray_id"]: t["config"] for t in store.trials(sweep["id"]) if t["ray_id"] in same}
        if any(
            json.dumps(held[r], sort_keys=True, default=str)
            == json.dumps(mine[r], sort_keys=True, default=str)
            for r in held
        ):
            raise SweepscopeError(
                f"DIR {experiment.path}: the store {store.url} holds this experiment already, "
                f"as sweep {sweep['id']} (its trials have the same Ray ids and configs). "
                f"Fix: open that sweep (`sweepscope status {sweep['id']}`), or import into "
                "another store with --store."
            )


# -- small readers -----------------------------------------------------------------------
def _text(path: Path, notes: list[str]) -> str | None:
    if not path.is_file():
        return None
    try:
        return path.read_text(errors="replace")
    except OSError as exc:
        notes.append(f"{path}: unreadable ({exc}): skipped")
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _unpickled(value: Any) -> Any:
    """A config from the experiment state with each value Tune pickled (a function, say)
    named as such: never unpickled."""
    if isinstance(value, dict):
        if value.get("_type") == _PICKLED:
            return "(a Python object Ray Tune pickled)"
        return {k: _unpickled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpickled(v) for v in value]
    return value


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok and value > 0 else None


def _step(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_STEP
    return value if ok else None


def _skipped(path: Path, lines: list[int], why: str) -> str:
    shown = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
    return f"{path}: {len(lines)} line(s) {why}: skipped (line {shown})"


# -- the command -------------------------------------------------------------------------
def register(sub: Any, store_help: str) -> None:
    """Add `sweepscope import` to the CLI's subparsers."""
    imp = sub.add_parser("import", help="import a Ray Tune experiment folder as a sweep")
    imp.add_argument("dir", help="the folder Ray Tune wrote: storage_path/name")
    imp.add_argument("--store", help=store_help)
    imp.add_argument("--name", help="sweep name (default: the folder's name)")
    imp.add_argument("--metric", help="the sweep's metric (default: TuneConfig's, if set)")
    imp.add_argument(
        "--mode", choices=("min", "max"), help="which end of the metric is best (default: Tune's)"
    )
    imp.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    """Import, print what was skipped (stderr) and one line: the sweep, how to open it."""
    from runner.store import open_store

    with open_store(args.store, create=True) as store:
        done = import_summary(
            store,
            args.dir,
            name=args.name,
            metric=args.metric,
            mode=args.mode,
            on_note=lambda line: print(f"note: {line}", file=sys.stderr),
        )
        url = store.url
    counts = ", ".join(f"{n} {s}" for s, n in sorted(done.counts.items())) or "no trials"
    print(
        f"imported sweep {done.sweep_id}: {sum(done.counts.values())} trials ({counts}), "
        f"{done.points:,} points; open it: sweepscope dashboard --store {url}"
    )
    return 0
