"""Costs as sweeps grow: wall time against the number of trivial trials, `sweepscope run`
against plain Ray Tune with reuse_actors=True, and the driver's per-report and the store's
per-write cost against the points already stored.

    python -m benchmarks.bench_scale [--sizes 18 96 384 2000] [--timeout S] [--points N]

1. For each size, one pair of fresh processes (which runs first alternates by size): a
   sweep of N trials of benchmarks.trainables:trivial (ten epochs of 10 ms asleep, ten
   losses a step, every point stored; 2,000 trials need --allow-large) and plain Ray Tune
   running benchmarks.trainables:trivial_plain (one tune.report per epoch) on the same
   grid. A least-squares line through each system's walls gives its fixed cost and its cost
   per trial; the difference per trial is sweepscope's own.
2. In this process, without Ray: the driver's StoreCallback and StoreWriter fed results of
   100 points each (a trial's report) on a fresh SQLite store, in windows, until --points are
   stored. Per window: the callback's time per report (what the Tune loop waits for) and the
   writer's time per point written. Neither may grow with the points already stored.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from types import SimpleNamespace
from typing import Any

import yaml

from benchmarks._common import run_cli, run_python, stamp, write_fragment

SIZES = [18, 96, 384, 2000]
FLAT = 1.5  # last window / first beyond this counts as growing


def spec_text(n: int) -> str:
    return yaml.safe_dump(
        {
            "name": f"scale_{n}",
            "trainable": "benchmarks.trainables:trivial",
            "metric": "loss",
            "mode": "min",
            "stop": {"epochs": 10},
            "checkpoint_every": 0,
            "resources": {"cpu": 1},
            "fixed": {"epoch_seconds": 0.01},
            "grid": {"i": list(range(n))},
        },
        sort_keys=False,
    )


def sweepscope(n: int, timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/scale_{n}.yaml"
        with open(path, "w") as out:
            out.write(spec_text(n))
        url = f"sqlite:///{tmp}/scale.db"
        args = ["run", path, "--store", url, "--storage-path", f"{tmp}/ray"]
        wall, done = run_cli(*args, *(["--allow-large"] if n > 1000 else []), timeout=timeout)
    if f": {n} completed" not in done.stdout:
        raise RuntimeError(f"the {n}-trial sweep did not complete:\n{done.stdout}")
    return {"wall": wall}


def plain(n: int, timeout: float) -> dict[str, Any]:
    wall, done = run_python(
        "-m", "benchmarks.baselines", "trivial", str(n), "--reuse-actors", timeout=timeout
    )
    json.loads(done.stdout.strip().splitlines()[-1])  # it ran to its end
    return {"wall": wall}


def fit(sizes: list[int], walls: list[float]) -> tuple[float, float]:
    """Least-squares wall = fixed + per_trial * n."""
    slope, intercept = statistics.linear_regression(sizes, walls)
    return intercept, slope


# -- the driver's and the store's costs against the points stored ---------------------------
def driver_costs(total_points: int, per_report: int = 100, windows: int = 10) -> list[dict]:
    """Feed StoreCallback results of `per_report` points until `total_points` are stored;
    per window, the callback's seconds per report and the writer's seconds per point."""
    from runner.driver.callback import StoreCallback
    from runner.driver.stopper import StoreStopper
    from runner.driver.writer import StoreWriter
    from runner.spec import parse_spec
    from runner.store import open_store

    spec = parse_spec(
        {
            "name": "costs",
            "trainable": "benchmarks.trainables:trivial",
            "metric": "loss",
            "mode": "min",
            "stop": {"epochs": 10},
            "grid": {"i": list(range(10))},
        }
    )
    reports_per_window = max(1, total_points // per_report // windows)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/costs.db", create=True)
        store.create_sweep("costs", name="costs", spec={}, metric="loss", mode="min", n_trials=0)
        writer = StoreWriter(store, "costs")
        stopper = StoreStopper(writer=writer, stop=spec.stop)
        callback = StoreCallback(writer=writer, spec=spec, stopper=stopper)
        stored, step = 0, 0
        trial: Any = None  # a stand-in for Tune's Trial: the callback reads its id and config
        for _ in range(windows):
            reported = 0.0
            started = time.perf_counter()
            for r in range(reports_per_window):
                if r % 10 == 0:  # ten reports a trial, as the trivial trials make
                    trial = SimpleNamespace(
                        trial_id=f"t{stored + r}", config={"i": r}, temporary_state=None
                    )
                    callback.on_trial_start(0, [], trial)
                    step = 0
                now = time.time()
                points = [("train_loss", step + k, 1.0 / (k + 1), now) for k in range(per_report)]
                step += per_report
                result = {"_points": points, "epoch": r % 10 + 1, "step": step, "loss": 0.5}
                t0 = time.perf_counter()
                callback.on_trial_result(0, [], trial, result)
                reported += time.perf_counter() - t0
            queued = time.perf_counter()
            assert writer.flush(timeout=600), "the writer did not drain"
            written = time.perf_counter() - started
            n_points = reports_per_window * per_report
            rows.append(
                {
                    "stored_before": stored,
                    "report_us": reported / reports_per_window * 1e6,
                    "point_us": written / n_points * 1e6,
                    "drain_s": time.perf_counter() - queued,
                }
            )
            stored += n_points
        assert writer.close()
        store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run at most")
    parser.add_argument("--points", type=int, default=1_000_000, help="for the driver's costs")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    command = (
        f"python -m benchmarks.bench_scale --sizes {' '.join(map(str, args.sizes))} "
        f"--timeout {args.timeout:g} --points {args.points}"
    )

    loads = [os.getloadavg()[0]]
    costs = driver_costs(args.points)
    sizes: list[int] = []
    ours: list[float] = []
    tune: list[float] = []
    for k, n in enumerate(args.sizes):
        loads.append(os.getloadavg()[0])
        runs = {
            "ours": lambda n=n: sweepscope(n, args.timeout),
            "tune": lambda n=n: plain(n, args.timeout),
        }
        order = ["ours", "tune"] if k % 2 == 0 else ["tune", "ours"]
        try:
            got = {name: runs[name]()["wall"] for name in order}
        except subprocess.TimeoutExpired:
            print(f"{n} trials: a run took over {args.timeout:g} s; larger sizes left out")
            write_scale(
                cores,
                sizes,
                ours,
                tune,
                loads,
                costs,
                command,
                f"{n:,} trials: not measured, a run took over {args.timeout:g} s.",
            )
            return
        sizes.append(n)
        ours.append(got["ours"])
        tune.append(got["tune"])
        print(
            f"{n} trials: sweepscope {got['ours']:.1f} s, plain Ray Tune {got['tune']:.1f} s, "
            f"load {loads[-1]:.1f}",
            flush=True,
        )
        rest = args.sizes[k + 1 :]
        note = (
            f"{', '.join(map(str, rest))} trials: still running when this was written."
            if rest
            else ""
        )
        write_scale(cores, sizes, ours, tune, loads, costs, command, note)


def write_scale(
    cores: int,
    sizes: list[int],
    ours: list[float],
    tune: list[float],
    loads: list[float],
    costs: list[dict],
    command: str,
    note: str,
) -> None:
    """The fragment, from the sizes measured so far (rewritten after each size)."""
    rows = "\n".join(
        f"| {n:,} | {o:.1f} s | {t:.1f} s | **{o / t:.2f}** | {(o - t) / n * 1e3:+.0f} ms |"
        for n, o, t in zip(sizes, ours, tune, strict=True)
    )
    worst = max(o / t for o, t in zip(ours, tune, strict=True))
    verdict = (
        "met at every size measured"
        if worst <= 1.0
        else f"**missed**: at worst {worst:.2f}, {worst - 1:.2f} over"
    )
    if len(sizes) >= 2:
        fixed_o, per_o = fit(sizes, ours)
        fixed_t, per_t = fit(sizes, tune)
        fitted = f"""Fitted wall = fixed + per trial x N: sweepscope {fixed_o:.1f} s + {per_o * 1e3:.0f} ms x N,
