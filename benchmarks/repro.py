"""Reproductions of published results, made with the product's own commands only.

Each reproduction runs its spec(s) from experiments/sweeps/ with `sweepscope run` into a
SQLite store, exports the points with `sweepscope export`, computes every figure from the
exported file with pandas, draws its plots into docs/plots/ and writes a markdown fragment
to benchmarks/results/repro_<name>.md (benchmarks/run_all.py gathers the fragments).

    python -m benchmarks.repro all           # every reproduction (3 to 5 minutes on 2 cores)
    python -m benchmarks.repro fig1          # BN paper Figure 1, on digits and MNIST-1D
    python -m benchmarks.repro bn_lr         # final accuracy against learning rate
    python -m benchmarks.repro mnist1d_mlp   # the MNIST-1D paper's MLP
    python -m benchmarks.repro seed_grid     # the seed's alpha x beta1 x BN grid
    python -m benchmarks.repro all --keep DIR               # keep the store and exports
    python -m benchmarks.repro fig1 --from-exports DIR      # redraw from kept exports

Settings come from the papers and the package defaults and are fixed in the specs; nothing
here picks seeds or steps after seeing results.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # offline, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from benchmarks._common import stamp  # noqa: E402

__all__ = ["REPRODUCTIONS", "ReproError", "main"]

REPO = Path(__file__).resolve().parent.parent
SWEEPS = REPO / "experiments" / "sweeps"
RESULTS = REPO / "benchmarks" / "results"
PLOTS = REPO / "docs" / "plots"

ARMS = (False, True)  # batch_norm off, on
LABEL = {False: "no BN", True: "BN"}
COLOR = {False: "tab:blue", True: "tab:orange"}
STYLE = {False: "--", True: "-"}  # the paper draws the baseline dashed

FIG1_STEPS = (100, 300, 1_000, 3_000, 10_000)  # the checkpoints
REACH = 0.95  # "steps to reach 95 % of the best arm's final accuracy"
LR_TOLERANCE = 0.01  # "within 1 point of the best"
MNIST1D_PAPER_MLP = 0.68  # Greydanus & Kobak, benchmark table: MLP on MNIST-1D


class ReproError(Exception):
    """A reproduction could not run or its data is not what the spec promised."""


# -- running the product ------------------------------------------------------------------
def _sweepscope() -> list[str]:
    """The installed `sweepscope` command next to this Python, else its module."""
    exe = Path(sys.executable).with_name("sweepscope")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "runner.cli"]


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
        env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        started = time.perf_counter()
        run = [*_sweepscope(), "run", spec, "--store", self.store]
        print(f"$ sweepscope run {spec} --store {self.store}", flush=True)
        proc = subprocess.run(run, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            raise ReproError(f"`sweepscope run {spec}` exited with status {proc.returncode}.")
        found = re.search(r"^sweep (\S+): \d+ trials", proc.stdout, re.MULTILINE)
        if found is None:
            raise ReproError(f"`sweepscope run {spec}` did not print its sweep id.")
        sweep_id = found.group(1)
        export = [*_sweepscope(), "export", sweep_id, "-o", str(out), "--store", self.store]
        if subprocess.run(export, cwd=REPO, env=env).returncode != 0:
            raise ReproError(f"`sweepscope export {sweep_id}` failed (see its message above).")
        return Export(spec, sweep_id, out, time.perf_counter() - started)


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


# -- reading an export ----------------------------------------------------------------------
def _trials(frame: pd.DataFrame) -> pd.DataFrame:
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


def _series(frame: pd.DataFrame, metric: str, every: int | None = None) -> pd.DataFrame:
    """A metric as a table: one row per step, one column per trial id.

    With `every`, only the steps that are multiples of it (the regular evaluations, not the
    extra ones at epoch ends).
    """
    points = frame[frame["metric"] == metric]
    if every:
        points = points[points["step"] % every == 0]
    return points.pivot_table(index="step", columns="trial_id", values="value").sort_index()


def _final(frame: pd.DataFrame, metric: str, steps: int) -> pd.Series:
    """Each trial's value of `metric` at its last step; NaN for a trial that ended early."""
    points = frame[frame["metric"] == metric].sort_values("step")
    last = points.groupby("trial_id").tail(1).set_index("trial_id")
    return last["value"].where(last["step"] >= steps)


