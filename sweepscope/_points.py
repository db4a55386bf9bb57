"""A sweep's metric points as a DataFrame, from the store's columnar read.

`Store.point_columns` is the dashboard's bulk read: numpy arrays, no Python object per
point. This module keeps it that way up to the DataFrame: trial ids become the sweep's
trial numbers by one array lookup, the metric column is a Categorical over the metric
names, wall times are one vectorised conversion.

A `Cursor` lets a polling notebook fetch only what is new. The store's incremental read
(`after_id`) may return a point again when a later write covers steps already stored (a
resumed trial reporting its steps again, say), so the cursor also remembers which steps it
has handed out per (trial, metric), and a poll drops the ones seen before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from runner.store import PointColumns

__all__ = [
    "LONG_COLUMNS",
    "Cursor",
    "CurveUpdate",
    "Selected",
    "long_frame",
    "select",
    "unseen",
    "wide_frame",
]

LONG_COLUMNS = ["trial", "metric", "step", "value", "wall_time"]


@dataclass(frozen=True)
class Cursor:
    """Where a poll of `Sweep.curves` left off: pass it as `since` to get only newer points.

    `Cursor()` is the start of the sweep: the first poll returns every point. A cursor is
    never changed by a poll (each poll returns a new one), so polling twice from the same
    cursor returns the same points twice.

    Attributes:
        last_id: the last write of the store that this cursor has read.
    """

    last_id: int = 0
    # The sweep polled (None: the start, for any sweep).
    _sweep: str | None = field(default=None, repr=False)
    # (store trial id, metric) -> the steps handed out so far, ascending, each once.
    _seen: Mapping[tuple[int, str], np.ndarray] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def n_points(self) -> int:
        """How many points the polls up to this cursor have returned in all."""
        return sum(len(steps) for steps in self._seen.values())


class CurveUpdate(NamedTuple):
    """What a poll (`Sweep.curves(since=...)`) returns; unpack it as `points, cursor`.

    Attributes:
        points: the new points, in the form asked for (long or wide).
        cursor: the cursor to pass as `since` to the next poll.
    """

    points: pd.DataFrame
    cursor: Cursor


@dataclass(frozen=True)
class Selected:
    """Points as columns, trials as the sweep's trial numbers; `metric` indexes `metrics`."""

    trial_id: np.ndarray  # the store's ids: the cursor's keys, never shown
    number: np.ndarray
    metric: np.ndarray
    metrics: list[str]
    step: np.ndarray
    value: np.ndarray
    wall_time: np.ndarray

    def __len__(self) -> int:
        return len(self.step)

    def take(self, rows: np.ndarray) -> Selected:
        return Selected(
            self.trial_id[rows],
            self.number[rows],
            self.metric[rows],
            self.metrics,
            self.step[rows],
            self.value[rows],
            self.wall_time[rows],
        )


def select(
    cols: PointColumns,
    numbers: Mapping[int, int],
    *,
    metrics: Sequence[str] | None,
    trial_ids: Sequence[int] | None,
) -> Selected:
    """The points of `cols` of the given metrics and trials (None: all), numbered.

    Args:
        cols: a read of the store (`Store.point_columns`).
        numbers: store trial id -> trial number, for every trial `cols` may hold.
        metrics: metric names to keep (None: every metric).
        trial_ids: store trial ids to keep (None: every trial).
    """
    keep: np.ndarray | None = None
    names = list(cols.metrics)
    metric = cols.metric
    if metrics is not None:
        wanted = [i for i, name in enumerate(names) if name in set(metrics)]
        keep = np.isin(metric, wanted)
        recode = np.full(max(len(names), 1), -1, dtype=np.int32)
        recode[wanted] = np.arange(len(wanted), dtype=np.int32)
        metric, names = recode[metric], [names[i] for i in wanted]
    if trial_ids is not None:
        among = np.isin(cols.trial_id, np.asarray(list(trial_ids), dtype=np.int64))
        keep = among if keep is None else keep & among
    ids = np.array(sorted(numbers), dtype=np.int64)
    lookup = np.array([numbers[i] for i in ids.tolist()], dtype=np.int64)
    trial_id = cols.trial_id.astype(np.int64, copy=False)
    at = np.searchsorted(ids, trial_id) if len(ids) else np.zeros(len(trial_id), np.intp)
    number = lookup[at] if len(ids) else np.zeros(len(trial_id), np.int64)
    found = Selected(trial_id, number, metric, names, cols.step, cols.value, cols.wall_time)
    return found if keep is None else found.take(np.flatnonzero(keep))


