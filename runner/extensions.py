"""What an extension of a finished sweep runs (`sweepscope extend`): more seeds for some of
its configurations, the new combinations of a grid with more values, or more epochs for
its finished trials.

A plan is a list of points, each a trial's searched values and seed (the keys Spec.points
gives a trial; fixed values and stop rules come from the spec), in the order they run; a
continued trial's point is its whole config and the store id of the trial it continues
(CONTINUES_KEY). It is computed here from the sweep as the store holds it, without Ray;
running it is runner.driver.launch's (extend_sweep), which adds each continued trial's
checkpoint.

Which configurations get more seeds (`--seeds N`):
- `all`: every configuration;
- `top K`: the K best by their mean final over seeds;
- `undecided`: the best configuration and every one that could still beat it by more than
  a margin (runner.verdicts.choose_best): significance-gated replication. A configuration
  stops needing seeds once it is decided either way: worse than the best beyond seed
  noise, or unable to beat it by more than the margin (tied within it; `margin`, by
  default 0.75 x the typical seed sd). A sweep where none is left undecided gets
  nothing, and says so: its best by mean is the pick, any tied with it as good within the
  margin.
Each chosen configuration gets the next N seeds after its own largest.

Which trials get more epochs (`--epochs N`): every completed trial, or with `--top K` the K
best (with seeds: every seed of the K best configurations, so a configuration's seeds stay
comparable). The sweep's stop.epochs grows by N.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner import verdicts
from runner.configurations import config_key, final_values, finals_by_configuration
from runner.errors import SweepscopeError
from runner.protocol import CONTINUES_KEY
from runner.spec import MAX_TRIALS, Spec, parse_spec, stored_spec, yaml_value
from runner.status import TrialStatus

__all__ = [
    "WHERE",
    "Plan",
    "epochs_plan",
    "grid_plan",
    "parse_grid_values",
    "refuse_unfinished",
    "seeds_plan",
    "undecided",
]

WHERE = ("all", "top", "undecided")


@dataclass(frozen=True)
class Plan:
    """An extension: the points to run, in words what it adds, and the spec from then on."""

    kind: str  # "seeds" | "grid" | "epochs"
    points: list[dict[str, Any]]
    detail: str
    spec: Spec
    note: str | None = None  # why nothing (or less than asked) runs


def refuse_unfinished(sweep: Mapping[str, Any], trials: Sequence[Mapping[str, Any]]) -> None:
    """An extension starts from a sweep that ran to its end: one still running (or left
    with trials to run) is refused, with what to do instead."""
    sweep_id = sweep["id"]
    if sweep["status"] == "running":
        raise SweepscopeError(
            f"sweep {sweep_id} is running. Fix: wait for it to end (or stop it: sweepscope "
            f"stop {sweep_id}, then sweepscope resume {sweep_id} to finish it), then extend."
        )
    left = [t["number"] for t in trials if not TrialStatus(t["status"]).is_final]
    if left:
        shown = ", ".join(str(n) for n in left[:10]) + (" ..." if len(left) > 10 else "")
        raise SweepscopeError(
            f"sweep {sweep_id} has {len(left)} trial(s) left to run (trial {shown}). Fix: "
            f"finish it first with `sweepscope resume {sweep_id}`, then extend."
        )


def _point_keys(spec: Spec) -> list[str]:
    """The keys of a trial's point: what the grid or the search varies, and the seed."""
    keys = list(spec.grid) + ([] if spec.search.type == "grid" else list(spec.sample))
    return keys + ([spec.seed_key] if spec.seed_key is not None else [])


