"""Hyperparameters: which one matters for the final metric, beside parallel coordinates of
every trial."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, compare, importance, ui, urlstate
from dashboard.data import hyperparameters, metric_mode, status_label
from runner.store import TrialStatus


@st.cache_data(show_spinner="Resampling the trials…", max_entries=32)
def _importance(
    trials: Sequence[Mapping[str, Any]],
    params: Sequence[str],
    finals: Mapping[int, float],
    metric: str,
    method: str,
) -> importance.Importance:
    return importance.importance(trials, params, finals, metric, method=method)


st.title("Hyperparameters")
store = ui.store()
sweep, trials, points = ui.loaded_sweep(store)
st.button("↻ Refresh", key="hparams_refresh")
params = hyperparameters(trials, sweep["spec"])
metrics = points.metrics()
if not params or not metrics:
    st.info(
        "Nothing to draw yet: this needs trials that differ in a hyperparameter and "
        "have reported a metric."
    )
    st.stop()

c1, c2 = st.columns(2)
metric = c1.selectbox(
    "Final metric",
    metrics,
    index=metrics.index(sweep["metric"]) if sweep["metric"] in metrics else 0,
    **urlstate.bound("q_hp_metric", metrics),
)
methods = importance.available_methods()
method = c2.selectbox(
    "Importance method",
    methods,
    format_func=importance.METHODS.__getitem__,
    help="Both over 20 bootstrap resamples of the finished trials. fANOVA takes several "
    "times longer on a large sweep (benchmarks/RESULTS.md).",
    **urlstate.bound("q_hp_method", methods, format_func=importance.METHODS.__getitem__),
)
table = pd.DataFrame(
    [
        {
            "trial": int(t["id"]),
            "status": status_label(t["status"]),
            **{p: t["config"].get(p) for p in params},
        }
        for t in trials
    ]
)
finals = compare.final_values(points, list(table["trial"]), metric)
table[metric] = table["trial"].map(finals)
drawn = table.dropna(subset=[metric])
if drawn.empty:
    st.info(f"No trial has reported {metric} yet.")
    st.stop()

# -- parallel coordinates | importance ------------------------------------------------------
left, right = st.columns([3, 2])
with left:
    st.subheader("Every trial")
    st.plotly_chart(charts.parallel_figure(drawn, params, metric), key="hp_parcoords")
    st.caption(
        f"One line per trial with a {metric} ({len(drawn)} of {len(table)}); drag along an "
        "axis to select a range. Log-spaced hyperparameters are drawn as log10."
    )
with right:
    st.subheader(f"Which hyperparameter matters for {metric}")
    # Only finished trials: a running trial's last value is not its final one.
    finished = [t for t in trials if TrialStatus(t["status"]).is_finished]
    waiting = len(trials) - len(finished)
    later = f" {waiting} unfinished trials join when they end." if waiting else ""
    try:
        # Keyed on the finished trials' values only, so a running trial's step misses no cache.
        done = {t["id"] for t in finished}
        ended = {i: v for i, v in finals.items() if i in done}
        found = _importance(finished, params, ended, metric, method)
    except ValueError as exc:
        st.info(f"No importance yet: among finished trials, {exc}{later}")
    else:
        st.plotly_chart(importance.importance_figure(found), key="hp_importance")
        st.caption(
            f"{found.method} over {found.n_resamples} bootstrap resamples of the "
            f"{found.n_trials} finished trials with a final {metric}: the bar is the mean "
            f"share, the whisker the central {found.confidence:.0%} of resamples.{later}"
        )

st.dataframe(
    drawn.sort_values(metric, ascending=metric_mode(metric, sweep) == "min"),
    hide_index=True,
    width="stretch",
)
