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
    """Sweeps, their trials, and every metric point the trials report.

    This class is the whole contract: `SqlStore` implements it for SQLite and PostgreSQL
    (runner.store.open_store picks the backend by URL), and tests/test_store.py
    checks it on both. Every error is a project error (runner.errors): StoreError, and
    its subclass StoreUnavailable where the store did not answer (a retry later may
    succeed; nothing of the failed call was written). A write naming an unknown sweep or
    trial raises StoreError, and so does `trial`; `sweep` returns None, and the reads of a
    sweep's or trial's parts (`trials`, `points`, `trial_events`, ...) return nothing. A
    status outside runner.status raises StoreError naming the value and the allowed ones.

    Attributes:
        url: the store's URL with any password masked: safe to print, log and store.
        schema_version: the version of the schema it holds (runner.store._schema).
        migrated: what `migrate_store` upgraded, if anything (one line a step).
        driver: this process as a sweep's driver, "host:pid/start"
            (runner.store._lifecycle.Driver). `create_sweep` and `reopen_sweep` record it;
            `heartbeat` and a guarded `finish_sweep` write only while the sweep still names it.
    """

    url: str
    schema_version: int
    migrated: list[str]
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
            sweep_id: the new sweep's id (unique in the store).
            name: the spec's name, for people.
            spec: the validated spec, stored as JSON and read back as `spec`.
            metric: the metric whose best value `sweeps` and `sweep` report.
            mode: "max" or "min": which end of `metric` is best.
            n_trials: how many trials the sweep plans.
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
        clears its end time, message and stop request, records `driver` and `outage_limit`.
        The driver it had is fenced out from then on.

        Args:
            sweep_id: the sweep to resume.
            outage_limit: as in `create_sweep`.

        Raises:
            StoreError: no such sweep, or it is running (another driver resumed it first, or
                still runs it); or the store cannot be written (StoreUnavailable: it did not
                answer).
        """

    @abc.abstractmethod
    def add_round(
        self,
        sweep_id: str,
        *,
        kind: str,
        detail: str,
        points: list[dict[str, Any]],
        experiment: str,
        spec: dict[str, Any] | None = None,
        outage_limit: float | None = None,
    ) -> int:
        """Start an extension of a sweep that is not running (`sweepscope extend`): record the
        round and mark the sweep running again, driven by this process, with `len(points)`
        more planned trials (none for "epochs": it continues trials the sweep has). Trials
        added from then on belong to the new round.

        Args:
            sweep_id: the sweep to extend.
            kind: "seeds", "grid" or "epochs": what the round adds.
            detail: what the user asked for, in words (shown with the round).
            points: the configurations the round runs, in order (its resume needs them).
            experiment: the round's Ray Tune experiment name (under the sweep's storage);
                `{round}` in it becomes the round's number.
            spec: the sweep's spec as it is from now on (`--grid` adds values); None keeps it.
            outage_limit: as in `create_sweep`.

        Returns:
            The new round's number: 2 for the first extension.

        Raises:
            StoreError: no such sweep, or it is running; or the store cannot be written
                (StoreUnavailable: it did not answer).
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
        """Set a sweep's final status and its end time. Any remembered password in
        `message` is masked.

        Args:
            sweep_id: the sweep to finish.
            status: its end: SweepStatus.COMPLETED, FAILED or STOPPED (`running` is set by
                `create_sweep` and `reopen_sweep`; `interrupted` is derived, never stored).
            message: a line for people: why it ended, how to continue it.
            at: when it ended, in Unix seconds (default now).
            driver: a guard: finish only while the sweep is running and this is its driver
                (the runner passes its own `driver`; reconcile the driver it judged gone).
                None: finish whatever its state.

        Raises:
            SweepTakenOver: with `driver`, the sweep is no longer running under that driver
                (closed as stale, or resumed by another driver); nothing was changed.
            StoreError: `status` is not a final sweep status, no such sweep, or the store
                cannot be written (StoreUnavailable: it did not answer).
        """

    @abc.abstractmethod
    def heartbeat(self, sweep_id: str) -> None:
        """Note that the sweep's driver is alive now, by the database's clock. Fenced: writes
        only while the sweep is running and this process (`driver`) is its driver.

        Args:
            sweep_id: the sweep this process drives.

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
        file), so that `resume` from another directory or host finds it. Read back as
        `spill_path` in `sweep` and `sweeps`. Not fenced.

        Args:
            sweep_id: the sweep.
            path: the spill file; None clears it.

        Raises:
            StoreError: no such sweep, or the store cannot be written (StoreUnavailable: it
                did not answer).
        """

    @abc.abstractmethod
    def add_trial(
        self,
        sweep_id: str,
        ray_id: str,
        config: dict[str, Any],
        *,
        at: float | None = None,
        continues: int | None = None,
    ) -> int:
        """Register a trial as pending (status and history). Idempotent per (sweep, ray_id):
        registering it again changes nothing and returns the same id. New trials take the
        next number of their sweep and the sweep's latest round.

        Args:
            sweep_id: the sweep the trial belongs to.
            ray_id: Ray Tune's id of the trial.
            config: its hyperparameters, stored as JSON and read back as `config`.
            at: when it was created, in Unix seconds (default now).
            continues: the store id of a finished trial of the sweep that this Ray trial
                continues (`sweepscope extend --epochs`): that trial takes `ray_id` and
                `config` and is pending again, keeping its number, round and points.

        Returns:
            The trial's store id: what every other trial call takes.

        Raises:
            StoreError: no such sweep, no trial `continues` in it, or the store cannot be
                written (StoreUnavailable: it did not answer).
        """

    @abc.abstractmethod
    def trial_ids(self, sweep_id: str) -> dict[str, int]:
        """The store ids of a sweep's trials.

        Args:
            sweep_id: the sweep; an unknown one has no trials.

        Returns:
            Ray trial id -> store id, for every trial of the sweep.

        Raises:
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """

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
        Running sets `started_at`, a finished status `ended_at` (unless given in `fields`).

        Args:
            trial_id: the store id from `add_trial`.
            status: a runner.status.TrialStatus (or its text).
            detail: a note for the status history (the error text, the stop reason).
            at: when it happened (default now): the writer passes the time it was reported.
                With `at`, an event identical in trial, status and `at` to one already
                stored is skipped (a replayed spill file writes nothing twice).
            fields: other trial columns to set: device, node, error, last_step, last_epoch,
                started_at, ended_at.

        Raises:
            StoreError: `status` is not a TrialStatus, no such trial, or the store cannot be
                written (StoreUnavailable: it did not answer).
            ValueError: a name in `fields` is not a trial column that may be set.
        """

    @abc.abstractmethod
    def update_trial(self, trial_id: int, **fields: Any) -> None:
        """Set trial columns without a status change; no fields: nothing is done.

        Args:
            trial_id: the store id from `add_trial`.
            fields: as in `set_trial_status`.

        Raises:
            StoreError: no such trial, or the store cannot be written (StoreUnavailable: it
                did not answer).
            ValueError: a name in `fields` is not a trial column that may be set.
        """

    @abc.abstractmethod
    def add_points(self, trial_id: int, points: Iterable[Point]) -> int:
        """Append metric points; a (trial, metric, step) already stored is skipped (and so
        is a repeat within `points`: the first one wins). Wall times are kept to the
        millisecond; NaN and inf values are kept.

        Args:
            trial_id: the store id from `add_trial`.
            points: (metric, step, value, wall_time) tuples.

        Returns:
            How many points were offered (not how many were new).

        Raises:
            StoreError: no such trial (with points to add), a value the store refuses, or
                the store cannot be written (StoreUnavailable: it did not answer).
        """

    # -- stop requests: the dashboard and CLI write, the runner reads ---------------------
    @abc.abstractmethod
    def request_stop(self, sweep_id: str, trial_id: int | None = None) -> bool:
        """Ask the runner to stop one trial, or the whole sweep.

        Args:
            sweep_id: the sweep.
            trial_id: the trial's store id; None: the whole sweep.

        Returns:
            True when a running or pending target now carries a request; False when the
            target had already finished (a no-op). Repeating a request changes nothing.

        Raises:
            StoreError: no such sweep, or no such trial in it; or the store cannot be
                written (StoreUnavailable: it did not answer).
        """

    @abc.abstractmethod
    def stop_requests(self, sweep_id: str) -> tuple[bool, set[str]]:
        """The stop requests the runner has to act on.

        Args:
            sweep_id: the sweep; an unknown one has none.

        Returns:
            (whether the whole sweep is asked to stop, Ray ids of trials with a request).

        Raises:
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """

    @abc.abstractmethod
    def batch(self) -> contextlib.AbstractContextManager[None]:
        """A block whose store calls (in this thread) share one transaction: all or none.
        An error raised inside the block rolls every call of it back.

        Returns:
            The context manager of the block.

        Raises:
            StoreError: the store cannot be written (StoreUnavailable: it did not answer);
                nothing of the block was written.
        """

    # -- reads -------------------------------------------------------------------------
    @abc.abstractmethod
    def now(self) -> float:
        """The database's clock (heartbeats are judged by it, not by each host's).

        Returns:
            Unix seconds.

        Raises:
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """

    @abc.abstractmethod
    def sweeps(self) -> list[dict[str, Any]]:
        """Every sweep, newest first.

        Returns:
            One dict a sweep: its columns (id, name, spec decoded, status, metric, mode,
            n_trials, storage_path, driver, outage_limit, spill_path, created_at, ended_at,
            heartbeat_at, stop_requested_at, message), trial counts per status in `counts`,
            the best value of its metric in `best` (None before any point), and `now`, the
            database's clock at the read.

        Raises:
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """

    @abc.abstractmethod
    def sweep(self, sweep_id: str, *, best: bool = True) -> dict[str, Any] | None:
        """One sweep, as in `sweeps`.

        Args:
            sweep_id: the sweep.
            best: False skips the aggregate over the sweep's points (for frequent
                refreshes): `best` is then None.

        Returns:
            The sweep's dict, or None for an unknown id (runner.store.require_sweep turns
            that into the error every command gives).

        Raises:
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """

    @abc.abstractmethod
    def trials(self, sweep_id: str) -> list[dict[str, Any]]:
        """A sweep's trials in creation order.

        Args:
            sweep_id: the sweep; an unknown one has no trials.

        Returns:
            One dict a trial: its columns (id, sweep_id, ray_id, number: 1..N within the
            sweep, what users see; round: 1, or the extension that added it; config decoded,
            status, created_at, started_at, ended_at, device, node, error, last_step, last_epoch,
            stop_requested_at).

        Raises:
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """

    @abc.abstractmethod
    def trial(self, trial_id: int) -> dict[str, Any]:
        """One trial.

        Args:
            trial_id: the store id from `add_trial`.

        Returns:
            The trial's dict, as in `trials`.

        Raises:
            StoreError: no such trial, or the store cannot be read (StoreUnavailable: it did
                not answer).
        """

    @abc.abstractmethod
    def rounds(self, sweep_id: str) -> list[dict[str, Any]]:
        """A sweep's extensions, oldest first (empty for a sweep never extended).

        Returns:
            One dict per round: sweep_id, round (2, 3, ...), kind, detail, points (the
            configurations it runs, decoded), experiment, created_at.

        Raises:
            StoreUnavailable: the store did not answer.
        """

    @abc.abstractmethod
    def trial_events(self, trial_id: int) -> list[dict[str, Any]]:
        """A trial's status history, oldest first.

        Args:
            trial_id: the store id; an unknown one has no history.

        Returns:
            One dict an event: at (Unix seconds), status, detail (or None).

        Raises:
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """

    @abc.abstractmethod
    def points(
        self,
        sweep_id: str,
        *,
        metrics: Sequence[str] | None = None,
        trial_ids: Sequence[int] | None = None,
        after_id: int = 0,
    ) -> pd.DataFrame:
        """Points of a sweep written after the write `after_id`, ordered by id, then trial,
        metric and step.

        `id` numbers the write that stored a point, not the point: points of one write share
        it, and a full read (after_id=0) gives every point the latest write's id. Pass the
        largest id seen so far as after_id to fetch only what is new. A later write that
        stores steps between steps already stored makes them come again;
        `dashboard.data.SweepPoints` keeps one.

        Args:
            sweep_id: the sweep; an unknown one has no points.
            metrics: only these metrics (None: all).
            trial_ids: only these trials' (None: all of the sweep's).
            after_id: 0 for every point, else the largest `id` of an earlier read.

        Returns:
            Columns id, trial_id, metric, step, value (NaN where the trial reported NaN),
            wall_time (Unix seconds, to the millisecond).

        Raises:
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """

    @abc.abstractmethod
    def point_columns(self, sweep_id: str, *, after_id: int = 0) -> PointColumns:
        """The points `points(sweep_id, after_id=after_id)` returns, as columns: the fast
        path for reading a whole sweep (no DataFrame, no Python object per point).

        Args:
            sweep_id: the sweep; an unknown one has no points.
            after_id: as in `points`.

        Returns:
            The points as arrays, with `last_id` for the next read.

        Raises:
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store's connections; the store is not used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
