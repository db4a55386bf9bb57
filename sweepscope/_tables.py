"""The tables the API returns: sweeps, trials and trial events as DataFrames.

Times become timezone-aware UTC timestamps (the store keeps Unix seconds); trials are
shown by their number within the sweep, never by the store's internal id. Statuses stay
the store's text (`stopped_by_user`), which is what a filter compares against.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from runner.configurations import seed_key
from runner.store import TrialStatus, sweep_status

__all__ = [
    "EVENT_COLUMNS",
    "SWEEP_COLUMNS",
    "TRIAL_COLUMNS",
    "config_columns",
    "event_table",
    "metric_summary",
    "sweep_table",
    "timestamps",
    "trial_table",
]

# The fixed columns of `Sweep.trials()`; the configuration's columns go after "status".
TRIAL_COLUMNS = ["number", "round", "status"]
TRIAL_TAIL = [
    "best",
    "last",
    "steps",
    "created",
    "started",
    "ended",
    "device",
    "node",
    "error",
]
SWEEP_COLUMNS = [
    "id",
    "name",
    "status",
    "metric",
    "mode",
    "best",
    "seeds",
    "planned",
    "trials",
    *(str(s) for s in TrialStatus),
    "created",
    "ended",
]
EVENT_COLUMNS = ["trial", "at", "status", "detail"]


def timestamps(seconds: Iterable[float | None]) -> pd.Series:
    """Unix seconds (None: not yet) as UTC timestamps (NaT: not yet)."""
    values = [math.nan if s is None else float(s) for s in seconds]
    return pd.Series(pd.to_datetime(np.asarray(values, dtype=np.float64), unit="s", utc=True))


def n_seeds(spec: Mapping[str, Any]) -> int:
    """How many seeds each configuration runs (1 without `seeds`)."""
    seeds = spec.get("seeds")
    return int(seeds.get("n", 1)) if isinstance(seeds, Mapping) else 1


def sweep_table(sweeps: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per sweep, newest first: its status (`interrupted` where its driver is
    gone), metric, best value, trial counts per status, and start and end times.

    A seeded sweep's `best` is NaN: the best single point of a seeded sweep is a lucky
    seed, not an answer; `Sweep.best()` gives its best configuration by mean over seeds.
    """
    rows = []
    for s in sweeps:
        counts = s.get("counts", {})
        seeds = n_seeds(s["spec"])
        best = s.get("best")
        rows.append(
            {
                "id": s["id"],
                "name": s["name"],
                "status": sweep_status(dict(s), s.get("now")),
                "metric": s["metric"],
                "mode": s["mode"],
                "best": math.nan if best is None or seed_key(s["spec"]) else float(best),
                "seeds": seeds,
                "planned": int(s["n_trials"]),
                "trials": sum(counts.values()),
                **{str(status): int(counts.get(status, 0)) for status in TrialStatus},
            }
        )
    table = pd.DataFrame(rows, columns=SWEEP_COLUMNS[:-2])
    table["created"] = timestamps(s["created_at"] for s in sweeps)
    table["ended"] = timestamps(s.get("ended_at") for s in sweeps)
    return table


def config_columns(
    trials: Sequence[Mapping[str, Any]], spec: Mapping[str, Any], seed: str | None
) -> list[str]:
    """The config keys to show, in order: the spec's grid and sample keys, then the other
    keys by name; the seed key (it has a column of its own) left out."""
    declared = [*spec.get("grid", {}), *spec.get("sample", {})]
    others = sorted({k for t in trials for k in t["config"]} - set(declared))
    return [k for k in dict.fromkeys([*declared, *others]) if k != seed]


def metric_summary(points: pd.DataFrame, mode: str) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Per store trial id, from the points of one metric (`Store.points`): the best finite
    value in `mode`, the final value (the one at its largest step: NaN or inf where the
    trial diverged there) and the largest step."""
    if points.empty:
        empty = pd.Series(dtype="float64")
        return empty, empty, pd.Series(dtype="int64")
    finite = points[np.isfinite(points["value"])]
    grouped = finite.groupby("trial_id")["value"]
    best = grouped.max() if mode == "max" else grouped.min()
    # The row at each trial's largest step, NaN kept (groupby's last() skips NaN).
    final = (
        points.sort_values(["trial_id", "step"])
        .drop_duplicates("trial_id", keep="last")
        .set_index("trial_id")
    )
    return best, final["value"], final["step"]


def trial_table(
    trials: Sequence[Mapping[str, Any]], sweep: Mapping[str, Any], points: pd.DataFrame
) -> pd.DataFrame:
    """One row per trial, by number: status, configuration, seed (a seeded sweep's), the
    best and last value of the sweep's metric and its last step, times, device and node.

    A config key that is also a fixed column's name is shown as `config.<key>`.
    """
    spec = sweep["spec"]
    seed = seed_key(spec)
    keys = config_columns(trials, spec, seed)
    fixed = {*TRIAL_COLUMNS, *TRIAL_TAIL, "seed"}
    shown = {k: f"config.{k}" if k in fixed else k for k in keys}
    best, last, steps = metric_summary(points, str(sweep["mode"]))
    rows = []
    for t in trials:
        config, tid = t["config"], int(t["id"])
        row: dict[str, Any] = {
            "number": int(t["number"]),
            "round": int(t["round"]),
            "status": str(t["status"]),
        }
        row |= {shown[k]: config.get(k) for k in keys}
        if seed is not None:
            row["seed"] = config.get(seed)
        row |= {
            "best": float(best.get(tid, math.nan)),
            "last": float(last.get(tid, math.nan)),
            "steps": steps.get(tid, t.get("last_step")),
            "device": t.get("device"),
            "node": t.get("node"),
            "error": t.get("error"),
        }
        rows.append(row)
    head = [*TRIAL_COLUMNS, *shown.values(), *(["seed"] if seed is not None else [])]
    table = pd.DataFrame(rows, columns=[*head, "best", "last", "steps", "device", "node", "error"])
    table["steps"] = pd.to_numeric(table["steps"]).astype("Int64")
    for column in ("created", "started", "ended"):
        table[column] = timestamps(t.get(f"{column}_at") for t in trials)
    table = table[[*head, *TRIAL_TAIL]]
    table.attrs["metric"] = str(sweep["metric"])
    return table.astype({"number": "int64", "round": "int64", "best": "float64", "last": "float64"})


def event_table(rows: Sequence[tuple[int, Mapping[str, Any]]]) -> pd.DataFrame:
    """Trial status events, (trial number, event) pairs, oldest first."""
    table = pd.DataFrame(
        [(n, e["status"], e.get("detail")) for n, e in rows],
        columns=["trial", "status", "detail"],
    )
    table.insert(1, "at", timestamps(e["at"] for _, e in rows))
    table = table.astype({"trial": "int64"})
    return table.sort_values(["at", "trial"], kind="stable").reset_index(drop=True)