def seeds_plan(
    sweep: Mapping[str, Any],
    trials: Sequence[Mapping[str, Any]],
    points: Any,
    *,
    n: int,
    where: str = "all",
    top: int | None = None,
    margin: float | None = None,
    allow_large: bool = False,
) -> Plan:
    """`n` more seeds for the configurations `where` chooses (`top`: how many for "top").

    Args:
        sweep: the sweep as Store.sweep returns it.
        trials: its trials (Store.trials).
        points: the sweep's metric points (Store.points with its metric), for the finals.
        n: seeds to add per chosen configuration (1 or more).
        where: "all", "top" or "undecided" (see the module's docstring).
        top: for "top", how many configurations (1 or more).
        margin: for "undecided", the largest difference in the metric not worth telling
            apart (0 or more); None for the default (see the module's docstring).
        allow_large: allow more than MAX_TRIALS trials in the sweep.

    Raises:
        SweepscopeError: the sweep has no seeds, `where`/`top`/`margin` are bad, or too
            many trials.
    """
    spec = parse_spec(sweep["spec"], source=f"sweep {sweep['id']} in the store")
    key = spec.seed_key
    if key is None:
        raise SweepscopeError(
            f"--seeds: sweep {sweep['id']} was run without seeds, so its trainable may not read "
            "a seed from its config. Fix: run it again with `seeds: N` in the spec (e.g. "
            "seeds: 3); extend that sweep with more seeds after."
        )
    if where not in WHERE:
        raise SweepscopeError(f"--where {where!r}: not one of {', '.join(WHERE)}")
    if where == "top" and (top is None or top < 1):
        raise SweepscopeError(f"--top {top!r}: give how many configurations, e.g. --top 3")
    _check_margin(margin, where)
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for t in trials:
        groups.setdefault(config_key(t["config"], key), []).append(t)
    finals = finals_by_configuration(trials, final_values(points), key)
    chosen, note = _choose(groups, finals, str(sweep["mode"]), where, top, margin)
    keys = _point_keys(spec)
    planned: list[dict[str, Any]] = []
    for config in chosen:
        runs = groups[config]
        first = max(int(t["config"][key]) for t in runs) + 1
        base = {k: runs[0]["config"][k] for k in keys if k != key}
        planned.extend({**base, key: seed} for seed in range(first, first + n))
    _check_size(len(trials), len(planned), allow_large)
    which = {"all": "every configuration", "top": f"the top {top} configurations"}.get(
        where, "the best configuration and those that could still beat it by more than the margin"
    )
    detail = f"{n} more seed(s) for {which} ({len(chosen)}): {len(planned)} trials"
    return Plan("seeds", planned, detail, spec, note)


def _choose(
    groups: Mapping[str, Any],
    finals: Mapping[str, list[float]],
    mode: str,
    where: str,
    top: int | None,
    margin: float | None = None,
) -> tuple[list[str], str | None]:
    """The configuration keys to give more seeds, best first, and a note when none."""
    if where == "all":
        return list(groups), None
    scored = {c: [v for v in vs if math.isfinite(v)] for c, vs in finals.items()}
    ranked = sorted(
        (c for c in scored if scored[c]),
        key=lambda c: sum(scored[c]) / len(scored[c]) * (-1 if mode == "max" else 1),
    )
    if not ranked:
        raise SweepscopeError(
            "no configuration has a finite final value of the sweep's metric, so none can be "
            "ranked. Fix: extend --all, or check the trials' errors (sweepscope status)."
        )
    if where == "top":
        return ranked[: top or 0], None
    contenders, choice = undecided({c: finals[c] for c in ranked}, mode, margin=margin)
    if not contenders:
        return [], f"decided: {choice.message}; no configuration needs more seeds"
    return contenders, None


def undecided(
    finals: Mapping[str, Sequence[float]], mode: str, *, margin: float | None = None
) -> tuple[list[str], verdicts.Choice]:
    """What `--where undecided` gives more seeds: the best configuration by its mean and
    every one that could still beat it by more than `margin` (runner.verdicts.choose_best);
    none once each is worse beyond seed noise or tied with it within the margin (or the
    best is the only one). Also the verdict behind it.
    benchmarks/bench_decisions replays this rule against a ground truth."""
    choice = verdicts.choose_best(finals, mode, margin=margin)
    if choice.decided:
        return [], choice
    return [str(choice.config), *(str(c) for c in choice.undecided)], choice


def _check_margin(margin: float | None, where: str) -> None:
    if margin is None:
        return
    if where != "undecided":
        raise SweepscopeError(
            f"--margin {margin!r}: a margin decides which configurations are tied with the "
            "best, so it goes with --where undecided. Fix: add --where undecided, or drop "
            "--margin."
        )
    if isinstance(margin, bool) or not (
        isinstance(margin, int | float) and math.isfinite(margin) and margin >= 0
    ):
        raise SweepscopeError(
            f"--margin {margin!r}: not a number >= 0. Fix: give the largest difference in "
            "the sweep's metric not worth telling apart (e.g. --margin 0.005 for accuracy), "
            "--margin 0 to tell every configuration apart, or leave it out for "
            f"{verdicts.MARGIN_SDS:g} x the typical seed sd."
        )