plain Ray Tune {fixed_t:.1f} s + {per_t * 1e3:.0f} ms x N: per trial sweepscope costs
{(per_o - per_t) * 1e3:+.0f} ms against plain Ray Tune ({per_o / per_t:.2f}x). Plain Ray Tune
makes ten reports a trial (one an epoch), sweepscope about one (its points travel in one report
per half second or at the trial's end): per report, plain Ray Tune's cost is
{per_t / 10 * 1e3:.1f} ms of its {per_t * 1e3:.0f} ms a trial."""
    else:
        fitted = "(one size measured: no line fitted yet)"
    cost_rows = "\n".join(
        f"| {c['stored_before']:,} | {c['report_us']:.0f} µs | {c['point_us']:.2f} µs |"
        for c in costs
    )
    # The first window pays the store's warm-up (its first transactions, the file's growth):
    # compare the next three windows' median with the last three's.
    early, late = costs[1:4], costs[-3:]

    def growth(key: str) -> float:
        return statistics.median(c[key] for c in late) / statistics.median(c[key] for c in early)

    growth_report, growth_point = growth("report_us"), growth("point_us")
    grows = [
        name
        for name, g in (("the callback", growth_report), ("the writer", growth_point))
        if g > FLAT
    ]
    flat = (
        f"**{' and '.join(grows)} grow** with the points stored (more than {FLAT:.1f}x)."
        if grows
        else f"neither grows with the points stored (within {FLAT:.1f}x, the noise of a shared "
        "machine): no term grows faster than the number of trials."
    )
    total = costs[-1]["stored_before"] + (costs[-1]["stored_before"] - costs[-2]["stored_before"])
    write_fragment(
        "scale",
        f"""## Costs as sweeps grow: trivial trials, {cores} cores

Wall time of the whole command (a fresh process each, timed from outside) for N trials of a
trivial trainable (ten epochs of 10 ms asleep; sweepscope stores ten losses a step and one an
epoch, 110 points a trial; plain Ray Tune reports once per epoch), sweepscope against plain
Ray Tune with `reuse_actors=True`, one pair per size, the order alternating. Load average
(1 min) at the start, before each size: {", ".join(f"{x:.1f}" for x in loads)}.

| trials | sweepscope run | plain Ray Tune, reuse_actors | sweepscope / Tune | difference per trial |
|---:|---:|---:|---:|---:|
{rows}

{note}

Target sweepscope / plain Ray Tune <= 1.00 at every size: {verdict}.

{fitted}

The driver's cost per report and the store's per point, against the points already stored
(StoreCallback and StoreWriter in one process on a fresh SQLite store, no Ray; reports of
100 points, ten per trial; {total:,} points in all):

| points stored before | callback per report | writer per point |
|---:|---:|---:|
{cost_rows}

Median of the last three windows / of the second to fourth: {growth_report:.2f}x per
report, {growth_point:.2f}x per point: {flat}

{stamp(command)}""",
    )


if __name__ == "__main__":
    main()
