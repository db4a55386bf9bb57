"""Comparing two settings of one hyperparameter (batch_norm by default) across a sweep,
or two sweeps against each other.

Trials are paired by every other hyperparameter, so each pair differs only in the
factor. The page then shows the difference in the final metric per pair with a
bootstrap interval of its mean, and the steps each trial needs to reach a target value,
whose ratio per pair is the BN paper's headline "speed-up". Two sweeps pair their trials
on the hyperparameters they share, and the same analysis follows with sweep A against B.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from dashboard.data import SweepPoints, _hashable, ordered, trial_number
from runner import verdicts
from runner.configurations import finals_by_configuration
from runner.status import TrialStatus

__all__ = [
    "ConfigPairing",
    "ConfigVerdicts",
    "Interval",
    "SWEEP_FACTOR",
    "Pairing",
    "SweepPairing",
    "best_values",
    "bootstrap_mean",
    "configuration_verdicts",
    "default_factor",
    "default_levels",
    "default_sweeps",
    "default_target",
    "default_x",
    "final_values",
    "finished_finals",
    "finals_against",
    "geometric_mean_speedup",
    "levels",
    "numeric_params",
    "pair_configurations",
    "pair_finals",
    "pair_steps",
    "pair_sweeps",
    "pair_trials",
    "paired_differences",
    "seed_noise",
    "seeded",
    "sides",
    "speedups",
    "steps_to_target",
    "sweep_labels",
]


def levels(trials: Sequence[Mapping[str, Any]], factor: str) -> list[Any]:
    """The distinct values `factor` takes across the trials, sorted (None last)."""
    seen = {_hashable(t["config"].get(factor)): t["config"].get(factor) for t in trials}
    return ordered(seen.values())


def default_levels(values: Sequence[Any]) -> tuple[Any, Any] | None:
    """(A, B) to compare, B - A: for booleans (False, True), i.e. with BN minus without."""
    if len(values) < 2:
        return None
    return values[0], values[1]


@dataclass(frozen=True)
class Pairing:
    """Trials matched on every hyperparameter but `factor`.

    `pairs` has one row per pair: `pair` (a label of the shared settings), `a` and `b`
    (trial ids with factor = levels[0] and levels[1]) and the shared hyperparameters.
    `unpaired` lists trials with the factor at A or B that found no partner.
    """

    factor: str
    levels: tuple[Any, Any]
    others: tuple[str, ...]
    pairs: pd.DataFrame
    unpaired: tuple[int, ...]


def pair_trials(
    trials: Sequence[Mapping[str, Any]],
    factor: str,
    compared: tuple[Any, Any],
    params: Sequence[str],
) -> Pairing:
    """Pair trials that share every hyperparameter in `params` except `factor`.

    Repeated settings (a spec with `samples` > 1 and no seed in the grid) pair in order of
    trial id.
    """
    a_key, b_key = _sides(factor, compared, params)
    others = tuple(p for p in params if p != factor)
    groups = _grouped(trials, factor, (a_key, b_key), others)
    rows, unpaired = [], []
    for sides in groups.values():
        a_list, b_list = sides[a_key], sides[b_key]
        for ta, tb in zip(a_list, b_list, strict=False):
            label = ", ".join(f"{p}={ta['config'].get(p)}" for p in others) or "all"
            rows.append(
                {
                    "pair": label,
                    "a": int(ta["id"]),
                    "b": int(tb["id"]),
                    **{p: ta["config"].get(p) for p in others},
                }
            )
        n = min(len(a_list), len(b_list))
        unpaired += [int(t["id"]) for t in a_list[n:] + b_list[n:]]
    pairs = pd.DataFrame(rows, columns=["pair", "a", "b", *others])
    return Pairing(factor, compared, others, pairs, tuple(sorted(unpaired)))


def _sides(factor: str, compared: tuple[Any, Any], params: Sequence[str]) -> tuple[str, str]:
    """The two levels' keys, after checking the factor and that the levels differ."""
    if factor not in params:
        raise ValueError(
            f"factor {factor!r} is not a hyperparameter of this sweep. "
            f"Fix: pick one of {list(params)}."
        )
    a_key, b_key = _hashable(compared[0]), _hashable(compared[1])
    if a_key == b_key:
        raise ValueError(
            f"both sides of the comparison are {factor}={compared[0]!r}. "
            "Fix: pick two different values."
        )
    return a_key, b_key


