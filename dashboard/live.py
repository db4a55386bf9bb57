"""The live page's data path, one function per refresh step, shared with the benchmarks.

A refresh reads the trials (status and config change while a sweep runs), fetches only
the points newer than those already held, and rebuilds the trial table from the held
summaries. The panel grid then draws one panel per metric from cached, downsampled
series: per-step curves smoothed (raw values faint behind), a y-range no spike can
flatten, a log axis where the values span decades, the best trial and the highlighted
ones on top, or each group's centre line and band. Over MANY_TRIALS trials the page reads
the sweep's metric of every trial and every metric of only the trials it draws, and the
bands are over a fixed random BAND_SAMPLE of them (`sampled`, `drawn_trials`).

A seeded sweep (`seeds: N`, N >= 2) is drawn collapsed by default: one curve per
configuration (a trial's config without its seed), the median over its seeds with a band
across them, and its trial table is one row per configuration (runner.configurations).
`Configurations` maps each trial to its configuration once, as trials appear, so a refresh
groups by a dictionary lookup instead of reading every config again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard import axes, charts, compare
from dashboard.bands import DEFAULT_BAND, band_label, group_band
from dashboard.data import (
    MIN_CURVE_POINTS,
    Filter,
    SweepPoints,
    XAxis,
    filter_trials,
    hyperparameters,
    metric_mode,
    sample_trials,
    status_label,
    trial_number,
    trial_numbers,
    trial_table,
)
from runner import configurations
from runner.configurations import config_key, configuration_table
from runner.protocol import is_system_metric
from runner.store import Store, TrialStatus

__all__ = [
    "BAND_SAMPLE",
    "DEFAULT_SMOOTHING",
    "MANY_TRIALS",
    "NAMES_SAMPLE",
    "NOTIFY",
    "TOP_CURVES",
    "Y_SCALES",
    "Configurations",
    "LiveFrame",
    "LiveOptions",
    "Panel",
    "announcement",
    "band_legend",
    "best_configuration",
    "best_trial",
    "configuration_rows",
    "configurations_for",
    "describe",
    "drawn_trials",
    "many",
    "metric_title",
    "news",
    "panel",
    "panel_metrics",
    "panels",
    "ranked_trials",
    "refresh",
    "sampled",
    "shown_trials",
    "without_points",
]

DEFAULT_SMOOTHING = 0.95
# A metric with at least this many points per trial (the median) is logged per step: its
# panel is smoothed. One reported per epoch is drawn as it is.
PER_STEP_POINTS = 100
# Up to this many trials each show their raw curve faintly behind the smoothed one; above,
# only the highlighted and the best trial do.
RAW_FOR_ALL = 6
# Points per curve at most: about a panel's width in pixels, a little more (MinMaxLTTB
# keeps the extremes of each pixel column).
MAX_POINTS_PER_CURVE = 600
# Above this many trials in a panel (not grouped, not collapsed), no curve is drawn for
# every trial: each colour group is its centre line and band over all of its trials, and
# only the TOP_CURVES best trials (by the sweep's metric), the best and the highlighted
# ones are drawn as curves on top. Ten thousand curves say nothing one by one, and would
# cost the browser megabytes a refresh.
MANY_TRIALS = 1_000
TOP_CURVES = 50
# Over MANY_TRIALS trials (a sweep without seeds) the page reads no sweep's every point:
# the sweep's metric of every trial (its table, ranking and best), and every metric of
# only the trials it draws: a fixed random BAND_SAMPLE of the trials shown, which the
# bands are computed over, the TOP_CURVES best, the best and the highlighted ones.
BAND_SAMPLE = 500
# The Hyperparameters page of such a sweep lists the metrics that this many of its trials
# report (a fixed random sample, within BAND_SAMPLE's), plus any the live page has read.
NAMES_SAMPLE = 100
BAND_GRID = 200
Y_SCALES = ("auto", "linear", "log")
# Trial endings the live page announces as they happen.
NOTIFY = frozenset({TrialStatus.DIVERGED, TrialStatus.ERROR, TrialStatus.PRUNED})
TITLES = {
    "train_loss": "train loss per step",
    "val_loss": "validation loss",
    "val_acc": "validation accuracy",
}
_ORDER = ("train_loss", "val_loss", "val_acc")


def metric_title(metric: str) -> str:
    return TITLES.get(metric, metric)


@dataclass(frozen=True)
class LiveOptions:
    """What the panel grid shows; the page's widgets fill it in."""

    x: XAxis = "step"
    smoothing: float = DEFAULT_SMOOTHING
    color_by: str | None = None
    group_by: str | None = None
    band: str = DEFAULT_BAND
    y_scales: Mapping[str, str] = field(default_factory=dict)  # metric -> one of Y_SCALES
    highlight: frozenset[int] = frozenset()
    system: bool = False  # panels of the `sys/` metrics too
    budget: int = charts.DEFAULT_POINT_BUDGET  # points per panel, shared by its curves
    collapse: bool = False  # a seeded sweep: one curve and band per configuration


