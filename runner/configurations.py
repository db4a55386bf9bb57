"""A sweep's trials grouped by configuration: their config without the seed.

With `seeds` in the spec every configuration runs once per seed, and what a user ranks is the
configuration, by its mean over seeds, never the single luckiest trial (runner.verdicts says
why). A trial's value here is its final value of the metric (its last epoch's), not its best
epoch's: a best over epochs is itself a lucky pick.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from runner import verdicts
from runner.spec import configuration

__all__ = [
    "best_configuration",
    "config_key",
    "configuration_label",
    "configuration_table",
    "final_values",
    "finals_by_configuration",
    "seed_key",
]


def seed_key(spec: Mapping[str, Any]) -> str | None:
    """The config key that holds a trial's seed (a stored spec's `seeds`), None without."""
    seeds = spec.get("seeds")
    return str(seeds.get("key", "seed")) if isinstance(seeds, Mapping) else None


def config_key(config: Mapping[str, Any], seed_key: str | None) -> str:
    """A configuration as one hashable, readable key: its JSON, keys sorted, seed left out."""
    return json.dumps(configuration(dict(config), seed_key), sort_keys=True, default=str)


def final_values(points: pd.DataFrame) -> pd.Series:
    """Each trial's last stored value (by step) of the one metric in `points`: NaN for a
    trial whose last value is NaN (it diverged), so the verdicts count it as dropped rather
    than take an earlier value for its final."""
    if points.empty:
        return pd.Series(dtype=float)
    last = points.sort_values(["trial_id", "step"]).drop_duplicates("trial_id", keep="last")
    return last.set_index("trial_id")["value"]


def finals_by_configuration(
    trials: Sequence[Mapping[str, Any]], finals: pd.Series, seed_key: str | None
) -> dict[str, list[float]]:
    """Final values by configuration key, one per trial that has one."""
    grouped: dict[str, list[float]] = {}
    for t in trials:
        if t["id"] in finals.index:
            grouped.setdefault(config_key(t["config"], seed_key), []).append(float(finals[t["id"]]))
    return grouped


def configuration_table(
    trials: Sequence[Mapping[str, Any]],
    finals: pd.Series,
    *,
    varied: Sequence[str],
    seed_key: str | None,
    metric: str,
    mode: str,
) -> pd.DataFrame:
    """One row per configuration, best mean first: its varied hyperparameters, its seeds (n
    finished with a final value, of all), the mean final `metric` with its 95 % interval
    over seeds (empty below runner.verdicts.MIN_SEEDS seeds), and its trials' statuses."""
    rows: dict[str, dict[str, Any]] = {}
    values: dict[str, list[float]] = {}
    for t in trials:
        key = config_key(t["config"], seed_key)
        row = rows.setdefault(
            key, {k: t["config"].get(k) for k in varied if k != seed_key} | {"statuses": {}}
        )
        row["statuses"][t["status"]] = row["statuses"].get(t["status"], 0) + 1
        if t["id"] in finals.index:
            values.setdefault(key, []).append(float(finals[t["id"]]))
    table = []
    for key, row in rows.items():
        mean, low, high, n = verdicts.mean_interval(values.get(key, []))
        seeds = sum(row["statuses"].values())
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(row.pop("statuses").items()))
        table.append(
            row
            | {
                "seeds": f"{n}/{seeds}",
                f"mean {metric}": mean,
                "95% CI": "" if low != low else f"[{low:.4g}, {high:.4g}]",  # NaN: too few
                "trials": statuses,
            }
        )
    frame = pd.DataFrame(table)
    return frame.sort_values(f"mean {metric}", ascending=mode == "min", na_position="last")


def configuration_label(key: str, varied: Sequence[str]) -> str:
    """A configuration key (config_key) as `lr=0.1, layers=3`: the hyperparameters the sweep
    varies (all of them where it varies none)."""
    config = json.loads(key)
    shown = {k: v for k, v in config.items() if k in varied} or config
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def best_configuration(
    sweep: Mapping[str, Any], trials: Sequence[Mapping[str, Any]], points: pd.DataFrame
) -> verdicts.Best | None:
    """A seeded sweep's best configuration by its mean final over seeds, with its interval
    (runner.verdicts.best_configuration; `points`: the sweep's metric). None for a sweep
    without seeds, or before any configuration has a finite final."""
    key = seed_key(sweep["spec"])
    if key is None:
        return None
    by_config = finals_by_configuration(trials, final_values(points), key)
    if not any(math.isfinite(v) for values in by_config.values() for v in values):
        return None
    return verdicts.best_configuration(by_config, str(sweep["mode"]))