def unseen(
    points: Selected, cursor: Cursor, last_id: int, sweep_id: str
) -> tuple[Selected, Cursor]:
    """The points of sweep `sweep_id` that `cursor` has not handed out yet, and the cursor
    past them (read up to the write `last_id`).

    Within one read each (trial, metric, step) comes at most once (the store's incremental
    read drops repeats); across reads, a step handed out before is dropped here.

    Raises:
        ValueError: the cursor comes from a poll of another sweep.
    """
    if cursor._sweep not in (None, sweep_id):
        raise ValueError(
            f"since={cursor!r} comes from a poll of sweep {cursor._sweep!r}, not of "
            f"{sweep_id!r}. Fix: keep one cursor per sweep; start with sweepscope.Cursor()."
        )
    seen = dict(cursor._seen)
    if not len(points):
        return points, Cursor(max(cursor.last_id, last_id), sweep_id, seen)
    key = points.trial_id * max(len(points.metrics), 1) + points.metric
    order = np.lexsort((points.step, key))
    points, key = points.take(order), key[order]
    bounds = np.flatnonzero(np.diff(key)) + 1
    starts = np.concatenate([[0], bounds]).tolist()
    ends = np.concatenate([bounds, [len(key)]]).tolist()
    keep = np.ones(len(key), dtype=bool)
    for a, b in zip(starts, ends, strict=True):
        name = (int(points.trial_id[a]), points.metrics[int(points.metric[a])])
        steps = points.step[a:b].astype(np.int32, copy=False)  # ascending (sorted above)
        held = seen.get(name)
        if held is None or not len(held):
            seen[name] = steps.copy()
        elif steps[0] > held[-1]:  # the common case: only later steps
            seen[name] = np.concatenate([held, steps])
        else:
            new = ~np.isin(steps, held)
            keep[a:b] = new
            seen[name] = np.union1d(held, steps[new]).astype(np.int32)
    fresh = points if keep.all() else points.take(np.flatnonzero(keep))
    return fresh, Cursor(max(cursor.last_id, last_id), sweep_id, seen)


def long_frame(points: Selected) -> pd.DataFrame:
    """The long form: one row per point, ordered by trial, metric (as the store numbers
    them) and step."""
    if len(points) > 1:
        key = points.number * max(len(points.metrics), 1) + points.metric
        ascending = np.all((np.diff(key) > 0) | ((np.diff(key) == 0) & (np.diff(points.step) > 0)))
        if not ascending:
            points = points.take(np.lexsort((points.step, points.metric, points.number)))
    millis = np.round(points.wall_time * 1000.0).astype(np.int64)
    return pd.DataFrame(
        {
            "trial": points.number.astype(np.int64, copy=False),
            "metric": pd.Categorical.from_codes(
                points.metric.astype(np.int32, copy=False), categories=points.metrics
            ),
            "step": points.step.astype(np.int64),
            "value": points.value,
            "wall_time": pd.to_datetime(millis, unit="ms", utc=True),
        },
        columns=LONG_COLUMNS,
    )


def wide_frame(long: pd.DataFrame) -> pd.DataFrame:
    """One row per (trial, step), one column per metric (NaN where a trial reported that
    metric at another step). Wall times stay in the long form."""
    names = [str(m) for m in long["metric"].cat.categories]
    if long.empty:
        return pd.DataFrame({"trial": [], "step": [], **{m: [] for m in names}}).astype(
            {"trial": "int64", "step": "int64", **dict.fromkeys(names, "float64")}
        )
    table = long.pivot(index=["trial", "step"], columns="metric", values="value")
    table.columns = [str(c) for c in table.columns]
    return table.reset_index()
