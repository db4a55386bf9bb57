"""What the pages show, computed from the store without Streamlit, so tests call it directly.

The heart is `SweepPoints`: every point of one sweep, held per (trial, metric) as numpy
columns and grown by incremental reads (`store.point_columns(sweep_id, after_id=last_id)`),
so a refresh fetches only what the runner wrote since the last one. Curves leave it
smoothed and downsampled with MinMaxLTTB to a bounded number of points, and cached until
their series grows.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from tsdownsample import MinMaxLTTBDownsampler

from runner.store import (
    Store,
    TrialStatus,
    sweep_status,
)
from runner.timefmt import format_seconds

__all__ = [
    "EARLY_END",
    "MIN_CURVE_POINTS",
    "Filter",
    "Series",
    "SweepPoints",
    "XAxis",
    "downsample",
    "ema",
    "filter_trials",
    "hyperparameters",
    "metric_mode",
    "sample_trials",
    "shown_table",
    "status_label",
    "sweep_progress",
    "sweep_table",
    "trial_number",
    "trial_numbers",
    "trial_table",
]

XAxis = Literal["step", "time"]

# MinMaxLTTB needs at least 3 output points; fewer would not draw a curve anyway.
MIN_CURVE_POINTS = 3

STATUS_LABELS = {
    TrialStatus.PENDING: "pending",
    TrialStatus.RUNNING: "running",
    TrialStatus.COMPLETED: "completed",
    TrialStatus.DIVERGED: "diverged",
    TrialStatus.ERROR: "error",
    TrialStatus.PRUNED: "pruned",
    TrialStatus.STOPPED: "stopped",
    TrialStatus.STOPPED_BY_USER: "stopped by user",
    "timeout": "timed out",
}
# Trials that ended before their planned end: drawn dashed, with a marker at their end.
EARLY_END = frozenset(
    {
        TrialStatus.DIVERGED,
        TrialStatus.ERROR,
        TrialStatus.PRUNED,
        TrialStatus.STOPPED,
        TrialStatus.STOPPED_BY_USER,
        "timeout",
    }
)


def trial_number(trial: Mapping[str, Any]) -> int:
    """A trial's number within its sweep (1..N, `store.trials`' "number"): what every page
    shows a user. The store's `id` stays internal (keys, clicks, stop requests). A dict
    made without a store (a test's, a benchmark's) that has no number shows its id."""
    number = trial.get("number")
    return int(number) if number is not None else int(trial["id"])


def trial_numbers(trials: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    """Store id -> number within the sweep, for every given trial."""
    return {int(t["id"]): trial_number(t) for t in trials}


def status_label(status: str) -> str:
    """A trial status as users read it (`stopped_by_user` -> "stopped by user")."""
    return STATUS_LABELS.get(status, status.replace("_", " "))


def metric_mode(metric: str, sweep: Mapping[str, Any] | None = None) -> Literal["min", "max"]:
    """Whether larger or smaller is better: the sweep's mode for its metric, else by name."""
    if sweep is not None and metric == sweep.get("metric"):
        return "max" if sweep.get("mode") == "max" else "min"
    return "min" if any(word in metric for word in ("loss", "err", "perplexity")) else "max"


# -- curves ------------------------------------------------------------------------------
_DOWNSAMPLER = MinMaxLTTBDownsampler()


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard-style exponential moving average: s_t = w * s_(t-1) + (1 - w) * v_t.

    `weight` 0 returns the values unchanged; the first smoothed value is the first value.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight {weight!r} is outside [0, 1). Fix: use e.g. 0.6.")
    if weight == 0.0 or len(values) < 2:
        return values
    smoothed, _ = lfilter([1.0 - weight], [1.0, -weight], values, zi=[weight * values[0]])
    return np.asarray(smoothed, dtype=np.float64)


