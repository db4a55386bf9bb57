"""Trial detail: one trial's config, curves, system load, status history, device and error."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import charts, stopping, ui
from dashboard.data import hyperparameters, status_label, trial_number
from runner.errors import SweepscopeError
from runner.protocol import SYSTEM_LABELS as LABELS
from runner.protocol import is_system_metric

st.title("Trial detail")
store = ui.store()
sweep = ui.current_sweep(store)
points = ui.sweep_points(sweep["id"])
try:
    trials = store.trials(sweep["id"])
except SweepscopeError as exc:
    ui.show_error(exc)
    st.stop()
if not trials:
    st.info("This sweep has no trials yet: Ray is still starting them.")
    st.stop()
params = hyperparameters(trials, sweep["spec"])
by_id = {int(t["id"]): t for t in trials}
ids = list(by_id)
by_number = {trial_number(t): int(t["id"]) for t in trials}  # ?trial=N names the number
if st.session_state.get("trial_id") not in ids:
    requested = st.query_params.get("trial")
    st.session_state["trial_id"] = (
        by_number.get(int(requested), ids[0]) if requested and requested.isdigit() else ids[0]
    )
trial_id = st.selectbox(
    "Trial",
    ids,
    key="trial_id",
    format_func=lambda i: (
        f"trial {trial_number(by_id[i])} · {status_label(by_id[i]['status'])} · "
        + ", ".join(f"{p}={by_id[i]['config'].get(p)}" for p in params)
    ),
)


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _load_figure(metrics: list[str]) -> go.Figure:
    """The trial's sys/ metrics, a panel each, against seconds of trial time (their step)."""
    fig = charts.trial_figure(points, trial_id, metrics)
    for i, metric in enumerate(metrics):
        label = LABELS.get(metric, metric)
        fig.layout.annotations[i].text = label
        fig.data[i].hovertemplate = f"%{{x}} s<br>{label} %{{y:.4~g}}<extra></extra>"
    fig.update_xaxes(title_text="seconds since the trial started", row=len(metrics), col=1)
    return fig


def _load_summary(metrics: list[str]) -> str:
    """One line: the mean and peak of each sys/ metric."""
    parts = []
    for metric in metrics:
        series = points.series(trial_id, metric)
        if series is None or not len(series.value):
            continue
        values = series.value[np.isfinite(series.value)]
        if len(values):
            label = LABELS.get(metric, metric)
            parts.append(f"{label}: mean {values.mean():.4g}, peak {values.max():.4g}")
    return " · ".join(parts)


@st.fragment(run_every=ui.live_settings() if ui.is_running(sweep) else None)
def body() -> None:
    with ui.guard():
        trial = next((t for t in store.trials(sweep["id"]) if int(t["id"]) == trial_id), None)
        if trial is None:
            st.error(f"Sweep {sweep['id']} no longer has this trial. Fix: pick one above.")
            return
        points.refresh(store)
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Status", status_label(trial["status"]))
        c2.metric("Steps", trial["last_step"] if trial["last_step"] is not None else "-")
        c3.metric("Device", trial["device"] or "-")
        c4.metric("Node", trial["node"] or "-")
        extended = f"round {trial['round']} (an extension) · " if trial.get("round", 1) > 1 else ""
        st.caption(
            f"Trial {trial_number(trial)} · {extended}Ray id {trial['ray_id']} · "
            f"created {_when(trial['created_at'])} · "
            f"started {_when(trial['started_at'])} · ended {_when(trial['ended_at'])}"
        )
        if trial["error"]:
            st.subheader("Error")
            st.code(trial["error"], language=None)
        reported = [m for m in points.metrics() if points.series(trial_id, m) is not None]
        metrics = [m for m in reported if not is_system_metric(m)]
        load = [m for m in reported if is_system_metric(m)]
        st.subheader("Curves")
        if metrics:
            st.plotly_chart(charts.trial_figure(points, trial_id, metrics), key="trial_chart")
        else:
            st.info("No points yet: this trial has not reported a step.")
        st.subheader("System load")
        if load:
            st.caption(
                "Sampled in the trial's own process every few seconds. " + _load_summary(load)
            )
            st.plotly_chart(_load_figure(load), key="trial_load_chart")
        elif (sweep["spec"] or {}).get("system_metrics", True) is False:
            st.caption("Off for this sweep (system_metrics: false in its spec).")
        else:
            st.caption("No samples yet: the first comes a few seconds into the trial.")
        left, right = st.columns(2)
        with left:
            st.subheader("Config")
            st.json(trial["config"])
        with right:
            st.subheader("Status history")
            events = pd.DataFrame(store.trial_events(trial_id), columns=["at", "status", "detail"])
            events["at"] = events["at"].map(_when)
            events["status"] = events["status"].map(status_label)
            st.dataframe(events, hide_index=True, width="stretch")
        st.subheader("Stop")
        stopping.stop_controls(
            store,
            store.sweep(sweep["id"], best=False) or sweep,
            [trial],
            key="trial",
            only=trial_id,
        )


body()