def _grouped(
    trials: Sequence[Mapping[str, Any]],
    factor: str,
    sides: tuple[str, str],
    others: Sequence[str],
) -> dict[str, dict[str, list[Mapping[str, Any]]]]:
    """Trials at either level, by their settings of `others`, then by level, in id order."""
    groups: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for t in sorted(trials, key=lambda t: int(t["id"])):
        side = _hashable(t["config"].get(factor))
        if side in sides:
            shared = _hashable([t["config"].get(p) for p in others])
            groups.setdefault(shared, {sides[0]: [], sides[1]: []})[side].append(t)
    return groups


def final_values(points: SweepPoints, trial_ids: Sequence[int], metric: str) -> pd.Series:
    """Each trial's last finite value of `metric` (NaN when it has none)."""
    return pd.Series(points.finals(trial_ids, metric), dtype="float64")


def paired_differences(pairing: Pairing, finals: pd.Series) -> pd.DataFrame:
    """Per pair: the final metric at A and at B, and B - A."""
    frame = pairing.pairs[["pair", "a", "b"]].copy()
    frame["final A"] = frame["a"].map(finals).astype("float64")
    frame["final B"] = frame["b"].map(finals).astype("float64")
    frame["B - A"] = frame["final B"] - frame["final A"]
    return frame