def _pct(mean: float, std: float | None = None) -> str:
    if mean is None or not math.isfinite(mean):
        return "-"
    if std is None or not math.isfinite(std):
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- 1. BN paper, Figure 1 --------------------------------------------------------------
@dataclass(frozen=True)
class Fig1:
    dataset: str
    steps: int
    accuracy: dict[bool, pd.DataFrame]  # arm -> steps x trials (regular evaluations)
    inputs: dict[bool, dict[int, pd.DataFrame]]  # arm -> seed -> steps x (p15, p50, p85)
    reach: dict[bool, float | None]  # first step the arm's mean curve reaches the threshold
    reach_seeds: dict[bool, list[float | None]]
    threshold: float
    config: pd.Series  # the first trial's configuration (all but seed and BN are shared)


def _first_reach(curve: pd.Series, threshold: float) -> float | None:
    hit = curve[curve >= threshold]
    return float(hit.index[0]) if len(hit) else None


def fig1_figures(frame: pd.DataFrame) -> Fig1:
    trials = _trials(frame)
    every = int(trials["eval_every"].iloc[0])
    steps = int(trials["max_steps"].iloc[0])
    acc = _series(frame, "val_acc", every)
    accuracy = {bn: acc[trials.index[trials["batch_norm"] == bn]] for bn in ARMS}
    finals = {bn: accuracy[bn].loc[steps].mean() for bn in ARMS}
    threshold = REACH * max(finals.values())
    reach = {bn: _first_reach(accuracy[bn].mean(axis=1), threshold) for bn in ARMS}
    reach_seeds = {
        bn: [_first_reach(accuracy[bn][t], threshold) for t in accuracy[bn]] for bn in ARMS
    }
    inputs: dict[bool, dict[int, pd.DataFrame]] = {}
    quantiles = {q: _series(frame, q, every) for q in ("input_p15", "input_p50", "input_p85")}
    for bn in ARMS:
        inputs[bn] = {}
        for trial_id, row in trials[trials["batch_norm"] == bn].iterrows():
            per = pd.DataFrame({q: s[trial_id] for q, s in quantiles.items()})
            inputs[bn][int(row["seed"])] = per
    return Fig1(
        str(trials["dataset"].iloc[0]),
        steps,
        accuracy,
        inputs,
        reach,
        reach_seeds,
        threshold,
        trials.iloc[0],
    )


