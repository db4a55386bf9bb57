"""What the reproductions share: running a spec and exporting it, reading the export, the two
BN arms, the fragment and the command line.

Each reproduction (benchmarks/repro_*.py) runs its spec(s) from experiments/sweeps/ with
`sweepscope run` into a SQLite store, exports the points with `sweepscope export`, computes
every figure from the exported file with pandas, draws its plots into docs/plots/ and writes
benchmarks/results/repro_<name>.md. Every one takes the same flags:

    python -m benchmarks.repro_NAME                      # run the sweeps, write the fragment
    python -m benchmarks.repro_NAME --keep DIR           # keep the store and the exports
    python -m benchmarks.repro_NAME --from-exports DIR   # run nothing: redraw from kept exports

NAME is fig1, bn_lr, mnist1d_mlp or seed_grid; `make bench` runs all four after the
measurements (about 5 minutes together on 2 cores).

Settings come from the papers and the package defaults and are fixed in the specs; nothing
here picks seeds or steps after seeing results.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from benchmarks._common import REPO, run_cli, stamp, write_fragment

__all__ = [
    "ARMS",
    "COLOR",
    "LABEL",
    "PLOTS",
    "STYLE",
    "Export",
    "ReproError",
    "Sweeps",
    "by_step",
    "final_values",
    "fragment",
    "main",
    "pct",
    "plot_mean_std",
    "save_plot",
    "trial_configs",
]

matplotlib.use("Agg")  # offline, no display; before any reproduction draws a figure

PLOTS = REPO / "docs" / "plots"

ARMS = (False, True)  # batch_norm off, on
LABEL = {False: "no BN", True: "BN"}
COLOR = {False: "tab:blue", True: "tab:orange"}
STYLE = {False: "--", True: "-"}  # the paper draws the baseline dashed


class ReproError(Exception):
    """A reproduction could not run or its data is not what the spec promised."""


# -- running the product ------------------------------------------------------------------
@dataclass(frozen=True)
class Export:
    spec: str  # path relative to the repository root
    sweep_id: str
    path: Path
    seconds: float | None  # `run` + `export` wall time; None when read from kept exports

    def frame(self) -> pd.DataFrame:
        if self.path.suffix == ".parquet":
            return pd.read_parquet(self.path)
        return pd.read_csv(self.path)


class Sweeps:
    """Runs specs with the CLI into one store in `workdir`, or reads exports kept there."""

    def __init__(self, workdir: Path, *, reuse: bool) -> None:
        self.workdir = workdir
        self.reuse = reuse
        self.store = f"sqlite:///{workdir / 'repro.db'}"
        self.suffix = ".parquet" if _has_pyarrow() else ".csv"

    def export(self, spec_name: str) -> Export:
        spec = f"experiments/sweeps/{spec_name}.yaml"
        out = self.workdir / f"{spec_name}{self.suffix}"
        if self.reuse:
            if not out.exists():
                raise ReproError(f"no export {out}. Fix: run without --from-exports first.")
            kept = Export(spec, "", out, None)
            return Export(spec, str(kept.frame()["sweep_id"].iloc[0]), out, None)
        print(f"$ sweepscope run {spec} --store {self.store}", flush=True)
        try:
            ran, run = run_cli("run", spec, "--store", self.store)
            print(run.stdout, end="", flush=True)
            found = re.search(r"^sweep (\S+): \d+ trials", run.stdout, re.MULTILINE)
            if found is None:
                raise ReproError(f"`sweepscope run {spec}` did not print its sweep id.")
            sweep_id = found.group(1)
            exported, export = run_cli("export", sweep_id, "-o", str(out), "--store", self.store)
            print(export.stdout, end="", flush=True)
        except RuntimeError as exc:  # run_cli's word for a failed command, with its stderr
            raise ReproError(str(exc)) from exc
        return Export(spec, sweep_id, out, ran + exported)


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


# -- reading an export ----------------------------------------------------------------------
def trial_configs(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: its id, status and configuration; refuses errored trials."""
    config = frame.drop(columns=["metric", "step", "value", "wall_time"]).drop_duplicates(
        "trial_id"
    )
    errored = config[config["status"] == "error"]
    if len(errored):
        raise ReproError(
            f"trials {sorted(errored['trial_id'])} of {frame['sweep_id'].iloc[0]} ended in an "
            "error. Fix: see `sweepscope status` for their error text."
        )
    return config.set_index("trial_id")