@dataclass(frozen=True)
class Interval:
    """A statistic with its bootstrap confidence interval over `n` values."""

    estimate: float
    low: float
    high: float
    n: int
    confidence: float


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    seed: int = 0,
    n_resamples: int = 9999,
) -> Interval:
    """The mean of `values` (NaNs dropped) with a BCa bootstrap interval.

    Fewer than two values give no interval (NaN bounds); identical values give a zero-width
    one. Falls back to the percentile method where BCa is undefined.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence {confidence!r} is outside (0, 1). Fix: use e.g. 0.95.")
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    n = len(data)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, confidence)
    mean = float(data.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, confidence)
    if np.ptp(data) == 0.0:
        same = float(data[0])
        return Interval(same, same, same, n, confidence)
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = stats.bootstrap(
                (data,),
                np.mean,
                confidence_level=confidence,
                n_resamples=n_resamples,
                method=method,
                rng=np.random.default_rng(seed),
                vectorized=True,
            )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return Interval(mean, low, high, n, confidence)
    return Interval(mean, math.nan, math.nan, n, confidence)


def steps_to_target(
    points: SweepPoints,
    trial_ids: Sequence[int],
    metric: str,
    target: float,
    mode: str,
) -> pd.Series:
    """The first step at which each trial's `metric` reaches `target` (>= for mode max,
    <= for min); NaN where it never did."""
    out = {}
    for trial in trial_ids:
        series = points.series(int(trial), metric)
        step = math.nan
        if series is not None and len(series.value):
            with np.errstate(invalid="ignore"):
                hit = series.value >= target if mode == "max" else series.value <= target
            if hit.any():
                step = float(series.step[int(np.argmax(hit))])
        out[int(trial)] = step
    return pd.Series(out, dtype="float64")


def default_target(values: Sequence[float] | np.ndarray, mode: str, fraction: float = 0.9) -> float:
    """A target most good trials reach: `fraction` of the best value (for max metrics such
    as accuracy), or the best divided by `fraction` (for min metrics such as loss)."""
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    if not len(data):
        return math.nan
    if mode == "max":
        return float(fraction * data.max())
    return float(data.min() / fraction)


def speedups(pairing: Pairing, steps: pd.Series) -> pd.DataFrame:
    """Per pair: steps to target at A and B, and the speed-up of B, steps(A) / steps(B).

    `outcome` says which side reached the target; the ratio is NaN unless both did.
    """
    frame = pairing.pairs[["pair", "a", "b"]].copy()
    frame["steps A"] = frame["a"].map(steps).astype("float64")
    frame["steps B"] = frame["b"].map(steps).astype("float64")
    frame["speed-up of B"] = frame["steps A"] / frame["steps B"]
    reached_a, reached_b = frame["steps A"].notna(), frame["steps B"].notna()
    frame["outcome"] = np.select(
        [reached_a & reached_b, reached_b, reached_a],
        ["both reached", "only B reached", "only A reached"],
        default="neither reached",
    )
    return frame


def geometric_mean_speedup(ratios: pd.Series, *, confidence: float = 0.95) -> Interval:
    """The geometric mean of speed-up ratios, with a bootstrap interval (on log ratios)."""
    logs = np.log(ratios[np.isfinite(ratios) & (ratios > 0)].to_numpy(np.float64))
    interval = bootstrap_mean(logs, confidence=confidence)
    return Interval(
        math.exp(interval.estimate) if interval.n else math.nan,
        math.exp(interval.low),
        math.exp(interval.high),
        interval.n,
        confidence,
    )


# -- seeded sweeps: configurations, verdicts and the noise floor ------------------------------
# With `seeds` in the spec every configuration (a config without its seed) runs once per seed.
# The BN page then pairs configurations, each side with all its seeds, and judges B against A
# with runner.verdicts' two-level bootstrap; a single trial pair would mistake a lucky seed
# for an effect.
def seeded(spec: Mapping[str, Any]) -> bool:
    """Whether the spec runs every configuration with 2 or more seeds."""
    seeds = spec.get("seeds")
    return isinstance(seeds, Mapping) and int(seeds.get("n", 1)) >= 2


@dataclass(frozen=True)
class ConfigPairing:
    """Configurations matched on every hyperparameter but `factor` and the seed.

    `pairs` has one row per configuration pair: `pair` (a label of the shared settings),
    `a` and `b` (tuples of trial ids, one per seed, at factor = levels[0] and levels[1]) and
    the shared hyperparameters. `unpaired` lists trials whose configuration has no partner.
    """

    factor: str
    levels: tuple[Any, Any]
    others: tuple[str, ...]
    seed_key: str
    pairs: pd.DataFrame
    unpaired: tuple[int, ...]


def pair_configurations(
    trials: Sequence[Mapping[str, Any]],
    factor: str,
    compared: tuple[Any, Any],
    params: Sequence[str],
    seed_key: str,
) -> ConfigPairing:
    """Pair configurations that share every hyperparameter in `params` except `factor` and
    `seed_key`; each side keeps all its trials (seeds), however many have run."""
    a_key, b_key = _sides(factor, compared, params)
    others = tuple(p for p in params if p not in (factor, seed_key))
    rows, unpaired = [], []
    for sides in _grouped(trials, factor, (a_key, b_key), others).values():
        a_list, b_list = sides[a_key], sides[b_key]
        if not (a_list and b_list):
            unpaired += [int(t["id"]) for t in a_list + b_list]
            continue
        config = a_list[0]["config"]
        rows.append(
            {
                "pair": ", ".join(f"{p}={config.get(p)}" for p in others) or "all",
                "a": tuple(int(t["id"]) for t in a_list),
                "b": tuple(int(t["id"]) for t in b_list),
                **{p: config.get(p) for p in others},
            }
        )
    pairs = pd.DataFrame(rows, columns=["pair", "a", "b", *others])
    return ConfigPairing(factor, compared, others, seed_key, pairs, tuple(sorted(unpaired)))


def finished_finals(
    points: SweepPoints, trials: Sequence[Mapping[str, Any]], metric: str
) -> pd.Series:
    """The final value of `metric` of every finished trial that reported it: its last value,
    NaN or inf kept (a diverged run, which runner.verdicts counts and leaves out). Running
    and pending trials are left out: their latest value is not a final one."""
    out = {}
    for t in trials:
        if t["status"] in TrialStatus.finished():
            series = points.series(int(t["id"]), metric)
            if series is not None and len(series.value):
                out[int(t["id"])] = float(series.value[-1])
    return pd.Series(out, dtype="float64")


def seed_noise(
    trials: Sequence[Mapping[str, Any]],
    finals: pd.Series,
    seed_key: str | None,
    *,
    confidence: float = 0.95,
) -> verdicts.NoiseFloor | None:
    """runner.verdicts.noise_floor over the trials' configurations (each trial its own one
    without a seed key, unless settings repeat); None before any trial has a final."""
    by_config = finals_by_configuration(trials, finals, seed_key)
    return verdicts.noise_floor(by_config, confidence=confidence) if by_config else None


@dataclass(frozen=True)
class ConfigVerdicts:
    """B against A over configuration pairs.

    `decision` is runner.verdicts.decide over every pair with a final on both sides (None
    when none has); `table` one row per pair: its seeds with a final on each side (of all),
    the mean final of each side, B - A with its interval over seeds (NaN below
    runner.verdicts.MIN_SEEDS a side) and the pair's own verdict ("" without finals).
    """

    decision: verdicts.Decision | None
    table: pd.DataFrame


def configuration_verdicts(
    pairing: ConfigPairing, finals: pd.Series, mode: str, *, confidence: float = 0.95
) -> ConfigVerdicts:
    """Judge B against A for the whole pairing and for each pair (see ConfigVerdicts);
    `finals` as `finished_finals` gives them, `mode` the metric's."""
    rows, compared = [], []
    for row in pairing.pairs.itertuples():
        a = [float(finals[i]) for i in row.a if i in finals.index]
        b = [float(finals[i]) for i in row.b if i in finals.index]
        finite_a, finite_b = (np.asarray(v)[np.isfinite(v)] for v in (a, b))
        out: dict[str, Any] = {
            "pair": row.pair,
            "seeds A": f"{len(finite_a)}/{len(row.a)}",
            "seeds B": f"{len(finite_b)}/{len(row.b)}",
            "mean A": float(finite_a.mean()) if len(finite_a) else math.nan,
            "mean B": float(finite_b.mean()) if len(finite_b) else math.nan,
            "B - A": math.nan,
            "low": math.nan,
            "high": math.nan,
            "verdict": "",
        }
        if len(finite_a) and len(finite_b):
            compared.append((a, b))
            one = verdicts.pair_verdict(a, b, mode, confidence=confidence)
            c = one.comparison
            out |= {"B - A": c.estimate, "low": c.low, "high": c.high, "verdict": one.verdict}
        rows.append(out)
    columns = ["pair", "seeds A", "seeds B", "mean A", "mean B", "B - A", "low", "high", "verdict"]
    table = pd.DataFrame(rows, columns=columns)
    decision = verdicts.decide(compared, mode, confidence=confidence) if compared else None
    return ConfigVerdicts(decision, table)


