"""The two baselines the runner is measured against, each a fresh process so that imports
and Ray's start count as they would for a user:

    python -m benchmarks.baselines sequential SPEC   # one model at a time, one process
    python -m benchmarks.baselines tune SPEC [--reuse-actors]   # plain Ray Tune, defaults

Both run the spec's grid with the same train function (experiments.train:train) and print
one JSON line: the wall time and, for `sequential`, each trial's own compute seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

from runner import report
from runner.spec import POINT_KEY, Spec, load_spec


def grid_configs(spec: Spec) -> list[dict[str, Any]]:
    """Every trial's config, in the runner's order: fixed values, stop, the trial's point."""
    space = spec.param_space()
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
    """experiments.train:train reporting the usual way: tune.report once per epoch."""
    from ray import tune

    from experiments.train import train

    def to_tune(result: dict[str, Any]) -> None:
        if "epoch" in result:
            tune.report({k: v for k, v in result.items() if not k.startswith("_")})

    report._sink = to_tune
    report._reset()
    train(config)


def plain_tune(spec: Spec, reuse_actors: bool) -> dict[str, Any]:
    start = time.perf_counter()
    import ray
    from ray import tune

    ray.init()
    configs = grid_configs(spec)
    space = {**configs[0], **{k: tune.grid_search(v) for k, v in spec.grid.items()}}
    with tempfile.TemporaryDirectory() as storage:
        tuner = tune.Tuner(
            plain_train,
            param_space=space,
            tune_config=tune.TuneConfig(reuse_actors=reuse_actors),
            run_config=tune.RunConfig(storage_path=storage, verbose=0),
        )
        results = tuner.fit()
        assert len(results) == len(configs) and not results.errors
    ray.shutdown()
    return {"wall": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["sequential", "tune"])
    parser.add_argument("spec")
    parser.add_argument("--reuse-actors", action="store_true")
    args = parser.parse_args()
    spec = load_spec(args.spec)
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    out = sequential(spec) if args.kind == "sequential" else plain_tune(spec, args.reuse_actors)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
