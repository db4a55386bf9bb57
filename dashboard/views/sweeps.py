"""Sweeps: every sweep in the store; pick one to watch."""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.data import sweep_table

st.title("Sweeps")
store = ui.store()
with ui.guard():
    table = sweep_table(store.sweeps())
    if table.empty:
        st.info(
            f"The store {ui.redacted(store.url)} holds no sweeps yet. Start one with "
            "`sweepscope run experiments/sweeps/smoke.yaml`; it appears here on its own."
        )
        st.stop()

    def _pick() -> None:
        rows = st.session_state["sweeps_table"].selection.rows
        if rows:
            st.session_state[ui.SWEEP_KEY] = table["sweep"].iloc[rows[0]]
            st.session_state.pop("unknown_sweep", None)

    st.dataframe(
        table,
        key="sweeps_table",
        on_select=_pick,
        selection_mode="single-row",
        hide_index=True,
        width="stretch",
        column_config={"best": st.column_config.NumberColumn(format="%.4g")},
    )
    chosen = st.session_state.get(ui.SWEEP_KEY)
    st.caption(f"Chosen: **{chosen}** (click a row, or use the sidebar, to choose another).")
    cols = st.columns(5)
    cols[0].page_link("views/live.py", label="Live sweep", icon=":material/show_chart:")
    cols[1].page_link("views/compare.py", label="BN vs no-BN", icon=":material/compare_arrows:")
    cols[2].page_link("views/trial.py", label="Trial detail", icon=":material/search:")
    cols[3].page_link("views/hparams.py", label="Hyperparameters", icon=":material/tune:")
    cols[4].page_link("views/versus.py", label="Sweep vs sweep", icon=":material/difference:")
