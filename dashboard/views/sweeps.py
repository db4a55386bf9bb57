"""Sweeps: every sweep in the store; pick one to watch.

A seeded sweep's "best" is its best configuration's mean final over seeds, with its
interval, as `sweepscope status` gives it: never the single luckiest trial."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import ui
from dashboard.data import hyperparameters, sweep_table
from runner import configurations
from runner.store import Store


@st.cache_data(ttl=15.0, show_spinner=False, max_entries=256)
def _best_configuration(
    _store: Store, _sweep: dict[str, Any], url: str, sweep_id: str, version: tuple[Any, ...]
) -> tuple[float, str] | None:
    """A seeded sweep's best configuration as (mean, label); one read of its trials and
    one of its metric's points, again only when the sweep moved on (`version`) or after
    15 s. `url` keeps stores apart; the arguments with a leading _ are not hashed."""
    sweep = _sweep
    trials = _store.trials(sweep_id)
    points = _store.points(sweep_id, metrics=[sweep["metric"]])
    best = configurations.best_configuration(sweep, trials, points)
    if best is None:
        return None
    varied = [
        p
        for p in hyperparameters(trials, sweep["spec"])
        if p != configurations.seed_key(sweep["spec"])
    ]
    interval = "" if best.low != best.low else f", 95% CI [{best.low:.4g}, {best.high:.4g}]"
    tied = f"; tied with {len(best.tied_with)} more" if best.tied_with else ""
    label = configurations.configuration_label(str(best.config), varied)
    return best.mean, f"{label}: mean of {best.n} seeds{interval}{tied}"


st.title("Sweeps")
store = ui.store()
with ui.guard():
    sweeps = store.sweeps()
    table = sweep_table(sweeps)
    if table.empty:
        st.info(
            f"The store {ui.redacted(store.url)} holds no sweeps yet. Start one with "
            "`sweepscope run experiments/sweeps/smoke.yaml`; it appears here on its own."
        )
        ui.wait_for_first_sweep()
        st.stop()
    seeded = [configurations.seed_key(sweep["spec"]) is not None for sweep in sweeps]
    if any(seeded):  # the column only where a sweep has seeds
        table.insert(table.columns.get_loc("best") + 1, "best configuration", "")
    for row, sweep in enumerate(sweeps):
        if not seeded[row]:
            continue
        version = (sweep["status"], sweep.get("ended_at"), tuple(sorted(sweep["counts"].items())))
        found = _best_configuration(store, sweep, store.url, sweep["id"], version)
        table.loc[row, ["best", "best configuration"]] = found or (None, "no final yet")

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
    st.caption(
        "best: for a seeded sweep, its best configuration's mean final over seeds (its 95% "
        "interval beside it), not the luckiest trial; otherwise the best value any trial "
        "reached."
        if any(seeded)
        else "best: the best value any trial reached (with `seeds` in the spec, the best "
        "configuration's mean over its seeds instead)."
    )
    chosen = st.session_state.get(ui.SWEEP_KEY)
    st.caption(f"Chosen: **{chosen}** (click a row, or use the sidebar, to choose another).")
    cols = st.columns(5)
    cols[0].page_link("views/live.py", label="Live sweep", icon=":material/show_chart:")
    cols[1].page_link("views/compare.py", label="BN vs no-BN", icon=":material/compare_arrows:")
    cols[2].page_link("views/trial.py", label="Trial detail", icon=":material/search:")
    cols[3].page_link("views/hparams.py", label="Hyperparameters", icon=":material/tune:")
    cols[4].page_link("views/versus.py", label="Sweep vs sweep", icon=":material/difference:")
