"""The storage contract: what the runner writes and the dashboard reads.

One abstract class documents every operation; `SqlStore` serves SQLite and PostgreSQL
from one implementation. Rows come back as plain dicts (JSON columns decoded) and point
reads as pandas DataFrames, so callers never see SQLAlchemy objects.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd  # imported by the readers that return frames: a CLI start skips it

# A point as the runner writes it: (metric, step, value, wall_time).
Point = tuple[str, int, float, float]


@dataclass(frozen=True)
class PointColumns:
    """Points as columns, one array per field: the dashboard's bulk read, with no Python
    object per point. Rows are ordered by (trial_id, metric, step) within each write.

    Attributes:
        last_id: pass it as `after_id` to the next read to get only what is new.
        write_id: int64, the write that stored each point (as `points`' id column).
        metrics: metric names; `metric` holds indexes into this list.
        trial_id, metric, step: int64, int32, int32.
        value: float64 (NaN where the trial reported NaN).
        wall_time: float64 Unix seconds, to the millisecond.
    """

    last_id: int
    write_id: np.ndarray
    metrics: list[str]
    trial_id: np.ndarray
    metric: np.ndarray
    step: np.ndarray
    value: np.ndarray
    wall_time: np.ndarray

    def __len__(self) -> int:
        return len(self.step)


class Store(abc.ABC):
    """Sweeps, their trials, and every metric point the trials report."""

    url: str  # with any password masked: safe to print, log and store
    schema_version: int  # the version of the schema it holds (runner.store._schema)
    migrated: list[str]  # what `migrate_store` upgraded, if anything
    # This process as a sweep's driver: "host:pid/start" (runner.store._lifecycle.Driver).
    # `create_sweep` and `reopen_sweep` record it; `heartbeat` and a guarded `finish_sweep`
    # write only while the sweep still names it.
    driver: str

    # -- writes: the runner --------------------------------------------------------------
    @abc.abstractmethod
    def create_sweep(
        self,
        sweep_id: str,
        *,
        name: str,
        spec: dict[str, Any],
        metric: str,
        mode: str,
        n_trials: int,
        storage_path: str | None = None,
        outage_limit: float | None = None,
    ) -> None:
        """Record a new sweep with status running, driven by this process (`driver`).

        Args:
            storage_path: where Ray Tune keeps the sweep's state and checkpoints (for resume).
            outage_limit: how long (seconds) this driver waits out a store outage before it
                gives up; readers on other hosts judge its heartbeat by it. None: the
                default (runner.store._lifecycle.DEFAULT_OUTAGE_LIMIT).

        Raises:
            StoreError: a sweep with this id exists, or the store cannot be written
                (StoreUnavailable: it did not answer).
        """

    @abc.abstractmethod
    def reopen_sweep(self, sweep_id: str, *, outage_limit: float | None = None) -> None:
        """Mark a sweep that is not running running again, driven by this process (resume):
        clears its end time, message and stop request, records `driver` and `outage_limit`
        (as in `create_sweep`). The driver it had is fenced out from then on.

        Raises:
            StoreError: no such sweep, or it is running (another driver resumed it first, or
                still runs it); or the store cannot be written (StoreUnavailable: it did not
                answer).
        """

    @abc.abstractmethod
    def finish_sweep(
        self,
        sweep_id: str,
        status: str,
        message: str | None = None,
        *,
        at: float | None = None,
        driver: str | None = None,
    ) -> None:
        """Set a sweep's final status (completed, failed or stopped) and its end time (`at`,
        default now). Any remembered password in `message` is masked.

        Args:
            driver: a guard: finish only while the sweep is running and this is its driver
                (the runner passes its own `driver`; reconcile the driver it judged gone).
                None: finish whatever its state.

        Raises:
            SweepTakenOver: with `driver`, the sweep is no longer running under that driver
                (closed as stale, or resumed by another driver); nothing was changed.
            StoreError: no such sweep, or the store cannot be written (StoreUnavailable: it
                did not answer).
        """

    @abc.abstractmethod
    def heartbeat(self, sweep_id: str) -> None:
        """Note that the sweep's driver is alive now, by the database's clock. Fenced: writes
        only while the sweep is running and this process (`driver`) is its driver.

        Raises:
            SweepTakenOver: the sweep is not running under this driver any more (closed as
                stale by `reconcile`, finished, or resumed by another driver): stop driving
                it, leaving it to the other driver (resumable).
            StoreError: no such sweep, or the store cannot be written (StoreUnavailable: it
                did not answer; a retry may succeed).
        """

    @abc.abstractmethod
    def set_spill_path(self, sweep_id: str, path: str | None) -> None:
        """Record where the sweep's driver keeps the writes its store missed (its spill
        file), so that `resume` from another directory or host finds it; None clears it.
        Read back as `spill_path` in `sweep` and `sweeps`. Not fenced.

        Raises:
            StoreError: no such sweep, or the store cannot be written (StoreUnavailable: it
                did not answer).
        """

    @abc.abstractmethod
    def add_trial(
        self, sweep_id: str, ray_id: str, config: dict[str, Any], *, at: float | None = None
    ) -> int:
        """Register a trial as pending; returns its store id. Idempotent per (sweep, ray_id)."""

    @abc.abstractmethod
    def trial_ids(self, sweep_id: str) -> dict[str, int]:
        """Ray trial id -> store id for every trial of the sweep."""

    @abc.abstractmethod
    def set_trial_status(
        self,
        trial_id: int,
        status: str,
        *,
        detail: str | None = None,
        at: float | None = None,
        **fields: Any,
    ) -> None:
        """Change a trial's status, append it to the trial's history, and set extra fields.

        Args:
            trial_id: the store id from `add_trial`.
            status: a runner.status.TrialStatus.
            detail: a note for the status history (the error text, the stop reason).
            at: when it happened (default now): the writer passes the time it was reported.
                With `at`, an event identical in trial, status and `at` to one already
                stored is skipped (a replayed spill file writes nothing twice).
            fields: other trial columns to set: device, node, error, last_step, last_epoch.
        """

    @abc.abstractmethod
    def update_trial(self, trial_id: int, **fields: Any) -> None:
        """Set trial columns (device, node, last_step, last_epoch) without a status change."""

    @abc.abstractmethod
    def add_points(self, trial_id: int, points: Iterable[Point]) -> int:
        """Append metric points; a (trial, metric, step) already stored is skipped (and so
        is a repeat within `points`: the first one wins). Wall times are kept to the
        millisecond.

        Returns:
            How many points were offered (not how many were new).
        """

    # -- stop requests: the dashboard and CLI write, the runner reads ---------------------
    @abc.abstractmethod
    def request_stop(self, sweep_id: str, trial_id: int | None = None) -> bool:
        """Ask the runner to stop one trial, or the whole sweep when trial_id is None.

        Returns:
            True when a running or pending target now carries a request; False when the
            target had already finished (a no-op). Repeating a request changes nothing.

        Raises:
            StoreError: no such sweep or trial.
        """

    @abc.abstractmethod
    def stop_requests(self, sweep_id: str) -> tuple[bool, set[str]]:
        """(whole sweep requested, Ray ids of trials with a request) for a sweep."""

    @abc.abstractmethod
    def batch(self) -> contextlib.AbstractContextManager[None]:
        """A block whose store calls (in this thread) share one transaction: all or none.

        Raises:
            StoreUnavailable: the store did not answer; nothing of the block was written.
        """

    # -- reads -------------------------------------------------------------------------
    @abc.abstractmethod
    def now(self) -> float:
        """The database's clock, in Unix seconds (heartbeats are judged by it)."""

    @abc.abstractmethod
    def sweeps(self) -> list[dict[str, Any]]:
        """Every sweep, newest first: its columns (id, name, spec decoded, status, metric,
        mode, n_trials, storage_path, driver, outage_limit, spill_path, created_at,
        ended_at, heartbeat_at, stop_requested_at, message), trial counts per status in
        `counts`, the best value of its metric in `best`, and `now`, the database's clock
        at the read.

        Raises:
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """

    @abc.abstractmethod
    def sweep(self, sweep_id: str, *, best: bool = True) -> dict[str, Any] | None:
        """One sweep (as in `sweeps`), or None. With best=False, `best` is None and the
        aggregate over the sweep's points is skipped (for frequent refreshes).

        Raises:
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """

    @abc.abstractmethod
    def trials(self, sweep_id: str) -> list[dict[str, Any]]:
        """The sweep's trials in creation order, `config` decoded."""

    @abc.abstractmethod
    def trial_events(self, trial_id: int) -> list[dict[str, Any]]:
        """A trial's status history, oldest first."""

    @abc.abstractmethod
    def points(
        self,
        sweep_id: str,
        *,
        metrics: Sequence[str] | None = None,
        trial_ids: Sequence[int] | None = None,
        after_id: int = 0,
    ) -> pd.DataFrame:
        """Points of a sweep written after the write `after_id` (0: every point), ordered
        by id, then trial, metric and step.

        Columns: id, trial_id, metric, step, value, wall_time. `id` numbers the write that
        stored a point, not the point: points of one write share it, and a full read
        (after_id=0) gives every point the latest write's id. Pass the largest id seen so
        far as after_id to fetch only what is new. A later write that stores steps between
        steps already stored makes them come again; `dashboard.data.SweepPoints` keeps one.
        """

    @abc.abstractmethod
    def point_columns(self, sweep_id: str, *, after_id: int = 0) -> PointColumns:
        """The points `points(sweep_id, after_id=after_id)` returns, as columns: the fast
        path for reading a whole sweep (no DataFrame, no Python object per point)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
