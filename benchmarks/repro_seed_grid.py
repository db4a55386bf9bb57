"""Reproduction: the seed's own grid, Adam's alpha x beta1 with and without BN on digits.

    python -m benchmarks.repro_seed_grid [--keep DIR | --from-exports DIR]

Checks that experiments/sweeps/repro_seed_grid.yaml is seed_grid.yaml with checkpoints off,
runs it (18 trials) and writes benchmarks/results/repro_seed_grid.md: every configuration
ranked by final accuracy, and BN against none over the (alpha, beta1) pairs. Flags: see
benchmarks/_repro.py.
"""

from __future__ import annotations

import sys

import yaml

from benchmarks._common import REPO, markdown_table
from benchmarks._repro import LABEL, ReproError, Sweeps, fragment, main, pct, trial_configs

NAME = "seed_grid"
SWEEPS = REPO / "experiments" / "sweeps"


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


def build(sweeps: Sweeps) -> str:
    _check_same_as_seed_grid()
    export = sweeps.export("repro_seed_grid")
    frame = export.frame()
    trials = trial_configs(frame)
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
            pct(row["final"]),
            pct(row["best"]),
            str(row["status"]),
        ]
        for i, (_, row) in enumerate(trials.iterrows())
    ]
    table = markdown_table(
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
        f"{LABEL[bool(top['batch_norm'])]}**, {pct(top['final'])} % at epoch {epochs}.",
    ]
    if by_best.name != top.name:
        lines.append(
            f"Ranked by the best epoch instead (as `sweepscope run`'s summary ranks), "
            f"the best is α = {by_best['lr']:g}, β1 = {by_best['beta1']:g}, "
            f"{LABEL[bool(by_best['batch_norm'])]} ({pct(by_best['best'])} %)."
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
    return fragment(NAME, "The seed grid", intro, body, [export])


if __name__ == "__main__":
    sys.exit(main(NAME, build, __doc__ or ""))
