"""The paired analysis the BN page and the sweep-against-sweep page both draw: the final
metric per pair with a bootstrap interval of the mean difference and the verdict it gives
(better, worse or undecided, beside the sweep's noise floor), and the steps each side
needs to reach a target with the speed-up per pair. A seeded sweep pairs configurations,
each side with all its seeds; a sweep with one seed per configuration pairs trials. The
figures are dashboard.compare_figures', the statistics dashboard.compare's and
runner.verdicts'; this module only lays them out."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import pandas as pd
import streamlit as st

from dashboard import compare, compare_figures
from runner import verdicts

__all__ = [
    "configurations_section",
    "finals_section",
    "noise_note",
    "target_section",
    "verdict_box",
    "verdict_markdown",
]

BOXES = {  # how each verdict is drawn: a coloured box, readable at a glance
    "better": (st.success, ":material/thumb_up:"),
    "worse": (st.error, ":material/thumb_down:"),
    "undecided": (st.info, ":material/balance:"),
}


def _renamed(
    frame: pd.DataFrame, names: tuple[str, str], numbers: Mapping[int, int] | None = None
) -> pd.DataFrame:
    """The pairs as a table shows them: each side's trial by its number within its sweep
    (`numbers`: store id -> number), the columns named after the sides."""
    if numbers is not None:
        frame = frame.assign(
            a=[numbers.get(int(t), int(t)) for t in frame["a"]],
            b=[numbers.get(int(t), int(t)) for t in frame["b"]],
        )
    return frame.rename(columns={"a": f"trial A ({names[0]})", "b": f"trial B ({names[1]})"})


def verdict_markdown(
    said: verdicts.Verdict,
    interval: verdicts.Bounds,
    *,
    confidence: float,
    names: tuple[str, str],
    metric: str,
    mode: str,
    over: str,
) -> str:
    """One line: B is better / worse than A, or undecided, with the interval behind it."""
    span = f"{confidence:.0%} interval of B − A [{interval.low:+.4g}, {interval.high:+.4g}]"
    if said == "undecided":
        head = f"**{names[1]}** against **{names[0]}**: **undecided**, they cannot be told apart"
    else:
        head = f"**{names[1]}** is **{said}** than **{names[0]}**"
    better = "higher" if mode == "max" else "lower"
    return (
        f"{head} at {confidence:.0%} confidence: {span} over {over} ({better} {metric} is better)."
    )


def verdict_box(said: verdicts.Verdict, text: str) -> None:
    """The verdict in a box coloured by what it says: green better, red worse, blue
    undecided."""
    box, icon = BOXES[said]
    box(text, icon=icon)


def noise_note(floor: verdicts.NoiseFloor | None, *, metric: str) -> None:
    """The sweep's noise floor in words, or that it is unknown and what to run to know it."""
    if floor is None:
        return
    if floor.floor is None:
        st.warning(
            f"**Noise floor unknown**: no configuration has two finished runs with different "
            f"seeds, so nothing shows how far {metric} moves by seed alone; a difference "
            f"between two single runs may be luck. Fix: {verdicts.MORE_SEEDS}.",
            icon=":material/help:",
        )
        return
    configs = sum(1 for s in floor.by_config.values() if s.sd is not None)
    st.markdown(
        f"**Noise floor ±{floor.floor:.3g}**: differences below ±{floor.floor:.3g} are noise "
        f"on this sweep (two seeds of one configuration land that far apart "
        f"{floor.confidence:.0%} of the time; pooled over {configs} configurations)."
    )
    if floor.message:
        st.warning(floor.message, icon=":material/warning:")


def configurations_section(
    pairing: compare.ConfigPairing,
    finals: pd.Series,
    floor: verdicts.NoiseFloor | None,
    *,
    metric: str,
    mode: str,
    names: tuple[str, str],
    key: str,
) -> None:
    """A seeded sweep: the verdict for B against A over configuration pairs (two-level
    bootstrap over pairs and seeds) with the noise floor beside it, each pair's difference
    with its interval over seeds, and the table of pairs with their own verdicts."""
    judged = compare.configuration_verdicts(pairing, finals, mode)
    if judged.decision is None:
        st.info(f"No configuration pair has a finished trial with a final {metric} on both sides.")
        noise_note(floor, metric=metric)
    else:
        _verdict(judged, floor, metric=metric, mode=mode, names=names, key=key)
    _pairs_table(judged.table, names)


