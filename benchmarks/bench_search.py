"""Search against the grid: TPE + ASHA and random + ASHA on the full grid's space, each at an
equal budget, against the full grid.

    python -m benchmarks.bench_search [--seeds 3] [--trials 96] [--fresh-grid]

The space is experiments/sweeps/full_grid.yaml's (384 points on digits, 20 epochs each); the
searched sweeps are experiments/sweeps/tpe_full_space.yaml with its search type and seed
changed. Each searcher gets the same `--trials` (96, a quarter of the grid: even with nothing
pruned it stays within 1/4 of the full grid's trial-epochs) and ASHA, for each seed; figures
are medians over the seeds, each seed's in brackets. All sweeps run in one process on one Ray
runtime through sweepscope's own run_sweep, checkpoints off (the same for every run: they cost
wall time, not epochs); trial-epochs and the best val_acc come from the store.

The full grid is the expensive part (7,680 trial-epochs) and its figures do not depend on the
run (the trainable is seeded): they are kept in benchmarks/results/search_full_grid.json with
the spec and versions they came from, and reused while those are unchanged (--fresh-grid runs
it again). Wall-time ratios are shown only when the grid ran in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from importlib.metadata import version
from typing import Any

from benchmarks._common import RESULTS, machine, stamp, write_fragment
from runner import _ray_private as ray_private
from runner.spec import Spec, load_spec
from runner.store import Store, open_store

GRID = "experiments/sweeps/full_grid.yaml"
SEARCHED = "experiments/sweeps/tpe_full_space.yaml"
CACHE = RESULTS / "search_full_grid.json"
SEARCHERS = {"tpe": "TPE + ASHA", "random": "random + ASHA"}  # search type: its label
GAP_POINTS = 0.5  # best val_acc within this many points (of 100) of the full grid's
EPOCH_SHARE = 0.25  # at most this share of the full grid's trial-epochs


def _spec(path: str, **changes: Any) -> Spec:
    """A shipped spec with `changes`, checked as a spec file is; checkpoints off."""
    body = load_spec(path).model_dump(mode="json")
    return Spec.model_validate({**body, "checkpoint_every": 0, **changes})


def measure(store: Store, spec: Spec) -> dict[str, float]:
    from runner.driver.launch import run_sweep

    with tempfile.TemporaryDirectory() as storage:
        start = time.perf_counter()
        outcome = run_sweep(spec, store=store, storage_path=storage, progress=False)
        wall = time.perf_counter() - start
    if outcome.status != "completed":
        raise RuntimeError(f"{spec.name} ended {outcome.status}: {outcome.error}")
    trials = store.trials(outcome.sweep_id)
    acc = store.points(outcome.sweep_id, metrics=["val_acc"])
    statuses = [t["status"] for t in trials]
    keys = sorted(spec.grid)
    distinct = {json.dumps([t["config"][k] for k in keys]) for t in trials}
    return {
        "wall": wall,
        "epochs": sum(t["last_epoch"] or 0 for t in trials),
        "best": float(acc["value"].max()),
        "trials": len(trials),
        "distinct": len(distinct),
        "pruned": statuses.count("pruned"),
        "completed": statuses.count("completed"),
    }


def full_grid(store: Store, fresh: bool) -> tuple[dict[str, float], str]:
    """The full grid's figures, and when they were measured ("this run" when run now)."""
    spec = _spec(GRID, name="bench_search_grid")
    key = {
        "spec": spec.model_dump(mode="json"),
        "versions": {p: version(p) for p in ("torch", "ray")},
    }
    if not fresh and CACHE.exists():
        cached = json.loads(CACHE.read_text())
        if cached["key"] == key:
            print(f"full grid: reusing {CACHE.name} from {cached['date']}")
            return cached["figures"], cached["date"]
    print(f"full grid: running {spec.n_trials} trials")
    figures = measure(store, spec)
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(
        json.dumps({"key": key, "figures": figures, "date": date, "machine": machine()}, indent=1)
    )
    return figures, "this run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=96, help="trials per searched sweep")
    parser.add_argument("--fresh-grid", action="store_true", help="run the full grid again")
    args = parser.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    grid_spec, searched = load_spec(GRID), load_spec(SEARCHED)
    if (grid_spec.grid, grid_spec.fixed, grid_spec.stop) != (
        searched.grid,
        searched.fixed,
        searched.stop,
    ):
        raise SystemExit(f"{SEARCHED} no longer searches {GRID}'s space: make them agree")
    import ray

    ray.init(
        address="local",  # a Ray of its own, never one left running on this host
        include_dashboard=False,
        configure_logging=False,
        log_to_driver=False,
        **ray_private.bind_node_ip("127.0.0.1"),
    )
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in SEARCHERS}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(f"sqlite:///{tmp}/bench.db", create=True)
            grid, grid_date = full_grid(store, args.fresh_grid)
            print(f"full grid: {grid}")
            for seed in range(args.seeds):
                for kind in SEARCHERS:
                    spec = _spec(
                        SEARCHED,
                        name=f"bench_search_{kind}_{seed}",
                        search={"type": kind, "trials": args.trials, "seed": seed},
                    )
                    runs[kind].append(measure(store, spec))
                    print(f"seed {seed}, {kind}: {runs[kind][-1]}")
            store.close()
    finally:
        ray.shutdown()

    def epochs_of(kind: str) -> list[float]:
        return [r["epochs"] for r in runs[kind]]

    def each(kind: str, figure: Any) -> tuple[float, str]:
        values = [figure(r) for r in runs[kind]]
        return statistics.median(values), ", ".join(f"{v:.2f}" for v in values)

    same_run = grid_date == "this run"
    rows = [
        f"| full grid | {grid['trials']:.0f} | {grid['epochs']:.0f} | 1.00 | "
        f"{grid['best']:.4f} | 0.00 | {grid['completed']:.0f} / 0 | "
        f"{grid['wall']:.0f} s{'' if same_run else ' (' + grid_date + ')'} |"
    ]
    verdicts = []
    for kind in SEARCHERS:
        share, shares = each(kind, lambda r: r["epochs"] / grid["epochs"])
        gap, gaps = each(kind, lambda r: (grid["best"] - r["best"]) * 100)
        best = statistics.median(r["best"] for r in runs[kind])
        epochs = statistics.median(r["epochs"] for r in runs[kind])
        distinct = statistics.median(r["distinct"] for r in runs[kind])
        done = statistics.median(r["completed"] for r in runs[kind])
        pruned = statistics.median(r["pruned"] for r in runs[kind])
        wall = statistics.median(r["wall"] for r in runs[kind])
        walls = f" ({wall / grid['wall']:.2f} of the grid's)" if same_run else ""
        name = SEARCHERS[kind]
        rows.append(
            f"| {name} | {args.trials} ({distinct:.0f} distinct) | {epochs:.0f} | "
            f"**{share:.3f}** ({shares}) | {best:.4f} | **{gap:.2f}** ({gaps}) | "
            f"{done:.0f} / {pruned:.0f} | {wall:.0f} s{walls} |"
        )
        met = gap <= GAP_POINTS and share <= EPOCH_SHARE
        verdicts.append(
            f"- {name}: {'met' if met else 'missed'}: best {gap:.2f} points below the full "
            f"grid's (target <= {GAP_POINTS}) at {share:.3f} of its trial-epochs (target <= "
            f"{EPOCH_SHARE})."
        )
    table, verdict = "\n".join(rows), "\n".join(verdicts)
    cheap, dear = sorted(SEARCHERS, key=lambda kind: statistics.median(epochs_of(kind)))
    fewer = statistics.median(epochs_of(dear)) / statistics.median(epochs_of(cheap))
    from experiments.data import load

    one_example = 100 / len(load("digits").y_val)
    write_fragment(
        "search",
        f"""## Search: TPE and random search with ASHA against the full grid

The full grid's space (`{GRID}`: lr x beta1 x beta2 x weight decay x width x depth x BN,
{grid["trials"]:.0f} points on digits, 20 epochs each) searched by `{SEARCHED}` (Optuna's TPE,
multivariate, constant liar) and by the same spec with `search: {{type: random}}` (Optuna's
random sampler), each with {args.trials} trials (a quarter of the grid) and ASHA (grace period
1, reduction factor 3, max 20 epochs), for {args.seeds} search seeds; the trainable itself is
seeded, so a configuration gives the same curve in every sweep. Figures are medians over the
seeds, each seed's in brackets; a gap is the full grid's best val_acc minus the search's, in
points (of 100). Best val_acc is the highest any trial reached at any epoch. Full grid
measured {grid_date}; checkpoints off in every run.

| run | trials | trial-epochs | epochs / grid | best val_acc | gap (points) | completed / pruned | wall |
|---|---:|---:|---:|---:|---:|---:|---:|
{table}

Targets (each searcher: best val_acc within {GAP_POINTS} points of the full grid's at <=
{EPOCH_SHARE} of its trial-epochs, median over the seeds):

{verdict}

{SEARCHERS[cheap]} spent {fewer:.1f}x fewer trial-epochs than {SEARCHERS[dear]} (medians). ASHA
stops a trial that is behind those that reached the same epoch before it: the better the
trials a searcher suggests, the more of them pass each rung and run longer, so a smarter
searcher need not be the cheaper one. On digits' validation split one example is
{one_example:.2f} points of val_acc, the resolution of every gap above. "distinct" counts the
different configurations a search tried: on a discrete space a searcher may suggest one twice
(TPE more than random, as it narrows on what worked). Wall times come from a shared machine
whose load varies during a run: trial-epochs are the fair measure of cost.

{stamp("python -m benchmarks.bench_search", ("ray", "torch", "optuna", "sqlalchemy"))}""",
    )


if __name__ == "__main__":
    main()
