"""The spec in Ray Tune's terms: the param space, the searcher, the scheduler and the epochs
at which the scheduler decides.

runner/spec.py says what a sweep is and refuses what cannot run; this module is the one place
that turns a valid Spec into Ray Tune objects. Ray and Optuna are imported only when called,
so importing it costs the driver nothing.

A grid sweep (`search: {type: grid}`, the default) is one grid_search over the index of each
trial's point, in the spec's order (Spec.points). A searched sweep (`random`, `tpe`) runs
`search.trials` trials; Ray Tune's OptunaSearch suggests each one as a trial slot frees up,
with Optuna's RandomSampler or TPESampler, over the grid's values and the sample
distributions. With `seeds`, each configuration runs once per seed: a random search then
draws its configurations up front (random_points) and runs them as a grid of points; TPE
refuses seeds (runner.spec). Schedulers judge each seed's trial on its own, as any trial.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from runner.protocol import POINTS_KEY
from runner.spec import POINT_KEY, Distribution, Spec, with_seeds

__all__ = ["SearchSpace", "decision_epochs", "param_space", "scheduler", "searcher", "tune_config"]


# -- the param space ---------------------------------------------------------------------
def param_space(spec: Spec, points: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The Ray Tune param_space: fixed values, the grid (unless a searcher suggests it),
    samplers, stop.

    For a grid, trials start in the spec's order: one grid_search over the index of each
    trial's point (see Spec.points), each grid key then taking its value from that point
    through tune.sample_from, which keeps a list or dict value whole; samplers are drawn per
    trial. For a searched sweep the searcher suggests every grid and sample key, and the space
    holds only what is the same in every trial. `points` given (an extension's: its
    configurations with their seeds, or the whole configs of the trials it continues), the
    trials run exactly those, in that order.
    """
    from ray import tune

    space: dict[str, Any] = dict(spec.fixed)
    if points is not None or spec.search.type == "grid" or spec.seeds is not None:
        if points is None:
            points = spec.points() if spec.search.type == "grid" else random_points(spec)
        space[POINT_KEY] = tune.grid_search(list(range(len(points))))
        for key in points[0]:
            space[key] = tune.sample_from(_from_point(points, key))
        if spec.search.type == "grid":  # drawn per trial, unless the points hold them
            space.update({k: _sampler(d) for k, d in spec.sample.items() if k not in points[0]})
    if spec.stop.epochs is not None:
        space["epochs"] = spec.stop.epochs
    if spec.stop.steps is not None:
        space["max_steps"] = spec.stop.steps
    return space


def random_points(spec: Spec) -> list[dict[str, Any]]:
    """A random search with seeds: its `search.trials` configurations drawn up front (the
    same draws as Optuna's RandomSampler with `search.seed` suggests them one by one), each
    run once per seed. Drawing does not depend on results, so nothing is lost by drawing
    first, and every seed of a configuration gets the very same values."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seed = spec.search.seed if spec.search.seed is not None else 0
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    space = SearchSpace(spec)
    configs = [space(study.ask()) for _ in range(spec.search.trials or 0)]
    return with_seeds(configs, spec.seeds)


def _from_point(points: list[dict[str, Any]], key: str) -> Callable[[Any], Any]:
    """For tune.sample_from: the value of `key` in the trial's point."""

    def value(config: dict[str, Any]) -> Any:
        return points[config[POINT_KEY]][key]

    return value


def _sampler(d: Distribution) -> Any:
    """A `sample` distribution as a Ray Tune sampler, drawn once per grid trial."""
    from ray import tune

    if d.uniform is not None:
        return tune.uniform(*d.uniform)
    if d.loguniform is not None:
        return tune.loguniform(*d.loguniform)
    if d.int is not None:
        return tune.randint(d.int[0], d.int[1] + 1)  # tune's upper bound is exclusive
    return tune.choice(list(d.choice or []))


# -- the searcher ------------------------------------------------------------------------
def _ordered(values: list[Any]) -> bool:
    """Numbers (not booleans) are ordered choices: the searcher may learn that neighbours
    do alike (lr 1e-3 near 1e-2); anything else is a plain category."""
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


class SearchSpace:
    """Optuna's define-by-run space for a searched spec: each grid key (and `choice`) is an
    index into its values, an integer when they are numbers (in ascending order) and a
    category otherwise, so a list or dict value stays whole; uniform, loguniform and int
    distributions are Optuna's own. Returns the config values, which Ray Tune merges into the
    trial's config. Plain data, so Ray Tune can save it with the searcher's state."""

    def __init__(self, spec: Spec) -> None:
        self.choices: dict[str, list[Any]] = dict(spec.grid)
        self.ranges: dict[str, tuple[str, float, float]] = {}
        for name, d in spec.sample.items():
            if d.choice is not None:
                self.choices[name] = list(d.choice)
            elif d.uniform is not None:
                self.ranges[name] = ("uniform", *d.uniform)
            elif d.loguniform is not None:
                self.ranges[name] = ("loguniform", *d.loguniform)
            elif d.int is not None:
                self.ranges[name] = ("int", *d.int)

    def __call__(self, trial: Any) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for name, values in self.choices.items():
            if len(values) == 1:
                config[name] = values[0]
            elif _ordered(values):
                ascending = sorted(values)
                config[name] = ascending[trial.suggest_int(name, 0, len(values) - 1)]
            else:
                config[name] = values[trial.suggest_categorical(name, list(range(len(values))))]
        for name, (kind, lo, hi) in self.ranges.items():
            if kind == "int":
                config[name] = trial.suggest_int(name, int(lo), int(hi))
            else:
                config[name] = trial.suggest_float(name, lo, hi, log=kind == "loguniform")
        return config


