"""The plotly figures of trials' curves: the live page's panels and the trial page, the
hyperparameters page's parallel coordinates, and the colours every page shares.

A live panel (`panel_figure`) sends at most DEFAULT_POINT_BUDGET points, shared out between
its curves, as compact typed arrays: few enough for SVG, which every browser draws without
a WebGL context each. Beyond PER_TRIAL_TRACES trials, a colour group's trials are joined
into one trace with NaN gaps, so a thousand trials cost the browser a handful of traces.
The figures comparing two groups (BN against no BN, sweep against sweep) are in
`compare_figures`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard import axes
from dashboard.bands import BANDS, DEFAULT_BAND, band_label
from dashboard.data import (
    EARLY_END,
    SweepPoints,
    ordered,
    status_label,
)
from runner.store import TrialStatus

__all__ = [
    "DEFAULT_POINT_BUDGET",
    "LAYOUT",
    "PanelStyle",
    "TrialCurve",
    "colour_groups",
    "level_colour",
    "level_label",
    "panel_figure",
    "parallel_figure",
    "trial_figure",
]

# Points sent to the browser for one live panel, shared out between its curves.
DEFAULT_POINT_BUDGET = 40_000
MAX_POINTS_PER_CURVE = 2_000
# Up to this many trials, each is a trace of its own (its hover names its settings).
PER_TRIAL_TRACES = 100
# Invisible click targets per curve, and in a panel at most (see _click_targets).
CLICK_TARGETS = 40
MAX_CLICK_TARGETS = 4_000
BEST_COLOUR = "#000000"

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
LAYOUT: dict[str, Any] = {
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


@dataclass(frozen=True)
class TrialCurve:
    """One trial's curve in a panel, ready to draw: the shown (smoothed) values and, when
    smoothing is on, the raw values to draw faintly behind them."""

    trial: int
    label: str  # its colour group
    x: np.ndarray
    y: np.ndarray
    raw: tuple[np.ndarray, np.ndarray] | None = None
    status: str = TrialStatus.RUNNING
    number: int | None = None  # within its sweep, what the page shows (None: the id)

    @property
    def shown(self) -> int:
        """The trial as a user knows it: its number within the sweep."""
        return self.trial if self.number is None else self.number


@dataclass(frozen=True)
class PanelStyle:
    """What a panel shows besides its curves (its title is the page's, above it)."""

    metric: str
    x_title: str = X_TITLES["step"]
    log_y: bool = False
    y_range: tuple[float, float] | None = None  # axis units (log10 on a log axis)
    highlight: frozenset[int] = frozenset()
    best: int | None = None
    height: int = 360


def _compact(values: Any) -> Any:
    """Arrays as the browser needs them: whole numbers as int32, the rest as float32 (plotly
    sends numpy arrays as typed arrays: half the bytes of float64, precise to 7 digits)."""
    if not isinstance(values, np.ndarray) or values.dtype != np.float64 or values.ndim != 1:
        return values
    whole = len(values) and np.all(np.isfinite(values)) and np.all(values == np.round(values))
    if whole and np.abs(values).max() < 2**31:
        return values.astype(np.int32)
    return values.astype(np.float32)


def _trace(**props: Any) -> dict[str, Any]:
    props["x"], props["y"] = _compact(props["x"]), _compact(props["y"])
    return {"type": "scatter", **props}


def _hover(style: PanelStyle, head: str) -> str:
    return f"{head}<br>{style.x_title} %{{x:.5~g}}<br>{style.metric} %{{y:.4~g}}<extra></extra>"


def _outside(
    curves: Sequence[TrialCurve], style: PanelStyle
) -> list[tuple[int, float, float, bool]]:
    """(trial, x, value, above) of each curve's farthest point beyond the y-range."""
    if style.y_range is None:
        return []
    low, high = style.y_range
    if style.log_y:
        low, high = 10**low, 10**high
    found = []
    for c in curves:
        if not len(c.y):
            continue
        top, bottom = int(c.y.argmax()), int(c.y.argmin())  # curves hold finite values
        if c.y[top] > high:
            found.append((c.trial, float(c.x[top]), float(c.y[top]), True))
        if c.y[bottom] < low:
            found.append((c.trial, float(c.x[bottom]), float(c.y[bottom]), False))
    return found


def _click_targets(
    curves: Sequence[TrialCurve],
    style: PanelStyle,
    describe: Mapping[int, str],
    *,
    per_trial: bool,
) -> dict[str, Any]:
    """Invisible markers along every curve: plotly selects points, not lines, so these are
    what a click on a curve selects (and the page highlights that trial)."""
    xs, ys, ids, text = [], [], [], []
    per_curve = max(3, min(CLICK_TARGETS, MAX_CLICK_TARGETS // max(1, len(curves))))
    for c in curves:
        every = max(1, math.ceil(len(c.x) / per_curve))
        xs.append(c.x[::every])
        ys.append(c.y[::every])
        # (store id: what a click selects, number: what the hover shows)
        ids.append(np.tile(np.array([c.trial, c.shown], dtype=np.int64), (len(xs[-1]), 1)))
        if per_trial:
            text += [f"{describe.get(c.trial, c.label)} ({status_label(c.status)})"] * len(xs[-1])
    x = np.concatenate(xs) if xs else np.empty(0)
    return _trace(
        x=x,
        y=np.concatenate(ys) if ys else np.empty(0),
        customdata=np.concatenate(ids) if ids else np.empty((0, 2), np.int64),
        hovertext=text or None,
        mode="markers",
        marker={"size": 10, "opacity": 0},
        showlegend=False,
        name="click to highlight",
        hovertemplate=_hover(
            style, "<b>trial %{customdata[1]}</b>" + ("<br>%{hovertext}" if per_trial else "")
        ),
    )


def panel_figure(
    curves: Sequence[TrialCurve],
    colours: Mapping[str, str],
    style: PanelStyle,
    *,
    describe: Mapping[int, str] | None = None,
    bands: Mapping[str, pd.DataFrame] | None = None,
    band_kind: str = DEFAULT_BAND,
    band_over: str = "trials",
    band_notes: Mapping[str, str] | None = None,
    shown: Collection[int] = (),
) -> go.Figure:
    """One metric's panel of the live page.

    Up to PER_TRIAL_TRACES trials each get a trace of their own; more are joined into one
    trace per colour group. Hover and clicks go to invisible markers along the curves
    (`_click_targets`): the hover names the trial and, up to PER_TRIAL_TRACES trials, its
    hyperparameters (`describe`); a click selects it. The best trial and the highlighted ones are
    drawn thick, on top; ended-early trials dashed with a marker at their end; values
    beyond the y-range as a marker at its edge. With `bands` (label -> a
    `bands.group_band` frame), each group is its centre line and band, and only the
    highlighted and best trials are drawn as curves. `band_over` names what a band spans
    ("trials", or "seeds" for a configuration's); with `band_notes` (label -> a note such
    as "3/4 seeds"), the legend's title says what the bands are once and each entry gives
    its group's note instead. With bands, the trials in `shown` are drawn as curves too,
    thin, in their group's colour (a many-trial panel's best trials).
    """
    emphasised = set(style.highlight) | ({style.best} if style.best is not None else set())
    drawn = (
        [c for c in curves if c.trial in emphasised or c.trial in shown] if bands else list(curves)
    )
    plain = [c for c in drawn if c.trial not in emphasised]
    per_trial = len(drawn) <= PER_TRIAL_TRACES
    data = [
        *_band_traces(bands or {}, colours, style, band_kind, over=band_over, notes=band_notes),
        *_raw_traces(drawn, colours, style, emphasised),
        *(_plain_traces if per_trial else _joined_traces)(plain, colours, style, legend=not bands),
        *_emphasised_traces([c for c in drawn if c.trial in emphasised], colours, style),
        _click_targets(drawn, style, describe or {}, per_trial=per_trial),
        *_end_markers(drawn),
        *_outside_markers(drawn, style),
    ]
    # Built unvalidated: plotly's validation of a hundred traces costs more than the rest
    # of a refresh; tests validate the figures.
    layout = _panel_layout(style)
    if bands and band_notes is not None:
        layout["legend"]["title"] = {"text": f"{band_label(band_kind)} across {band_over}:"}
    return go.Figure(data=data, layout=layout, _validate=False)


def _band_traces(
    bands: Mapping[str, pd.DataFrame],
    colours: Mapping[str, str],
    style: PanelStyle,
    kind: str,
    *,
    over: str = "trials",
    notes: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Each group's band (filled, no hover) and its centre line (the hover gives both, and
    how many curves the band spans at that x)."""
    data = []
    for label, band in bands.items():
        if band.empty:
            continue
        data.append(
            _trace(
                x=np.concatenate([band["step"], band["step"][::-1]]),
                y=np.concatenate([band["upper"], band["lower"][::-1]]),
                fill="toself",
                fillcolor=colours[label],
                opacity=0.2,
                line={"width": 0},
                hoverinfo="skip",
                name=f"{label}: {BANDS[kind]}",
                legendgroup=label,
                showlegend=False,
            )
        )
        data.append(
            _trace(
                x=band["step"].to_numpy(),
                y=band["centre"].to_numpy(),
                # first column: trial -1, none, so a click on a band highlights no trial
                customdata=np.stack(
                    [np.full(len(band), -1), band["lower"], band["upper"], band["n"]], axis=-1
                ),
                mode="lines",
                name=f"{label} ({band_label(kind) if notes is None else notes[label]})",
                legendgroup=label,
                line={"color": colours[label], "width": 2.5},
                hovertemplate=(
                    f"<b>{label}</b><br>{style.x_title} %{{x:.5~g}}<br>{style.metric} "
                    f"%{{y:.4~g}}<br>{BANDS[kind]} %{{customdata[1]:.4~g}} – "
                    f"%{{customdata[2]:.4~g}}<br>over %{{customdata[3]}} {over}<extra></extra>"
                ),
            )
        )
    return data


def _raw_traces(
    drawn: Sequence[TrialCurve],
    colours: Mapping[str, str],
    style: PanelStyle,
    emphasised: set[int],
) -> list[dict[str, Any]]:
    """The unsmoothed values of the curves that carry them, faint, behind everything."""
    return [
        _trace(
            x=c.raw[0],
            y=c.raw[1],
            mode="lines",
            line={"color": colours[c.label], "width": 1},
            opacity=0.18 if not style.highlight or c.trial in emphasised else 0.06,
            hoverinfo="skip",
            showlegend=False,
            legendgroup=c.label,
            name=c.label,
        )
        for c in drawn
        if c.raw is not None and len(c.raw[0])
    ]


def _plain_traces(
    plain: Sequence[TrialCurve], colours: Mapping[str, str], style: PanelStyle, *, legend: bool
) -> list[dict[str, Any]]:
    """A trace per trial, dimmed while some are highlighted; the legend names each colour
    group once."""
    data, named = [], set()
    for c in plain:
        data.append(
            _trace(
                x=c.x,
                y=c.y,
                mode="lines",
                name=c.label,
                legendgroup=c.label,
                showlegend=legend and c.label not in named,
                line={
                    "color": colours[c.label],
                    "width": 1.4,
                    "dash": "dash" if c.status in EARLY_END else "solid",
                },
                opacity=_dim(style),
                hoverinfo="skip",
            )
        )
        named.add(c.label)
    return data


def _joined_traces(
    plain: Sequence[TrialCurve], colours: Mapping[str, str], style: PanelStyle, *, legend: bool
) -> list[dict[str, Any]]:
    """A trace per colour group and ending (ran on, ended early: dashed), its trials
    joined with NaN gaps (`_joined`), in the order of the colours."""
    groups: dict[tuple[str, bool], list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for c in plain:
        groups.setdefault((c.label, c.status in EARLY_END), []).append((c.trial, c.x, c.y))
    data, named = [], set()
    for label in colours:
        for early in (False, True):
            if not (joined := groups.get((label, early))):
                continue
            jx, jy, _ = _joined(joined)
            data.append(
                _trace(
                    x=jx,
                    y=jy,
                    mode="lines",
                    name=label,
                    legendgroup=label,
                    showlegend=legend and label not in named,
                    line={
                        "color": colours[label],
                        "width": 1.2,
                        "dash": "dash" if early else "solid",
                    },
                    opacity=_dim(style),
                    hoverinfo="skip",
                )
            )
            named.add(label)
    return data


def _dim(style: PanelStyle) -> float:
    """The opacity of the curves not emphasised: faint while some trials are highlighted."""
    return 0.25 if style.highlight else 0.85


def _emphasised_traces(
    emphasised: Sequence[TrialCurve], colours: Mapping[str, str], style: PanelStyle
) -> list[dict[str, Any]]:
    """The highlighted trials and the best, thick and in the legend; the best last (on
    top), in black."""
    data = []
    for c in sorted(emphasised, key=lambda c: c.trial == style.best):
        best = c.trial == style.best
        data.append(
            _trace(
                x=c.x,
                y=c.y,
                mode="lines",
                name=f"best so far: trial {c.shown}" if best else f"trial {c.shown}",
                legendgroup=f"trial {c.trial}",
                showlegend=True,
                line={
                    "color": BEST_COLOUR if best else colours[c.label],
                    "width": 3.2 if best else 2.8,
                    "dash": "dash" if c.status in EARLY_END else "solid",
                },
                opacity=1.0,
                hoverinfo="skip",
            )
        )
    return data


def _end_markers(drawn: Sequence[TrialCurve]) -> list[dict[str, Any]]:
    """A marker at the end of each curve that ended early, one trace per kind of ending."""
    ends: dict[str, list[tuple[list[int], float, float]]] = {}
    for c in drawn:
        if c.status in EARLY_END and len(c.x):
            end = ([c.trial, c.shown], float(c.x[-1]), float(c.y[-1]))
            ends.setdefault(c.status, []).append(end)
    data = []
    for status, where in ends.items():
        symbol, colour = MARKERS.get(status, ("circle", "#000000"))
        data.append(
            _trace(
                x=[w[1] for w in where],
                y=[w[2] for w in where],
                customdata=[w[0] for w in where],
                mode="markers",
                name=status_label(status),
                marker={
                    "symbol": symbol,
                    "size": 9,
                    "color": colour,
                    "line": {"width": 2, "color": colour},
                },
                hovertemplate=f"trial %{{customdata[1]}}: {status_label(status)}<extra></extra>",
            )
        )
    return data


def _outside_markers(drawn: Sequence[TrialCurve], style: PanelStyle) -> list[dict[str, Any]]:
    """Values beyond the y-range as a triangle at its edge; the hover gives the value."""
    outside = _outside(drawn, style)
    if not outside or style.y_range is None:
        return []
    low, high = style.y_range
    edge = {True: 10**high if style.log_y else high, False: 10**low if style.log_y else low}
    shown = {c.trial: c.shown for c in drawn}
    return [
        _trace(
            x=[o[1] for o in outside],
            y=[edge[o[3]] for o in outside],
            customdata=np.array([[o[0], o[2], shown[o[0]]] for o in outside]),
            mode="markers",
            name="beyond the axis",
            marker={
                "symbol": ["triangle-up" if o[3] else "triangle-down" for o in outside],
                "size": 9,
                "color": "#555555",
            },
            cliponaxis=False,
            hovertemplate=(
                f"trial %{{customdata[2]:d}}: {style.metric} %{{customdata[1]:.4~g}} "
                "(beyond the axis)<extra></extra>"
            ),
        )
    ]


def _panel_layout(style: PanelStyle) -> dict[str, Any]:
    yaxis: dict[str, Any] = {"type": "log" if style.log_y else "linear", "automargin": True}
    if style.y_range is not None:
        yaxis |= {"range": list(style.y_range), "autorange": False}
    return {
        **LAYOUT,
        "margin": {"l": 50, "r": 10, "t": 34, "b": 40},
        "height": style.height,
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "font": {"size": 10}},
        "uirevision": style.metric,
        "xaxis": {"title": {"text": style.x_title}, "automargin": True},
        "yaxis": yaxis,
    }


def parallel_figure(table: pd.DataFrame, params: Sequence[str], metric: str) -> go.Figure:
    """Parallel coordinates: one axis per hyperparameter and a last one for the metric."""
    dims = []
    for p in params:
        col = table[p]
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        if numeric and col.nunique() > 1:
            values = col.astype("float64")
            if axes.log_scale(values):  # the one log-axis rule of every page
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
    fig.update_layout(**LAYOUT, height=230 * max(1, len(metrics)) + 60, showlegend=False)
    return fig
