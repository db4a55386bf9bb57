"""One sweep of a store, read-only: its trials, curves, best, events, and a notebook view."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import pandas as pd

from runner.store import Store, TrialStatus, sweep_status
from sweepscope._best import Best, best_of
from sweepscope._points import (
    Cursor,
    CurveUpdate,
    Selected,
    long_frame,
    select,
    unseen,
    wide_frame,
)
from sweepscope._tables import event_table, n_seeds, trial_table

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["Sweep"]


def _metric_names(metrics: str | Sequence[str] | None) -> list[str] | None:
    if metrics is None:
        return None
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    bad = [m for m in names if not isinstance(m, str)]
    if bad:
        raise ValueError(
            f"metrics={metrics!r}: {bad[0]!r} is not a metric name. Fix: pass a name or a "
            "list of names, e.g. metrics=['val_loss']."
        )
    return names


def _trial_numbers(trials: int | Sequence[int] | None) -> set[int] | None:
    if trials is None:
        return None
    numbers = [trials] if isinstance(trials, int | np.integer) else list(trials)
    for n in numbers:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(
                f"trials={trials!r}: {n!r} is not a trial number (1, 2, ... within the "
                "sweep). Fix: pass numbers from sweep.trials()['number'], e.g. trials=[1, 2]."
            )
    return {int(n) for n in numbers}


class Sweep:
    """One sweep of a store, read-only; get it from `Results.sweep`.

    Every method reads the store again, so a sweep that is still running shows its latest
    state. Trials are named by their number within the sweep (1..N, in creation order),
    never by the store's internal ids.

    Attributes:
        id: the sweep's id (what `sweepscope status ID` takes).
        name: the spec's name.
        metric: the metric the sweep optimises.
        mode: "max" or "min": which end of the metric is best.
        spec: the sweep's validated spec, as stored.
    """

    def __init__(self, store: Store, row: dict[str, Any]) -> None:
        self._store = store
        self.id: str = str(row["id"])
        self.name: str = str(row["name"])
        self.metric: str = str(row["metric"])
        self.mode: str = str(row["mode"])
        self.spec: dict[str, Any] = dict(row["spec"])

    def __repr__(self) -> str:
        return (
            f"Sweep(id={self.id!r}, name={self.name!r}, metric={self.metric!r}, mode={self.mode!r})"
        )

    def _info(self) -> dict[str, Any]:
        """What the tables and the best need of the sweep (none of it changes)."""
        return {
            "id": self.id,
            "name": self.name,
            "metric": self.metric,
            "mode": self.mode,
            "spec": self.spec,
        }

    def _row(self) -> dict[str, Any]:
        row = self._store.sweep(self.id, best=False)
        if row is None:  # sweeps are never deleted; a store swapped underneath is
            raise ValueError(f"sweep {self.id!r} is no longer in the store {self._store.url}.")
        return row

    @property
    def status(self) -> str:
        """The sweep's status now: running, completed, failed, stopped, or interrupted (its
        driver is gone; `sweepscope resume` continues it)."""
        row = self._row()
        return sweep_status(row, row.get("now"))

    def _metric_points(self) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
        """The points of the sweep's metric, then the trials (read after the points, so
        every trial a point names is among them)."""
        points = self._store.points(self.id, metrics=[self.metric])
        return points, self._store.trials(self.id)

    def trials(self) -> pd.DataFrame:
        """The sweep's trials, one row each, by number.

        Returns:
            Columns number (1..N within the sweep), round (1 for the sweep's own trials,
            2.. for each `sweepscope extend`), status (the store's text, e.g.
            `stopped_by_user`), one column per config key (the spec's grid and sample
            keys first; a key named like a fixed column is `config.<key>`), seed (only
            for a seeded sweep), best and last (the trial's best and final value of the
            sweep's metric; NaN before any), steps (its last step), created, started and
            ended (UTC timestamps, NaT when not yet), device, node and error.
            `attrs["metric"]` names the metric of best and last.

        Raises:
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """
        points, rows = self._metric_points()
        return trial_table(rows, self._info(), points)

    @overload
    def curves(
        self,
        metrics: str | Sequence[str] | None = ...,
        trials: int | Sequence[int] | None = ...,
        *,
        wide: bool = ...,
        since: None = ...,
    ) -> pd.DataFrame: ...

    @overload
    def curves(
        self,
        metrics: str | Sequence[str] | None = ...,
        trials: int | Sequence[int] | None = ...,
        *,
        wide: bool = ...,
        since: Cursor,
    ) -> CurveUpdate: ...

    def curves(
        self,
        metrics: str | Sequence[str] | None = None,
        trials: int | Sequence[int] | None = None,
        *,
        wide: bool = False,
        since: Cursor | None = None,
    ) -> pd.DataFrame | CurveUpdate:
        """The metric points the trials reported, read with the dashboard's columnar read.

        Poll a running sweep with a cursor: `points, cursor = sweep.curves(since=Cursor())`
        returns every point so far, then each `sweep.curves(since=cursor)` only the points
        stored since (each point once, even where the store's incremental read returns a
        stored point again). Pass the same `metrics` and `trials` on every poll: points of
        the others are passed over for good.

        Args:
            metrics: a metric name or names to keep (None: every metric). A name no trial
                has reported yet gives no rows.
            trials: a trial number or numbers to keep (None: every trial).
            wide: one row per (trial, step) and one column per metric, instead of one
                row per point.
            since: a cursor (`Cursor()` for the start): return the points after it and the
                next cursor.

        Returns:
            Long form (the default): columns trial (number), metric (categorical), step,
            value (NaN where the trial reported NaN), wall_time (UTC timestamp, to the
            millisecond), ordered by trial, metric and step. Wide: trial, step, then one
            float column per metric. With `since`: a CurveUpdate (points, cursor).

        Raises:
            ValueError: a metric that is not a string, a trial that is not a number >= 1,
                or a cursor from a poll of another sweep.
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """
        names = _metric_names(metrics)
        numbers = _trial_numbers(trials)
        picked, last_id = self._read(names, numbers, 0 if since is None else since.last_id)
        cursor = None
        if since is not None:
            picked, cursor = unseen(picked, since, last_id, self.id)
        long = long_frame(picked)
        out = wide_frame(long) if wide else long
        return out if cursor is None else CurveUpdate(out, cursor)

    def _read(
        self, metrics: list[str] | None, numbers: set[int] | None, after_id: int
    ) -> tuple[Selected, int]:
        """The points after the write `after_id` of these metrics and trials, numbered; and
        the last write read."""
        cols = self._store.point_columns(self.id, after_id=after_id)
        rows = self._store.trials(self.id)  # after the points: every trial they name is here
        by_id = {int(t["id"]): int(t["number"]) for t in rows}
        trial_ids = None if numbers is None else [i for i, n in by_id.items() if n in numbers]
        return select(cols, by_id, metrics=metrics, trial_ids=trial_ids), cols.last_id

    def best(self) -> Best | None:
        """The sweep's best by its metric.

        Without seeds: the trial whose best value of the metric is best (as the live page
        marks it). With seeds: the configuration with the best mean final value over its
        seeds, its 95 % interval and the configurations it cannot be told apart from
        (runner.configurations.best_configuration, as `sweepscope status` gives it).

        Returns:
            A Best, or None before any trial has a finite value (with seeds: a final).

        Raises:
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """
        points, rows = self._metric_points()
        return best_of(self._info(), rows, points)

    def events(self) -> pd.DataFrame:
        """Every trial's status changes, oldest first.

        Returns:
            Columns trial (number), at (UTC timestamp), status, detail (the error text or
            stop reason, else None).

        Raises:
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """
        found = []
        for t in self._store.trials(self.id):
            number = int(t["number"])
            found += [(number, e) for e in self._store.trial_events(int(t["id"]))]
        return event_table(found)

    def plot(self, metric: str | None = None) -> go.Figure:
        """The dashboard's live panel of one metric over every trial: a plotly figure.

        Drawn by dashboard.live.panel, as the live page draws it: per-step metrics
        smoothed with the raw values faint behind, a y-range no spike flattens, a log
        axis where values span decades, the best trial thick; a seeded sweep as one median
        curve with a band across seeds per configuration.

        Args:
            metric: the metric to draw (None: the sweep's metric).

        Returns:
            A plotly Figure; in Jupyter it shows itself.

        Raises:
            ValueError: no trial has a finite point of `metric`; the message lists the
                metrics that have points.
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """
        from sweepscope._plot import panel_figure  # plotly and the dashboard: when drawing

        metric = metric or self.metric
        best = None
        if n_seeds(self.spec) < 2:
            found = self.best()
            best = found.trials[0] if found is not None else None
        return panel_figure(self._store, self._info(), metric, best)

    def _repr_html_(self) -> str:
        """The notebook view: status, trials per status, and the best."""
        row = self._store.sweep(self.id, best=False) or {}
        counts: dict[str, int] = row.get("counts", {})
        status = sweep_status(row, row.get("now")) if row else "unknown"
        n = sum(counts.values())
        cells = "".join(
            f"<tr><td>{html.escape(str(s))}</td><td style='text-align:right'>{counts[s]}</td></tr>"
            for s in TrialStatus
            if counts.get(s)
        )
        best = self.best()
        return (
            f"<div><b>{html.escape(self.name)}</b> <code>{html.escape(self.id)}</code>: "
            f"{html.escape(status)}, {n} of {row.get('n_trials', n)} trials; "
            f"{html.escape(self.metric)} ({self.mode})<br>best: {_best_html(best)}"
            f"<table><tr><th>status</th><th>trials</th></tr>{cells}</table></div>"
        )


def _best_html(best: Best | None) -> str:
    if best is None:
        return "none yet"
    if not best.seeded:
        config = ", ".join(f"{k}={v}" for k, v in best.config.items())
        return html.escape(f"{best.value:.6g} (trial {best.trials[0]}: {config})")
    interval = "" if math.isnan(best.low) else f" [{best.low:.4g}, {best.high:.4g}]"
    config = ", ".join(f"{k}={v}" for k, v in best.config.items())
    tied = f"; tied with {len(best.tied_with)} more" if best.tied_with else ""
    return html.escape(
        f"mean {best.value:.6g}{interval} over {best.n} seeds ({config}; trials "
        f"{', '.join(map(str, best.trials))}){tied}"
    )