def parse_grid_values(items: Sequence[str]) -> dict[str, list[Any]]:
    """`--grid key=v1,v2` arguments as {key: [values]}; each value read as YAML (1e-3 a
    number, true a boolean, relu a string)."""
    parsed: dict[str, list[Any]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name.strip() or not values.strip():
            raise SweepscopeError(
                f"--grid {item!r}: expected KEY=V1,V2 (e.g. --grid lr=0.3,1.0), "
                "a grid key and the values to add"
            )
        parsed.setdefault(name.strip(), []).extend(
            yaml_value(v.strip()) for v in values.split(",") if v.strip()
        )
    return parsed


def grid_plan(
    sweep: Mapping[str, Any],
    trials: Sequence[Mapping[str, Any]],
    added: Mapping[str, list[Any]],
    *,
    allow_large: bool = False,
) -> Plan:
    """The grid with `added` values: only the combinations no trial ran yet (every seed of
    each), in the grid's order.

    Raises:
        SweepscopeError: a search sweep, a key outside the grid, nothing new, or too many.
    """
    spec = parse_spec(sweep["spec"], source=f"sweep {sweep['id']} in the store")
    if spec.search.type != "grid":
        raise SweepscopeError(
            f"--grid: sweep {sweep['id']} is a {spec.search.type} search: its searcher chose "
            "the configurations, so there is no grid to add values to. Fix: extend it with "
            "--seeds, or run a new sweep with the values in its spec."
        )
    grid = {k: list(v) for k, v in spec.grid.items()}
    for key, values in added.items():
        if key not in grid:
            raise SweepscopeError(
                f"--grid {key}=...: {key!r} is not a grid key of sweep {sweep['id']} (its grid "
                f"keys: {', '.join(grid) or 'none'}). Fix: name one of them; a fixed value "
                "becomes a grid only in a new sweep."
            )
        grid[key] += [v for v in values if v not in grid[key]]
    new_spec = parse_spec(stored_spec(spec) | {"grid": grid}, source="--grid")
    keys = _point_keys(new_spec)
    ran = {_key({k: t["config"].get(k) for k in keys}) for t in trials}
    planned = [p for p in new_spec.points() if _key(p) not in ran]
    if not planned:
        raise SweepscopeError(
            f"--grid: every value given is in sweep {sweep['id']}'s grid already, so no new "
            "combination would run. Fix: give values the grid does not hold."
        )
    _check_size(len(trials), len(planned), allow_large)
    words = "; ".join(f"{k} += {', '.join(map(str, v))}" for k, v in added.items())
    detail = f"grid {words}: {len(planned)} new trials"
    return Plan("grid", planned, detail, new_spec)


def epochs_plan(
    sweep: Mapping[str, Any],
    trials: Sequence[Mapping[str, Any]],
    points: Any,
    *,
    n: int,
    top: int | None = None,
) -> Plan:
    """`n` more epochs for the completed trials (all, or the `top` best; see the module).

    Args:
        sweep, trials, points: as for seeds_plan.
        n: epochs to add (1 or more).
        top: continue only the K best trials (with seeds: configurations).

    Raises:
        SweepscopeError: the sweep does not stop by epochs, or has no completed trial.
    """
    spec = parse_spec(sweep["spec"], source=f"sweep {sweep['id']} in the store")
    if spec.stop.epochs is None:
        raise SweepscopeError(
            f"--epochs: sweep {sweep['id']} stops by {'steps' if spec.stop.steps else 'time'}, "
            "not by epochs, so there is no epoch count to raise. Fix: run sweeps you mean to "
            "continue with stop: {epochs: N}."
        )
    done = [t for t in trials if t["status"] == "completed"]
    if not done:
        raise SweepscopeError(
            f"--epochs: sweep {sweep['id']} has no completed trial to continue (stopped, "
            "pruned and failed trials are not continued). Fix: see sweepscope status."
        )
    key = spec.seed_key
    chosen = done
    if top is not None:
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for t in done:
            groups.setdefault(config_key(t["config"], key), []).append(t)
        finals = finals_by_configuration(done, final_values(points), key)
        best, _ = _choose(groups, finals, str(sweep["mode"]), "top", top)
        chosen = [t for config in best for t in groups[config]]
    epochs = spec.stop.epochs + n
    planned = [
        {
            **{k: v for k, v in t["config"].items() if k not in ("epochs", "max_steps")},
            CONTINUES_KEY: t["id"],
        }
        for t in chosen
    ]
    new_spec = parse_spec(
        stored_spec(spec) | {"stop": {**stored_spec(spec)["stop"], "epochs": epochs}},
        source="--epochs",
    )
    which = "every completed trial" if top is None else f"the top {top}"
    which += "" if top is None or key is None else " configurations' seeds"
    detail = f"{n} more epoch(s) for {which}: {len(planned)} trials to {epochs} epochs"
    return Plan("epochs", planned, detail, new_spec)


def _key(point: Mapping[str, Any]) -> str:
    return json.dumps(point, sort_keys=True, default=str)


def _check_size(existing: int, new: int, allow_large: bool) -> None:
    if existing + new > MAX_TRIALS and not allow_large:
        raise SweepscopeError(
            f"the extension would bring the sweep to {existing + new} trials, more than the "
            f"limit of {MAX_TRIALS}. Fix: add fewer seeds or values (e.g. --where undecided "
            "or --top K), or pass --allow-large."
        )
