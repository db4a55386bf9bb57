"""Trial detail: one trial's config, curves, status history, device and error."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from dashboard import charts, ui
from dashboard.data import hyperparameters, status_label
from runner.errors import SweepscopeError

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
if st.session_state.get("trial_id") not in ids:
    requested = st.query_params.get("trial")
    st.session_state["trial_id"] = (
        int(requested) if requested and requested.isdigit() and int(requested) in by_id else ids[0]
    )
trial_id = st.selectbox(
    "Trial",
    ids,
    key="trial_id",
    format_func=lambda i: (
        f"trial {i} · {status_label(by_id[i]['status'])} · "
        + ", ".join(f"{p}={by_id[i]['config'].get(p)}" for p in params)
    ),
)


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


@st.fragment(run_every=ui.live_settings())
def body() -> None:
    with ui.guard():
        trial = next((t for t in store.trials(sweep["id"]) if int(t["id"]) == trial_id), None)
        if trial is None:
            st.error(f"Sweep {sweep['id']} has no trial {trial_id}. Fix: pick one above.")
            return
        points.refresh(store)
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Status", status_label(trial["status"]))
        c2.metric("Steps", trial["last_step"] if trial["last_step"] is not None else "-")
        c3.metric("Device", trial["device"] or "-")
        c4.metric("Node", trial["node"] or "-")
        st.caption(
            f"Ray id {trial['ray_id']} · created {_when(trial['created_at'])} · "
            f"started {_when(trial['started_at'])} · ended {_when(trial['ended_at'])}"
        )
        if trial["error"]:
            st.subheader("Error")
            st.code(trial["error"], language=None)
        metrics = [m for m in points.metrics() if points.series(trial_id, m) is not None]
        st.subheader("Curves")
        if metrics:
            st.plotly_chart(charts.trial_figure(points, trial_id, metrics), key="trial_chart")
        else:
            st.info("No points yet: this trial has not reported a step.")
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
        ui.stop_controls(
            store,
            store.sweep(sweep["id"], best=False) or sweep,
            [trial],
            key="trial",
            only=trial_id,
        )


body()
