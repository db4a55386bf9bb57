"""Live sweep: a panel per metric at the top, the trial table below, refreshed while the
sweep runs. Every choice on this page is kept in the URL (dashboard.urlstate).

A seeded sweep opens collapsed: a curve and band per configuration across its seeds, and a
table row per configuration; "Each seed" expands to the single trials."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import live, stopping, ui, urlstate
from dashboard.bands import BANDS, DEFAULT_BAND
from dashboard.data import STATUS_LABELS, Filter, shown_table
from runner import verdicts
from runner.errors import SweepscopeError
from runner.protocol import is_system_metric

st.title("Live sweep")
store = ui.store()
sweep = ui.current_sweep(store)
# A seeded sweep's trial -> configuration map, grown as trials appear (None without seeds)
held = f"live_configurations_{sweep['id']}"
if held not in st.session_state:
    st.session_state[held] = live.configurations_for(sweep)
configurations: live.Configurations | None = st.session_state[held]
# Over MANY_TRIALS trials: `points` holds the sweep's metric of every trial (the table,
# the ranking, the best), `drawing` every metric of the trials drawn (live.BAND_SAMPLE).
large = live.sampled(sweep, configurations)
if large:
    points = ui.metric_points(sweep["id"], str(sweep["metric"]))
    drawing = ui.drawn_points(sweep["id"])
else:
    points = drawing = ui.sweep_points(sweep["id"])


def read_drawn(
    frame: live.LiveFrame, shown: list[int], best: int | None, highlighted: list[int]
) -> list[int] | None:
    """A large sweep: read the points of the trials the panels draw; returns the trials
    its bands are over (None: a sweep whose every point is held)."""
    if not large:
        return None
    ids, sample = live.drawn_trials(frame, shown, best=best, highlight=highlighted)
    drawing.include(ids)
    drawing.refresh(store)
    return sample


try:
    first = live.refresh(store, points, sweep, configurations)
    read_drawn(first, [int(t["id"]) for t in first.trials], live.best_trial(first), [])
except SweepscopeError as exc:
    ui.show_error(exc)
    st.stop()
params = first.params
fresh: dict[str, live.LiveFrame] = {"frame": first}  # the body's first run reuses it

# -- how the panels draw -------------------------------------------------------------------
each_seed = configurations is not None and st.toggle(
    "Each seed: every trial's own curve and row",
    help=f"Off: one curve per configuration (its settings without the seed), the median "
    f"over its {configurations.n_seeds} seeds with a band across them, and a table row per "
    "configuration. On: every trial, as for a sweep without seeds.",
    **urlstate.bound_toggle("q_seeds"),
)
c1, c2, c3, c4, c5, c6 = st.columns([2, 2, 2, 2, 1.2, 1.4], vertical_alignment="bottom")
collapse = configurations is not None and not each_seed
one_colour_each = "In the collapsed view each configuration has a colour of its own."
choices: list[str | None] = [None, *params]
colour = c1.selectbox(
    "Colour by",
    choices,
    index=choices.index("batch_norm") if "batch_norm" in params else 0,
    format_func=lambda p: "nothing" if p is None else p,
    disabled=collapse,
    help=one_colour_each if collapse else None,
    **urlstate.bound("q_colour", choices, format_func=lambda p: "nothing" if p is None else p),
)
group = c2.selectbox(
    "Group by",
    choices,
    format_func=lambda p: "no grouping" if p is None else p,
    disabled=collapse,
    help=one_colour_each + " Turn on Each seed to group trials by a hyperparameter."
    if collapse
    else "One curve per value of this hyperparameter with a band around it.",
    **urlstate.bound("q_group", choices, format_func=lambda p: "no grouping" if p is None else p),
)
crowded = len(first.trials) > live.MANY_TRIALS  # panels draw bands and the best curves
band = c3.selectbox(
    "Band",
    list(BANDS),
    index=list(BANDS).index(DEFAULT_BAND),
    format_func=BANDS.__getitem__,
    disabled=group is None and not collapse and not crowded,
    **urlstate.bound("q_band", list(BANDS), format_func=BANDS.__getitem__),
)
smoothing = c4.slider(
    "Smoothing (EMA)",
    0.0,
    0.99,
    live.DEFAULT_SMOOTHING,
    0.01,
    help="Per-step curves only; 0 turns it off. The raw values show faintly behind.",
    **urlstate.bound_number("q_smooth", 0.0, 0.99),
)
x_label = {"step": "step", "time": "wall time"}.__getitem__
x_axis = c5.radio(
    "x axis",
    ["step", "time"],
    horizontal=True,
    format_func=x_label,
    **urlstate.bound("q_x", ["step", "time"], format_func=x_label),
)
has_system = any(is_system_metric(m) for m in drawing.metrics())
system = c6.toggle(
    "sys/ panels",
    disabled=not has_system,
    help="CPU, memory and GPU of each trial's process (the `sys/` metrics)."
    if has_system
    else "The trials report no `sys/` metrics.",
    **urlstate.bound_toggle("q_sys"),
)

# -- which trials --------------------------------------------------------------------------
filters: list[Filter] = []
with st.expander("Filter trials"):
    cols = st.columns(min(4, len(params) + 1))
    labels = list(STATUS_LABELS.values())
    statuses = cols[0].multiselect("status", labels, **urlstate.bound("q_f_status", labels))
    if statuses:
        filters.append(Filter("status", tuple(statuses)))
    for i, p in enumerate(params, start=1):
        values = sorted({v for v in first.table[p] if v is not None}, key=str)
        chosen = cols[i % len(cols)].multiselect(p, values, **urlstate.bound(f"q_f_{p}", values))
        if chosen:
            filters.append(Filter(p, tuple(chosen)))


def highlight_from_chart(key: str) -> None:
    """A click on a curve highlights its trial in every panel (a click on nothing clears)."""
    chosen = []
    for point in st.session_state[key]["selection"]["points"]:
        data = point.get("customdata")
        trial = data[0] if isinstance(data, list) and data else data
        if isinstance(trial, int | float) and int(trial) in st.session_state["live_ids"]:
            chosen.append(int(trial))
    st.session_state["q_trials"] = sorted(set(chosen))
    st.session_state["live_table_gen"] = st.session_state.get("live_table_gen", 0) + 1


def highlight_from_table(key: str) -> None:
    """Selecting table rows highlights their trials (a configuration's: all its seeds) in
    every panel."""
    shown = st.session_state.get("live_table_ids", [])
    rows = st.session_state[key]["selection"]["rows"]
    st.session_state["q_trials"] = sorted({t for r in rows if r < len(shown) for t in shown[r]})


def announce(frame: live.LiveFrame) -> None:
    """A notice for each trial that diverges, fails or is pruned while the page is open."""
    key = f"live_announced_{frame.sweep['id']}"
    if key not in st.session_state:  # those that ended before the page opened: no notice
        st.session_state[key] = {int(t["id"]) for t in frame.trials if t["status"] in live.NOTIFY}
        return
    for trial in live.news(frame.trials, st.session_state[key]):
        icon = ":material/error:" if trial["status"] != "pruned" else ":material/content_cut:"
        st.toast(live.announcement(trial, frame.params), icon=icon, duration="long")


def draw_panels(
    frame: live.LiveFrame,
    table: pd.DataFrame,
    drawn: list[dict[str, Any]],
    highlighted: list[int],
    best: int | None,
    sample: list[int] | None,
) -> None:
    """A panel per metric over the trials shown, with the caption that says how they are
    drawn; with a large sweep's `sample`, the bands are over those trials only."""
    metrics = live.panel_metrics(drawing, system=system)
    if drawing.n_points == 0 or not metrics:
        st.info(
            "No points yet: the trials have not reported a step. A panel per metric "
            "appears here as soon as they do."
        )
    else:
        note = st.empty()
        width = min(3, len(metrics))
        slots = [
            col.container(border=True)
            for row in range(0, len(metrics), width)
            for col in st.columns(width)
        ]
        scales = {m: y_scale(slot, m) for slot, m in zip(slots, metrics, strict=False)}
        options = live.LiveOptions(
            x="time" if x_axis == "time" else "step",
            smoothing=smoothing,
            color_by=None if collapse else colour,
            group_by=None if collapse else group,
            band=band,
            y_scales=scales,
            highlight=frozenset(highlighted),
            system=system,
            collapse=collapse,
        )
        if collapse:
            note.caption(collapsed_caption(frame, options, table, drawn))
        else:
            note.caption(caption(frame, options, best, len(drawn), sample))
        ranked = live.ranked_trials(frame) if live.many(drawn, options) else []
        for slot, metric in zip(slots, metrics, strict=False):
            panel = live.panel(
                drawing,
                drawn,
                metric,
                options,
                params=frame.params,
                best=best,
                configurations=frame.configurations,
                ranked=ranked,
                band_sample=sample,
            )
            with slot:
                if panel is None:
                    st.caption(f"{live.metric_title(metric)}: no points from the trials shown.")
                else:
                    chart(panel)


def trial_table(table: pd.DataFrame, row_ids: list[list[int]]) -> None:
    """The trials (or, with seeds collapsed, configurations) table; selecting a row highlights
    its trials."""
    st.subheader("Configurations" if collapse else "Trials")
    if collapse:
        st.caption(
            "One row per configuration, best mean first. seeds: finished seeds with a "
            "final value, of all; the mean and its 95% CI are over those finals (the CI "
            f"needs {verdicts.MIN_SEEDS} or more). Select a row to draw its seeds on top."
        )
    elif large:
        st.caption(
            f"Over {live.MANY_TRIALS:,} trials the table shows {sweep['metric']} only (latest "
            "and best), for every trial; the other metrics are read only for the trials the "
            "panels draw."
        )
    st.session_state["live_table_ids"] = row_ids
    table_key = (
        f"live_{'configs' if collapse else 'table'}_{st.session_state.get('live_table_gen', 0)}"
    )
    st.dataframe(
        table if collapse else shown_table(table),
        key=table_key,
        on_select=lambda: highlight_from_table(table_key),
        selection_mode="multi-row",
        hide_index=True,
        width="stretch",
        height=min(400, 38 + 35 * len(table)),
        column_config={
            c: st.column_config.NumberColumn(format="%.4g")
            for c in table.columns
            if c not in ("trial", "number", "round", "steps", *params)
            and table[c].dtype == "float64"
        },
    )


@st.fragment(run_every=ui.live_settings() if ui.is_running(sweep) else None)
def body() -> None:
    with ui.guard():
        frame = fresh.pop("frame", None) or live.refresh(store, points, sweep, configurations)
        if not ui.is_running(frame.sweep) and ui.is_running(sweep):
            st.rerun(scope="app")  # the sweep has ended: redraw once, then stop refreshing
        ui.sweep_header(frame.sweep, frame.trials)
        announce(frame)
        if not frame.trials:
            st.info(
                "This sweep has no trials yet: Ray is still starting them. This page "
                "updates on its own."
            )
            return
        table, drawn = live.shown_trials(frame, filters)
        ids = [int(t) for t in frame.table["trial"]]
        number = dict(zip(ids, (int(n) for n in frame.table["number"]), strict=True))
        st.session_state["live_ids"] = set(ids)

        def shown(trial: int) -> str:  # the URL, like the widget, names trials by number
            return str(number[trial])

        highlighted = st.multiselect(
            "Highlighted trials",
            ids,
            format_func=shown,
            placeholder="click a curve or a table row",
            **urlstate.bound("q_trials", ids, format_func=shown, why="no such trial in this sweep"),
        )
        best = None if collapse else live.best_trial(frame)
        sample = read_drawn(frame, [int(t) for t in table["trial"]], best, highlighted)
        if collapse:
            table, row_ids = live.configuration_rows(frame, points, drawn)
        else:
            row_ids = [[int(t)] for t in table["trial"]]
        draw_panels(frame, table, drawn, highlighted, best, sample)
        trial_table(table, row_ids)
        st.subheader("Stop")
        if collapse:
            st.caption(
                "Stopping is per trial: pick one seed of a configuration below (each names "
                "its settings and seed), or Stop sweep for all. Turn on Each seed above to "
                "see each trial's own curve first."
            )
        stopping.stop_controls(store, frame.sweep, frame.trials, key="live", params=params)


def caption(
    frame: live.LiveFrame,
    options: live.LiveOptions,
    best: int | None,
    n: int,
    sample: list[int] | None = None,
) -> str:
    """What the panels show; with a large sweep's band `sample`, that the bands are over it."""
    parts = [f"{n:,} trial{'s' if n != 1 else ''}"]
    over = ""
    if sample is not None and len(sample) < n:
        over = f" over a random {len(sample):,} of the {n:,} trials (fixed between refreshes)"
    if n > live.MANY_TRIALS and options.group_by is None:
        whose = f"each {options.color_by} group" if options.color_by else "all trials"
        parts.append(
            f"too many to draw one by one (over {live.MANY_TRIALS:,}): {whose} drawn as a "
            f"band ({live.band_legend(options, crowded=True)}{over}), and the "
            f"{live.TOP_CURVES} best by {frame.sweep['metric']} as curves; filter the "
            "trials or highlight some to draw others"
        )
    elif options.group_by is not None:
        parts.append(f"grouped by {options.group_by}: {live.band_legend(options)}{over}")
    elif options.color_by is not None:
        parts.append(f"coloured by {options.color_by}")
    if options.smoothing > 0:
        parts.append(f"per-step curves smoothed (EMA {options.smoothing:g}), raw values faint")
    if best is not None:
        row = frame.table.set_index("trial").loc[best]
        value = row[f"best {frame.sweep['metric']}"]
        parts.append(
            f"black: best so far, trial {row['number']} ({frame.sweep['metric']} {value:.4g})"
        )
    parts.append("dashed: ended early · ▲▼: beyond the axis")
    return " · ".join(parts) + ". Click a curve or a table row to highlight a trial everywhere."


def collapsed_caption(
    frame: live.LiveFrame, options: live.LiveOptions, table: Any, drawn: list[dict[str, Any]]
) -> str:
    """What the collapsed panels show: configurations, the band, which have no points yet,
    and the best configuration so far by its mean final over seeds (never one lucky seed)."""
    assert frame.configurations is not None  # the page collapses seeded sweeps only
    configs = frame.configurations
    n = len(table)
    parts = [
        f"{len(drawn)} trials in {n} configuration{'s' if n != 1 else ''} of "
        f"{configs.n_seeds} seeds: a curve per configuration, {live.band_legend(options)} "
        "(legend: seeds with points; hover: seeds at that step)"
    ]
    waiting = live.without_points(frame, points, drawn)
    if waiting:
        named = "; ".join(waiting[:3]) + (
            f" and {len(waiting) - 3} more" if len(waiting) > 3 else ""
        )
        parts.append(f"no points yet: {named}")
    if options.smoothing > 0:
        parts.append(f"per-step curves smoothed (EMA {options.smoothing:g}) before the median")
    metric = str(frame.sweep["metric"])
    best = live.best_configuration(table, metric)
    if best is not None:
        label = ", ".join(f"{p}={best[p]}" for p in configs.varied if p in best.index)
        parts.append(
            f"best configuration so far: {label} (mean final {metric} "
            f"{best[f'mean {metric}']:.4g}, seeds {best['seeds']})"
        )
    return " · ".join(parts) + "."


def y_scale(slot: Any, metric: str) -> str:
    """The panel's title, and its y axis: auto (log when the values span decades), linear
    or log."""
    title, control = slot.columns([2, 3], vertical_alignment="center")
    title.markdown(f"**{live.metric_title(metric)}**")
    short = {"auto": "auto", "linear": "lin", "log": "log"}.__getitem__
    chosen = control.segmented_control(
        f"y axis of {metric}",
        live.Y_SCALES,
        default="auto",
        format_func=short,
        label_visibility="collapsed",
        help="y axis: auto is log when the values span two decades or more",
        **urlstate.bound(f"q_y_{metric}", live.Y_SCALES, format_func=short),
    )
    return str(chosen or "auto")


def chart(panel: live.Panel) -> None:
    key = f"live_chart_{panel.metric}"
    st.plotly_chart(
        panel.figure,
        key=key,
        on_select=lambda: highlight_from_chart(key),
        selection_mode="points",
        config={"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]},
    )


body()
