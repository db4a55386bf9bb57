"""BN vs no-BN: trials paired by every hyperparameter but one factor (batch_norm by default).

Top to bottom: what to compare; the final metric per pair with the verdict (B better,
worse or undecided against A) beside the sweep's noise floor; each group's curves as a
band; each pair's curves; the steps to a target; the final metric against a
hyperparameter. A seeded sweep (`seeds` in the spec) pairs configurations, each side with
all its seeds, for the verdict, and trials of the same seed for the curves. Every choice
is kept in the URL (dashboard.urlstate)."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from dashboard import axes, charts, compare, compare_figures, paired, ui, urlstate
from dashboard.bands import BANDS, DEFAULT_BAND, band_label, group_band
from dashboard.data import hyperparameters, metric_mode, trial_numbers
from runner import configurations


def _keep_if_valid(key: str, options: list[Any]) -> None:
    """Forget a remembered choice that the current options no longer hold."""
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]


st.title("BN vs no-BN")
store = ui.store()
sweep, trials, points = ui.loaded_sweep(store)
st.button("↻ Refresh", key="compare_refresh")
params = hyperparameters(trials, sweep["spec"])
seed_key = configurations.seed_key(sweep["spec"])
seeded = compare.seeded(sweep["spec"])
factors = [p for p in params if p != seed_key]  # seed against seed is no question
if not factors:
    st.info("Every trial of this sweep has the same settings: there is no factor to compare.")
    st.stop()
if points.n_points == 0:
    st.info("No points yet: the trials have not reported anything. Come back when they have.")
    st.stop()

# -- what to compare -----------------------------------------------------------------------
c1, c2, c3, c4 = st.columns(4)
factor = c1.selectbox(
    "Factor",
    factors,
    index=factors.index(compare.default_factor(factors)),
    **urlstate.bound("q_cmp_factor", factors),
)
values = compare.levels(trials, factor)
if len(values) < 2:
    st.info(
        f"All trials so far have {factor}={values[0] if values else None}; a comparison "
        "needs two values. Pick another factor."
    )
    st.stop()
default = compare.default_levels(values) or (values[0], values[1])
_keep_if_valid("q_cmp_a", values)
_keep_if_valid("q_cmp_b", values)
a = c2.selectbox(
    "A (baseline)", values, index=values.index(default[0]), **urlstate.bound("q_cmp_a", values)
)
b = c3.selectbox(
    "B (compared)", values, index=values.index(default[1]), **urlstate.bound("q_cmp_b", values)
)
metrics = points.metrics()
metric = c4.selectbox(
    "Metric",
    metrics,
    index=metrics.index(sweep["metric"]) if sweep["metric"] in metrics else 0,
    **urlstate.bound("q_cmp_metric", metrics),
)
if a == b:
    st.warning(f"A and B are both {factor}={a}. Fix: pick two different values.")
    st.stop()
names = (charts.level_label(factor, a), charts.level_label(factor, b))
colours = (charts.level_colour(0, a), charts.level_colour(1, b))
mode = metric_mode(metric, sweep)
pairing = compare.pair_trials(trials, factor, (a, b), params)
n_pairs = len(pairing.pairs)
finals_all = compare.finished_finals(points, trials, metric)
floor = compare.seed_noise(trials, finals_all, seed_key if seeded else None)
if seeded and seed_key is not None:
    configs = compare.pair_configurations(trials, factor, (a, b), params, seed_key)
    n_configs = len(configs.pairs)
    st.caption(
        f"{n_configs} configuration pair{'' if n_configs == 1 else 's'} that "
        f"differ{'s' if n_configs == 1 else ''} only in {factor} "
        f"({', '.join(configs.others) or 'no other hyperparameters'} held equal), each side "
        f"with its {sweep['spec']['seeds'].get('n')} seeds ({seed_key}); "
        f"{len(configs.unpaired)} trials without a partner. Differences are B − A."
    )
else:
    st.caption(
        f"{n_pairs} pair{'' if n_pairs == 1 else 's'} that "
        f"differ{'s' if n_pairs == 1 else ''} only in {factor} "
        f"({', '.join(pairing.others) or 'no other hyperparameters'} held equal); "
        f"{len(pairing.unpaired)} trials without a partner. Differences are B − A."
    )

# -- (a) the final metric per pair, and the verdict ------------------------------------------
if seeded and seed_key is not None:
    st.subheader(f"Final {metric} per configuration pair")
    paired.configurations_section(
        configs, finals_all, floor, metric=metric, mode=mode, names=names, key="cmp"
    )
else:
    st.subheader(f"Final {metric} per pair")
    finals = compare.pair_finals(pairing, metric, points)
    paired.finals_section(
        pairing,
        finals,
        floor,
        metric=metric,
        mode=mode,
        names=names,
        key="cmp",
        numbers=trial_numbers(trials),
    )

groups = dict(zip(names, compare.sides(trials, factor, (a, b)), strict=True))
curves = {
    label: [points.curve(int(t["id"]), metric, max_points=500) for t in group]
    for label, group in groups.items()
}
log_y = axes.log_scale(
    np.concatenate([np.empty(0)] + [y for group in curves.values() for _, y in group])
)

# -- (b) each group's curves as a band -----------------------------------------------------------
band_kind = st.radio(
    "Band",
    list(BANDS),
    index=list(BANDS).index(DEFAULT_BAND),
    format_func=BANDS.__getitem__,
    horizontal=True,
    help="The default, the interquartile range around the median, stays within the "
    "values the trials had; mean ± sd can pass them when a group is bimodal.",
    **urlstate.bound("q_cmp_band", list(BANDS), format_func=BANDS.__getitem__),
)
st.subheader(f"{metric}: {band_label(band_kind)} per group")
bands = {label: group_band(group, band_kind) for label, group in curves.items()}
st.plotly_chart(
    compare_figures.band_figure(
        bands, dict(zip(names, colours, strict=True)), metric=metric, kind=band_kind, log_y=log_y
    ),
    key="cmp_band",
)

# -- (c) each pair's curves ------------------------------------------------------------------------
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
    if n_pairs > MAX_PANELS:
        st.caption(f"The first {MAX_PANELS} of {n_pairs} pairs.")
    if seeded:
        st.caption(f"Pairs of trials with the same {seed_key}: one panel per seed.")
    st.plotly_chart(
        compare_figures.pairs_figure(panels, names, colours, metric=metric, log_y=log_y),
        key="cmp_pairs",
    )
else:
    st.info(f"No pairs yet: no two trials differ only in {factor}.")

# -- (d) steps to target -------------------------------------------------------------------
st.subheader("Steps to target")
paired.target_section(
    pairing,
    lambda m, target, mode: compare.pair_steps(pairing, m, target, mode, points),
    metrics=metrics,
    mode_of=lambda m: metric_mode(m, sweep),
    best_of=lambda m, mode: compare.best_values(points, trials, m, mode),
    names=names,
    key="cmp",
    numbers=trial_numbers(trials),
)

# -- (e) final metric against a hyperparameter ------------------------------------------------
st.subheader(f"Final {metric} against a hyperparameter")
numeric = compare.numeric_params(trials, params, exclude=[factor, seed_key or factor])
if not numeric:
    st.info("No numeric hyperparameter varies besides the factor.")
    st.stop()
x_param = st.selectbox(
    "x",
    numeric,
    index=numeric.index(compare.default_x(numeric)),
    **urlstate.bound("q_cmp_x", numeric),
)
rows = compare.finals_against(points, trials, metric, x_param, groups)
st.plotly_chart(
    compare_figures.lr_figure(
        rows,
        x=x_param,
        metric=metric,
        colours=dict(zip(names, colours, strict=True)),
        log_x=axes.log_scale(rows[x_param].astype("float64")),
    ),
    key="cmp_lr",
)
st.caption(
    f"Each dot is a trial (✕: diverged); lines join the mean per {x_param}. "
    f"{'Higher' if metric_mode(metric, sweep) == 'max' else 'Lower'} is better."
)
