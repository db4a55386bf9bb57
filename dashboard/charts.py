"""The plotly figures of the pages. Curves are WebGL (Scattergl) traces of downsampled points.

The live chart draws one trace per colour group, not one per trial: the group's trials
are joined with NaN gaps, and each point carries its trial id for the hover. A thousand
trials then cost the browser a handful of WebGL traces, each of bounded size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.compare import Interval
from dashboard.data import (
    EARLY_END,
    MIN_CURVE_POINTS,
    SweepPoints,
    XAxis,
    ordered,
    status_label,
)
from runner.store import TrialStatus

__all__ = [
    "DEFAULT_POINT_BUDGET",
    "band_figure",
    "colour_groups",
    "curves_figure",
    "differences_figure",
    "level_colour",
    "level_label",
    "lr_figure",
    "pairs_figure",
    "parallel_figure",
    "speedup_figure",
    "trial_figure",
]

# Points sent to the browser for the whole live chart, shared out between the curves.
DEFAULT_POINT_BUDGET = 150_000
MAX_POINTS_PER_CURVE = 2_000

PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]
BOOL_COLOURS = {True: "#1f77b4", False: "#ff7f0e"}
MARKERS: dict[str, tuple[str, str]] = {  # how an early end shows at the end of its curve
    TrialStatus.DIVERGED: ("x", "#d62728"),
    TrialStatus.ERROR: ("diamond", "#8b0000"),
    TrialStatus.PRUNED: ("triangle-down", "#555555"),
    TrialStatus.STOPPED: ("square", "#555555"),
    TrialStatus.STOPPED_BY_USER: ("square-open", "#000000"),
}
X_TITLES = {"step": "step", "time": "seconds since the trial started"}
_LAYOUT: dict[str, Any] = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    "hovermode": "closest",
}


def level_label(param: str | None, value: Any) -> str:
    """How a hyperparameter value reads in a legend: `BN on` / `BN off` for batch_norm."""
    if param is None:
        return "all trials"
    if param == "batch_norm" and isinstance(value, bool):
        return "BN on" if value else "BN off"
    return f"{param}={value}"


def level_colour(index: int, value: Any = None) -> str:
    """The colour of the index-th group; booleans keep theirs (BN on blue, off orange)."""
    if isinstance(value, bool):
        return BOOL_COLOURS[value]
    return PALETTE[index % len(PALETTE)]


def colour_groups(
    trials: Sequence[Mapping[str, Any]],
    param: str | None,
    max_groups: int = 10,
) -> tuple[dict[int, str], dict[str, str]]:
    """Group trials by `param` for colouring: (trial id -> label, label -> colour).

    A numeric hyperparameter with more than `max_groups` values is cut into quantile bins
    (log-spaced values such as a learning rate bin on a log scale).
    """
    values = {int(t["id"]): (t["config"].get(param) if param else None) for t in trials}
    distinct = sorted(
        {
            v
            for v in values.values()
            if v is not None and not isinstance(v, bool) and isinstance(v, int | float)
        }
    )
    numeric = bool(distinct) and all(
        isinstance(v, int | float) and not isinstance(v, bool) or v is None for v in values.values()
    )
    if param is not None and numeric and len(distinct) > max_groups:
        series = pd.Series(values, dtype="float64")
        edges = np.unique(np.quantile(series.dropna(), np.linspace(0, 1, max_groups + 1)))
        bins = np.clip(
            np.searchsorted(edges, series.to_numpy(), side="right") - 1, 0, len(edges) - 2
        )
        names = [f"{param} in [{edges[i]:.3g}, {edges[i + 1]:.3g}]" for i in range(len(edges) - 1)]
        labels = {
            trial: (names[b] if not math.isnan(v) else f"{param}=None")
            for (trial, v), b in zip(series.items(), bins, strict=True)
        }
        order = [*names, f"{param}=None"]
    else:
        distinct = ordered({repr(v): v for v in values.values()}.values())
        order = [level_label(param, v) for v in distinct]
        labels = {trial: level_label(param, v) for trial, v in values.items()}
        colours = {level_label(param, v): level_colour(i, v) for i, v in enumerate(distinct)}
        return labels, colours
    used = [name for name in order if name in set(labels.values())]
    return labels, {name: level_colour(i) for i, name in enumerate(used)}


def _joined(curves: Sequence[tuple[int, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """Curves joined into one trace: NaN between them so the lines do not connect."""
    gap = np.array([np.nan])
    xs, ys, ids = [], [], []
    for trial, x, y in curves:
        xs += [x, gap]
        ys += [y, gap]
        ids.append(np.full(len(x) + 1, trial, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ids)


def curves_figure(
    points: SweepPoints,
    trials: Sequence[Mapping[str, Any]],
    *,
    metric: str,
    x: XAxis = "step",
    smoothing: float = 0.0,
    log_y: bool = False,
    color_by: str | None = None,
    budget: int = DEFAULT_POINT_BUDGET,
    height: int = 480,
) -> go.Figure:
    """Every given trial's curve of `metric`, coloured by `color_by`; early ends marked."""
    per_curve = max(MIN_CURVE_POINTS * 10, min(MAX_POINTS_PER_CURVE, budget // max(1, len(trials))))
    labels, colours = colour_groups(trials, color_by)
    lines: dict[tuple[str, bool], list[tuple[int, np.ndarray, np.ndarray]]] = {}
    ends: dict[str, list[tuple[int, float, float]]] = {}
    for t in trials:
        trial = int(t["id"])
        cx, cy = points.curve(trial, metric, x=x, smoothing=smoothing, max_points=per_curve)
        if not len(cx):
            continue
        early = t["status"] in EARLY_END
        lines.setdefault((labels[trial], early), []).append((trial, cx, cy))
        if early:
            ends.setdefault(t["status"], []).append((trial, float(cx[-1]), float(cy[-1])))
    fig = go.Figure()
    hover = f"trial %{{customdata}}<br>{X_TITLES[x]} %{{x:.4~g}}<br>{metric} %{{y:.4~g}}"
    for label in colours:
        for early in (False, True):
            curves = lines.get((label, early))
            if not curves:
                continue
            jx, jy, ids = _joined(curves)
            fig.add_trace(
                go.Scattergl(
                    x=jx,
                    y=jy,
                    customdata=ids,
                    mode="lines",
                    name=label,
                    legendgroup=label,
                    showlegend=not early or (label, False) not in lines,
                    line={
                        "color": colours[label],
                        "width": 1.2,
                        "dash": "dash" if early else "solid",
                    },
                    opacity=0.8,
                    hovertemplate=hover + f"<extra>{label}</extra>",
                )
            )
    for status, where in ends.items():
        symbol, colour = MARKERS.get(status, ("circle", "#000000"))
        fig.add_trace(
            go.Scattergl(
                x=[w[1] for w in where],
                y=[w[2] for w in where],
                customdata=[w[0] for w in where],
                mode="markers",
                name=status_label(status),
                marker={
                    "symbol": symbol,
                    "size": 10,
                    "color": colour,
                    "line": {"width": 2, "color": colour},
                },
                hovertemplate=f"trial %{{customdata}}: {status_label(status)}<extra></extra>",
            )
        )
    fig.update_layout(
        **_LAYOUT,
        height=height,
        uirevision="live",
        xaxis_title=X_TITLES[x],
        yaxis_title=metric + (" (EMA)" if smoothing else ""),
        yaxis_type="log" if log_y else "linear",
    )
    return fig


def band_figure(
    bands: Mapping[str, pd.DataFrame],
    colours: Mapping[str, str],
    *,
    metric: str,
    x_title: str = "step",
    log_y: bool = False,
) -> go.Figure:
    """Mean ± one standard deviation of each group's curves."""
    fig = go.Figure()
    for label, band in bands.items():
        if band.empty:
            continue
        colour = colours[label]
        upper, lower = band["mean"] + band["std"], band["mean"] - band["std"]
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([band["x"], band["x"][::-1]]),
                y=np.concatenate([upper, lower[::-1]]),
                fill="toself",
                fillcolor=colour,
                opacity=0.2,
                line={"width": 0},
                hoverinfo="skip",
                legendgroup=label,
                showlegend=False,
                name=f"{label} ± sd",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=band["x"],
                y=band["mean"],
                customdata=band["n"],
                mode="lines",
                name=label,
                legendgroup=label,
                line={"color": colour, "width": 2.5},
                hovertemplate=(
                    f"{label}<br>{x_title} %{{x:.4~g}}<br>mean {metric} %{{y:.4~g}}"
                    "<br>over %{customdata} trials<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        **_LAYOUT,
        height=420,
        xaxis_title=x_title,
        yaxis_title=f"{metric}: mean ± sd",
        yaxis_type="log" if log_y else "linear",
    )
    return fig


def pairs_figure(
    pairs: Sequence[tuple[str, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]],
    names: tuple[str, str],
    colours: tuple[str, str],
    *,
    metric: str,
    log_y: bool = False,
    columns: int = 4,
) -> go.Figure:
    """Small multiples: one panel per pair, A and B overlaid."""
    rows = max(1, math.ceil(len(pairs) / columns))
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[p[0] for p in pairs],
        horizontal_spacing=0.04,
        vertical_spacing=min(0.12, 0.5 / rows),
    )
    for i, (_, (xa, ya), (xb, yb)) in enumerate(pairs):
        row, col = i // columns + 1, i % columns + 1
        for side, (x, y) in enumerate(((xa, ya), (xb, yb))):
            fig.add_trace(
                go.Scattergl(
                    x=x,
                    y=y,
                    mode="lines",
                    name=names[side],
                    legendgroup=names[side],
                    showlegend=i == 0,
                    line={"color": colours[side], "width": 1.5},
                    hovertemplate=(
                        f"{names[side]}<br>step %{{x}}<br>{metric} %{{y:.4~g}}<extra></extra>"
                    ),
                ),
                row=row,
                col=col,
            )
    fig.update_annotations(font_size=11)
    if log_y:
        fig.update_yaxes(type="log")
    fig.update_layout(
        **{**_LAYOUT, "margin": {"l": 50, "r": 20, "t": 70, "b": 40}}, height=max(280, 220 * rows)
    )
    fig.update_layout(legend={"y": 1.0, "yanchor": "top", "yref": "container"})
    return fig


def differences_figure(
    diffs: pd.DataFrame, interval: Interval, *, metric: str, names: tuple[str, str]
) -> go.Figure:
    """B - A per pair as dots, with the mean and its bootstrap interval."""
    frame = diffs.dropna(subset=["B - A"]).sort_values("B - A")
    fig = go.Figure(
        go.Scatter(
            x=frame["B - A"],
            y=frame["pair"],
            mode="markers",
            marker={"size": 9, "color": "#444"},
            name="pair",
            hovertemplate="%{y}<br>B - A = %{x:.4~g}<extra></extra>",
        )
    )
    if math.isfinite(interval.low):
        fig.add_vrect(
            x0=interval.low, x1=interval.high, fillcolor="#1f77b4", opacity=0.15, line_width=0
        )
    if math.isfinite(interval.estimate):
        fig.add_vline(
            x=interval.estimate,
            line={"color": "#1f77b4", "width": 2},
            annotation_text="mean",
            annotation_position="top",
        )
    fig.add_vline(x=0, line={"color": "#999", "dash": "dot"})
    fig.update_layout(
        **_LAYOUT,
        height=max(240, 24 * len(frame) + 100),
        xaxis_title=f"final {metric}: {names[1]} − {names[0]}",
        yaxis_title=None,
        showlegend=False,
    )
    return fig


def speedup_figure(frame: pd.DataFrame, interval: Interval, *, names: tuple[str, str]) -> go.Figure:
    """Speed-up of B per pair (steps of A / steps of B), log x, 1 = no speed-up."""
    both = frame.dropna(subset=["speed-up of B"]).sort_values("speed-up of B")
    fig = go.Figure(
        go.Scatter(
            x=both["speed-up of B"],
            y=both["pair"],
            mode="markers",
            marker={"size": 9, "color": "#2ca02c"},
            hovertemplate="%{y}<br>speed-up %{x:.3~g}×<extra></extra>",
        )
    )
    if interval.n and math.isfinite(interval.low):
        fig.add_vrect(
            x0=interval.low, x1=interval.high, fillcolor="#2ca02c", opacity=0.15, line_width=0
        )
    if interval.n:
        fig.add_vline(
            x=interval.estimate,
            line={"color": "#2ca02c", "width": 2},
            annotation_text="geometric mean",
            annotation_position="top",
        )
    fig.add_vline(x=1, line={"color": "#999", "dash": "dot"})
    shown = [1.0, *both["speed-up of B"]]
    if interval.n and math.isfinite(interval.low):
        shown += [interval.low, interval.high]
    span = [math.log10(min(shown) / 1.3), math.log10(max(shown) * 1.3)]
    fig.update_xaxes(range=span)
    fig.update_layout(
        **_LAYOUT,
        height=max(240, 24 * len(both) + 100),
        xaxis_type="log",
        xaxis_title=f"speed-up of {names[1]}: steps({names[0]}) / steps({names[1]})",
        showlegend=False,
    )
    return fig


def lr_figure(
    frame: pd.DataFrame, *, x: str, metric: str, colours: Mapping[str, str], log_x: bool = True
) -> go.Figure:
    """Final metric against a hyperparameter (the learning rate), per group: every trial as
    a dot (diverged ones as ✕) and the group mean as a line."""
    fig = go.Figure()
    for label, group in frame.groupby("group", sort=False):
        colour = colours[str(label)]
        diverged = group["status"] == TrialStatus.DIVERGED
        fig.add_trace(
            go.Scatter(
                x=group[x],
                y=group["final"],
                mode="markers",
                name=str(label),
                legendgroup=str(label),
                marker={
                    "color": colour,
                    "size": 9,
                    "opacity": 0.7,
                    "symbol": np.where(diverged, "x", "circle"),
                },
                customdata=group["trial"],
                hovertemplate=f"trial %{{customdata}}<br>{x} %{{x:.4~g}}<br>final {metric} "
                "%{y:.4~g}<extra></extra>",
            )
        )
        means = group.groupby(x)["final"].mean().sort_index()
        fig.add_trace(
            go.Scatter(
                x=means.index,
                y=means.to_numpy(),
                mode="lines",
                legendgroup=str(label),
                showlegend=False,
                line={"color": colour, "width": 2},
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        **_LAYOUT,
        height=420,
        xaxis_title=x,
        yaxis_title=f"final {metric}",
        xaxis_type="log" if log_x else "linear",
    )
    return fig


def parallel_figure(table: pd.DataFrame, params: Sequence[str], metric: str) -> go.Figure:
    """Parallel coordinates: one axis per hyperparameter and a last one for the metric."""
    dims = []
    for p in params:
        col = table[p]
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        if numeric and col.nunique() > 1:
            values = col.astype("float64")
            if (values > 0).all() and values.max() / values.min() >= 100:
                dims.append({"label": f"log10 {p}", "values": np.log10(values)})
            else:
                dims.append({"label": p, "values": values})
        else:
            text = col.map(str)
            cats = sorted(text.unique())
            dims.append(
                {
                    "label": p,
                    "values": text.map({c: i for i, c in enumerate(cats)}),
                    "tickvals": list(range(len(cats))),
                    "ticktext": cats,
                }
            )
    final = table[metric].astype("float64")
    dims.append({"label": metric, "values": final})
    fig = go.Figure(
        go.Parcoords(
            line={
                "color": final,
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": metric}},
            },
            dimensions=dims,
        )
    )
    fig.update_layout(margin={"l": 60, "r": 60, "t": 60, "b": 30}, height=480)
    return fig


def trial_figure(points: SweepPoints, trial_id: int, metrics: Sequence[str]) -> go.Figure:
    """Every metric of one trial, one panel each, sharing the step axis."""
    fig = make_subplots(
        rows=max(1, len(metrics)),
        cols=1,
        shared_xaxes=True,
        subplot_titles=list(metrics),
        vertical_spacing=0.08,
    )
    for i, metric in enumerate(metrics):
        x, y = points.curve(trial_id, metric, max_points=MAX_POINTS_PER_CURVE)
        fig.add_trace(
            go.Scattergl(
                x=x,
                y=y,
                mode="lines+markers" if len(x) < 60 else "lines",
                name=metric,
                line={"color": level_colour(i)},
                hovertemplate=f"step %{{x}}<br>{metric} %{{y:.4~g}}<extra></extra>",
            ),
            row=i + 1,
            col=1,
        )
    fig.update_xaxes(title_text="step", row=max(1, len(metrics)), col=1)
    fig.update_layout(**_LAYOUT, height=230 * max(1, len(metrics)) + 60, showlegend=False)
    return fig
