"""The figures that compare two groups of trials: BN against no BN (the compare page) and
sweep against sweep (the versus page).

Each group's centre line and band, small multiples of paired curves, the paired
differences and speed-ups with their bootstrap intervals, and the final metric against the
learning rate. Colours and legends are the live page's (`charts.level_colour`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.bands import BANDS, DEFAULT_BAND, band_label
from dashboard.charts import LAYOUT
from dashboard.compare import Interval
from runner.store import TrialStatus

__all__ = [
    "band_figure",
    "differences_figure",
    "lr_figure",
    "pairs_figure",
    "speedup_figure",
]


def band_figure(
    bands: Mapping[str, pd.DataFrame],
    colours: Mapping[str, str],
    *,
    metric: str,
    kind: str = DEFAULT_BAND,
    x_title: str = "step",
    log_y: bool = False,
) -> go.Figure:
    """Each group's centre line and band (frames from `bands.group_band` of that `kind`);
    the legend names the band's meaning."""
    meaning = band_label(kind)
    centre = "median" if kind in ("iqr", "minmax") else "mean"
    fig = go.Figure()
    for label, band in bands.items():
        if band.empty:
            continue
        colour = colours[label]
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([band["step"], band["step"][::-1]]),
                y=np.concatenate([band["upper"], band["lower"][::-1]]),
                fill="toself",
                fillcolor=colour,
                opacity=0.2,
                line={"width": 0},
                hoverinfo="skip",
                legendgroup=label,
                showlegend=True,
                name=f"{label}: {BANDS[kind]}",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=band["step"],
                y=band["centre"],
                customdata=np.stack([band["lower"], band["upper"], band["n"]], axis=-1),
                mode="lines",
                name=f"{label}: {centre}",
                legendgroup=label,
                line={"color": colour, "width": 2.5},
                hovertemplate=(
                    f"{label}<br>{x_title} %{{x:.4~g}}<br>{centre} {metric} %{{y:.4~g}}"
                    f"<br>{BANDS[kind]} %{{customdata[0]:.4~g}} – %{{customdata[1]:.4~g}}"
                    "<br>over %{customdata[2]} trials<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        **LAYOUT,
        height=420,
        xaxis_title=x_title,
        yaxis_title=f"{metric}: {meaning}",
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
        **{**LAYOUT, "margin": {"l": 50, "r": 20, "t": 70, "b": 40}}, height=max(280, 220 * rows)
    )
    fig.update_layout(legend={"y": 1.0, "yanchor": "top", "yref": "container"})
    return fig


def differences_figure(
    diffs: pd.DataFrame,
    interval: Interval,
    *,
    metric: str,
    names: tuple[str, str],
    floor: float | None = None,
) -> go.Figure:
    """B - A per pair as dots, with the mean and its bootstrap interval.

    Where `diffs` has `low` and `high` columns (a configuration pair's interval over its
    seeds) they are drawn as error bars; a noise `floor` is shaded grey around 0: single-run
    differences inside it are what seed noise alone gives."""
    frame = diffs.dropna(subset=["B - A"]).sort_values("B - A")
    error_x = None
    if {"low", "high"} <= set(frame.columns) and frame["low"].notna().any():
        error_x = {
            "type": "data",
            "symmetric": False,
            "array": (frame["high"] - frame["B - A"]).fillna(0).to_numpy(),
            "arrayminus": (frame["B - A"] - frame["low"]).fillna(0).to_numpy(),
            "color": "#888",
            "thickness": 1.5,
        }
    fig = go.Figure(
        go.Scatter(
            x=frame["B - A"],
            y=frame["pair"],
            mode="markers",
            marker={"size": 9, "color": "#444"},
            error_x=error_x,
            name="pair",
            hovertemplate="%{y}<br>B - A = %{x:.4~g}<extra></extra>",
        )
    )
    if floor is not None and math.isfinite(floor) and floor > 0:
        fig.add_vrect(
            x0=-floor,
            x1=floor,
            fillcolor="#999",
            opacity=0.12,
            line_width=0,
            annotation_text=f"noise ±{floor:.3g}",
            annotation_position="bottom left",
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
        **LAYOUT,
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
        **LAYOUT,
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
                customdata=group["number"],
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
        **LAYOUT,
        height=420,
        xaxis_title=x,
        yaxis_title=f"final {metric}",
        xaxis_type="log" if log_x else "linear",
    )
    return fig
