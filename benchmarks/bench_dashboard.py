"""Live-page refresh cost at scale: 1,000 trials x 1,000 steps (1M points) in SQLite.

Fills a temporary store through the store API as the runner would, then times the live
page's data path (dashboard.live: read trials, fetch points newer than those held,
rebuild the trial table, draw the downsampled WebGL curves, serialise the figure as
st.plotly_chart does):

- initial load: a page opening on the full sweep (a fresh point cache);
- incremental refresh: after the runner has written one more step for every trial.

Prints the medians and writes them to benchmarks/results/dashboard.md.

    .venv/bin/python -m benchmarks.bench_dashboard [--trials 1000] [--steps 1000]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import plotly.io

from benchmarks._common import stamp
from dashboard import live
from dashboard.data import SweepPoints
from runner.store import Store, open_store

RESULTS = Path(__file__).resolve().parent / "results" / "dashboard.md"
BUDGET_SECONDS = 0.5  # the ceiling for one refresh, server side


PACKAGES = ("streamlit", "plotly", "pandas", "numpy", "sqlalchemy", "tsdownsample")


def fill(store: Store, sweep_id: str, n_trials: int, n_steps: int) -> float:
    """A running sweep whose trials each reported n_steps training-loss points."""
    lrs = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3]
    seeds = max(1, n_trials // (len(lrs) * 2))
    grid = {"lr": lrs, "batch_norm": [True, False], "seed": list(range(seeds))}
    store.create_sweep(
        sweep_id, name="bench", spec={"grid": grid}, metric="val_acc", mode="max", n_trials=n_trials
    )
    rng = np.random.default_rng(0)
    steps = np.arange(1, n_steps + 1)
    started = time.perf_counter()
    for i in range(n_trials):
        config = {"lr": lrs[i % 5], "batch_norm": bool(i // 5 % 2), "seed": i // 10}
        trial = store.add_trial(sweep_id, f"t{i:05d}", config)
        store.set_trial_status(trial, "running", device="cpu", node="bench")
        loss = 2.3 * np.exp(-steps / (150 + 50 * (i % 7))) + 0.05 * rng.random(n_steps)
        wall = 1e6 + steps * 0.01
        points: list[tuple[str, int, float, float]] = list(
            zip(["train_loss"] * n_steps, steps.tolist(), loss.tolist(), wall.tolist(), strict=True)
        )
        points += [
            ("val_acc", int(s), float(1 - loss[s - 1] / 2.5), float(wall[s - 1]))
            for s in steps[99::100]
        ]
        store.add_points(trial, points)
    return time.perf_counter() - started


def refresh_once(store: Store, points: SweepPoints, sweep: dict[str, Any]) -> dict[str, float]:
    """One refresh of the live page's data path, timed by stage (seconds)."""
    t0 = time.perf_counter()
    frame = live.refresh(store, points, sweep)
    t1 = time.perf_counter()
    _, drawn = live.shown_trials(frame)
    fig = live.figure(points, drawn, live.LiveOptions(color_by="batch_norm"))
    t2 = time.perf_counter()
    spec = plotly.io.to_json(fig, validate=False)  # what st.plotly_chart sends
    t3 = time.perf_counter()
    return {
        "read + table": t1 - t0,
        "figure": t2 - t1,
        "serialise": t3 - t2,
        "total": t3 - t0,
        "new points": frame.new_points,
        "bytes": len(spec),
        "max points per curve": _max_points_per_curve(fig),
    }


def _max_points_per_curve(fig: Any) -> float:
    longest = 0
    for trace in fig.data:
        if trace.mode != "lines":
            continue
        x = np.asarray(trace.x, dtype=np.float64)
        gaps = np.flatnonzero(np.isnan(x))
        sizes = np.diff(np.concatenate([[-1], gaps])) - 1
        longest = max(longest, int(sizes.max()) if len(sizes) else len(x))
    return float(longest)


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="initial loads to time")
    parser.add_argument("--refreshes", type=int, default=10, help="incremental refreshes to time")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    for name in ("trials", "steps", "repeats", "refreshes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)} must be 1 or more")

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        sweep_id = "bench"
        with open_store(url, create=True) as writer:
            fill_s = fill(writer, sweep_id, args.trials, args.steps)
            with open_store(url) as reader:  # the dashboard's own, read-only connection
                sweep = reader.sweep(sweep_id)
                assert sweep is not None
                n_points = (
                    len(reader.points(sweep_id, metrics=["val_acc"])) + args.trials * args.steps
                )
                print(
                    f"filled {n_points:,} points of {args.trials} trials in {fill_s:.1f}s",
                    flush=True,
                )
                initial = median_of(
                    [
                        refresh_once(reader, SweepPoints(sweep_id), sweep)
                        for _ in range(args.repeats)
                    ]
                )
                print(f"initial load: {initial['total']:.3f}s", flush=True)
                points = SweepPoints(sweep_id)
                refresh_once(reader, points, sweep)
                trial_ids = [t["id"] for t in reader.trials(sweep_id)]
                runs = []
                for k in range(args.refreshes):
                    step = args.steps + 1 + k
                    for trial in trial_ids:  # the runner reports one more step everywhere
                        writer.add_points(trial, [("train_loss", step, 0.05, 2e6 + step)])
                    runs.append(refresh_once(reader, points, sweep))
                incremental = median_of(runs)
    print(f"incremental refresh: {incremental['total']:.3f}s", flush=True)

    command = " ".join(
        [
            "python -m benchmarks.bench_dashboard",
            *(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        ]
    )
    verdict = "within" if incremental["total"] <= BUDGET_SECONDS else "OVER"
    rows = [
        ("initial load (fresh cache, all points)", initial, args.repeats),
        (f"incremental refresh (+{args.trials:,} points)", incremental, args.refreshes),
    ]
    lines = [
        "## Dashboard: live page refresh",
        "",
        f"{n_points:,} points ({args.trials:,} trials x {args.steps:,} steps of train_loss, "
        f"plus val_acc every 100 steps) in a SQLite store filled through the store API "
        f"({fill_s:.1f}s). Times are medians, server side: read trials and new points, "
        "rebuild the trial table, draw MinMaxLTTB-downsampled Scattergl curves, serialise "
        "the figure.",
        "",
        "| refresh | repeats | read + table | figure | serialise | total | new points | "
        "figure size | max points per curve |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r, n in rows:
        lines.append(
            f"| {name} | {n} | {r['read + table']:.3f} s | {r['figure']:.3f} s | "
            f"{r['serialise']:.3f} s | **{r['total']:.3f} s** | {int(r['new points']):,} | "
            f"{r['bytes'] / 1e6:.1f} MB | {int(r['max points per curve'])} |"
        )
    lines += [
        "",
        f"Incremental refresh is {verdict} the {BUDGET_SECONDS} s budget.",
        "",
        stamp(command, PACKAGES),
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0 if incremental["total"] <= BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
