"""The paired analysis the BN page and the sweep-against-sweep page both draw: the final
metric per pair with a bootstrap interval of the mean difference, and the steps each side
needs to reach a target with the speed-up per pair. The figures are dashboard.charts',
the statistics dashboard.compare's; this module only lays them out."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pandas as pd
import streamlit as st

from dashboard import charts, compare

__all__ = ["finals_section", "target_section"]


def _renamed(frame: pd.DataFrame, names: tuple[str, str]) -> pd.DataFrame:
    return frame.rename(columns={"a": f"trial A ({names[0]})", "b": f"trial B ({names[1]})"})


def finals_section(
    pairing: compare.Pairing, finals: pd.Series, *, metric: str, names: tuple[str, str], key: str
) -> None:
    """The mean of B − A over pairs with its 95 % BCa interval, each pair's difference, and
    the table of final values."""
    diffs = compare.paired_differences(pairing, finals)
    interval = compare.bootstrap_mean(diffs["B - A"])
    left, right = st.columns([1, 3])
    if interval.n:
        ci = (
            "n/a (needs 2 pairs)"
            if math.isnan(interval.low)
            else f"[{interval.low:+.4g}, {interval.high:+.4g}]"
        )
        left.metric(
            f"mean {names[1]} − {names[0]}",
            f"{interval.estimate:+.4g}",
            help="Mean over pairs of the final value at B minus at A.",
        )
        left.caption(f"95% bootstrap CI (BCa, {interval.n} pairs): {ci}")
        right.plotly_chart(
            charts.differences_figure(diffs, interval, metric=metric, names=names),
            key=f"{key}_diffs",
        )
    else:
        left.info(f"No pair has a final {metric} on both sides yet.")
    st.dataframe(
        _renamed(diffs, names),
        hide_index=True,
        width="stretch",
        column_config={
            c: st.column_config.NumberColumn(format="%.4g") for c in ("final A", "final B", "B - A")
        },
    )


def target_section(
    pairing: compare.Pairing,
    steps_of: Callable[[str, float, str], pd.Series],
    *,
    metrics: Sequence[str],
    mode_of: Callable[[str], str],
    best_of: Callable[[str, str], list[float]],
    names: tuple[str, str],
    key: str,
) -> None:
    """Pick a target metric and value, then the steps each side needed to reach it and the
    geometric-mean speed-up of B over the pairs where both did.

    `steps_of(metric, target, mode)` gives the steps of every paired trial,
    `best_of(metric, mode)` every trial's best value (for the suggested target) and
    `mode_of(metric)` whether higher or lower is better.
    """
    left, right = st.columns(2)
    target_metric = left.selectbox(
        "Target metric",
        metrics,
        key=f"{key}_target_metric",
        index=list(metrics).index("val_acc") if "val_acc" in metrics else 0,
    )
    mode = mode_of(target_metric)
    suggested = compare.default_target(best_of(target_metric, mode), mode)
    target = right.number_input(
        f"Target {target_metric} ({'at least' if mode == 'max' else 'at most'})",
        value=float(round(suggested, 4)) if math.isfinite(suggested) else 0.0,
        format="%.4f",
        key=f"{key}_target_{target_metric}",
        help="Default: 90% of the best value any trial reached (best ÷ 0.9 for a loss).",
    )
    speed = compare.speedups(pairing, steps_of(target_metric, target, mode))
    gm = compare.geometric_mean_speedup(speed["speed-up of B"])
    left, right = st.columns([1, 3])
    if gm.n:
        ci = "n/a (needs 2 pairs)" if math.isnan(gm.low) else f"[{gm.low:.3g}×, {gm.high:.3g}×]"
        left.metric(
            f"speed-up of {names[1]}",
            f"{gm.estimate:.3g}×",
            help=f"steps({names[0]}) / steps({names[1]}) to reach the target; geometric "
            "mean over pairs where both reached it.",
        )
        left.caption(f"95% bootstrap CI ({gm.n} pairs): {ci}")
        right.plotly_chart(charts.speedup_figure(speed, gm, names=names), key=f"{key}_speed")
    else:
        left.info("No pair has both trials at the target yet.")
    said = {
        "both reached": "both reached",
        "only A reached": f"only {names[0]} reached",
        "only B reached": f"only {names[1]} reached",
        "neither reached": "neither reached",
    }
    outcomes = speed["outcome"].value_counts()
    st.caption(" · ".join(f"{n} {said[str(o)]}" for o, n in outcomes.items()))
    st.dataframe(
        _renamed(speed, names),
        hide_index=True,
        width="stretch",
        column_config={"speed-up of B": st.column_config.NumberColumn(format="%.3g×")},
    )
