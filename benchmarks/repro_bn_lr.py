"""Reproduction: batch normalisation permits higher learning rates (Ioffe & Szegedy, 2015).

    python -m benchmarks.repro_bn_lr [--keep DIR | --from-exports DIR]

Runs experiments/sweeps/repro_bn_lr.yaml (the Figure 1 network on digits at nine learning
rates over 1e-4..1, BN vs none, three seeds each), draws docs/plots/bn_lr.png and writes
benchmarks/results/repro_bn_lr.md: final accuracy against learning rate and the range of
learning rates within 1 point of each arm's best. Flags: see benchmarks/_repro.py.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from benchmarks._common import markdown_table
from benchmarks._repro import (
    ARMS,
    COLOR,
    LABEL,
    PLOTS,
    STYLE,
    Sweeps,
    final_values,
    fragment,
    main,
    pct,
    save_plot,
    trial_configs,
)

NAME = "bn_lr"
TOLERANCE = 0.01  # "within 1 point of the best"


def lr_figures(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """One row per (lr, arm): mean, std, size, unfinished and diverged counts of the final
    accuracy; and the configuration every trial shares."""
    trials = trial_configs(frame)
    steps = int(trials["max_steps"].iloc[0])
    trials = trials.assign(final=final_values(frame, "val_acc", steps).reindex(trials.index))
    grouped = trials.groupby(["lr", "batch_norm"])
    table = grouped["final"].agg(["mean", "std", "size"])
    table["not_finished"] = grouped["final"].apply(lambda s: int(s.isna().sum()))
    table["diverged"] = grouped["status"].apply(lambda s: int((s == "diverged").sum()))
    return table.reset_index(), trials.iloc[0]


def lr_range(table: pd.DataFrame, bn: bool) -> tuple[float, float, float, float]:
    """(best mean accuracy, lowest lr, highest lr, decades) of the widest run of adjacent grid
    learning rates whose mean final accuracy is within TOLERANCE of the arm's best (a
    learning rate with an unfinished seed does not count)."""
    arm = table[table["batch_norm"] == bn].sort_values("lr")
    ok = ((arm["mean"] >= arm["mean"].max() - TOLERANCE) & (arm["not_finished"] == 0)).tolist()
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


def _plot(table: pd.DataFrame, config: pd.Series, out: Path) -> None:
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
    save_plot(fig, out)


def _verdict(table: pd.DataFrame) -> str:
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


def build(sweeps: Sweeps) -> str:
    export = sweeps.export("repro_bn_lr")
    table, config = lr_figures(export.frame())
    plot = PLOTS / "bn_lr.png"
    _plot(table, config, plot)
    lrs = sorted(table["lr"].unique())
    rows = []
    for lr in lrs:
        row = [f"{lr:g}"]
        for bn in ARMS:
            cell = table[(table["lr"] == lr) & (table["batch_norm"] == bn)].iloc[0]
            text = pct(cell["mean"], cell["std"])
            if cell["diverged"]:
                text += f" ({cell['diverged']} of {cell['size']} diverged)"
            elif cell["not_finished"]:
                text += f" ({cell['not_finished']} of {cell['size']} unfinished)"
            row.append(text)
        rows.append(row)
    acc_table = markdown_table(["learning rate"] + [f"{LABEL[bn]}, %" for bn in ARMS], rows)
    range_rows = []
    for bn in ARMS:
        best, lo, hi, decades = lr_range(table, bn)
        range_rows.append([LABEL[bn], pct(best), f"{lo:g} .. {hi:g}", f"{decades:.1f}"])
    range_table = markdown_table(
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
        _verdict(table),
        f"![final accuracy against learning rate](../../docs/plots/{plot.name})",
    ]
    return fragment(NAME, "BN and the learning rate", intro, body, [export])


if __name__ == "__main__":
    sys.exit(main(NAME, build, __doc__ or ""))
