"""Runner overhead: the seed grid (18 trials) on this machine's cores, four ways, side by side.

    python -m benchmarks.bench_overhead [--repeats N]

1. `sweepscope run experiments/sweeps/seed_grid.yaml`, a fresh process: Ray's start, the
   store, checkpoints and every step's loss included.
2. The ideal: the sum of each trial's own compute time (measured by running the trials one
   at a time in one process, 2.) divided by the cores.
3. The same 18 trials one at a time in one process (the tutorial's "one model at a time").
4. Plain Ray Tune with its defaults, and with reuse_actors=True (one run each), reporting
   once per epoch through tune.report.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Any

from benchmarks._common import run_cli, run_python, stamp, write_fragment
from runner.store import open_store

SPEC = "experiments/sweeps/seed_grid.yaml"


def baseline(*args: str) -> dict[str, Any]:
    """Run benchmarks.baselines; its JSON is the last line (Ray may print before it)."""
    out = run_python("-m", "benchmarks.baselines", *args)[1].stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def sweepscope_run(spec: str) -> dict[str, float]:
    """Wall time of `sweepscope run`, split into phases by the store's own timestamps."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        started = time.time()
        wall, done = run_cli("run", spec, "--store", url, "--storage-path", f"{tmp}/ray")
        if "18 completed" not in done.stdout:
            raise RuntimeError(f"the seed grid did not complete:\n{done.stdout}")
        with open_store(url) as store:
            sweep = store.sweeps()[0]
            points = store.points(sweep["id"])
    first, last = float(points.wall_time.min()), float(points.wall_time.max())
    return {
        "wall": wall,
        "startup": first - started,  # imports, checks, Ray's start, workers' imports
        "training": last - first,  # first point to last point
        "end": started + wall - last,  # last point to the command's exit
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--spec", default=SPEC)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))

    ours, phases, sequential, ideal = [], [], [], []
    for _ in range(args.repeats):  # interleaved, so drifting load hits both alike
        run_ours = sweepscope_run(args.spec)
        ours.append(run_ours["wall"])
        phases.append(run_ours)
        run = baseline("sequential", args.spec)
        sequential.append(run["wall"])
        ideal.append(sum(run["compute"]) / cores)
    tune_default = baseline("tune", args.spec)
    tune_reuse = baseline("tune", args.spec, "--reuse-actors")

    med = statistics.median
    o, s, i = med(ours), med(sequential), med(ideal)
    rows = [
        ("ideal: sum of trial compute / cores", i, 1.0, i / o),
        ("**sweepscope run** (Ray start included)", o, o / i, 1.0),
        ("one at a time, one process", s, s / i, o / s),
        ("plain Ray Tune, defaults", tune_default["wall"], tune_default["wall"] / i,
         o / tune_default["wall"]),
        ("plain Ray Tune, reuse_actors=True", tune_reuse["wall"], tune_reuse["wall"] / i,
         o / tune_reuse["wall"]),
    ]
    table = "\n".join(
        f"| {name} | {wall:.1f} s | {ratio:.2f}x | {mine:.2f} |" for name, wall, ratio, mine in rows
    )
    phase = {k: med(p[k] for p in phases) for k in ("startup", "training", "end")}
    verdict = (
        f"sweepscope / ideal = **{o / i:.2f}** (target <= 1.15); speed-up over one at a time = "
        f"**{s / o:.2f}x** (target >= 1.8 on 2 cores)."
    )
    write_fragment("overhead", f"""## Runner overhead: the seed grid, 18 trials on {cores} cores

Wall time of the whole command, medians of {args.repeats} interleaved runs for sweepscope and
the one-at-a-time baseline (one run each for plain Ray Tune). The ideal is the sum of each
trial's compute time, measured in the one-at-a-time runs, divided by the cores.

| run | wall | vs ideal | sweepscope time / this |
|---|---:|---:|---:|
{table}

{verdict}

Where sweepscope's time goes (medians): {phase['startup']:.1f} s from the command to the
first point (Python and torch imports, the spec check, Ray's start, the workers' imports),
{phase['training']:.1f} s from the first point to the last (the ideal is {i:.1f} s: training
runs at {i / phase['training'] * 100:.0f} % of the ideal), {phase['end']:.1f} s to exit (Ray's
shutdown, the summary). The fixed start-up cost is what keeps a sweep this short from the
ideal; it does not grow with the sweep.

{stamp(f"python -m benchmarks.bench_overhead --repeats {args.repeats}")}""")


if __name__ == "__main__":
    main()
