"""The live page's data path, one function per refresh step, shared with the benchmark.

A refresh reads the trials (status and config change while a sweep runs), fetches only
the points newer than those already held, rebuilds the trial table from the held
summaries, and draws the curves from cached, downsampled series.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboard import charts
from dashboard.data import Filter, SweepPoints, XAxis, filter_trials, hyperparameters, trial_table
from runner.store import Store

__all__ = ["LiveFrame", "LiveOptions", "figure", "refresh"]


@dataclass(frozen=True)
class LiveOptions:
    """What the live chart shows; the page's widgets fill it in."""

    metric: str = "train_loss"
    x: XAxis = "step"
    smoothing: float = 0.0
    log_y: bool = False
    color_by: str | None = None
    budget: int = charts.DEFAULT_POINT_BUDGET


@dataclass(frozen=True)
class LiveFrame:
    sweep: dict[str, Any]  # as now in the store: status, stop request, heartbeat
    trials: list[dict[str, Any]]
    params: list[str]
    table: pd.DataFrame
    new_points: int


def refresh(store: Store, points: SweepPoints, sweep: Mapping[str, Any]) -> LiveFrame:
    """Read what changed since the last refresh and rebuild the trial table."""
    now = store.sweep(str(sweep["id"]), best=False) or dict(sweep)
    trials = store.trials(str(sweep["id"]))
    new = points.refresh(store)
    params = hyperparameters(trials, sweep.get("spec"))
    table = trial_table(trials, points, sweep=sweep, params=params)
    return LiveFrame(now, trials, params, table, new)


def shown_trials(
    frame: LiveFrame,
    filters: Iterable[Filter] = (),
    selected: Sequence[int] = (),
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """(filtered table, trials to draw): the selected rows if any, else every filtered row."""
    table = filter_trials(frame.table, filters)
    wanted = set(selected) or set(table["trial"])
    return table, [t for t in frame.trials if int(t["id"]) in wanted]


def figure(
    points: SweepPoints, trials: Sequence[Mapping[str, Any]], options: LiveOptions
) -> go.Figure:
    return charts.curves_figure(
        points,
        trials,
        metric=options.metric,
        x=options.x,
        smoothing=options.smoothing,
        log_y=options.log_y,
        color_by=options.color_by,
        budget=options.budget,
    )
