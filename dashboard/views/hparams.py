"""Hyperparameters: parallel coordinates of every hyperparameter against the final metric."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, compare, ui
from dashboard.data import hyperparameters, metric_mode, status_label

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
metric = st.selectbox(
    "Final metric",
    metrics,
    key="hp_metric",
    index=metrics.index(sweep["metric"]) if sweep["metric"] in metrics else 0,
)
rows = [
    {
        "trial": int(t["id"]),
        "status": status_label(t["status"]),
        **{p: t["config"].get(p) for p in params},
    }
    for t in trials
]
table = pd.DataFrame(rows)
table[metric] = table["trial"].map(compare.final_values(points, list(table["trial"]), metric))
drawn = table.dropna(subset=[metric])
if drawn.empty:
    st.info(f"No trial has reported {metric} yet.")
    st.stop()
st.plotly_chart(charts.parallel_figure(drawn, params, metric), key="hp_parcoords")
st.caption(
    f"One line per trial with a {metric} ({len(drawn)} of {len(table)}); drag along an "
    "axis to select a range. Log-spaced hyperparameters are drawn as log10."
)
st.dataframe(
    drawn.sort_values(metric, ascending=metric_mode(metric, sweep) == "min"),
    hide_index=True,
    width="stretch",
)
