"""The two baselines the runner is measured against, each a fresh process so that imports
and Ray's start count as they would for a user:

    python -m benchmarks.baselines sequential SPEC   # one model at a time, one process
    python -m benchmarks.baselines tune SPEC [--reuse-actors]   # plain Ray Tune, defaults
    python -m benchmarks.baselines trivial N [--reuse-actors]   # N trivial trials, plain Tune

The first two run the spec's grid with the same train function (experiments.train:train);
`trivial` runs benchmarks.trainables:trivial_plain N times. Each prints one JSON line: the
wall time, for `sequential` each trial's own compute seconds, for the Ray Tune runs the
moments (time.time()) of the first and the last point the trials made and each trial's
span from its first point to its last, so that start-up, training and shutdown split the
same way as for `sweepscope run` (benchmarks.bench_overhead).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

from runner import _ray_private as ray_private
from runner.driver import tune_spec
from runner.spec import POINT_KEY, Spec, load_spec
from runner.trial import report


def grid_configs(spec: Spec) -> list[dict[str, Any]]:
    """Every trial's config, in the runner's order: fixed values, stop, the trial's point."""
    space = tune_spec.param_space(spec)
    fixed = {k: v for k, v in space.items() if k not in spec.grid and k != POINT_KEY}
    return [{**fixed, **point} for point in spec.points()]


def sequential(spec: Spec) -> dict[str, Any]:
    from experiments.train import train

    start = time.perf_counter()
    compute = []
    for config in grid_configs(spec):
        t0 = time.perf_counter()
        with report.collect():  # reports are kept in memory, as a tracker would
            train(config)
        compute.append(time.perf_counter() - t0)
    return {"wall": time.perf_counter() - start, "compute": compute}


def plain_train(config: dict[str, Any]) -> None:
    """experiments.train:train reporting the usual way: tune.report once per epoch (with
    the moments of its first and latest points, for the phase split; no other metric)."""
    from ray import tune

    from experiments.train import train

    first: list[float] = []

    def to_tune(result: dict[str, Any]) -> None:
        points = result.get(report.POINTS_KEY) or []
        if points and not first:
            first.append(points[0][3])
        if "epoch" in result:
            metrics = {k: v for k, v in result.items() if not k.startswith("_")}
            last = points[-1][3] if points else time.time()
            tune.report({**metrics, "first_point_at": first[0], "last_point_at": last})

    report._sink = to_tune
    report._reset(decision_epochs=frozenset(range(1, config["epochs"] + 1)))  # every epoch
    train(config)


def _phases() -> Any:
    """A Tune callback keeping each trial's first and last point moments (plain_train reports
    them; for trivial_plain, the moments its results arrive at the driver)."""
    from ray import tune

    class Phases(tune.Callback):
        def __init__(self) -> None:
            self.first: dict[str, float] = {}
            self.last: dict[str, float] = {}

        def on_trial_result(
            self, iteration: int, trials: Any, trial: Any, result: Any, **info: Any
        ) -> None:
            self.first.setdefault(trial.trial_id, result.get("first_point_at", time.time()))
            self.last[trial.trial_id] = result.get("last_point_at", time.time())

        def summary(self) -> dict[str, Any]:
            return {
                "first_point": min(self.first.values()),
                "last_point": max(self.last.values()),
                "spans": [self.last[t] - self.first[t] for t in self.first],
            }

    return Phases()


def plain_tune(spec: Spec, reuse_actors: bool) -> dict[str, Any]:
    configs = grid_configs(spec)
    from ray import tune

    space = {**configs[0], **{k: tune.grid_search(v) for k, v in spec.grid.items()}}
    return _fit(plain_train, space, len(configs), reuse_actors)


def trivial(n: int, reuse_actors: bool) -> dict[str, Any]:
    """`n` trivial trials (benchmarks.trainables:trivial_plain), ten epochs each."""
    from ray import tune

    from benchmarks.trainables import trivial_plain

    space = {"epochs": 10, "epoch_seconds": 0.01, "i": tune.grid_search(list(range(n)))}
    return _fit(trivial_plain, space, n, reuse_actors)


def _fit(trainable: Any, space: dict[str, Any], n: int, reuse_actors: bool) -> dict[str, Any]:
    """Ray Tune as its users write it (a local ray.init(), Tuner.fit), timed from here."""
    start = time.perf_counter()
    import ray
    from ray import tune

    # A Ray of its own, as `sweepscope run` starts: on a shared machine a plain ray.init()
    # joins the latest cluster anyone started on this host (or hangs on one that is gone).
    ray.init(address="local")
    phases = _phases()
    with tempfile.TemporaryDirectory() as storage:
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(reuse_actors=reuse_actors),
            run_config=tune.RunConfig(storage_path=storage, verbose=0),
        )
        # Tune would run a pickled copy of a callback given in RunConfig: set this one on the
        # run config right before fit, as runner.driver.drive does for its own.
        ray_private.run_config(tuner).callbacks = [phases]
        results = tuner.fit()
        assert len(results) == n and not results.errors
    ray.shutdown()
    return {"wall": time.perf_counter() - start, **phases.summary()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["sequential", "tune", "trivial"])
    parser.add_argument("spec", help="a spec file; for `trivial`, the number of trials")
    parser.add_argument("--reuse-actors", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if args.kind == "trivial":
        out = trivial(int(args.spec), args.reuse_actors)
    elif args.kind == "sequential":
        out = sequential(load_spec(args.spec))
    else:
        out = plain_tune(load_spec(args.spec), args.reuse_actors)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