def searcher(spec: Spec, max_concurrent: int | None = None) -> Any:
    """Ray Tune's OptunaSearch with Optuna's TPE (`tpe`) or random (`random`) sampler,
    seeded by `search.seed` (0 when not given), behind a ConcurrencyLimiter when the
    trials running at once are limited; None for a grid."""
    if spec.search.type == "grid" or spec.seeds is not None:
        return None  # a grid, or a random search drawn up front (random_points)
    import optuna
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per trial: the store has them

    class MetricSearch(OptunaSearch):  # type: ignore[misc]
        """OptunaSearch, passing on only results that carry the metric: runner.trial.report sends
        its steps at least once a second, before the first epoch's metrics exist."""

        def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
            if self.metric in result:
                super().on_trial_result(trial_id, result)

    MetricSearch.__name__ = MetricSearch.__qualname__ = "OptunaSearch"
    seed = spec.search.seed if spec.search.seed is not None else 0
    sampler = (
        # constant_liar: trials run in parallel, so a suggestion must avoid those still running
        optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
        if spec.search.type == "tpe"
        else optuna.samplers.RandomSampler(seed=seed)
    )
    search = MetricSearch(SearchSpace(spec), metric=spec.metric, mode=spec.mode, sampler=sampler)
    if max_concurrent:
        return ConcurrencyLimiter(search, max_concurrent=max_concurrent)
    return search


# -- the scheduler -----------------------------------------------------------------------
def _with_epoch(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """A plain Ray Tune result without `epoch` counts its training_iteration as the epoch."""
    if result is None or "epoch" in result or POINTS_KEY in result:
        return result
    return {**result, "epoch": result.get("training_iteration")}


def _epoch_time(scheduler: type) -> type:
    """`scheduler`, judging plain Ray Tune results by training_iteration when they have no
    `epoch` (runner.trial.report results always carry one)."""

    class EpochTime(scheduler):  # type: ignore[valid-type, misc]
        def on_trial_result(self, controller: Any, trial: Any, result: dict[str, Any]) -> Any:
            return super().on_trial_result(controller, trial, _with_epoch(result))

        def on_trial_complete(self, controller: Any, trial: Any, result: dict[str, Any]) -> Any:
            return super().on_trial_complete(controller, trial, _with_epoch(result))

    EpochTime.__name__ = EpochTime.__qualname__ = scheduler.__name__
    return EpochTime


def scheduler(spec: Spec) -> Any:
    """Ray Tune's AsyncHyperBandScheduler (`asha`) or MedianStoppingRule (`median`) on the
    epoch, the spec's metric and mode; None without one."""
    from ray.tune.schedulers import AsyncHyperBandScheduler, MedianStoppingRule

    s = spec.scheduler
    if s.type == "asha":
        return _epoch_time(AsyncHyperBandScheduler)(
            time_attr="epoch",
            metric=spec.metric,
            mode=spec.mode,
            grace_period=s.grace_period,
            reduction_factor=s.reduction_factor,
            max_t=s.max_t or spec.stop.epochs or 100,
        )
    if s.type == "median":
        return _epoch_time(MedianStoppingRule)(
            time_attr="epoch",
            metric=spec.metric,
            mode=spec.mode,
            grace_period=s.grace_period,
            min_samples_required=s.min_samples,
            # Never pause a trial that has too few others to compare with (Ray's default
            # pauses it while trials are pending, and a trial without a checkpoint would then
            # start over): it runs on until it can be judged. Only inf turns pausing off.
            min_time_slice=math.inf,  # type: ignore[arg-type]
        )
    return None


def decision_epochs(spec: Spec) -> frozenset[int]:
    """The epochs at which the scheduler decides: trials report them without delay.

    ASHA judges a trial when it reaches a rung, grace_period * reduction_factor**k up to
    max_t (as Ray's AsyncHyperBandScheduler places them); the median rule judges every
    epoch after its grace period.
    """
    s = spec.scheduler
    if s.type == "asha":
        max_t = s.max_t or spec.stop.epochs or 100
        rungs, t = set(), float(s.grace_period)
        while t <= max_t:
            rungs.add(round(t))
            t *= s.reduction_factor
        return frozenset(rungs | {max_t})
    if s.type == "median":
        return frozenset(range(s.grace_period, (spec.stop.epochs or 10_000) + 1))
    return frozenset()


# -- all of it ---------------------------------------------------------------------------
def tune_config(spec: Spec, *, max_concurrent: int | None = None, reuse_actors: bool) -> Any:
    """The TuneConfig of a new sweep: searcher and trial count, scheduler, concurrency.

    A grid (and a random search with seeds, drawn up front) is Ray Tune's own variant
    generator over `param_space`, one sample per point.
    `max_concurrent` (the CLI's, else the spec's) limits the trials running at once: for a
    searcher through its ConcurrencyLimiter, which also lets it suggest that many at once.
    """
    from ray import tune

    limit = max_concurrent or spec.max_concurrent
    search = searcher(spec, limit)
    return tune.TuneConfig(
        search_alg=search,
        num_samples=1 if search is None else spec.n_trials,
        max_concurrent_trials=limit if search is None else None,
        reuse_actors=reuse_actors,
        scheduler=scheduler(spec),
    )