def by_step(frame: pd.DataFrame, metric: str, every: int | None = None) -> pd.DataFrame:
    """A metric as a table: one row per step, one column per trial id.

    With `every`, only the steps that are multiples of it (the regular evaluations, not the
    extra ones at epoch ends).
    """
    points = frame[frame["metric"] == metric]
    if every:
        points = points[points["step"] % every == 0]
    return points.pivot_table(index="step", columns="trial_id", values="value").sort_index()


def final_values(frame: pd.DataFrame, metric: str, steps: int) -> pd.Series:
    """Each trial's value of `metric` at its last step; NaN for a trial that ended early."""
    points = frame[frame["metric"] == metric].sort_values("step")
    last = points.groupby("trial_id").tail(1).set_index("trial_id")
    return last["value"].where(last["step"] >= steps)


def pct(mean: float, std: float | None = None) -> str:
    """A fraction as a percentage with one decimal, `± std` when given; `-` when undefined."""
    if mean is None or not math.isfinite(mean):
        return "-"
    if std is None or not math.isfinite(std):
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


# -- drawing ----------------------------------------------------------------------------------
def plot_mean_std(ax: Axes, curves: pd.DataFrame, bn: bool, label: str) -> None:
    """One arm's curves (steps x trials) as their mean line in a band of one std."""
    mean, std = curves.mean(axis=1), curves.std(axis=1)
    ax.plot(mean.index, mean, STYLE[bn], color=COLOR[bn], label=label)
    ax.fill_between(mean.index, mean - std, mean + std, color=COLOR[bn], alpha=0.25)


def save_plot(fig: Figure, out: Path) -> None:
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


# -- the fragment and the command line --------------------------------------------------------
def fragment(
    name: str, title: str, intro: str, body: Sequence[str], exports: Sequence[Export]
) -> str:
    """The markdown section of reproduction `name`, ending with what it ran and how long."""
    timed = [e.seconds for e in exports if e.seconds is not None]
    if len(timed) == len(exports):
        took = (
            f"{sum(timed):.0f} s (`sweepscope run` + `export`, "
            + ", ".join(f"{Path(e.spec).stem}: {e.seconds:.0f} s" for e in exports)
            + ")"
        )
    else:
        took = "not measured (redrawn from kept exports with --from-exports)"
    specs = ", ".join(f"`sweepscope run {e.spec}`" for e in exports)
    footer = (
        f"- what it runs: {specs}, then `sweepscope export SWEEP -o FILE` for each; "
        "every figure above is computed from the exported file\n"
        f"- run time: {took}\n"
        + stamp(f"python -m benchmarks.repro_{name}", ("torch", "ray", "pandas"))
    )
    return "\n\n".join([f"## Reproduction: {title}", intro, *body, footer])


def main(name: str, build: Callable[[Sweeps], str], doc: str) -> int:
    """The command line of reproduction `name`: `build` turns the sweeps into its fragment,
    written to benchmarks/results/repro_<name>.md."""
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks.repro_{name}", description=doc.split("\n")[0]
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep the store and the exports in this folder"
    )
    where.add_argument(
        "--from-exports",
        type=Path,
        metavar="DIR",
        help="run no sweep: redraw from the exports a --keep run left in DIR",
    )
    args = parser.parse_args()
    PLOTS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        if args.from_exports is not None:
            text = build(Sweeps(args.from_exports, reuse=True))
        elif args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            text = build(Sweeps(args.keep.resolve(), reuse=False))
        else:
            with tempfile.TemporaryDirectory(prefix="sweepscope-repro-") as tmp:
                text = build(Sweeps(Path(tmp), reuse=False))
    except ReproError as exc:
        print(f"benchmarks.repro_{name}: error: {exc}", file=sys.stderr)
        return 2
    write_fragment(f"repro_{name}", text)
    print(f"repro_{name}: done in {time.perf_counter() - started:.0f} s")
    return 0
