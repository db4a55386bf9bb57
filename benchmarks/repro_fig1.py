"""Reproduction: Ioffe & Szegedy (2015), Figure 1, on digits and on MNIST-1D.

    python -m benchmarks.repro_fig1 [--keep DIR | --from-exports DIR]

Runs experiments/sweeps/repro_fig1_digits.yaml and repro_fig1_mnist1d.yaml (BN vs none, three
seeds each, 10,000 SGD steps), draws docs/plots/fig1_<dataset>.png and writes
benchmarks/results/repro_fig1.md: test accuracy at the issue's checkpoints, the steps each arm
needs to reach 95 % of the best arm's final accuracy, and how much one last-layer sigmoid
input's distribution moves (Figure 1 b, c). Flags: see benchmarks/_repro.py.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from benchmarks._common import markdown_table
from benchmarks._repro import (
    ARMS,
    COLOR,
    LABEL,
    PLOTS,
    Export,
    Sweeps,
    by_step,
    fragment,
    main,
    pct,
    plot_mean_std,
    save_plot,
    trial_configs,
)

NAME = "fig1"
STEPS = (100, 300, 1_000, 3_000, 10_000)  # the checkpoints
REACH = 0.95  # "steps to reach 95 % of the best arm's final accuracy"


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
    trials = trial_configs(frame)
    every = int(trials["eval_every"].iloc[0])
    steps = int(trials["max_steps"].iloc[0])
    acc = by_step(frame, "val_acc", every)
    accuracy = {bn: acc[trials.index[trials["batch_norm"] == bn]] for bn in ARMS}
    finals = {bn: accuracy[bn].loc[steps].mean() for bn in ARMS}
    threshold = REACH * max(finals.values())
    reach = {bn: _first_reach(accuracy[bn].mean(axis=1), threshold) for bn in ARMS}
    reach_seeds = {
        bn: [_first_reach(accuracy[bn][t], threshold) for t in accuracy[bn]] for bn in ARMS
    }
    inputs: dict[bool, dict[int, pd.DataFrame]] = {}
    quantiles = {q: by_step(frame, q, every) for q in ("input_p15", "input_p50", "input_p85")}
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


def _plot(fig1: Fig1, out: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    axes[2].sharey(axes[1])  # one scale, so the two distributions compare by eye
    ax = axes[0]
    for bn in ARMS:
        curves = fig1.accuracy[bn]
        plot_mean_std(ax, curves, bn, f"{LABEL[bn]} (mean ± std, {curves.shape[1]} seeds)")
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
    save_plot(fig, out)


def _steps(value: float | None, limit: int) -> str:
    return f"{value:,.0f}" if value is not None else f"not reached in {limit:,}"


def _section(fig1: Fig1, export: Export, plot: Path) -> str:
    checkpoints = [s for s in STEPS if s <= fig1.steps]
    seeds = {bn: fig1.accuracy[bn].shape[1] for bn in ARMS}
    rows = []
    for bn in ARMS:
        at = fig1.accuracy[bn].reindex(checkpoints)
        rows.append(
            [f"{LABEL[bn]} ({seeds[bn]} seeds)"]
            + [pct(at.loc[s].mean(), at.loc[s].std()) for s in checkpoints]
        )
    acc_table = markdown_table(["arm"] + [f"{s:,} steps" for s in checkpoints], rows)

    reach_rows = []
    for bn in ARMS:
        per_seed = ", ".join(_steps(v, fig1.steps) for v in fig1.reach_seeds[bn])
        reach_rows.append([LABEL[bn], _steps(fig1.reach[bn], fig1.steps), per_seed])
    reach_table = markdown_table(["arm", "steps (mean curve)", "steps per seed"], reach_rows, "lrl")
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
        f"BN {pct(final[True].mean(), final[True].std())} %, "
        f"no BN {pct(final[False].mean(), final[False].std())} % "
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
    pct_table = markdown_table(["arm"] + [f"{s:,} steps" for s in checkpoints], pct_rows)

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
    drift_table = markdown_table(
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


def build(sweeps: Sweeps) -> str:
    sections, exports, figures = [], [], []
    for spec_name in ("repro_fig1_digits", "repro_fig1_mnist1d"):
        export = sweeps.export(spec_name)
        fig1 = fig1_figures(export.frame())
        plot = PLOTS / f"fig1_{fig1.dataset}.png"
        _plot(fig1, plot)
        sections.append(_section(fig1, export, plot))
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
    return fragment(NAME, "BN paper, Figure 1", intro, sections, exports)


if __name__ == "__main__":
    sys.exit(main(NAME, build, __doc__ or ""))