def downsample(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `max_points` of a curve (x ascending), chosen by MinMaxLTTB to keep its shape."""
    if max_points < MIN_CURVE_POINTS:
        raise ValueError(
            f"max_points={max_points} is too few to draw a curve. "
            f"Fix: use {MIN_CURVE_POINTS} or more."
        )
    if len(y) <= max_points:
        return x, y
    idx = _DOWNSAMPLER.downsample(
        np.ascontiguousarray(x), np.ascontiguousarray(y), n_out=max_points
    )
    return x[idx], y[idx]


@dataclass
class Series:
    """One trial's points for one metric, ascending by step, once per step, with running
    summaries. Held compactly: int32 steps, float64 values, and the wall time as float32
    seconds after `origin` (the trial's first point seen), about 16 bytes a point."""

    step: np.ndarray
    value: np.ndarray
    elapsed: np.ndarray
    origin: float = 0.0
    version: int = 0
    last: float = math.nan  # the latest value (NaN/inf when the trial diverged)
    high: float = math.nan  # the largest finite value
    low: float = math.nan  # the smallest finite value

    @property
    def wall(self) -> np.ndarray:
        """Wall times in Unix seconds (float64)."""
        return self.origin + self.elapsed.astype(np.float64)

    def extend(self, step: np.ndarray, value: np.ndarray, elapsed: np.ndarray) -> int:
        """Add points (steps already held are skipped: the store's first write wins);
        returns how many were new."""
        step = step.astype(np.int32, copy=False)
        value = value.astype(np.float64, copy=False)
        elapsed = elapsed.astype(np.float32, copy=False)
        if len(step) == 0:
            return 0
        ascending = len(step) < 2 or bool((step[1:] > step[:-1]).all())
        if not len(self.step) and ascending:  # a new series: copies, never views of a read
            self.step, self.value, self.elapsed = step.copy(), value.copy(), elapsed.copy()
            added = len(step)
        elif (len(self.step) and step[0] <= self.step[-1]) or not ascending:
            # out of order (a retried trial), or a step seen again: sort, keep the first
            held = len(self.step)
            step = np.concatenate([self.step, step])
            value = np.concatenate([self.value, value])
            elapsed = np.concatenate([self.elapsed, elapsed])
            order = np.argsort(step, kind="stable")
            keep = np.ones(len(order), bool)
            keep[1:] = np.diff(step[order]) != 0
            order = order[keep]
            added = len(order) - held
            if added == 0:
                return 0
            self.step, self.value, self.elapsed = step[order], value[order], elapsed[order]
            value = value[order[order >= held]]
        else:
            added = len(step)
            self.step = np.concatenate([self.step, step])
            self.value = np.concatenate([self.value, value])
            self.elapsed = np.concatenate([self.elapsed, elapsed])
        self.last = float(self.value[-1])
        finite = value[np.isfinite(value)]
        if len(finite):
            hi, lo = float(finite.max()), float(finite.min())
            self.high = hi if math.isnan(self.high) else max(self.high, hi)
            self.low = lo if math.isnan(self.low) else min(self.low, lo)
        self.version += 1
        return added

    def best(self, mode: str) -> float:
        return self.high if mode == "max" else self.low


# A read this large leaves megabytes of freed transient buffers in the C heap.
_LARGE_READ = 100_000


def _release_freed_memory() -> None:
    """Hand the heap a bulk read freed back to the OS. glibc keeps freed memory below its
    heap's top for reuse, so without this a dashboard that opened a large sweep would hold
    its read's transient buffers (about 50 bytes a point) for good. Elsewhere a no-op."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def _empty_series(origin: float) -> Series:
    return Series(
        np.empty(0, np.int32), np.empty(0, np.float64), np.empty(0, np.float32), origin=origin
    )


@dataclass
class SweepPoints:
    """Every point of one sweep that a page has seen, grown by incremental reads (or,
    with `only_metrics` / `only_included`, those of some metrics or trials only: a large
    sweep's pages, dashboard.live.BAND_SAMPLE).

    One instance is shared by every browser session watching the sweep (see
    `dashboard.ui`), each session in its own thread: one lock guards every read and write,
    so no session sees a series half extended or two refreshes append the same rows.
    Points are held as numpy columns per (trial, metric), never as Python objects.
    """

    sweep_id: str
    # Only these metrics are read (None: every one), e.g. a large sweep's metric for its
    # ranking and finals.
    only_metrics: tuple[str, ...] | None = None
    # Only the trials asked for with `include` are read (False: every trial), e.g. the
    # trials a large sweep's panels draw.
    only_included: bool = False
    last_id: int = 0
    n_points: int = 0  # points held (each (trial, metric, step) once)
    _series: dict[tuple[int, str], Series] = field(default_factory=dict)
    _start: dict[int, float] = field(default_factory=dict)  # trial -> first wall time
    _steps: dict[int, int] = field(default_factory=dict)  # trial -> largest step seen
    _curves: dict[tuple[Any, ...], tuple[int, np.ndarray, np.ndarray]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _held: set[int] = field(default_factory=set)  # trials read (only_included)
    _wanted: set[int] = field(default_factory=set)  # trials to read on the next refresh

    def include(self, trial_ids: Iterable[int]) -> None:
        """Read these trials too from the next refresh on (`only_included` only; trials
        already held stay held)."""
        with self._lock:
            self._wanted.update(int(t) for t in trial_ids)
            self._wanted -= self._held

    def held(self) -> set[int]:
        """The trials read so far (`only_included`), or asked for by `include`."""
        with self._lock:
            return self._held | self._wanted

    def refresh(self, store: Store) -> int:
        """Fetch the points written since the last refresh; returns how many arrived."""
        if self.only_metrics is not None or self.only_included:
            return self._refresh_filtered(store)
        with self._lock:
            cols = store.point_columns(self.sweep_id, after_id=self.last_id)
            self._add(
                cols.trial_id, cols.metric, cols.metrics, cols.step, cols.value, cols.wall_time
            )
            self.last_id = max(self.last_id, cols.last_id)
            arrived = len(cols)
            del cols
            if arrived >= _LARGE_READ:
                _release_freed_memory()
            return arrived

    def _refresh_filtered(self, store: Store) -> int:
        """A refresh of only some metrics or trials, through `store.points`' filters: the
        held trials' new points, then every point of the trials newly included. Those are
        read in full, while `last_id` stays at the held trials' read: the next refresh may
        read a few of their points again, which `Series.extend` skips.

        The held trials' new points are read as every trial's, the others dropped here: a
        list of a thousand trial ids costs the store more than the few points a running
        sweep writes between two refreshes (none once it has ended)."""
        with self._lock:
            arrived = 0
            held = sorted(self._held) if self.only_included else None
            if held is None or held:
                frame = store.points(
                    self.sweep_id,
                    metrics=self.only_metrics,
                    trial_ids=held if self.last_id == 0 else None,  # 0: a full read
                    after_id=self.last_id,
                )
                newest = int(frame["id"].max()) if len(frame) else self.last_id
                if held is not None and self.last_id > 0:
                    frame = frame[frame["trial_id"].isin(self._held)]
                arrived += self._take(frame)
                self.last_id = max(self.last_id, newest)
            if self._wanted:
                new = sorted(self._wanted)
                frame = store.points(self.sweep_id, metrics=self.only_metrics, trial_ids=new)
                arrived += self._take(frame)
                if not held and len(frame):  # the first read: its write id starts the rest
                    self.last_id = max(self.last_id, int(frame["id"].max()))
                self._held.update(new)
                self._wanted.clear()
            return arrived

    def _take(self, frame: pd.DataFrame) -> int:
        """Add rows of `store.points` whatever their write id; returns how many were new."""
        before = self.n_points
        if len(frame):
            codes, names = pd.factorize(frame["metric"])
            self._add(
                frame["trial_id"].to_numpy(np.int64),
                codes.astype(np.int64),
                [str(n) for n in names],
                frame["step"].to_numpy(np.int64),
                frame["value"].to_numpy(np.float64),
                frame["wall_time"].to_numpy(np.float64),
            )
        return self.n_points - before

    def add(self, frame: pd.DataFrame) -> None:
        """Take rows as `store.points` returns them: id, trial_id, metric, step, value,
        wall_time (rows with an id not above `last_id` are ignored)."""
        with self._lock:
            frame = frame[frame["id"] > self.last_id]
            if frame.empty:
                return
            codes, names = pd.factorize(frame["metric"])
            self._add(
                frame["trial_id"].to_numpy(np.int64),
                codes.astype(np.int64),
                [str(n) for n in names],
                frame["step"].to_numpy(np.int64),
                frame["value"].to_numpy(np.float64),
                frame["wall_time"].to_numpy(np.float64),
            )
            self.last_id = int(frame["id"].max())

    def _add(
        self,
        trial: np.ndarray,
        metric: np.ndarray,
        names: Sequence[str],
        step: np.ndarray,
        value: np.ndarray,
        wall: np.ndarray,
    ) -> None:
        """Append columns of points; `metric` holds indexes into `names`."""
        if len(step) == 0:
            return
        key = trial.astype(np.int64) * max(len(names), 1) + metric.astype(np.int64)
        if len(key) > 1 and np.any(np.diff(key) < 0):
            order = np.argsort(key, kind="stable")  # stable: steps stay in their order
            key, trial, metric = key[order], trial[order], metric[order]
            step, value, wall = step[order], value[order], wall[order]
        bounds = np.flatnonzero(np.diff(key)) + 1
        first = np.concatenate([[0], bounds]).astype(np.intp)
        starts = first.tolist()
        ends = np.concatenate([bounds, [len(key)]]).tolist()
        began_at = np.minimum.reduceat(wall, first).tolist()
        # A new series whose steps rise is made from its slice at once, its summaries
        # computed for every series together: a large sweep's first read makes ten
        # thousands of them (Series.extend gives the same, one at a time).
        rising = np.ones(len(step), bool)
        rising[1:] = np.diff(step) > 0
        rising[first] = True
        whole = bool(rising.all())
        if whole:
            finite = np.isfinite(value)
            high = np.maximum.reduceat(np.where(finite, value, -np.inf), first)
            low = np.minimum.reduceat(np.where(finite, value, np.inf), first)
            high[~np.isfinite(high)] = np.nan
            low[~np.isfinite(low)] = np.nan
            highs, lows = high.tolist(), low.tolist()
        for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
            trial_id, name = int(trial[a]), names[int(metric[a])]
            w = wall[a:b]
            began = began_at[i]
            origin = self._start.setdefault(trial_id, began)
            if began < origin:
                self._start[trial_id] = began
            series = self._series.get((trial_id, name))
            if series is None and whole:
                self._series[(trial_id, name)] = Series(
                    np.array(step[a:b], dtype=np.int32),
                    np.array(value[a:b], dtype=np.float64),
                    (w - origin).astype(np.float32),
                    origin=origin,
                    version=1,
                    last=float(value[b - 1]),
                    high=highs[i],
                    low=lows[i],
                )
                self.n_points += b - a
                self._steps[trial_id] = max(self._steps.get(trial_id, 0), int(step[b - 1]))
                continue
            if series is None:
                series = self._series[(trial_id, name)] = _empty_series(origin)
            self.n_points += series.extend(step[a:b], value[a:b], w - series.origin)
            if len(series.step):
                self._steps[trial_id] = max(self._steps.get(trial_id, 0), int(series.step[-1]))
        if len(self._curves) > 50_000:  # options changed many times: start the cache afresh
            self._curves.clear()

    # -- reads ---------------------------------------------------------------------------
    def metrics(self) -> list[str]:
        """Metric names seen so far, the per-step training loss first."""
        with self._lock:
            names = {metric for _, metric in self._series}
        return sorted(names, key=lambda m: (m != "train_loss", m))

    def series(self, trial_id: int, metric: str) -> Series | None:
        """A snapshot of one series: later refreshes do not change what it holds."""
        with self._lock:
            found = self._series.get((trial_id, metric))
            return dataclasses.replace(found) if found is not None else None

    def lengths(self, trial_ids: Iterable[int], metric: str) -> list[int]:
        """How many points each given trial holds of `metric` (trials without: left out);
        no copy of any series."""
        with self._lock:
            found = (self._series.get((int(t), metric)) for t in trial_ids)
            return [len(s.step) for s in found if s is not None]

    def finals(self, trial_ids: Iterable[int], metric: str) -> dict[int, float]:
        """Each given trial's last finite value of `metric` (NaN when it has none)."""
        out = {}
        with self._lock:
            for trial in trial_ids:
                series = self._series.get((int(trial), metric))
                if series is None:
                    out[int(trial)] = math.nan
                elif math.isfinite(series.last):
                    out[int(trial)] = series.last
                else:
                    finite = series.value[np.isfinite(series.value)]
                    out[int(trial)] = float(finite[-1]) if len(finite) else math.nan
        return out

    def last_step(self, trial_id: int) -> int | None:
        with self._lock:
            return self._steps.get(trial_id)

    def summary(self, metric: str, mode: str) -> pd.DataFrame:
        """Per trial: latest and best value of `metric` (index: trial id)."""
        with self._lock:
            rows = [
                (trial, s.last, s.best(mode))
                for (trial, m), s in self._series.items()
                if m == metric
            ]
        return pd.DataFrame(rows, columns=["trial", "latest", "best"]).set_index("trial")

    def curve(
        self,
        trial_id: int,
        metric: str,
        *,
        x: XAxis = "step",
        smoothing: float = 0.0,
        max_points: int = 1000,
    ) -> tuple[np.ndarray, np.ndarray]:
        """A trial's curve ready to draw: finite values only, EMA-smoothed, downsampled.

        x is the step, or the seconds since the trial's first point. Both arrays are
        float64. Cached until the series grows.
        """
        with self._lock:
            return self._curve(trial_id, metric, x, smoothing, max_points)

    def _curve(
        self, trial_id: int, metric: str, x: XAxis, smoothing: float, max_points: int
    ) -> tuple[np.ndarray, np.ndarray]:
        series = self._series.get((trial_id, metric))
        if series is None:
            return np.empty(0), np.empty(0)
        key = (trial_id, metric, x, smoothing, max_points)
        cached = self._curves.get(key)
        if cached is not None and cached[0] == series.version:
            return cached[1], cached[2]
        finite = np.isfinite(series.value)
        y = series.value[finite]
        if x == "step":
            xs = series.step[finite].astype(np.float64)
        else:
            began = self._start.get(trial_id, series.origin)
            xs = series.elapsed[finite].astype(np.float64) + (series.origin - began)
            if len(xs) > 1 and np.any(np.diff(xs) < 0):  # clock steps: keep x ascending
                xs = np.maximum.accumulate(xs)
        xs, ys = downsample(xs, ema(y, smoothing), max_points)
        self._curves[key] = (series.version, xs, ys)
        return xs, ys


def sample_trials(trial_ids: Iterable[int], k: int) -> list[int]:
    """A fixed pseudo-random `k` of the given trials, ascending (all of them when k or
    fewer). Each trial's place in the draw is a hash of its id, not a generator's state:
    the same trials give the same sample on every refresh and in every process, and a
    trial that appears later joins the sample only in place of one whose hash is larger,
    so a running sweep's sample changes little as it grows."""
    ids = np.unique(np.fromiter((int(t) for t in trial_ids), dtype=np.int64))
    if len(ids) <= k:
        return ids.tolist()
    # splitmix64's finaliser: a well-mixed 64-bit hash of each id
    z = ids.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.sort(ids[np.argsort(z, kind="stable")[:k]]).tolist()


# -- tables ------------------------------------------------------------------------------
def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True, default=str)


_SCALARS = (str, int, float, bool, type(None))


def _value_key(value: Any) -> Any:
    """A key that tells config values apart as `_hashable` does (1, 1.0 and True differ),
    without JSON for the scalars most configs hold: a 10,000-trial sweep is read on every
    refresh."""
    return (type(value), value) if isinstance(value, _SCALARS) else _hashable(value)


def ordered(values: Iterable[Any]) -> list[Any]:
    """Hyperparameter values in a stable order: numbers, then strings, ..., None last.

    Values of one type compare directly; lists, dicts and mixed types by their JSON text,
    so no value a spec can hold makes the sort fail.
    """

    def key(v: Any) -> tuple[int, str, Any]:
        if v is None:
            return (2, "", 0)
        if isinstance(v, bool):
            return (0, "bool", v)
        if isinstance(v, int | float):
            return (0, "number", v)  # 1 and 0.5 sort as numbers
        if isinstance(v, str):
            return (0, "str", v)
        return (1, type(v).__name__, _hashable(v))

    return sorted(values, key=key)


def hyperparameters(
    trials: Sequence[Mapping[str, Any]], spec: Mapping[str, Any] | None = None
) -> list[str]:
    """The hyperparameters that tell trials apart: the spec's grid and sample keys, then
    any other config key whose value differs between trials."""
    declared = [*(spec or {}).get("grid", {}), *(spec or {}).get("sample", {})]
    configs = [t["config"] for t in trials]
    keys = sorted({k for c in configs for k in c})
    varied = [k for k in keys if len({_value_key(c.get(k)) for c in configs}) > 1]
    return list(dict.fromkeys([*declared, *varied]))


def _cell(value: Any) -> Any:
    """A config value fit for a table cell: scalars as they are, anything else as JSON."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return _hashable(value)


def trial_table(
    trials: Sequence[Mapping[str, Any]],
    points: SweepPoints,
    *,
    sweep: Mapping[str, Any],
    params: Sequence[str],
) -> pd.DataFrame:
    """One row per trial: its store id ("trial", internal: `shown_table` swaps it for the
    number), its number within the sweep, its round when the sweep was extended (a
    "round" column only then), status, hyperparameters, steps done, latest value of every
    metric and the best value of the sweep's metric."""
    metric = str(sweep["metric"])
    rounds = any(int(t.get("round") or 1) > 1 for t in trials)
    columns = ["trial", "number", *(["round"] if rounds else []), "status", *params, "steps"]
    rows = []
    for t in trials:
        steps = points.last_step(int(t["id"]))
        rows.append(
            [
                t["id"],
                trial_number(t),
                *([int(t.get("round") or 1)] if rounds else []),
                status_label(t["status"]),
                *(_cell(t["config"].get(p)) for p in params),
                steps if steps is not None else t.get("last_step"),
            ]
        )
    table = pd.DataFrame(rows, columns=columns)
    table["trial"] = table["trial"].astype("int64")
    table["number"] = table["number"].astype("int64")
    table["steps"] = pd.to_numeric(table["steps"]).astype("Int64")
    for name in points.metrics():
        summary = points.summary(name, metric_mode(name, sweep))
        table[name] = table["trial"].map(summary["latest"]).astype("float64")
        if name == metric:
            table[f"best {name}"] = table["trial"].map(summary["best"]).astype("float64")
    return table


def shown_table(table: pd.DataFrame) -> pd.DataFrame:
    """A trial table as a page shows it: the number within the sweep in the "trial"
    column, the store's id gone (a table without numbers is returned as it is)."""
    if "number" not in table.columns:
        return table
    return table.drop(columns=["trial"]).rename(columns={"number": "trial"})


@dataclass(frozen=True)
class Filter:
    """Keep rows whose `column` is one of `values`, or lies within [low, high]."""

    column: str
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None


def filter_trials(table: pd.DataFrame, filters: Iterable[Filter]) -> pd.DataFrame:
    keep = pd.Series(True, index=table.index)
    for f in filters:
        if f.column not in table.columns:
            raise ValueError(
                f"filter column {f.column!r} is not in the trial table. "
                f"Fix: use one of {list(table.columns)}."
            )
        col = table[f.column]
        if f.values is not None:
            keep &= col.map(_hashable).isin({_hashable(v) for v in f.values})
        if f.low is not None:
            keep &= pd.to_numeric(col, errors="coerce") >= f.low
        if f.high is not None:
            keep &= pd.to_numeric(col, errors="coerce") <= f.high
    return table[keep]


def sweep_progress(counts: Mapping[str, int], total: int) -> str:
    """`done/running/failed of total`, as on the CLI's progress line."""
    done = sum(n for s, n in counts.items() if s in TrialStatus.finished())
    running, failed = counts.get(TrialStatus.RUNNING, 0), counts.get(TrialStatus.ERROR, 0)
    return f"{done} done · {running} running · {failed} failed of {total}"


def sweep_table(sweeps: Sequence[Mapping[str, Any]], now: float | None = None) -> pd.DataFrame:
    """Every sweep with status, progress, best metric, start time and duration."""
    now = time.time() if now is None else now
    rows = []
    for s in sweeps:
        end = s.get("ended_at") or now
        rows.append(
            {
                "sweep": s["id"],
                "status": sweep_status(dict(s), now),
                "progress": sweep_progress(s.get("counts", {}), int(s["n_trials"])),
                "metric": f"{s['metric']} ({s['mode']})",
                "best": s.get("best"),
                "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s["created_at"])),
                "duration": format_seconds(end - s["created_at"]),
            }
        )
    columns = ["sweep", "status", "progress", "metric", "best", "started", "duration"]
    return pd.DataFrame(rows, columns=columns)
