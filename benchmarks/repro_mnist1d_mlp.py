"""Reproduction: the MLP of the MNIST-1D paper's benchmark table (Greydanus & Kobak).

    python -m benchmarks.repro_mnist1d_mlp [--keep DIR | --from-exports DIR]

Runs experiments/sweeps/repro_mnist1d_mlp.yaml (the paper's MLP with and without BN, three
seeds each), draws docs/plots/mnist1d_mlp.png and writes
benchmarks/results/repro_mnist1d_mlp.md: final and best test accuracy against the paper's
68 %. Flags: see benchmarks/_repro.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from benchmarks._common import markdown_table
from benchmarks._repro import (
    ARMS,
    LABEL,
    PLOTS,
    Sweeps,
    by_step,
    final_values,
    fragment,
    main,
    pct,
    plot_mean_std,
    save_plot,
    trial_configs,
)

NAME = "mnist1d_mlp"
PAPER_MLP = 0.68  # Greydanus & Kobak, benchmark table: MLP on MNIST-1D


def _plot(acc: pd.DataFrame, trials: pd.DataFrame, out: Path) -> None:
    """Each arm's test accuracy (steps x trials) against steps, beside the paper's figure."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for bn in ARMS:
        curves = acc[trials.index[trials["batch_norm"] == bn]]
        plot_mean_std(ax, curves, bn, f"{LABEL[bn]} (mean ± std)")
    ax.axhline(PAPER_MLP, color="grey", ls=":", label="paper's MLP (68 %)")
    ax.set(xlabel="training step", ylabel="test accuracy", title="MNIST-1D, the paper's MLP")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    save_plot(fig, out)


def build(sweeps: Sweeps) -> str:
    export = sweeps.export("repro_mnist1d_mlp")
    frame = export.frame()
    trials = trial_configs(frame)
    steps = int(trials["max_steps"].iloc[0])
    every = int(trials["eval_every"].iloc[0])
    acc = by_step(frame, "val_acc", every)
    final = final_values(frame, "val_acc", steps)
    rows, means = [], {}
    for bn in ARMS:
        ids = trials.index[trials["batch_norm"] == bn]
        f, best = final.reindex(ids), acc[ids].max()
        means[bn] = f.mean()
        rows.append(
            [
                f"{LABEL[bn]} ({len(ids)} seeds)",
                pct(f.mean(), f.std()),
                pct(best.mean(), best.std()),
                f"{100 * PAPER_MLP:.0f}",
                f"{100 * (f.mean() - PAPER_MLP):+.1f}",
            ]
        )
    table = markdown_table(
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
    _plot(acc, trials, plot)
    near = abs(means[False] - PAPER_MLP) <= 0.03
    verdict = (
        f"Without BN the MLP reaches {pct(means[False])} % against the paper's 68 %: "
        + (
            "the table value is reproduced to within 3 points."
            if near
            else "more than 3 points from the table value."
        )
        + f" With BN it reaches {pct(means[True])} % "
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
    return fragment(NAME, "MNIST-1D, the paper's MLP", intro, body, [export])


if __name__ == "__main__":
    sys.exit(main(NAME, build, __doc__ or ""))
