"""Hyperparameters: which one matters for the final metric, beside parallel coordinates of
every trial."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, compare, importance, jobs, live, ui, urlstate
from dashboard.data import (
    hyperparameters,
    metric_mode,
    sample_trials,
    shown_table,
    status_label,
    trial_number,
)
from runner.store import TrialStatus

# Up to this many finished trials the importance is computed in the page's run (about a
# second or two); above, on a background thread (dashboard.jobs), from a random sample of
# at most MAX_TRIALS of them: a 10,000-trial sweep's would take ten seconds or more.
INLINE_TRIALS = 300
MAX_TRIALS = 2_000


@st.cache_data(show_spinner="Resampling the trials…", max_entries=32)
def _importance(
    _trials: Sequence[Mapping[str, Any]],
    params: Sequence[str],
    _finals: Mapping[int, float],
    metric: str,
    method: str,
    key: tuple[Any, ...],
) -> importance.Importance:
    """Cached by `key` (the finished trials and their finals as arrays, hashed in
    microseconds) instead of the trials' dicts, whose hashing took seconds at 10,000."""
    return importance.importance(_trials, params, _finals, metric, method=method)


def _show_importance(found: importance.Importance, total: int, later: str) -> None:
    """The bars and what they are over: every finished trial with a final value, or (a
    large sweep) a random sample of them."""
    st.plotly_chart(importance.importance_figure(found), key="hp_importance")
    over = (
        f"a random {found.n_trials:,} of the {total:,} finished trials"
        if found.n_trials < total
        else f"the {found.n_trials:,} finished trials"
    )
    st.caption(
        f"{found.method} over {found.n_resamples} bootstrap resamples of {over} with a "
        f"final {found.metric}: the bar is the mean share, the whisker the central "
        f"{found.confidence:.0%} of resamples.{later}"
    )


@st.fragment(run_every=1.0)
def _wait_for(job: Future[Any]) -> None:
    """Poll a background job each second; once it is done, run the page again to show it."""
    if job.done():
        st.rerun()


st.title("Hyperparameters")
store = ui.store()
# Over MANY_TRIALS trials the page reads no sweep's every point: the metric names from a
# fixed random live.NAMES_SAMPLE of the trials (among the live page's sample:
# `sample_trials` draws the same first ones), then the chosen metric of every trial.
sweep = ui.current_sweep(store)
large = live.sampled(sweep, None)
sweep, trials, points = ui.loaded_sweep(store, sweep=sweep, read_points=not large)
st.button("↻ Refresh", key="hparams_refresh")
params = hyperparameters(trials, sweep["spec"])
if large:
    sample = ui.drawn_points(sweep["id"])
    sample.include(sample_trials([int(t["id"]) for t in trials], live.NAMES_SAMPLE))
    metrics = ui.refreshed(store, sample).metrics()
    if sweep["metric"] not in metrics:
        metrics = [*metrics, sweep["metric"]]
else:
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
            "number": trial_number(t),
            "status": status_label(t["status"]),
            **{p: t["config"].get(p) for p in params},
        }
        for t in trials
    ]
)
if large:
    points = ui.refreshed(store, ui.metric_points(sweep["id"], metric))
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
    # Keyed on the finished trials' values only, so a running trial's step misses no cache.
    done = {t["id"] for t in finished}
    ended = {i: v for i, v in finals.items() if i in done}
    key = (
        store.url,
        sweep["id"],
        tuple(params),
        np.array(sorted(ended), dtype=np.int64).tobytes(),
        np.array([ended[i] for i in sorted(ended)], dtype=np.float64).tobytes(),
    )
    n_final = sum(1 for v in ended.values() if np.isfinite(v))
    try:
        if len(finished) <= INLINE_TRIALS:
            _show_importance(
                _importance(finished, params, ended, metric, method, key), n_final, later
            )
        else:
            job = jobs.submit(
                ("importance", *key, metric, method),
                importance.importance,
                finished,
                params,
                ended,
                metric,
                method=method,
                max_trials=MAX_TRIALS,
            )
            if job.done():
                _show_importance(job.result(), n_final, later)
            else:
                st.info(
                    f"Resampling {min(n_final, MAX_TRIALS):,} of the {len(finished):,} finished "
                    "trials in the background (seconds on a sweep this large); the chart "
                    "appears here by itself.",
                    icon=":material/hourglass_top:",
                )
                _wait_for(job)
    except ValueError as exc:
        st.info(f"No importance yet: among finished trials, {exc}{later}")

st.dataframe(
    shown_table(drawn.sort_values(metric, ascending=metric_mode(metric, sweep) == "min")),
    hide_index=True,
    width="stretch",
)