@dataclass
class Configurations:
    """A seeded sweep's trials by configuration: trial id -> configuration key
    (runner.configurations.config_key) and key -> its label (`lr=0.1, batch_norm=True`).

    Grown by `update` on every refresh; a trial's config never changes, so each trial is
    keyed once and a refresh only looks its id up. One per page session (it is not locked).
    """

    seed_key: str
    n_seeds: int
    key_of: dict[int, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # in the order configurations appear
    varied: tuple[str, ...] = ()  # the hyperparameters the labels name (seed left out)

    def update(self, trials: Sequence[Mapping[str, Any]], params: Sequence[str]) -> None:
        """Key the trials not seen yet; relabel every configuration when `params` changed."""
        for t in trials:
            trial = int(t["id"])
            if trial not in self.key_of:
                self.key_of[trial] = key = config_key(t["config"], self.seed_key)
                self.labels.setdefault(key, "")
        varied = tuple(p for p in params if p != self.seed_key)
        if varied != self.varied or "" in self.labels.values():
            self.varied = varied
            self.labels = {k: configurations.configuration_label(k, varied) for k in self.labels}

    def label(self, trial: int) -> str:
        return self.labels[self.key_of[trial]]

    def members(self, trials: Iterable[Mapping[str, Any]]) -> dict[str, list[int]]:
        """Configuration label -> ids of the given trials in it, configurations in the
        order they appeared in the sweep."""
        found: dict[str, list[int]] = {}
        for t in trials:
            found.setdefault(self.label(int(t["id"])), []).append(int(t["id"]))
        return {label: found[label] for label in self.labels.values() if label in found}


def configurations_for(sweep: Mapping[str, Any]) -> Configurations | None:
    """An empty Configurations for a sweep that runs 2 or more seeds, else None."""
    spec = sweep.get("spec") or {}
    key = configurations.seed_key(spec)
    if key is None or not compare.seeded(spec):
        return None
    return Configurations(key, int(spec["seeds"].get("n", 2)))


@dataclass(frozen=True)
class LiveFrame:
    sweep: dict[str, Any]  # as now in the store: status, stop request, heartbeat
    trials: list[dict[str, Any]]
    params: list[str]
    table: pd.DataFrame
    new_points: int
    configurations: Configurations | None = None  # a seeded sweep's, brought up to date


@dataclass(frozen=True)
class Panel:
    """One metric's panel: its figure and what the page says about it."""

    metric: str
    figure: go.Figure
    log_y: bool
    smoothed: bool
    n_points: int  # points sent to the browser


def refresh(
    store: Store,
    points: SweepPoints,
    sweep: Mapping[str, Any],
    configurations: Configurations | None = None,
) -> LiveFrame:
    """Read what changed since the last refresh and rebuild the trial table; with a
    seeded sweep's `configurations` (held by the caller between refreshes), key the new
    trials too."""
    now = store.sweep(str(sweep["id"]), best=False) or dict(sweep)
    trials = store.trials(str(sweep["id"]))
    new = points.refresh(store)
    params = hyperparameters(trials, sweep.get("spec"))
    table = trial_table(trials, points, sweep=sweep, params=params)
    if configurations is not None:
        configurations.update(trials, params)
    return LiveFrame(now, trials, params, table, new, configurations)


def shown_trials(
    frame: LiveFrame, filters: Iterable[Filter] = ()
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """(filtered table, the trials in it)."""
    table = filter_trials(frame.table, filters)
    wanted = set(table["trial"])
    return table, [t for t in frame.trials if int(t["id"]) in wanted]


def ranked_trials(frame: LiveFrame) -> list[int]:
    """The trials with a value of the sweep's metric, best first (by their best so far,
    in the sweep's mode): the order in which a many-trial panel picks its curves."""
    column = f"best {frame.sweep['metric']}"
    if column not in frame.table:
        return []
    values = frame.table.set_index("trial")[column].dropna()
    mode = metric_mode(str(frame.sweep["metric"]), frame.sweep)
    return [int(t) for t in values.sort_values(ascending=mode != "max", kind="stable").index]


def sampled(sweep: Mapping[str, Any], configurations: Configurations | None) -> bool:
    """Whether the page reads only some of the sweep's points (BAND_SAMPLE): over
    MANY_TRIALS trials (the store's counts, `store.sweep(...)["counts"]`), without seeds."""
    n = sum(int(v) for v in (sweep.get("counts") or {}).values())
    return n > MANY_TRIALS and configurations is None


def drawn_trials(
    frame: LiveFrame,
    shown: Sequence[int],
    *,
    best: int | None = None,
    highlight: Iterable[int] = (),
) -> tuple[list[int], list[int]]:
    """(the trials whose points a sampled page reads, the band sample among them): over
    MANY_TRIALS shown trials, a fixed random BAND_SAMPLE of them, the first TOP_CURVES
    of `ranked_trials` among them, the best and the highlighted ones; else all shown."""
    if len(shown) <= MANY_TRIALS:
        return list(shown), list(shown)
    sample = sample_trials(shown, BAND_SAMPLE)
    present = set(shown)
    top = [t for t in ranked_trials(frame) if t in present][:TOP_CURVES]
    extra = {*top, *highlight, *([best] if best is not None else [])}
    return sorted(set(sample) | extra), sample


def many(trials: Sequence[Any], options: LiveOptions) -> bool:
    """Whether a panel of these trials draws bands and the best curves only (MANY_TRIALS)."""
    return len(trials) > MANY_TRIALS and options.group_by is None and not options.collapse


def best_trial(frame: LiveFrame) -> int | None:
    """The trial with the best value so far of the sweep's metric, in the sweep's mode."""
    column = f"best {frame.sweep['metric']}"
    if column not in frame.table or frame.table[column].isna().all():
        return None
    values = frame.table.set_index("trial")[column].dropna()
    mode = metric_mode(str(frame.sweep["metric"]), frame.sweep)
    return int(values.idxmax() if mode == "max" else values.idxmin())


def configuration_rows(
    frame: LiveFrame, points: SweepPoints, trials: Sequence[Mapping[str, Any]]
) -> tuple[pd.DataFrame, list[list[int]]]:
    """A seeded sweep's trial table collapsed: one row per configuration of the given
    trials, best mean first (runner.configurations.configuration_table: its varied
    hyperparameters, seeds with a final of all, mean final metric and 95 % interval over
    seeds, statuses), and each row's trial ids. A final is a finished trial's last value:
    a running seed's latest value is no final, so it waits out of the mean."""
    configs = frame.configurations
    if configs is None:
        raise ValueError(
            f"sweep {frame.sweep['id']} runs no seeds: it has no configurations to collapse "
            "to. Fix: show its trials (dashboard.live.shown_trials)."
        )
    metric = str(frame.sweep["metric"])
    finished = {int(t["id"]) for t in trials if t["status"] in TrialStatus.finished()}
    latest = points.summary(metric, metric_mode(metric, frame.sweep))["latest"]
    finals = latest[latest.index.isin(finished)]
    table = configuration_table(
        trials,
        finals,
        varied=configs.varied,
        seed_key=configs.seed_key,
        metric=metric,
        mode=metric_mode(metric, frame.sweep),
    )
    # configuration_table numbers its rows in the order their configurations first
    # appear in `trials`, and keeps those numbers when it sorts them
    ids: dict[str, list[int]] = {}
    for t in trials:
        ids.setdefault(configs.key_of[int(t["id"])], []).append(int(t["id"]))
    in_order = list(ids.values())
    return table.reset_index(drop=True), [in_order[int(i)] for i in table.index]


def best_configuration(table: pd.DataFrame, metric: str) -> pd.Series | None:
    """The first row of a configuration table (best mean first) that has a mean."""
    column = f"mean {metric}"
    if table.empty or column not in table or table[column].isna().all():
        return None
    return table.loc[table[column].first_valid_index()]


def describe(trials: Sequence[Mapping[str, Any]], params: Sequence[str]) -> dict[int, str]:
    """Trial id -> its hyperparameters as the hover shows them: `lr=0.1 · batch_norm=True`."""
    return {int(t["id"]): " · ".join(f"{p}={t['config'].get(p)}" for p in params) for t in trials}


def panel_metrics(points: SweepPoints, *, system: bool = False) -> list[str]:
    """The metrics that get a panel: train loss, validation loss and accuracy first, then
    the others by name, then (with `system`) the `sys/` metrics."""
    names = points.metrics()
    user = [m for m in names if not is_system_metric(m)]
    ordered = [m for m in _ORDER if m in user] + sorted(m for m in user if m not in _ORDER)
    if system:
        ordered += sorted(m for m in names if is_system_metric(m))
    return ordered


def _per_step(points: SweepPoints, trials: Sequence[int], metric: str) -> bool:
    lengths = points.lengths(trials, metric)
    return bool(lengths) and float(np.median(lengths)) >= PER_STEP_POINTS


def panel(
    points: SweepPoints,
    trials: Sequence[Mapping[str, Any]],
    metric: str,
    options: LiveOptions,
    *,
    params: Sequence[str] = (),
    best: int | None = None,
    configurations: Configurations | None = None,
    ranked: Sequence[int] = (),
    band_sample: Collection[int] | None = None,
) -> Panel | None:
    """The panel of one metric over the given trials, or None when none has a point.

    With `options.collapse` (and a seeded sweep's `configurations`), each configuration is
    one median curve with a band across its seeds (`options.band`), its legend entry says
    how many of its seeds have points, and no single trial is drawn as the best: a lucky
    seed is no answer. Highlighted trials are still drawn on top.

    Over MANY_TRIALS trials (`many`), each colour group is its band over its trials, and
    the first TOP_CURVES of `ranked` (trial ids, best first: `ranked_trials`) among the
    given trials are drawn as curves, with the best and the highlighted ones. With
    `band_sample` (a large sweep's `drawn_trials`), the bands are over only those of the
    given trials, and the legend says how many of each group's trials that is."""
    if options.collapse and configurations is None:
        raise ValueError(
            "collapse=True needs the sweep's configurations. Fix: pass "
            "configurations=frame.configurations (a seeded sweep's), or collapse=False."
        )
    labels, colours, members = _colouring(trials, options, configurations)
    if members is not None:
        best = None
    emphasised = set(options.highlight) | ({best} if best is not None else set())
    top: set[int] = set()
    if many(trials, options):
        present = {int(t["id"]) for t in trials}
        top = set([t for t in ranked if t in present][:TOP_CURVES])
    smoothed = options.smoothing > 0 and _per_step(points, [int(t["id"]) for t in trials], metric)
    curves, unsmoothed = _curves(
        points,
        trials,
        metric,
        options,
        labels=labels,
        smoothed=smoothed,
        emphasised=emphasised,
        only_raw=emphasised | top if many(trials, options) else None,
    )
    if not curves:
        return None
    crowded = many(trials, options)
    banded = crowded or options.group_by is not None
    bands: dict[str, pd.DataFrame] | None
    notes: dict[str, str] | None
    if band_sample is not None and banded and members is None and len(band_sample) < len(trials):
        bands, notes = _sampled_bands(curves, colours, options.band, labels, band_sample)
    else:
        bands, notes = _panel_bands(curves, colours, options, members, crowded)
    if bands is not None:
        shown = [np.concatenate([b["centre"], b["lower"], b["upper"]]) for b in bands.values()]
        shown += [c.y for c in curves if c.trial in emphasised or c.trial in top]
    else:
        shown = [c.y for c in curves]
    values = np.concatenate(shown) if shown else np.empty(0)
    scale = options.y_scales.get(metric, "auto")
    log_y = axes.log_scale(values) if scale == "auto" else scale == "log"
    style = charts.PanelStyle(
        metric=metric,
        x_title=charts.X_TITLES[options.x],
        log_y=log_y,
        y_range=axes.robust_range(shown, log=log_y, raw=unsmoothed or None),
        highlight=frozenset(options.highlight),
        best=best,
    )
    described = (
        trials
        if len(curves) <= charts.PER_TRIAL_TRACES
        else [t for t in trials if int(t["id"]) in emphasised or int(t["id"]) in top]
    )
    fig = charts.panel_figure(
        curves,
        colours,
        style,
        describe=describe(described, params),
        bands=bands,
        shown=top,
        band_kind=options.band if bands is not None else DEFAULT_BAND,
        band_over="seeds" if members is not None else "trials",
        band_notes=notes,
    )
    n_points = sum(len(np.asarray(trace.x)) for trace in fig.data if trace.x is not None)
    return Panel(metric=metric, figure=fig, log_y=log_y, smoothed=smoothed, n_points=n_points)


def _colouring(
    trials: Sequence[Mapping[str, Any]],
    options: LiveOptions,
    configurations: Configurations | None,
) -> tuple[dict[int, str], dict[str, str], dict[str, list[int]] | None]:
    """Each trial's label and each label's colour: its configuration when seeds collapse
    (then also each configuration's trials), else its colour (or group) key's value."""
    if options.collapse and configurations is not None:
        members = configurations.members(trials)
        labels = {trial: label for label, ids in members.items() for trial in ids}
        order = {label: i for i, label in enumerate(configurations.labels.values())}
        colours = {label: charts.level_colour(order[label]) for label in members}
        return labels, colours, members
    labels, colours = charts.colour_groups(trials, options.group_by or options.color_by)
    return labels, colours, None


def _panel_bands(
    curves: Sequence[charts.TrialCurve],
    colours: Mapping[str, str],
    options: LiveOptions,
    members: Mapping[str, Sequence[int]] | None,
    crowded: bool,
) -> tuple[dict[str, pd.DataFrame] | None, dict[str, str] | None]:
    """The bands a panel draws (per configuration across its seeds, per group, or per
    colour group over many trials; None for plain curves), and with seeds collapsed, each
    band's note of how many of its seeds have points."""
    if members is not None:
        bands = _bands(curves, colours, options.band)
        drawn = Counter(c.label for c in curves)
        return bands, {label: f"{drawn[label]}/{len(members[label])} seeds" for label in bands}
    if options.group_by is not None or crowded:
        return _bands(curves, colours, options.band), None
    return None, None


def _sampled_bands(
    curves: Sequence[charts.TrialCurve],
    colours: Mapping[str, str],
    kind: str,
    labels: Mapping[int, str],
    sample: Collection[int],
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Each colour group's band over only its trials in `sample`, and each band's note:
    how many of the group's trials (in `labels`) that is."""
    chosen = set(sample)
    bands = _bands([c for c in curves if c.trial in chosen], colours, kind)
    total = Counter(labels.values())
    picked = Counter(labels[t] for t in chosen if t in labels)
    notes = {label: f"random {picked[label]:,} of {total[label]:,}" for label in bands}
    return bands, notes


def _curves(
    points: SweepPoints,
    trials: Sequence[Mapping[str, Any]],
    metric: str,
    options: LiveOptions,
    *,
    labels: Mapping[int, str],
    smoothed: bool,
    emphasised: set[int],
    only_raw: set[int] | None = None,
) -> tuple[list[charts.TrialCurve], list[np.ndarray]]:
    """(each trial's downsampled curve, smoothed when `smoothed`; every unsmoothed value
    array, for the y-range). The budget is shared out between the trials; the raw curve is
    kept for drawing only for a few trials, or the emphasised ones. With `only_raw`, only
    those trials' raw values are read at all (a many-trial panel draws no others)."""
    ids = [int(t["id"]) for t in trials]
    status = {int(t["id"]): str(t["status"]) for t in trials}
    numbers = trial_numbers(trials)
    per_curve = max(
        MIN_CURVE_POINTS * 10, min(MAX_POINTS_PER_CURVE, options.budget // max(1, len(ids)))
    )
    weight = options.smoothing if smoothed else 0.0
    curves, unsmoothed = [], []
    for trial in ids:
        x, y = points.curve(trial, metric, x=options.x, smoothing=weight, max_points=per_curve)
        if not len(x):
            continue
        raw = None
        if smoothed and (only_raw is None or trial in only_raw):  # for the y-range too
            raw = points.curve(trial, metric, x=options.x, max_points=per_curve)
            unsmoothed.append(raw[1])
            if len(ids) > RAW_FOR_ALL and trial not in emphasised:
                raw = None
        curves.append(
            charts.TrialCurve(trial, labels[trial], x, y, raw, status[trial], numbers[trial])
        )
    return curves, unsmoothed


def _bands(
    curves: Sequence[charts.TrialCurve], colours: Mapping[str, str], kind: str
) -> dict[str, pd.DataFrame]:
    """Each colour group's band of the given kind, in the order of the colours."""
    members: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for c in curves:
        members.setdefault(c.label, []).append((c.x, c.y))
    return {
        label: group_band(members[label], kind, n_grid=BAND_GRID)
        for label in colours
        if label in members
    }


def panels(
    points: SweepPoints,
    trials: Sequence[Mapping[str, Any]],
    options: LiveOptions,
    *,
    params: Sequence[str] = (),
    best: int | None = None,
    configurations: Configurations | None = None,
    ranked: Sequence[int] = (),
    band_sample: Collection[int] | None = None,
) -> list[Panel]:
    """The panel grid: one panel per metric the given trials report (see panel_metrics)."""
    found = (
        panel(
            points,
            trials,
            metric,
            options,
            params=params,
            best=best,
            configurations=configurations,
            ranked=ranked,
            band_sample=band_sample,
        )
        for metric in panel_metrics(points, system=options.system)
    )
    return [p for p in found if p is not None]


def band_legend(options: LiveOptions, *, crowded: bool = False) -> str | None:
    """What the bands mean, for the page's caption; None when not grouping (`crowded`:
    a many-trial panel, which draws bands without grouping)."""
    if options.collapse:
        return f"{band_label(options.band)} across seeds"
    return None if options.group_by is None and not crowded else band_label(options.band)


def without_points(
    frame: LiveFrame, points: SweepPoints, trials: Sequence[Mapping[str, Any]]
) -> list[str]:
    """The labels of the configurations none of whose given trials has reported a point."""
    if frame.configurations is None:
        return []
    return [
        label
        for label, ids in frame.configurations.members(trials).items()
        if all(points.last_step(trial) is None for trial in ids)
    ]


def news(trials: Sequence[Mapping[str, Any]], seen: set[int]) -> list[Mapping[str, Any]]:
    """The trials that diverged, failed or were pruned and are not in `seen` yet (which
    this adds them to): each is announced once."""
    fresh = [t for t in trials if t["status"] in NOTIFY and int(t["id"]) not in seen]
    seen.update(int(t["id"]) for t in fresh)
    return fresh


def announcement(trial: Mapping[str, Any], params: Sequence[str]) -> str:
    """One line about a trial that ended badly: what happened, where, and its settings."""
    settings = describe([trial], params)[int(trial["id"])]
    where = ""
    if trial["status"] == TrialStatus.PRUNED and trial.get("last_epoch"):
        where = f" at epoch {trial['last_epoch']}"
    elif trial.get("last_step"):
        where = f" at step {trial['last_step']:,}"
    verbs: dict[str, str] = {
        TrialStatus.DIVERGED: "diverged",
        TrialStatus.ERROR: "failed",
        TrialStatus.PRUNED: "was pruned",
    }
    what = verbs.get(str(trial["status"]), status_label(str(trial["status"])))
    text = f"Trial {trial_number(trial)} {what}{where}"
    if settings:
        text += f" ({settings})"
    error = trial.get("error")
    if trial["status"] == TrialStatus.ERROR and error:
        first = str(error).strip().splitlines()[-1] if str(error).strip() else ""
        text += f": {first[:160]}"
    return text + "."
