"""A sweep's panel of one metric, drawn by the dashboard's own figure code.

`dashboard.live.panel` is what the live page draws (over `dashboard.charts.panel_figure`):
the same smoothing, y-range, log axis, best-trial emphasis and, for a seeded sweep, one
median curve with a band per configuration; its hover names trials by their number. The
points come through the page's own read (`dashboard.data.SweepPoints`). Neither module
imports Streamlit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from dashboard import live
from dashboard.data import SweepPoints, hyperparameters
from runner.store import Store

__all__ = ["panel_figure"]


def panel_figure(
    store: Store, sweep: Mapping[str, Any], metric: str, best: int | None
) -> go.Figure:
    """The live page's panel of `metric` over every trial of `sweep`.

    Args:
        store: the store to read.
        sweep: the sweep: its id, name, and spec (as stored).
        metric: the metric to draw.
        best: the best trial's number, drawn thick (None: none, or a seeded sweep).

    Raises:
        ValueError: no trial has a finite point of `metric`; the message lists the metrics
            that have points.
        StoreError: the store cannot be read (StoreUnavailable: it did not answer).
    """
    held = SweepPoints(str(sweep["id"]))
    held.refresh(store)
    trials = store.trials(str(sweep["id"]))  # after the points: every trial they name
    params = hyperparameters(trials, sweep.get("spec"))
    configurations = live.configurations_for(sweep)
    if configurations is not None:
        configurations.update(trials, params)
    options = live.LiveOptions(collapse=configurations is not None)
    best_id = next((int(t["id"]) for t in trials if int(t["number"]) == best), None)
    found = live.panel(
        held,
        trials,
        metric,
        options,
        params=params,
        best=best_id,
        configurations=configurations,
    )
    if found is None:
        raise ValueError(
            f"metric={metric!r}: no trial of sweep {sweep['id']} has a finite point of it "
            f"yet. Fix: pass one of the metrics its trials report: {held.metrics()}."
        )
    title = f"{sweep['name']} ({sweep['id']}): {live.metric_title(metric)}"
    if found.smoothed:
        title += f", smoothed (EMA {options.smoothing})"
    # Room above the legend (at the plot's top edge) for the title.
    found.figure.update_layout(title={"text": title, "y": 0.98, "yanchor": "top"}, margin={"t": 90})
    return found.figure
