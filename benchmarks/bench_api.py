"""The Python API's read of a 1M-point sweep beside the dashboard's own read of it.

Fills a temporary SQLite store as bench_dashboard does (1,000 trials x 1,000 steps of
train_loss, plus val_acc every 100 steps), then times, in turns so a busy machine slows
all alike:

- store: `Store.point_columns`, the columnar read both sides are built on (the floor);
- dashboard: `SweepPoints.refresh` on a fresh cache, the live page's initial read;
- API: `sweepscope.open(url).sweep(id).curves()`, every point as a long DataFrame; and the
  same as a poll from the start (`since=Cursor()`, which also remembers what it handed
  out) and in wide form.

Prints the medians and the API's ratio to the dashboard's read, and writes them to
benchmarks/results/api.md.

    .venv/bin/python -m benchmarks.bench_api [--trials 1000] [--steps 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sweepscope
from benchmarks._common import markdown_table, stamp, write_fragment
from benchmarks.bench_dashboard import fill
from dashboard.data import SweepPoints
from runner.store import open_store

SWEEP = "bench"
# The API may take this much longer than the dashboard's read: it builds a DataFrame
# (trial numbers, a categorical metric, UTC timestamps) where the dashboard keeps arrays.
RATIO_CEILING = 1.5


def _timed(read: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    rows = read()
    return time.perf_counter() - start, rows


def measure(url: str, repeats: int) -> dict[str, tuple[float, int]]:
    """Median seconds and rows of each read, the reads taking turns `repeats` times."""
    with open_store(url) as store, sweepscope.open(url) as results:
        sweep = results.sweep(SWEEP)
        reads: dict[str, Callable[[], int]] = {
            "store.point_columns (the floor)": lambda: len(store.point_columns(SWEEP)),
            "dashboard: SweepPoints.refresh": lambda: SweepPoints(SWEEP).refresh(store),
            "API: sweep.curves()": lambda: len(sweep.curves()),
            "API: sweep.curves(since=Cursor())": lambda: len(
                sweep.curves(since=sweepscope.Cursor()).points
            ),
            "API: sweep.curves(wide=True)": lambda: len(sweep.curves(wide=True)),
        }
        took: dict[str, list[float]] = {name: [] for name in reads}
        rows: dict[str, int] = {}
        for _ in range(repeats):
            for name, read in reads.items():
                seconds, rows[name] = _timed(read)
                took[name].append(seconds)
    return {name: (statistics.median(took[name]), rows[name]) for name in reads}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    for name in ("trials", "steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)} must be 1 or more")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        with open_store(url, create=True) as writer:
            fill_s = fill(writer, SWEEP, args.trials, args.steps)
        print(f"filled {args.trials} trials x {args.steps} steps in {fill_s:.1f}s", flush=True)
        found = measure(url, args.repeats)
    dashboard, n_points = found["dashboard: SweepPoints.refresh"]
    api, api_rows = found["API: sweep.curves()"]
    ratio = api / dashboard
    verdict = "within" if ratio <= RATIO_CEILING else "OVER"
    figure = (
        f"API read of {api_rows:,} points into a DataFrame: {api:.3f} s, dashboard's own read "
        f"{dashboard:.3f} s: {ratio:.2f}x ({verdict} the {RATIO_CEILING}x ceiling; median of "
        f"{args.repeats})"
    )
    print(figure)
    rows = [
        [name, f"{seconds:.3f}", f"{seconds / dashboard:.2f}x", f"{n:,}"]
        for name, (seconds, n) in found.items()
    ]
    command = " ".join(
        [
            "python -m benchmarks.bench_api",
            *(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        ]
    )
    text = "\n".join(
        [
            "## Python API: reading a sweep into pandas",
            "",
            f"{n_points:,} points ({args.trials:,} trials x {args.steps:,} steps of train_loss, "
            "plus val_acc every 100 steps) in a SQLite store; each read from a cold start "
            f"(a fresh cache), the reads in turns, medians of {args.repeats}.",
            "",
            markdown_table(["read", "seconds", "vs dashboard", "rows"], rows),
            "",
            f"**{figure}.**",
            "",
            stamp(command, ("pandas", "numpy", "sqlalchemy")),
        ]
    )
    write_fragment("api", text)
    return 0 if ratio <= RATIO_CEILING else 1


if __name__ == "__main__":
    raise SystemExit(main())
