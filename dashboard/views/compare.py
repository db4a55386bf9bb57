"""BN vs no-BN: trials paired by every hyperparameter but one factor (batch_norm by default)."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from dashboard import charts, compare, ui
from dashboard.data import hyperparameters, metric_mode

st.title("BN vs no-BN")
store = ui.store()
sweep, trials, points = ui.loaded_sweep(store)
st.button("↻ Refresh", key="compare_refresh")
params = hyperparameters(trials, sweep["spec"])
if not params:
    st.info("Every trial of this sweep has the same settings: there is no factor to compare.")
    st.stop()
if points.n_points == 0:
    st.info("No points yet: the trials have not reported anything. Come back when they have.")
    st.stop()

# -- what to compare -----------------------------------------------------------------------
c1, c2, c3, c4 = st.columns(4)
factor = c1.selectbox(
    "Factor",
    params,
    key="cmp_factor",
    index=params.index("batch_norm") if "batch_norm" in params else 0,
)
values = compare.levels(trials, factor)
if len(values) < 2:
    st.info(
        f"All trials so far have {factor}={values[0] if values else None}; a comparison "
        "needs two values. Pick another factor."
    )
    st.stop()
default = compare.default_levels(values) or (values[0], values[1])
a = c2.selectbox("A (baseline)", values, index=values.index(default[0]), key=f"cmp_a_{factor}")
b = c3.selectbox("B (compared)", values, index=values.index(default[1]), key=f"cmp_b_{factor}")
metrics = points.metrics()
metric = c4.selectbox(
    "Metric",
    metrics,
    key="cmp_metric",
    index=metrics.index(sweep["metric"]) if sweep["metric"] in metrics else 0,
)
if a == b:
    st.warning(f"A and B are both {factor}={a}. Fix: pick two different values.")
    st.stop()
names = (charts.level_label(factor, a), charts.level_label(factor, b))
colours = (charts.level_colour(0, a), charts.level_colour(1, b))
pairing = compare.pair_trials(trials, factor, (a, b), params)
mode = metric_mode(metric, sweep)
n_pairs = len(pairing.pairs)
st.caption(
    f"{n_pairs} pair{'' if n_pairs == 1 else 's'} that differ{'s' if n_pairs == 1 else ''} "
    f"only in {factor} "
    f"({', '.join(pairing.others) or 'no other hyperparameters'} held equal); "
    f"{len(pairing.unpaired)} trials without a partner. Differences are B − A."
)

# -- (a) mean ± band -----------------------------------------------------------------------
st.subheader(f"{metric}: mean ± sd per group")
sides = {
    names[0]: [t for t in trials if t["config"].get(factor) == a],
    names[1]: [t for t in trials if t["config"].get(factor) == b],
}
bands = {
    label: compare.mean_band([points.curve(int(t["id"]), metric, max_points=500) for t in group])
    for label, group in sides.items()
}
st.plotly_chart(
    charts.band_figure(
        bands, dict(zip(names, colours, strict=True)), metric=metric, log_y="loss" in metric
    ),
    key="cmp_band",
)

# -- (b) small multiples ---------------------------------------------------------------------
st.subheader("Each pair")
MAX_PANELS = 24
panels = [
    (
        row.pair,
        points.curve(row.a, metric, max_points=300),
        points.curve(row.b, metric, max_points=300),
    )
    for row in pairing.pairs.head(MAX_PANELS).itertuples()
]
if panels:
    if len(pairing.pairs) > MAX_PANELS:
        st.caption(f"The first {MAX_PANELS} of {len(pairing.pairs)} pairs.")
    st.plotly_chart(
        charts.pairs_figure(panels, names, colours, metric=metric, log_y="loss" in metric),
        key="cmp_pairs",
    )
else:
    st.info(f"No pairs yet: no two trials differ only in {factor}.")

# -- (c) final metric per pair -----------------------------------------------------------------
st.subheader(f"Final {metric} per pair")
finals = compare.final_values(points, [*pairing.pairs["a"], *pairing.pairs["b"]], metric)
diffs = compare.paired_differences(pairing, finals)
interval = compare.bootstrap_mean(diffs["B - A"])
m1, m2 = st.columns([1, 3])
if interval.n:
    ci = (
        "n/a (needs 2 pairs)"
        if math.isnan(interval.low)
        else f"[{interval.low:+.4g}, {interval.high:+.4g}]"
    )
    m1.metric(
        f"mean {names[1]} − {names[0]}",
        f"{interval.estimate:+.4g}",
        help="Mean over pairs of the final value at B minus at A.",
    )
    m1.caption(f"95% bootstrap CI (BCa, {interval.n} pairs): {ci}")
    m2.plotly_chart(
        charts.differences_figure(diffs, interval, metric=metric, names=names), key="cmp_diffs"
    )
st.dataframe(
    diffs.rename(columns={"a": f"trial A ({names[0]})", "b": f"trial B ({names[1]})"}),
    hide_index=True,
    width="stretch",
    column_config={
        c: st.column_config.NumberColumn(format="%.4g") for c in ("final A", "final B", "B - A")
    },
)

# -- (d) steps to target -------------------------------------------------------------------
st.subheader("Steps to target")
t1, t2 = st.columns(2)
target_metric = t1.selectbox(
    "Target metric",
    metrics,
    key="cmp_target_metric",
    index=metrics.index("val_acc") if "val_acc" in metrics else 0,
)
target_mode = metric_mode(target_metric, sweep)
best = [s.best(target_mode) for t in trials if (s := points.series(int(t["id"]), target_metric))]
suggested = compare.default_target(best, target_mode)
target = t2.number_input(
    f"Target {target_metric} ({'at least' if target_mode == 'max' else 'at most'})",
    value=float(round(suggested, 4)) if math.isfinite(suggested) else 0.0,
    format="%.4f",
    key=f"cmp_target_{target_metric}",
    help="Default: 90% of the best value any trial reached (best ÷ 0.9 for a loss).",
)
steps = compare.steps_to_target(
    points, [*pairing.pairs["a"], *pairing.pairs["b"]], target_metric, target, target_mode
)
speed = compare.speedups(pairing, steps)
gm = compare.geometric_mean_speedup(speed["speed-up of B"])
s1, s2 = st.columns([1, 3])
if gm.n:
    ci = "n/a (needs 2 pairs)" if math.isnan(gm.low) else f"[{gm.low:.3g}×, {gm.high:.3g}×]"
    s1.metric(
        f"speed-up of {names[1]}",
        f"{gm.estimate:.3g}×",
        help=f"steps({names[0]}) / steps({names[1]}) to reach the target; geometric "
        "mean over pairs where both reached it.",
    )
    s1.caption(f"95% bootstrap CI ({gm.n} pairs): {ci}")
    s2.plotly_chart(charts.speedup_figure(speed, gm, names=names), key="cmp_speed")
else:
    s1.info("No pair has both trials at the target yet.")
outcomes = speed["outcome"].value_counts()
st.caption(
    " · ".join(
        f"{n} {o.replace('A', names[0]).replace('B', names[1])}" for o, n in outcomes.items()
    )
)
st.dataframe(
    speed.rename(columns={"a": f"trial A ({names[0]})", "b": f"trial B ({names[1]})"}),
    hide_index=True,
    width="stretch",
    column_config={"speed-up of B": st.column_config.NumberColumn(format="%.3g×")},
)

# -- (e) against the learning rate --------------------------------------------------------------
st.subheader(f"Final {metric} against a hyperparameter")
numeric = [
    p
    for p in params
    if p != factor
    and all(
        isinstance(t["config"].get(p), int | float) and not isinstance(t["config"].get(p), bool)
        for t in trials
    )
]
if not numeric:
    st.info("No numeric hyperparameter varies besides the factor.")
    st.stop()
x_param = st.selectbox(
    "x", numeric, key="cmp_x", index=numeric.index("lr") if "lr" in numeric else 0
)
rows = pd.DataFrame(
    [
        {
            "trial": int(t["id"]),
            x_param: t["config"].get(x_param),
            "status": t["status"],
            "group": charts.level_label(factor, t["config"].get(factor)),
        }
        for t in trials
        if t["config"].get(factor) in (a, b)
    ]
)
rows["final"] = rows["trial"].map(compare.final_values(points, list(rows["trial"]), metric))
x_values = rows[x_param].astype("float64")
log_x = bool((x_values > 0).all() and x_values.max() / max(x_values.min(), 1e-300) >= 20)
st.plotly_chart(
    charts.lr_figure(
        rows.dropna(subset=["final"]),
        x=x_param,
        metric=metric,
        colours=dict(zip(names, colours, strict=True)),
        log_x=log_x,
    ),
    key="cmp_lr",
)
st.caption(
    f"Each dot is a trial (✕: diverged); lines join the mean per {x_param}. "
    f"{'Higher' if mode == 'max' else 'Lower'} is better."
)
