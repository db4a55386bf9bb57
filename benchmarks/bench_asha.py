"""ASHA's savings: a 48-trial grid from the tutorial's ranges, run in full and with ASHA.

    python -m benchmarks.bench_asha

Both sweeps run in one process on one Ray runtime (started first, outside both timings),
through sweepscope's own run_sweep; trial-epochs come from the store.
"""

from __future__ import annotations

import os
import tempfile
import time

from benchmarks._common import stamp, write_fragment
from runner.spec import Scheduler, load_spec
from runner.store import Store, open_store

SPEC = "benchmarks/specs/asha_grid.yaml"


def measure(store: Store, spec_path: str, asha: bool) -> dict[str, float]:
    from runner.launch import run_sweep

    spec = load_spec(spec_path)
    if asha:
        scheduler = Scheduler(type="asha", grace_period=1, reduction_factor=3)
        spec = spec.model_copy(update={"scheduler": scheduler, "name": "bench_asha_on"})
    with tempfile.TemporaryDirectory() as storage:
        start = time.perf_counter()
        outcome = run_sweep(spec, store=store, storage_path=storage, progress=False)
        wall = time.perf_counter() - start
    trials = store.trials(outcome.sweep_id)
    acc = store.points(outcome.sweep_id, metrics=["val_acc"])
    statuses = [t["status"] for t in trials]
    return {
        "wall": wall,
        "epochs": sum(t["last_epoch"] or 0 for t in trials),
        "best": float(acc["value"].max()),
        "trials": len(trials),
        "pruned": statuses.count("pruned"),
        "completed": statuses.count("completed"),
    }


def main() -> None:
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(f"sqlite:///{tmp}/bench.db", create=True)
            full = measure(store, SPEC, asha=False)
            asha = measure(store, SPEC, asha=True)
            store.close()
    finally:
        ray.shutdown()
    gap = (full["best"] - asha["best"]) * 100
    epochs_ratio = asha["epochs"] / full["epochs"]
    wall_ratio = asha["wall"] / full["wall"]
    write_fragment("asha", f"""## ASHA: early stopping against the full grid

`benchmarks/specs/asha_grid.yaml`: {full['trials']:.0f} trials (alpha in 1e-4..1e-1 log-spaced x
beta1 x beta2 x BN on/off; digits, 3 x 128, batch 16, up to 27 epochs), once in full and once
with ASHA (grace period 1 epoch, reduction factor 3, max 27 epochs), one after the other on
one Ray runtime.

| run | wall | trial-epochs | best val_acc | trials completed / pruned |
|---|---:|---:|---:|---:|
| full grid | {full['wall']:.1f} s | {full['epochs']:.0f} | {full['best']:.4f} | {full['completed']:.0f} / {full['pruned']:.0f} |
| ASHA | {asha['wall']:.1f} s | {asha['epochs']:.0f} | {asha['best']:.4f} | {asha['completed']:.0f} / {asha['pruned']:.0f} |
| **ASHA / full** | **{wall_ratio:.2f}** | **{epochs_ratio:.2f}** | {-gap:+.2f} points | |

Targets: best within 0.5 points of the full grid's ({'met' if gap <= 0.5 else 'missed'}: {gap:.2f}),
at <= 1/3 of the trial-epochs ({'met' if epochs_ratio <= 1 / 3 else 'missed'}) and of the wall
time ({'met' if wall_ratio <= 1 / 3 else 'missed'}).

{stamp("python -m benchmarks.bench_asha")}""")


if __name__ == "__main__":
    main()