# -- what the BN page draws, chosen from the sweep --------------------------------------------
def default_factor(params: Sequence[str]) -> str:
    """The factor a page opens on: batch_norm when the sweep varies it, else the first."""
    return "batch_norm" if "batch_norm" in params else params[0]


def numeric_params(
    trials: Sequence[Mapping[str, Any]], params: Sequence[str], exclude: Sequence[str] = ()
) -> list[str]:
    """The hyperparameters with a number (not a boolean) in every trial: those a final
    metric can be plotted against."""
    return [
        p
        for p in params
        if p not in exclude
        and all(
            isinstance(t["config"].get(p), int | float) and not isinstance(t["config"].get(p), bool)
            for t in trials
        )
    ]


def default_x(numeric: Sequence[str]) -> str:
    """The x of 'final metric against a hyperparameter': the learning rate when varied."""
    return next((p for p in ("lr", "learning_rate") if p in numeric), numeric[0])


def sides(
    trials: Sequence[Mapping[str, Any]], factor: str, compared: tuple[Any, Any]
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """The trials with factor = A and those with factor = B (paired or not)."""
    a, b = (_hashable(v) for v in compared)
    return (
        [t for t in trials if _hashable(t["config"].get(factor)) == a],
        [t for t in trials if _hashable(t["config"].get(factor)) == b],
    )


def best_values(
    points: SweepPoints, trials: Sequence[Mapping[str, Any]], metric: str, mode: str
) -> list[float]:
    """The best value of `metric` each trial reached (trials without it left out)."""
    found = (points.series(int(t["id"]), metric) for t in trials)
    return [s.best(mode) for s in found if s is not None and len(s.value)]


def finals_against(
    points: SweepPoints,
    trials: Sequence[Mapping[str, Any]],
    metric: str,
    x: str,
    groups: Mapping[str, Sequence[Mapping[str, Any]]],
) -> pd.DataFrame:
    """One row per trial of each group with a final `metric`: trial (its store id), x,
    status, group, final and number (within the sweep, what the hover shows), for a plot
    of the final metric against the hyperparameter `x`."""
    rows = [
        {
            "trial": int(t["id"]),
            x: t["config"].get(x),
            "status": t["status"],
            "group": label,
            "number": trial_number(t),
        }
        for label, group in groups.items()
        for t in group
    ]
    frame = pd.DataFrame(rows, columns=["trial", x, "status", "group", "number"])
    frame["final"] = frame["trial"].map(final_values(points, list(frame["trial"]), metric))
    return frame.dropna(subset=["final"])


# -- sweep against sweep ------------------------------------------------------------------------
SWEEP_FACTOR = "__sweep__"  # the side of a cross-sweep pair, as a factor of pair_trials


@dataclass(frozen=True)
class SweepPairing:
    """Trials of sweep A and sweep B matched on the hyperparameters the sweeps share.

    `pairing` is a Pairing whose levels are the two sweep ids (its `a` column holds trials
    of A, `b` of B); `shared` the hyperparameters paired on; `only_a` and `only_b` those
    one sweep varies and the other's trials lack (not paired on); `differing` the settings
    each sweep holds fixed at a different value (what the comparison is about, e.g. the
    dataset); `unpaired_a` and `unpaired_b` the trials with no partner. `configurations`
    pairs configurations (all their seeds a side) when a seed key was given, and `tagged`
    holds both sweeps' trials with the sweep as the factor SWEEP_FACTOR.
    """

    pairing: Pairing
    shared: tuple[str, ...]
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    differing: dict[str, tuple[Any, Any]]
    unpaired_a: tuple[int, ...]
    unpaired_b: tuple[int, ...]
    configurations: ConfigPairing | None = None
    tagged: tuple[Mapping[str, Any], ...] = ()


def _keys(trials: Sequence[Mapping[str, Any]]) -> set[str]:
    return {k for t in trials for k in t["config"]}


def _constant(trials: Sequence[Mapping[str, Any]], key: str) -> tuple[bool, Any]:
    values = {_hashable(t["config"].get(key)): t["config"].get(key) for t in trials}
    return len(values) == 1, next(iter(values.values()))


def pair_sweeps(
    a: tuple[str, Sequence[Mapping[str, Any]], Sequence[str]],
    b: tuple[str, Sequence[Mapping[str, Any]], Sequence[str]],
    *,
    seed_key: str | None = None,
) -> SweepPairing:
    """Pair the trials of two sweeps, each given as (sweep id, trials, hyperparameters).

    A trial of A pairs with a trial of B that has the same value of every hyperparameter
    either sweep varies and both have; where several match (a setting repeated, or a
    hyperparameter only one sweep has), they pair in order of trial id and the rest stay
    unpaired. Trials must come from one store (their ids tell the sweeps apart). With a
    `seed_key` (seeded sweeps), configurations pair as well: same settings but the seed.
    """
    (id_a, trials_a, params_a), (id_b, trials_b, params_b) = a, b
    if id_a == id_b:
        raise ValueError(f"both sides are sweep {id_a!r}. Fix: pick two different sweeps.")
    keys_a, keys_b = _keys(trials_a), _keys(trials_b)
    varied = list(dict.fromkeys([*params_a, *params_b]))
    shared = tuple(k for k in varied if k in keys_a and k in keys_b)
    differing = {}
    for key in sorted((keys_a & keys_b) - set(varied)):
        (fixed_a, value_a), (fixed_b, value_b) = _constant(trials_a, key), _constant(trials_b, key)
        if fixed_a and fixed_b and _hashable(value_a) != _hashable(value_b):
            differing[key] = (value_a, value_b)
    tagged = [
        {**t, "config": {**t["config"], SWEEP_FACTOR: sweep}}
        for sweep, trials in ((id_a, trials_a), (id_b, trials_b))
        for t in trials
    ]
    params = [SWEEP_FACTOR, *shared]
    pairing = pair_trials(tagged, SWEEP_FACTOR, (id_a, id_b), params)
    config_pairing = (
        None
        if seed_key is None
        else pair_configurations(tagged, SWEEP_FACTOR, (id_a, id_b), params, seed_key)
    )
    ids_a = {int(t["id"]) for t in trials_a}
    return SweepPairing(
        pairing=pairing,
        shared=shared,
        only_a=tuple(k for k in params_a if k not in keys_b),
        only_b=tuple(k for k in params_b if k not in keys_a),
        differing=differing,
        unpaired_a=tuple(i for i in pairing.unpaired if i in ids_a),
        unpaired_b=tuple(i for i in pairing.unpaired if i not in ids_a),
        configurations=config_pairing,
        tagged=tuple(tagged),
    )


def pair_finals(
    pairing: Pairing, metric: str, points_a: SweepPoints, points_b: SweepPoints | None = None
) -> pd.Series:
    """The final `metric` of every paired trial: side A read from `points_a`, side B from
    `points_b` (the same sweep's points when None)."""
    return pd.concat(
        [
            final_values(points_a, list(pairing.pairs["a"]), metric),
            final_values(points_b or points_a, list(pairing.pairs["b"]), metric),
        ]
    )


def pair_steps(
    pairing: Pairing,
    metric: str,
    target: float,
    mode: str,
    points_a: SweepPoints,
    points_b: SweepPoints | None = None,
) -> pd.Series:
    """Steps to `target` of every paired trial, read as in `pair_finals`."""
    return pd.concat(
        [
            steps_to_target(points_a, list(pairing.pairs["a"]), metric, target, mode),
            steps_to_target(points_b or points_a, list(pairing.pairs["b"]), metric, target, mode),
        ]
    )


def sweep_labels(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[str, str]:
    """Short names for two sweeps on one page: their names, or their ids when the names
    are the same (the same spec run twice)."""
    if a["name"] != b["name"]:
        return str(a["name"]), str(b["name"])
    return str(a["id"]), str(b["id"])


def default_sweeps(ids: Sequence[str], chosen: str | None) -> tuple[str, str]:
    """(A, B) a sweep-against-sweep page opens on, from sweep ids newest first: B the sweep
    chosen in the sidebar (else the newest), A the next older one (else the newest other)."""
    if len(ids) < 2:
        raise ValueError("comparing sweeps needs two.")
    b = chosen if chosen is not None and chosen in ids else ids[0]
    rest = list(ids[ids.index(b) + 1 :]) + [i for i in ids if i != b]
    return rest[0], b
