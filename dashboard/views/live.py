"""Live sweep: the trial table and every trial's curves, refreshed while the sweep runs."""

from __future__ import annotations

import streamlit as st

from dashboard import live, ui
from dashboard.data import STATUS_LABELS, Filter
from runner.errors import SweepscopeError

st.title("Live sweep")
store = ui.store()
sweep = ui.current_sweep(store)
points = ui.sweep_points(sweep["id"])
try:
    first = live.refresh(store, points, sweep)
except SweepscopeError as exc:
    ui.show_error(exc)
    st.stop()
params = first.params

# -- chart options -------------------------------------------------------------------------
metrics = points.metrics() or ["train_loss"]
c1, c2, c3, c4, c5 = st.columns([2, 2, 2, 2, 1])
metric = c1.selectbox(
    "Curve",
    metrics,
    key="live_metric",
    format_func=lambda m: {
        "train_loss": "train loss per step",
        "val_loss": "validation loss",
        "val_acc": "validation accuracy",
    }.get(m, m),
)
x_axis = c2.radio(
    "x axis",
    ["step", "time"],
    horizontal=True,
    key="live_x",
    format_func=lambda v: "step" if v == "step" else "wall time",
)
colour_choices = [None, *params]
colour = c3.selectbox(
    "Colour by",
    colour_choices,
    key="live_colour",
    index=colour_choices.index("batch_norm") if "batch_norm" in params else 0,
    format_func=lambda p: "nothing" if p is None else p,
)
smoothing = c4.slider("Smoothing (EMA)", 0.0, 0.99, 0.0, 0.01, key="live_smoothing")
log_y = c5.toggle("log y", key="live_log")
options = live.LiveOptions(
    metric=metric,
    x="time" if x_axis == "time" else "step",
    smoothing=smoothing,
    log_y=log_y,
    color_by=colour,
)

# -- filters -------------------------------------------------------------------------------
filters: list[Filter] = []
with st.expander("Filter trials"):
    cols = st.columns(min(4, len(params) + 1))
    statuses = cols[0].multiselect("status", list(STATUS_LABELS.values()), key="live_f_status")
    if statuses:
        filters.append(Filter("status", tuple(statuses)))
    for i, p in enumerate(params, start=1):
        values = sorted({v for v in first.table[p] if v is not None}, key=str)
        chosen = cols[i % len(cols)].multiselect(p, values, key=f"live_f_{p}")
        if chosen:
            filters.append(Filter(p, tuple(chosen)))


@st.fragment(run_every=ui.live_settings())
def body() -> None:
    with ui.guard():
        frame = live.refresh(store, points, sweep)
        ui.sweep_header(frame.sweep, frame.trials)
        if not frame.trials:
            st.info(
                "This sweep has no trials yet: Ray is still starting them. This page "
                "updates on its own."
            )
            return
        table, _ = live.shown_trials(frame, filters)
        event = st.dataframe(
            table,
            key="live_table",
            on_select="rerun",
            selection_mode="multi-row",
            hide_index=True,
            width="stretch",
            height=min(400, 38 + 35 * len(table)),
            column_config={
                c: st.column_config.NumberColumn(format="%.4g")
                for c in table.columns
                if c not in ("trial", "steps", *params) and table[c].dtype == "float64"
            },
        )
        rows = event.selection.rows
        selected = [int(table["trial"].iloc[r]) for r in rows if r < len(table)]
        _, drawn = live.shown_trials(frame, filters, selected)
        if points.n_points == 0:
            st.info(
                "No points yet: the trials have not reported a step. Curves appear "
                "here as soon as they do."
            )
        else:
            what = (
                f"{len(selected)} selected trials" if selected else f"all {len(drawn)} shown trials"
            )
            st.caption(
                f"Curves of {what} (select rows in the table to pick some). Dashed: "
                "ended early; markers: why."
            )
            fig = live.figure(points, drawn, options)
            st.plotly_chart(fig, key="live_chart", config={"displaylogo": False})
        st.subheader("Stop")
        ui.stop_controls(store, frame.sweep, frame.trials, key="live", params=params)


body()