def _verdict(
    judged: compare.ConfigVerdicts,
    floor: verdicts.NoiseFloor | None,
    *,
    metric: str,
    mode: str,
    names: tuple[str, str],
    key: str,
) -> None:
    """The whole comparison's verdict, the noise floor, the mean difference and each pair's."""
    decision = judged.decision
    assert decision is not None
    c = decision.comparison
    seeds = "pairs and their seeds" if c.seeds_resampled else "pairs"
    verdict_box(
        decision.verdict,
        verdict_markdown(
            decision.verdict,
            c,
            confidence=c.confidence,
            names=names,
            metric=metric,
            mode=mode,
            over=f"{c.n_pairs} configuration pair{'' if c.n_pairs == 1 else 's'}",
        )
        if not math.isnan(c.low)
        else f"**{names[1]}** against **{names[0]}**: **undecided**, {decision.reason}",
    )
    noise_note(floor, metric=metric)
    left, right = st.columns([1, 3])
    left.metric(
        f"mean {names[1]} − {names[0]}",
        f"{c.estimate:+.4g}",
        help="Mean over configuration pairs of B's mean final over seeds minus A's.",
    )
    left.caption(f"{c.confidence:.0%} interval: two-level bootstrap over {seeds}.")
    if c.dropped_a + c.dropped_b:
        left.caption(
            f"Diverged runs left out: {c.dropped_a} of {names[0]}, {c.dropped_b} of "
            f"{names[1]}" + (f"; {c.dropped_pairs} pairs had none left" if c.dropped_pairs else "")
        )
    interval = compare.Interval(c.estimate, c.low, c.high, c.n_pairs, c.confidence)
    right.plotly_chart(
        compare_figures.differences_figure(
            judged.table,
            interval,
            metric=metric,
            names=names,
            floor=floor.floor if floor is not None else None,
        ),
        key=f"{key}_diffs",
    )


def _pairs_table(pairs: pd.DataFrame, names: tuple[str, str]) -> None:
    """One row per configuration pair, with its own interval and verdict."""
    table = pairs.copy()
    table.insert(
        6,
        "95% CI",
        [
            "" if math.isnan(lo) else f"[{lo:+.4g}, {hi:+.4g}]"
            for lo, hi in zip(table["low"], table["high"], strict=True)
        ],
    )
    st.dataframe(
        table.drop(columns=["low", "high"]).rename(
            columns={
                "seeds A": f"seeds A ({names[0]})",
                "seeds B": f"seeds B ({names[1]})",
                "mean A": f"mean A ({names[0]})",
                "mean B": f"mean B ({names[1]})",
            }
        ),
        hide_index=True,
        width="stretch",
        column_config={
            c: st.column_config.NumberColumn(format="%.4g")
            for c in (f"mean A ({names[0]})", f"mean B ({names[1]})", "B - A")
        },
    )
    st.caption(
        f"One row per configuration pair; seeds: finished trials with a final (of all). The "
        f"95% CI is over the pair's own seeds, empty below {verdicts.MIN_SEEDS} a side."
    )


def finals_section(
    pairing: compare.Pairing,
    finals: pd.Series,
    floor: verdicts.NoiseFloor | None = None,
    *,
    metric: str,
    mode: str,
    names: tuple[str, str],
    key: str,
    numbers: Mapping[int, int] | None = None,
) -> None:
    """One seed per configuration: the mean of B − A over trial pairs with its 95 % BCa
    interval and the verdict it gives, the noise floor (unknown unless settings repeat),
    each pair's difference, and the table of final values (trials by their number within
    their sweep, `numbers`: store id -> number)."""
    diffs = compare.paired_differences(pairing, finals)
    interval = compare.bootstrap_mean(diffs["B - A"])
    if interval.n and not math.isnan(interval.low):
        said = verdicts.verdict(interval, mode)
        verdict_box(
            said,
            verdict_markdown(
                said,
                interval,
                confidence=interval.confidence,
                names=names,
                metric=metric,
                mode=mode,
                over=f"{interval.n} pairs of single runs",
            ),
        )
    noise_note(floor, metric=metric)
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
            compare_figures.differences_figure(
                diffs,
                interval,
                metric=metric,
                names=names,
                floor=floor.floor if floor is not None else None,
            ),
            key=f"{key}_diffs",
        )
    else:
        left.info(f"No pair has a final {metric} on both sides yet.")
    st.dataframe(
        _renamed(diffs, names, numbers),
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
    numbers: Mapping[int, int] | None = None,
) -> None:
    """Pick a target metric and value, then the steps each side needed to reach it and the
    geometric-mean speed-up of B over the pairs where both did (trials shown by their
    number, `numbers`: store id -> number).

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
        right.plotly_chart(
            compare_figures.speedup_figure(speed, gm, names=names), key=f"{key}_speed"
        )
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
        _renamed(speed, names, numbers),
        hide_index=True,
        width="stretch",
        column_config={"speed-up of B": st.column_config.NumberColumn(format="%.3g×")},
    )
