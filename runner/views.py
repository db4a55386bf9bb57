"""What the read commands show, as plain data: the CLI prints it as tables, or with `--json`
as one JSON document (the schemas in runner/schemas/, described in docs/json.md).

One home for both forms, so a table and its JSON never disagree. A trial is named by its
number within its sweep (1..N in creation order), never by the store's internal id, which
means nothing to a user and differs between stores. Nothing here hides a password by
itself: `dumps` passes every string of the document through runner.redact, so a URL, an
error text or a sweep message that holds one prints masked.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from runner.redact import mask_url, redact
from runner.store import Store, TrialStatus, sweep_status

__all__ = [
    "SCHEMA_DIR",
    "best_values",
    "dumps",
    "export_view",
    "finite",
    "ls_view",
    "schema",
    "schema_id",
    "scrubbed",
    "status_view",
    "sweep_view",
    "trial_views",
    "varied",
]

SCHEMA_DIR = Path(__file__).with_name("schemas")
SCHEMA_VERSION = 1


def schema_id(name: str) -> str:
    """The `schema` field of a document, and the `$id` of its JSON Schema file."""
    return f"sweepscope/{name}/v{SCHEMA_VERSION}"


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema of the output `name` (ls, status, export, progress)."""
    loaded: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    return loaded


def finite(value: Any) -> float | None:
    """A number JSON can hold: NaN and infinities (a diverged trial's best) become null."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def scrubbed(value: Any) -> Any:
    """`value` with every password in its strings masked (runner.redact), keys included.
    String by string: masking the JSON text instead could eat a closing quote, as a
    `?password=` value runs to the next `&`."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {scrubbed(k): scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrubbed(v) for v in value]
    return value


def dumps(document: dict[str, Any], *, indent: int | None = 2) -> str:
    """`document` as JSON text, every password in it masked."""
    return json.dumps(scrubbed(document), indent=indent, allow_nan=False, default=str)


def varied(sweep: dict[str, Any]) -> list[str]:
    """The hyperparameters the sweep varies: its grid's and its sampled ones."""
    spec = sweep["spec"]
    return list(spec.get("grid", {})) + list(spec.get("sample", {}))


# -- sweeps ----------------------------------------------------------------------------------
def sweep_view(sweep: dict[str, Any]) -> dict[str, Any]:
    """A sweep as `ls` and `status` show it; `status` is the one to show (a running sweep
    whose driver is gone is `interrupted`)."""
    counts = {str(s): int(n) for s, n in sorted(sweep["counts"].items())}
    return {
        "id": sweep["id"],
        "name": sweep["name"],
        "status": sweep_status(sweep),
        "message": sweep["message"],
        "metric": sweep["metric"],
        "mode": sweep["mode"],
        "n_trials": sweep["n_trials"],
        "done": sum(n for s, n in counts.items() if s in TrialStatus.finished()),
        "counts": counts,
        "best": finite(sweep["best"]),
        "created_at": sweep["created_at"],
        "ended_at": sweep["ended_at"],
    }


def ls_view(url: str, sweeps: list[dict[str, Any]]) -> dict[str, Any]:
    """`sweepscope ls --json`: every sweep of the store, newest first."""
    return {
        "schema": schema_id("ls"),
        "store": mask_url(url),
        "sweeps": [sweep_view(s) for s in sweeps],
    }


# -- trials ----------------------------------------------------------------------------------
def best_values(store: Store, sweep: dict[str, Any]) -> dict[int, float]:
    """Each trial's best value of the sweep's metric, by store id (trials without points
    are left out)."""
    points = store.points(sweep["id"], metrics=[sweep["metric"]])
    if points.empty:
        return {}
    agg = "max" if sweep["mode"] == "max" else "min"
    return {int(k): float(v) for k, v in points.groupby("trial_id")["value"].agg(agg).items()}


def trial_views(store: Store, sweep: dict[str, Any]) -> list[dict[str, Any]]:
    """A sweep's trials by number: status, config, progress and best value of the metric."""
    best = best_values(store, sweep)
    return [
        {
            "number": t["number"],
            "round": t["round"],
            "status": t["status"],
            "config": t["config"],
            "last_epoch": t["last_epoch"],
            "last_step": t["last_step"],
            "best": finite(best.get(t["id"])),
            "created_at": t["created_at"],
            "started_at": t["started_at"],
            "ended_at": t["ended_at"],
            "node": t["node"],
            "device": t["device"],
            "error": t["error"],
        }
        for t in store.trials(sweep["id"])
    ]


def _configurations(store: Store, sweep: dict[str, Any]) -> dict[str, Any] | None:
    """A seeded sweep's configurations (runner.configurations), None for one without seeds."""
    from runner.configurations import best_configuration, final_values, seed_key
    from runner.spec import configuration
    from runner.verdicts import mean_interval

    key = seed_key(sweep["spec"])
    if key is None:
        return None
    trials = store.trials(sweep["id"])
    points = store.points(sweep["id"], metrics=[sweep["metric"]])
    finals = final_values(points)
    rows: dict[str, dict[str, Any]] = {}
    for t in trials:
        config = configuration(dict(t["config"]), key)
        text = json.dumps(config, sort_keys=True, default=str)
        row = rows.setdefault(text, {"config": config, "trials": [], "finals": []})
        row["trials"].append(t["number"])
        if t["id"] in finals.index:
            row["finals"].append(float(finals[t["id"]]))
    table = []
    for row in rows.values():
        mean, low, high, n = mean_interval(row.pop("finals"))
        table.append(
            row | {"seeds": n, "mean": finite(mean), "low": finite(low), "high": finite(high)}
        )
    sign = -1.0 if sweep["mode"] == "max" else 1.0  # best mean first, none last
    table.sort(key=lambda r: (r["mean"] is None, sign * (r["mean"] or 0.0)))
    best = best_configuration(sweep, trials, points)
    return {
        "seed_key": key,
        "best": None
        if best is None
        else {
            "config": json.loads(str(best.config)),
            "mean": finite(best.mean),
            "low": finite(best.low),
            "high": finite(best.high),
            "seeds": best.n,
            "tied_with": len(best.tied_with),
        },
        "rows": table,
    }


def status_view(store: Store, sweep: dict[str, Any]) -> dict[str, Any]:
    """`sweepscope status --json`: the sweep, its trials by number, and for a seeded sweep
    its configurations by mean final value over seeds."""
    return {
        "schema": schema_id("status"),
        "store": store.url,
        "sweep": sweep_view(sweep) | {"varied": varied(sweep)},
        "trials": trial_views(store, sweep),
        "configurations": _configurations(store, sweep),
    }


def export_view(
    sweep_id: str, path: Path, *, points: int, trials: int, columns: list[str]
) -> dict[str, Any]:
    """`sweepscope export --json`: what was written where."""
    return {
        "schema": schema_id("export"),
        "sweep_id": sweep_id,
        "path": str(path.resolve()),
        "format": path.suffix.lstrip("."),
        "points": points,
        "trials": trials,
        "columns": columns,
    }
