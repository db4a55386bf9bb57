"""Sweep against sweep: two sweeps' trials paired on the hyperparameters they share.

For the same spec run on two machines, or before and after a code change. Top to bottom:
which two sweeps; what paired and what did not; the final metric per pair with the verdict
(B better, worse or undecided against A) beside the noise floor; both sweeps' curves
overlaid, as bands and per pair; the steps to a target. Seeded sweeps pair configurations,
each side with all its seeds, for the verdict. Every choice is kept in the URL
(dashboard.urlstate)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import axes, charts, compare, compare_figures, paired, ui, urlstate
from dashboard.bands import BANDS, DEFAULT_BAND, band_label, group_band
from dashboard.data import SweepPoints, hyperparameters, metric_mode, trial_number, trial_numbers
from runner import configurations
from runner.errors import SweepscopeError


def _load(sweep_id: str) -> tuple[dict[str, Any], list[dict[str, Any]], SweepPoints]:
    """A sweep, its trials and its points brought up to date; stops the page on a store
    error."""
    try:
        sweep = store.sweep(sweep_id, best=False)
        if sweep is None:
            st.error(f"Sweep {sweep_id!r} is gone from the store. Fix: pick another.")
            st.stop()
        trials = store.trials(sweep_id)
        points = ui.sweep_points(sweep_id)
        points.refresh(store)
    except SweepscopeError as exc:
        ui.show_error(exc)
        st.stop()
    return sweep, trials, points


def _said(
    trial_ids: tuple[int, ...], trials: Mapping[int, Mapping[str, Any]], keys: tuple[str, ...]
) -> str:
    """Up to six trials with their settings, for the note on what did not pair."""
    shown = []
    for i in trial_ids[:6]:
        config = trials[i]["config"]
        settings = ", ".join(f"{k}={config.get(k)}" for k in keys) or "no settings"
        shown.append(f"{trial_number(trials[i])} ({settings})")
    more = f" and {len(trial_ids) - 6} more" if len(trial_ids) > 6 else ""
    return ", ".join(shown) + more


st.title("Sweep against sweep")
store = ui.store()
try:
    ids = [s["id"] for s in ui.sweeps(store)]  # the sidebar's cached list
except SweepscopeError as exc:
    ui.show_error(exc)
    st.stop()
if len(ids) < 2:
    st.info(
        f"The store holds {len(ids)} sweep{'' if len(ids) == 1 else 's'}; this page compares "
        "two. Run another, e.g. the same spec on another machine or after a code change, "
        "into the same store."
    )
    st.stop()
st.button("↻ Refresh", key="versus_refresh")

# -- which two sweeps ----------------------------------------------------------------------
default_a, default_b = compare.default_sweeps(ids, st.session_state.get(ui.SWEEP_KEY))
c1, c2 = st.columns(2)
id_a = c1.selectbox(
    "Sweep A (baseline)",
    ids,
    index=ids.index(default_a),
    **urlstate.bound("q_vs_a", ids, why="no such sweep in this store"),
)
id_b = c2.selectbox(
    "Sweep B (compared)",
    ids,
    index=ids.index(default_b),
    **urlstate.bound("q_vs_b", ids, why="no such sweep in this store"),
)
if id_a == id_b:
    st.warning(f"A and B are both {id_a}. Fix: pick two different sweeps.")
    st.stop()
sweep_a, trials_a, points_a = _load(id_a)
sweep_b, trials_b, points_b = _load(id_b)
numbers = trial_numbers(trials_a) | trial_numbers(trials_b)  # store ids: unique in the store
names = compare.sweep_labels(sweep_a, sweep_b)
colours = (charts.level_colour(0), charts.level_colour(1))
for name, sweep, trials in ((names[0], sweep_a, trials_a), (names[1], sweep_b, trials_b)):
    st.caption(
        f"**{name}**: {len(trials)} trials of {sweep['n_trials']} · metric {sweep['metric']}"
    )

# -- what paired ----------------------------------------------------------------------------
seeded = compare.seeded(sweep_a["spec"]) or compare.seeded(sweep_b["spec"])
seed_key = (
    (configurations.seed_key(sweep_a["spec"]) or configurations.seed_key(sweep_b["spec"]))
    if seeded
    else None
)
match = compare.pair_sweeps(
    (id_a, trials_a, hyperparameters(trials_a, sweep_a["spec"])),
    (id_b, trials_b, hyperparameters(trials_b, sweep_b["spec"])),
    seed_key=seed_key,
)
pairing = match.pairing
n_pairs = len(pairing.pairs)
st.caption(
    f"{n_pairs} pair{'' if n_pairs == 1 else 's'} of trials with the same "
    f"{', '.join(match.shared) or 'settings'}. Differences are B − A."
)
if match.configurations is not None:
    n_configs = len(match.configurations.pairs)
    st.caption(
        f"{n_configs} configuration pair{'' if n_configs == 1 else 's'} with the same "
        f"{', '.join(match.configurations.others) or 'settings'}, each side with all its "
        f"seeds ({seed_key}): the verdict below is over these."
    )
if match.differing:
    st.caption(
        "The sweeps differ in: "
        + "; ".join(f"{k} {va} → {vb}" for k, (va, vb) in match.differing.items())
    )
by_id = {int(t["id"]): t for t in [*trials_a, *trials_b]}
unmatched = []
if match.only_a or match.only_b:
    unmatched.append(
        "Not paired on (only one sweep has them): "
        + ", ".join([*(f"{k} (A)" for k in match.only_a), *(f"{k} (B)" for k in match.only_b)])
        + "."
    )
for side, left in ((names[0], match.unpaired_a), (names[1], match.unpaired_b)):
    if left:
        unmatched.append(
            f"{len(left)} trial{'' if len(left) == 1 else 's'} of {side} without a partner: "
            f"{_said(left, by_id, match.shared)}."
        )
if unmatched:
    st.info(" ".join(unmatched), icon=":material/link_off:")
if not n_pairs:
    st.warning(
        "No trial of A has the same settings as a trial of B, so there is nothing to pair. "
        "Fix: pick two sweeps over overlapping grids."
    )
    st.stop()
metrics = [m for m in points_a.metrics() if m in set(points_b.metrics())]
if not metrics:
    st.info("No metric has points in both sweeps yet. Come back when the trials have reported.")
    st.stop()
metric = st.selectbox(
    "Metric",
    metrics,
    index=metrics.index(sweep_a["metric"]) if sweep_a["metric"] in metrics else 0,
    **urlstate.bound("q_vs_metric", metrics),
)
mode = metric_mode(metric, sweep_a)

# -- final metric per pair, and the verdict ---------------------------------------------------
finals_all = pd.concat(
    [
        compare.finished_finals(points_a, trials_a, metric),
        compare.finished_finals(points_b, trials_b, metric),
    ]
)
floor = compare.seed_noise(match.tagged, finals_all, seed_key)  # tagged: sweeps kept apart
if match.configurations is not None:
    st.subheader(f"Final {metric} per configuration pair")
    paired.configurations_section(
        match.configurations, finals_all, floor, metric=metric, mode=mode, names=names, key="vs"
    )
else:
    st.subheader(f"Final {metric} per pair")
    finals = compare.pair_finals(pairing, metric, points_a, points_b)
    paired.finals_section(
        pairing,
        finals,
        floor,
        metric=metric,
        mode=mode,
        names=names,
        key="vs",
        numbers=numbers,
    )

# -- both sweeps' curves overlaid -------------------------------------------------------------
curves = {
    names[0]: [points_a.curve(int(t), metric, max_points=500) for t in pairing.pairs["a"]],
    names[1]: [points_b.curve(int(t), metric, max_points=500) for t in pairing.pairs["b"]],
}
log_y = axes.log_scale(
    np.concatenate([np.empty(0)] + [y for group in curves.values() for _, y in group])
)
band_kind = st.radio(
    "Band",
    list(BANDS),
    index=list(BANDS).index(DEFAULT_BAND),
    format_func=BANDS.__getitem__,
    horizontal=True,
    **urlstate.bound("q_vs_band", list(BANDS), format_func=BANDS.__getitem__),
)
st.subheader(f"{metric}: {band_label(band_kind)} of the paired trials")
st.plotly_chart(
    compare_figures.band_figure(
        {label: group_band(group, band_kind) for label, group in curves.items()},
        dict(zip(names, colours, strict=True)),
        metric=metric,
        kind=band_kind,
        log_y=log_y,
    ),
    key="vs_band",
)
st.subheader("Each pair")
MAX_PANELS = 24
if n_pairs > MAX_PANELS:
    st.caption(f"The first {MAX_PANELS} of {n_pairs} pairs.")
panels = [
    (row.pair, curves[names[0]][i], curves[names[1]][i])
    for i, row in enumerate(pairing.pairs.head(MAX_PANELS).itertuples())
]
st.plotly_chart(
    compare_figures.pairs_figure(panels, names, colours, metric=metric, log_y=log_y), key="vs_pairs"
)

# -- steps to target --------------------------------------------------------------------------
st.subheader("Steps to target")
paired.target_section(
    pairing,
    lambda m, target, mode: compare.pair_steps(pairing, m, target, mode, points_a, points_b),
    metrics=metrics,
    mode_of=lambda m: metric_mode(m, sweep_a),
    best_of=lambda m, mode: [
        *compare.best_values(points_a, trials_a, m, mode),
        *compare.best_values(points_b, trials_b, m, mode),
    ],
    names=names,
    key="vs",
    numbers=numbers,
)