def _fig1_plot(fig1: Fig1, out: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    axes[2].sharey(axes[1])  # one scale, so the two distributions compare by eye
    ax = axes[0]
    for bn in ARMS:
        curves = fig1.accuracy[bn]
        mean, std = curves.mean(axis=1), curves.std(axis=1)
        label = f"{LABEL[bn]} (mean ± std, {curves.shape[1]} seeds)"
        ax.plot(mean.index, mean, STYLE[bn], color=COLOR[bn], label=label)
        ax.fill_between(mean.index, mean - std, mean + std, color=COLOR[bn], alpha=0.25)
    ax.axhline(fig1.threshold, color="grey", lw=0.8, ls=":", label=f"{REACH:.0%} of best final")
    ax.set(xscale="log", xlabel="training step", ylabel="test accuracy")
    ax.set_title(f"(a) test accuracy, {fig1.dataset}")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    for ax, bn, letter in ((axes[1], False, "b"), (axes[2], True, "c")):
        seed = min(fig1.inputs[bn])
        per = fig1.inputs[bn][seed]
        ax.plot(per.index, per["input_p50"], color=COLOR[bn], label="50th percentile")
        for q in ("input_p15", "input_p85"):
            ax.plot(per.index, per[q], color=COLOR[bn], lw=0.9, ls="--")
        ax.fill_between(per.index, per["input_p15"], per["input_p85"], color=COLOR[bn], alpha=0.15)
        ax.set(xscale="log", xlabel="training step", ylabel="sigmoid input")
        ax.set_title(
            f"({letter}) {LABEL[bn]}: 15/50/85th pct of one last-layer input (seed {seed})"
        )
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _steps(value: float | None, limit: int) -> str:
    return f"{value:,.0f}" if value is not None else f"not reached in {limit:,}"


def _fig1_section(fig1: Fig1, export: Export, plot: Path) -> str:
    checkpoints = [s for s in FIG1_STEPS if s <= fig1.steps]
    seeds = {bn: fig1.accuracy[bn].shape[1] for bn in ARMS}
    rows = []
    for bn in ARMS:
        at = fig1.accuracy[bn].reindex(checkpoints)
        rows.append(
            [f"{LABEL[bn]} ({seeds[bn]} seeds)"]
            + [_pct(at.loc[s].mean(), at.loc[s].std()) for s in checkpoints]
        )
    acc_table = _table(["arm"] + [f"{s:,} steps" for s in checkpoints], rows)

    reach_rows = []
    for bn in ARMS:
        per_seed = ", ".join(_steps(v, fig1.steps) for v in fig1.reach_seeds[bn])
        reach_rows.append([LABEL[bn], _steps(fig1.reach[bn], fig1.steps), per_seed])
    reach_table = _table(["arm", "steps (mean curve)", "steps per seed"], reach_rows, "lrl")
    base, bn_steps = fig1.reach[False], fig1.reach[True]
    if base is not None and bn_steps is not None:
        ratio = base / bn_steps
        speed = f"BN speed-up (steps without BN / steps with BN): **{ratio:.2f}×**"
        first = float(fig1.accuracy[True].index[0])
        if bn_steps == first and base > first:
            speed += f" (a lower bound: BN was there at the first evaluation, step {first:,.0f})"
        if ratio > 1.05:
            verdict = "As in the paper, BN gets there faster."
        elif ratio < 0.95:
            verdict = (
                f"Unlike the paper, BN is slower here: it needs {1 / ratio:.1f}× the steps "
                "of the network without BN."
            )
        else:
            verdict = "Unlike the paper, BN is not faster here: both arms take about as long."
    elif bn_steps is not None:
        speed = f"BN speed-up: **> {fig1.steps / bn_steps:.1f}×** (no BN never reached it)"
        verdict = "As in the paper, BN reaches the threshold and the network without BN does not."
    elif base is not None:
        speed = "BN speed-up: **none** (BN never reached the threshold)"
        verdict = "Unlike the paper, only the network without BN reaches the threshold."
    else:
        speed = "BN speed-up: undefined (neither arm reached the threshold)"
        verdict = "Neither arm's mean curve reached the threshold."
    final = {bn: fig1.accuracy[bn].loc[fig1.steps] for bn in ARMS}
    gap = final[True].mean() - final[False].mean()
    final_line = (
        f"Final accuracy at {fig1.steps:,} steps: "
        f"BN {_pct(final[True].mean(), final[True].std())} %, "
        f"no BN {_pct(final[False].mean(), final[False].std())} % "
        f"({'+' if gap >= 0 else '-'}{abs(100 * gap):.1f} points with BN)."
    )

    pct_rows = []
    for bn in ARMS:
        seed = min(fig1.inputs[bn])
        per = fig1.inputs[bn][seed].reindex(checkpoints)
        cells = [
            f"{per.loc[s, 'input_p15']:+.2f} / {per.loc[s, 'input_p50']:+.2f} / "
            f"{per.loc[s, 'input_p85']:+.2f}"
            for s in checkpoints
        ]
        pct_rows.append([f"{LABEL[bn]} (seed {seed})"] + cells)
    pct_table = _table(["arm"] + [f"{s:,} steps" for s in checkpoints], pct_rows)

    drift_rows, shift = [], {}
    for bn in ARMS:
        shifts, spreads = [], []
        for per in fig1.inputs[bn].values():
            start, end = per.iloc[0], per.iloc[-1]
            median = per["input_p50"]
            shifts.append(float(median.max() - median.min()))
            spreads.append(
                float(
                    (end["input_p85"] - end["input_p15"])
                    / (start["input_p85"] - start["input_p15"])
                )
            )
        shift[bn] = float(np.mean(shifts))
        drift_rows.append(
            [
                LABEL[bn],
                f"{np.mean(shifts):.2f} ± {np.std(shifts, ddof=1):.2f}",
                f"{np.mean(spreads):.2f} ± {np.std(spreads, ddof=1):.2f}",
            ]
        )
    drift_table = _table(
        [
            "arm",
            "range of the median over training",
            "p85 - p15 at the end / at the first evaluation",
        ],
        drift_rows,
    )
    if shift[True] < shift[False]:
        stable = (
            "As in the paper's Figure 1 (b, c), the input distribution moves less with BN: "
            f"its median ranges over {shift[True]:.2f} against {shift[False]:.2f} without BN."
        )
    else:
        stable = (
            "Unlike the paper's Figure 1 (b, c), the input distribution does not move less "
            f"with BN here: its median ranges over {shift[True]:.2f} against "
            f"{shift[False]:.2f} without BN."
        )
    split = (
        "validation split (digits has no separate test set)"
        if fig1.dataset == "digits"
        else "test split"
    )
    return "\n\n".join(
        [
            f"### {fig1.dataset}",
            f"Spec `{export.spec}` (sweep `{export.sweep_id}`). Test accuracy is measured on "
            f"the {split} every 100 steps; mean ± std over seeds (std with ddof=1), in %.",
            acc_table,
            final_line,
            f"Steps to reach {REACH:.0%} of the best arm's final accuracy "
            f"({100 * fig1.threshold:.1f} %):",
            reach_table,
            f"{speed}. {verdict}",
            "Input to one last-hidden-layer sigmoid (unit 0) over the evaluation set: "
            "15th / 50th / 85th percentiles (Figure 1 b, c):",
            pct_table,
            "How much that distribution moves, mean ± std over seeds:",
            drift_table,
            stable,
            f"![Figure 1 analogue on {fig1.dataset}](../../docs/plots/{plot.name})",
        ]
    )


def repro_fig1(sweeps: Sweeps) -> str:
    sections, exports, figures = [], [], []
    for spec_name in ("repro_fig1_digits", "repro_fig1_mnist1d"):
        export = sweeps.export(spec_name)
        fig1 = fig1_figures(export.frame())
        plot = PLOTS / f"fig1_{fig1.dataset}.png"
        _fig1_plot(fig1, plot)
        sections.append(_fig1_section(fig1, export, plot))
        exports.append(export)
        figures.append(fig1)
    c = figures[0].config
    seeds = ", ".join(
        f"{f.dataset}: {f.accuracy[False].shape[1]} + {f.accuracy[True].shape[1]}" for f in figures
    )
    steps = ", ".join(f"{f.dataset}: {f.steps:,}" for f in figures)
    intro = (
        f"Ioffe & Szegedy (2015), section 4.1, Figure 1: {int(c['layers'])} fully connected "
        f"hidden layers of {int(c['hidden'])} {c['activation']} units, N(0, {c['init_std']:g}) "
        f"initial weights, mini-batches of {int(c['batch_size'])}, plain SGD at learning rate "
        f"{c['lr']:g}, batch normalisation before every {c['activation']} vs none. Seeds "
        f"(no BN + BN) {seeds}; steps {steps} (the paper trains MNIST for 50,000). Run on the "
        "offline `digits` data and on `mnist1d` instead of MNIST."
    )
    return _fragment("BN paper, Figure 1", "fig1", intro, sections, exports, sweeps)


# -- 2. BN and the learning rate ----------------------------------------------------------
def lr_figures(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """One row per (lr, arm): mean, std, size, unfinished and diverged counts of the final
    accuracy; and the configuration every trial shares."""
    trials = _trials(frame)
    steps = int(trials["max_steps"].iloc[0])
    trials = trials.assign(final=_final(frame, "val_acc", steps).reindex(trials.index))
    grouped = trials.groupby(["lr", "batch_norm"])
    table = grouped["final"].agg(["mean", "std", "size"])
    table["not_finished"] = grouped["final"].apply(lambda s: int(s.isna().sum()))
    table["diverged"] = grouped["status"].apply(lambda s: int((s == "diverged").sum()))
    return table.reset_index(), trials.iloc[0]


def lr_range(table: pd.DataFrame, bn: bool) -> tuple[float, float, float, float]:
    """(best mean accuracy, lowest lr, highest lr, decades) of the widest run of adjacent grid
    learning rates whose mean final accuracy is within LR_TOLERANCE of the arm's best (a
    learning rate with an unfinished seed does not count)."""
    arm = table[table["batch_norm"] == bn].sort_values("lr")
    ok = ((arm["mean"] >= arm["mean"].max() - LR_TOLERANCE) & (arm["not_finished"] == 0)).tolist()
    lrs = arm["lr"].tolist()
    best: tuple[int, int] = (0, -1)
    start = None
    for i, good in enumerate([*ok, False]):
        if good and start is None:
            start = i
        if not good and start is not None:
            if i - 1 - start > best[1] - best[0]:
                best = (start, i - 1)
            start = None
    lo, hi = lrs[best[0]], lrs[best[1]]
    return float(arm["mean"].max()), lo, hi, math.log10(hi / lo)


def _lr_plot(table: pd.DataFrame, config: pd.Series, out: Path) -> None:
    fig, (ax, bars) = plt.subplots(
        2, 1, figsize=(7, 5.2), sharex=True, gridspec_kw={"height_ratios": [5, 1]}
    )
    for i, bn in enumerate(ARMS):
        arm = table[table["batch_norm"] == bn].sort_values("lr")
        _, lo, hi, _ = lr_range(table, bn)
        label = f"{LABEL[bn]} (mean ± std over seeds)"
        ax.plot(arm["lr"], arm["mean"], STYLE[bn] + "o", color=COLOR[bn], label=label)
        ax.fill_between(
            arm["lr"],
            arm["mean"] - arm["std"],
            arm["mean"] + arm["std"],
            color=COLOR[bn],
            alpha=0.2,
        )
        bars.plot([lo, hi], [i, i], color=COLOR[bn], lw=6, marker="|", ms=14)
    ax.set(ylabel="final test accuracy", ylim=(0, 1.02))
    ax.set_title(
        f"Final accuracy against learning rate ({int(config['layers'])}x{int(config['hidden'])} "
        f"{config['activation']}, {config['dataset']}, {int(config['max_steps']):,} steps)"
    )
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left")
    bars.set(xscale="log", xlabel="SGD learning rate", ylim=(-0.7, 1.7))
    bars.set_yticks(list(range(len(ARMS))), [LABEL[bn] for bn in ARMS], fontsize=8)
    bars.set_title("learning rates within 1 point of the arm's best", fontsize=8)
    bars.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _lr_verdict(table: pd.DataFrame) -> str:
    ranges = {bn: lr_range(table, bn) for bn in ARMS}
    (_, lo_off, hi_off, wide_off), (_, lo_on, hi_on, wide_on) = ranges[False], ranges[True]
    grid_lo, grid_hi = table["lr"].min(), table["lr"].max()
    if wide_on > wide_off:
        text = f"BN widens the usable range: {wide_on:.1f} decades against {wide_off:.1f}"
    elif wide_on < wide_off:
        text = f"BN narrows the usable range: {wide_on:.1f} decades against {wide_off:.1f}"
    else:
        text = f"BN leaves the usable range as wide: {wide_on:.1f} decades in both arms"
    ends = []
    if lo_on < lo_off:
        ends.append(f"down to {lo_on:g} (without BN {lo_off:g})")
    if hi_on > hi_off:
        ends.append(f"up to {hi_on:g} (without BN {hi_off:g})")
    text += (", extending it " + " and ".join(ends) + ". ") if ends else ". "
    if hi_on > hi_off:
        text += "As the paper claims, BN keeps training well at higher learning rates."
    elif hi_off >= grid_hi:
        text += (
            "The paper's claim is about higher learning rates, and this grid does not reach "
            f"them: without BN the network is still at its best at {grid_hi:g}, the top of "
            "the range asked for (1e-4..1), so here BN's gain is at low learning rates, not "
            "high ones."
        )
    else:
        text += (
            "Unlike the paper's claim, BN does not keep training well at higher learning rates "
            f"here: its range ends at {hi_on:g}, without BN at {hi_off:g}."
        )
    means = table.pivot_table(index="lr", columns="batch_norm", values="mean")
    better = int((means[True] >= means[False]).sum())
    text += (
        f" BN's mean final accuracy is at least that without BN at {better} of "
        f"{len(means)} learning rates over {grid_lo:g}..{grid_hi:g}."
    )
    return text


def repro_bn_lr(sweeps: Sweeps) -> str:
    export = sweeps.export("repro_bn_lr")
    table, config = lr_figures(export.frame())
    plot = PLOTS / "bn_lr.png"
    _lr_plot(table, config, plot)
    lrs = sorted(table["lr"].unique())
    rows = []
    for lr in lrs:
        row = [f"{lr:g}"]
        for bn in ARMS:
            cell = table[(table["lr"] == lr) & (table["batch_norm"] == bn)].iloc[0]
            text = _pct(cell["mean"], cell["std"])
            if cell["diverged"]:
                text += f" ({cell['diverged']} of {cell['size']} diverged)"
            elif cell["not_finished"]:
                text += f" ({cell['not_finished']} of {cell['size']} unfinished)"
            row.append(text)
        rows.append(row)
    acc_table = _table(["learning rate"] + [f"{LABEL[bn]}, %" for bn in ARMS], rows)
    range_rows = []
    for bn in ARMS:
        best, lo, hi, decades = lr_range(table, bn)
        range_rows.append([LABEL[bn], _pct(best), f"{lo:g} .. {hi:g}", f"{decades:.1f}"])
    range_table = _table(
        ["arm", "best mean final accuracy, %", "learning rates within 1 point", "decades"],
        range_rows,
    )
    intro = (
        "Ioffe & Szegedy (2015) claim that batch normalisation permits much higher learning "
        f"rates. The Figure 1 network ({int(config['layers'])} x {int(config['hidden'])} "
        f"{config['activation']}, N(0, {config['init_std']:g}) init, batch "
        f"{int(config['batch_size'])}, plain SGD) on {config['dataset']} for "
        f"{int(config['max_steps']):,} steps at {len(lrs)} learning rates log-spaced over "
        f"{min(lrs):g}..{max(lrs):g}, with and without BN, {int(table['size'].max())} seeds "
        "each. Final validation accuracy, mean ± std over seeds, in %."
    )
    body = [
        f"Spec `{export.spec}` (sweep `{export.sweep_id}`).",
        acc_table,
        "The widest run of adjacent grid learning rates whose mean final accuracy is within "
        "1 point of the arm's own best:",
        range_table,
        _lr_verdict(table),
        f"![final accuracy against learning rate](../../docs/plots/{plot.name})",
    ]
    return _fragment("BN and the learning rate", "bn_lr", intro, body, [export], sweeps)


# -- 3. MNIST-1D, the paper's MLP -----------------------------------------------------------
def repro_mnist1d_mlp(sweeps: Sweeps) -> str:
    export = sweeps.export("repro_mnist1d_mlp")
    frame = export.frame()
    trials = _trials(frame)
    steps = int(trials["max_steps"].iloc[0])
    every = int(trials["eval_every"].iloc[0])
    acc = _series(frame, "val_acc", every)
    final = _final(frame, "val_acc", steps)
    rows, means = [], {}
    for bn in ARMS:
        ids = trials.index[trials["batch_norm"] == bn]
        f, best = final.reindex(ids), acc[ids].max()
        means[bn] = f.mean()
        rows.append(
            [
                f"{LABEL[bn]} ({len(ids)} seeds)",
                _pct(f.mean(), f.std()),
                _pct(best.mean(), best.std()),
                f"{100 * MNIST1D_PAPER_MLP:.0f}",
                f"{100 * (f.mean() - MNIST1D_PAPER_MLP):+.1f}",
            ]
        )
    table = _table(
        [
            "arm",
            f"test accuracy at {steps:,} steps, %",
            "best during training, %",
            "paper (MLP), %",
            "difference, points",
        ],
        rows,
    )
    plot = PLOTS / "mnist1d_mlp.png"
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for bn in ARMS:
        curves = acc[trials.index[trials["batch_norm"] == bn]]
        mean, std = curves.mean(axis=1), curves.std(axis=1)
        ax.plot(mean.index, mean, STYLE[bn], color=COLOR[bn], label=f"{LABEL[bn]} (mean ± std)")
        ax.fill_between(mean.index, mean - std, mean + std, color=COLOR[bn], alpha=0.25)
    ax.axhline(MNIST1D_PAPER_MLP, color="grey", ls=":", label="paper's MLP (68 %)")
    ax.set(xlabel="training step", ylabel="test accuracy", title="MNIST-1D, the paper's MLP")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(plot, dpi=110)
    plt.close(fig)
    near = abs(means[False] - MNIST1D_PAPER_MLP) <= 0.03
    verdict = (
        f"Without BN the MLP reaches {_pct(means[False])} % against the paper's 68 %: "
        + (
            "the table value is reproduced to within 3 points."
            if near
            else "more than 3 points from the table value."
        )
        + f" With BN it reaches {_pct(means[True])} % "
        f"({100 * (means[True] - means[False]):+.1f} points)."
    )
    intro = (
        "Greydanus & Kobak, *Scaling down deep learning with MNIST-1D*: the MLP of the "
        "benchmark table on the package's default dataset (4,000 train / 1,000 test, "
        "generated locally with `make_dataset`). Configuration from the package's "
        "notebooks (`MLPBase(40, 10)`, `get_model_args`): 2 hidden layers of 100 ReLU units, "
        "Adam at 0.01, no weight decay, batch 100, 6,000 steps; the paper's MLP also adds "
        "a residual connection around its second layer, which this MLP does not have. With "
        "and without BN (before each ReLU), 3 seeds each."
    )
    body = [
        f"Spec `{export.spec}` (sweep `{export.sweep_id}`).",
        table,
        verdict,
        f"![MNIST-1D MLP test accuracy](../../docs/plots/{plot.name})",
    ]
    return _fragment("MNIST-1D, the paper's MLP", "mnist1d_mlp", intro, body, [export], sweeps)


# -- 4. The seed grid -----------------------------------------------------------------------
def _check_same_as_seed_grid() -> None:
    """repro_seed_grid.yaml must be seed_grid.yaml with checkpoints off, nothing else."""
    ignore = {"name", "description", "checkpoint_every"}
    seed = yaml.safe_load((SWEEPS / "seed_grid.yaml").read_text())
    repro = yaml.safe_load((SWEEPS / "repro_seed_grid.yaml").read_text())
    a = {k: v for k, v in seed.items() if k not in ignore}
    b = {k: v for k, v in repro.items() if k not in ignore}
    if a != b:
        raise ReproError(
            "experiments/sweeps/repro_seed_grid.yaml differs from seed_grid.yaml in more than "
            "its name and checkpoints. Fix: copy seed_grid.yaml's settings into it."
        )


def repro_seed_grid(sweeps: Sweeps) -> str:
    _check_same_as_seed_grid()
    export = sweeps.export("repro_seed_grid")
    frame = export.frame()
    trials = _trials(frame)
    epochs = int(trials["epochs"].iloc[0])
    points = frame[frame["metric"] == "val_acc"]
    last_step = points.groupby("trial_id")["step"].transform("max")
    final = points[points["step"] == last_step].set_index("trial_id")["value"]
    best = points.groupby("trial_id")["value"].max()
    trials = trials.assign(final=final, best=best).sort_values(["final", "best"], ascending=False)
    rows = [
        [
            str(i + 1),
            f"{row['lr']:g}",
            f"{row['beta1']:g}",
            LABEL[bool(row["batch_norm"])],
            _pct(row["final"]),
            _pct(row["best"]),
            str(row["status"]),
        ]
        for i, (_, row) in enumerate(trials.iterrows())
    ]
    table = _table(
        [
            "rank",
            "α",
            "β1",
            "arm",
            f"final accuracy (epoch {epochs}), %",
            "best epoch, %",
            "status",
        ],
        rows,
        "rrrlrrl",
    )
    top = trials.iloc[0]
    by_best = trials.sort_values("best", ascending=False).iloc[0]
    pairs = trials.pivot_table(index=["lr", "beta1"], columns="batch_norm", values="final")
    wins = int((pairs[True] > pairs[False]).sum())
    ties = int((pairs[True] == pairs[False]).sum())
    diff = pairs[True] - pairs[False]
    lines = [
        f"Best configuration by final accuracy: **α = {top['lr']:g}, β1 = {top['beta1']:g}, "
        f"{LABEL[bool(top['batch_norm'])]}**, {_pct(top['final'])} % at epoch {epochs}.",
    ]
    if by_best.name != top.name:
        lines.append(
            f"Ranked by the best epoch instead (as `sweepscope run`'s summary ranks), "
            f"the best is α = {by_best['lr']:g}, β1 = {by_best['beta1']:g}, "
            f"{LABEL[bool(by_best['batch_norm'])]} ({_pct(by_best['best'])} %)."
        )
    lines.append(
        f"BN against none over the {len(pairs)} (α, β1) pairs: BN better in {wins}, "
        f"tied in {ties}, worse in {len(pairs) - wins - ties}; difference in final accuracy "
        f"{100 * diff.mean():+.1f} points on average (median {100 * diff.median():+.1f}); by α: "
        + ", ".join(f"{lr:g}: {100 * d:+.1f}" for lr, d in diff.groupby(level="lr").mean().items())
        + " (mean over β1). Each configuration ran with one seed, so differences of about a "
        "point or less are not resolved."
    )
    c = trials.iloc[0]
    grid = " × ".join(
        f"{sym} ∈ {{{', '.join(f'{v:g}' for v in sorted(trials[k].unique(), reverse=True))}}}"
        for sym, k in (("α", "lr"), ("β1", "beta1"))
    )
    intro = (
        f"The seed's own grid (`experiments/sweeps/seed_grid.yaml`): Adam with {grid}, with "
        f"and without BN: {len(trials)} trials of a {int(c['layers'])} x {int(c['hidden'])} "
        f"{c['activation']} MLP on {c['dataset']}, batch {int(c['batch_size'])}, {epochs} "
        f"epochs, seed {int(c['seed'])}. Validation accuracy, in %."
    )
    body = [
        f"Spec `{export.spec}` (sweep `{export.sweep_id}`): seed_grid.yaml with checkpoints "
        "off (the script checks that every other setting is the same).",
        " ".join(lines),
        table,
    ]
    return _fragment("The seed grid", "seed_grid", intro, body, [export], sweeps)


# -- the fragment ---------------------------------------------------------------------------
def _fragment(
    title: str,
    name: str,
    intro: str,
    body: Sequence[str],
    exports: Sequence[Export],
    sweeps: Sweeps,
) -> str:
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
        + stamp(f"python -m benchmarks.repro {name}", ("torch", "ray", "pandas"))
    )
    return "\n\n".join([f"## Reproduction: {title}", intro, *body, footer])


REPRODUCTIONS: dict[str, Callable[[Sweeps], str]] = {
    "fig1": repro_fig1,
    "bn_lr": repro_bn_lr,
    "mnist1d_mlp": repro_mnist1d_mlp,
    "seed_grid": repro_seed_grid,
}


def _run(names: Sequence[str], workdir: Path, reuse: bool) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    PLOTS.mkdir(parents=True, exist_ok=True)
    sweeps = Sweeps(workdir, reuse=reuse)
    for name in names:
        started = time.perf_counter()
        text = REPRODUCTIONS[name](sweeps)
        out = RESULTS / f"repro_{name}.md"
        out.write_text(text)
        print(f"{name}: wrote {out.relative_to(REPO)} in {time.perf_counter() - started:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.repro",
        description="Reproduce published results with sweepscope's own commands.",
    )
    parser.add_argument("which", choices=[*REPRODUCTIONS, "all"])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--keep", type=Path, help="keep the store and the exports in this folder")
    where.add_argument(
        "--from-exports",
        type=Path,
        metavar="DIR",
        help="run no sweep: redraw from the exports a --keep run left in DIR",
    )
    args = parser.parse_args(argv)
    names = list(REPRODUCTIONS) if args.which == "all" else [args.which]
    started = time.perf_counter()
    try:
        if args.from_exports is not None:
            _run(names, args.from_exports, reuse=True)
        elif args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            _run(names, args.keep.resolve(), reuse=False)
        else:
            with tempfile.TemporaryDirectory(prefix="sweepscope-repro-") as tmp:
                _run(names, Path(tmp), reuse=False)
    except ReproError as exc:
        print(f"benchmarks.repro: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.which}: done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
