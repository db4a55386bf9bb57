"""Streaming cost: a trial logging its loss at every step vs the same trial logging nothing.

    python -m benchmarks.bench_streaming

One sweep (benchmarks/specs/streaming.yaml) runs 6 seeds of the seed grid's network twice
each, with and without per-step reporting, interleaved on the same workers; each trial times
its own training. The cost is the ratio of the median compute times (and per seed).
"""

from __future__ import annotations

import statistics
import tempfile

from benchmarks._common import run_cli, stamp, write_fragment
from runner.store import open_store

SPEC = "benchmarks/specs/streaming.yaml"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        run_cli("run", SPEC, "--store", url, "--storage-path", f"{tmp}/ray")
        with open_store(url) as store:
            sweep_id = store.sweeps()[0]["id"]
            config = {t["id"]: t["config"] for t in store.trials(sweep_id)}
            points = store.points(sweep_id)
    compute = points[points.metric == "compute_seconds"]
    arms: dict[bool, dict[int, float]] = {True: {}, False: {}}
    for trial_id, seconds in zip(compute.trial_id, compute.value, strict=True):
        arms[config[trial_id]["log_steps"]][config[trial_id]["seed"]] = seconds
    logged = points[points.metric == "train_loss"].groupby("trial_id").size()
    steps = int(logged.max())
    on, off = statistics.median(arms[True].values()), statistics.median(arms[False].values())
    per_seed = [arms[True][s] / arms[False][s] for s in sorted(arms[True])]
    rows = "\n".join(
        f"| {s} | {arms[True][s]:.2f} s | {arms[False][s]:.2f} s | {arms[True][s] / arms[False][s]:.3f} |"
        for s in sorted(arms[True])
    )
    write_fragment(
        "streaming",
        f"""## Streaming cost: every step's loss vs none

{len(per_seed)} seeds of the seed grid's network (digits, 3 x 128, batch 16, 20 epochs,
{steps} optimizer steps), each run once reporting `train_loss` at every step (through the
store) and once reporting only its epoch metrics, in one sweep on the same workers.
Each trial times its own training.

| seed | every step | epochs only | ratio |
|---|---:|---:|---:|
{rows}

Median compute: {on:.2f} s with every step, {off:.2f} s without: **{(on / off - 1) * 100:+.1f} %**
(median of the per-seed ratios: {(statistics.median(per_seed) - 1) * 100:+.1f} %; target <= +5 %).

{stamp("python -m benchmarks.bench_streaming")}""",
    )


if __name__ == "__main__":
    main()
