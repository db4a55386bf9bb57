"""The driver's one writer to the store: queued, batched, retried, and never blocking Tune.

The Ray Tune callback hands every write (trials, statuses, points) to `StoreWriter`, which
returns at once; a background thread writes the queue in order, many operations to one
transaction. When the store does not answer (a PostgreSQL restart, another process holding
an SQLite write lock), the thread keeps what it could not write and retries with backoff,
while trials go on training and reporting. The same thread writes the heartbeat and reads
stop requests, so the Tune loop never waits on the store.

A store away for longer than `outage_limit` seconds, or holding more than
`max_held_points` points in memory, makes the writer give up: the sweep stops (resumable)
and `spill` keeps what was never written in a file beside Ray Tune's state, which
`sweepscope resume` writes to the store (`replay`) before it continues.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import StoreError, StoreUnavailable
from runner.store import Point, Store

__all__ = ["SPILL_FILE", "Health", "StoreWriter", "replay"]

log = logging.getLogger(__name__)

SPILL_FILE = "sweepscope-unwritten.jsonl"
DEFAULT_OUTAGE_LIMIT = 900.0  # seconds the store may stay away before the sweep stops
DEFAULT_MAX_HELD_POINTS = 2_000_000  # about 300 MB of points held while the store is away
_BATCH_OPS = 2000  # operations per transaction
_SLOW_SECONDS = 2.0  # a write in flight this long counts as the store being away

# An operation: (kind, ray trial id or None, keyword arguments). Kinds: trial, status,
# update, points, finish. Trials are named by their Ray id: the store id comes from the
# store, which may be away when the trial first reports.
Op = tuple[str, str | None, dict[str, Any]]


@dataclass(frozen=True)
class Health:
    """What the progress line and the driver need to know about the writer."""

    away_for: float | None  # seconds the store has not answered, None while it answers
    held_points: int  # points queued, not yet in the store
    gave_up: str | None  # why the writer stopped trying, None while it tries
    last_error: str | None


def apply(store: Store, sweep_id: str, ops: list[Op], ids: dict[str, int]) -> dict[str, int]:
    """Write `ops` in one transaction; returns the store ids of trials registered by them.

    `ids` maps Ray trial ids to store ids already known. Every operation is idempotent or
    rolled back with the batch, so a batch that failed can be applied again whole.
    """
    new: dict[str, int] = {}
    with store.batch():
        for kind, ray_id, args in ops:
            if kind == "finish":
                store.finish_sweep(sweep_id, **args)
                continue
            assert ray_id is not None
            if kind == "trial":
                new[ray_id] = store.add_trial(sweep_id, ray_id, **args)
                continue
            trial_id = new.get(ray_id) or ids.get(ray_id)
            if trial_id is None:  # registered in an earlier run (replay): look it up
                trial_id = store.trial_ids(sweep_id)[ray_id]
                new[ray_id] = trial_id
            if kind == "status":
                store.set_trial_status(trial_id, **args)
            elif kind == "update":
                store.update_trial(trial_id, **args)
            elif kind == "points":
                store.add_points(trial_id, args["points"])
    return new


class StoreWriter:
    def __init__(
        self,
        store: Store,
        sweep_id: str,
        *,
        outage_limit: float = DEFAULT_OUTAGE_LIMIT,
        max_held_points: int = DEFAULT_MAX_HELD_POINTS,
        heartbeat_seconds: float = 5.0,
        poll_seconds: float = 0.5,
    ) -> None:
        self.store = store
        self.sweep_id = sweep_id
        self.outage_limit = outage_limit
        self._max_held_points = max_held_points
        self._heartbeat_seconds = heartbeat_seconds
        self._poll_seconds = poll_seconds
        self._ops: list[Op] = []
        self._held_points = 0
        self._ids: dict[str, int] = {}
        self._cond = threading.Condition()
        self._closing = False
        self._failing_since: float | None = None
        self._attempt_since: float | None = None
        self._gave_up: str | None = None
        self._last_error: str | None = None
        self._stop_requests: tuple[bool, set[str]] = (False, set())
        self._thread = threading.Thread(target=self._run, name="sweepscope-writer", daemon=True)
        self._thread.start()

    def __reduce__(self) -> str | tuple[Any, ...]:
        # Ray Tune pickles its callbacks with the experiment state: a writer travels as its
        # store's pickled form (no credentials, no thread); resume builds a new one.
        return self.store.__reduce__()

    # -- what the callback calls: each returns at once --------------------------------------
    def add_trial(self, ray_id: str, config: dict[str, Any]) -> None:
        self._put(("trial", ray_id, {"config": config, "at": time.time()}))

    def set_status(
        self, ray_id: str, status: str, *, detail: str | None = None, **fields: Any
    ) -> None:
        self._put(("status", ray_id, {"status": status, "detail": detail, "at": time.time()}))
        if fields:
            self._put(("update", ray_id, fields))

    def update_trial(self, ray_id: str, **fields: Any) -> None:
        self._put(("update", ray_id, fields))

    def add_points(self, ray_id: str, points: Iterable[Point]) -> None:
        batch = list(points)
        if batch:
            self._put(("points", ray_id, {"points": batch}))

    def finish_sweep(self, status: str, message: str | None = None) -> None:
        self._put(("finish", None, {"status": status, "message": message, "at": time.time()}))

    def _put(self, op: Op) -> None:
        with self._cond:
            self._ops.append(op)
            if op[0] == "points":
                self._held_points += len(op[2]["points"])
                if self._held_points > self._max_held_points and self._gave_up is None:
                    self._give_up(
                        f"more than {self._max_held_points:,} points were waiting for the store"
                    )
            self._cond.notify()

    # -- what the stopper and the progress line read ----------------------------------------
    def stop_requests(self) -> tuple[bool, set[str]]:
        """The stop requests last read from the store (whole sweep, Ray trial ids)."""
        return self._stop_requests

    def health(self) -> Health:
        now = time.monotonic()
        since = self._failing_since
        attempt = self._attempt_since
        if since is None and attempt is not None and now - attempt >= _SLOW_SECONDS:
            since = attempt
        return Health(
            away_for=None if since is None else now - since,
            held_points=self._held_points,
            gave_up=self._gave_up,
            last_error=self._last_error,
        )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is in the store (or the writer gave up)."""
        with self._cond:
            self._cond.notify()
            return (
                self._cond.wait_for(
                    lambda: not self._ops or self._gave_up is not None, timeout=timeout
                )
                and not self._ops
            )

    # -- the end of the sweep ---------------------------------------------------------------
    def close(self) -> bool:
        """Write everything queued (waiting for the store up to the outage limit); True when
        all of it is in the store. Otherwise the rest stays queued for `spill`."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        return not self._ops

    def spill(self, directory: Path) -> Path | None:
        """After `close`: keep what was never written in `directory`/SPILL_FILE (appended,
        one JSON operation per line, in order); None when nothing was left."""
        if not self._ops:
            return None
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / SPILL_FILE
        with path.open("a") as out:
            for kind, ray_id, args in self._ops:
                out.write(json.dumps([kind, ray_id, args], default=_jsonable) + "\n")
        return path

    # -- the thread --------------------------------------------------------------------------
    def _give_up(self, reason: str) -> None:
        self._gave_up = reason
        self._cond.notify_all()

    def _run(self) -> None:
        backoff = 0.1
        beat_at = polled_at = 0.0
        while True:
            with self._cond:
                while not (self._ops or self._closing) and self._gave_up is None:
                    due = min(beat_at + self._heartbeat_seconds, polled_at + self._poll_seconds)
                    wait = due - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._gave_up is not None or (self._closing and not self._ops):
                    return
                batch = self._ops[:_BATCH_OPS]
            now = time.monotonic()
            self._attempt_since = now
            try:
                if batch:
                    self._ids.update(apply(self.store, self.sweep_id, batch, self._ids))
                if now - beat_at >= self._heartbeat_seconds:
                    self.store.heartbeat(self.sweep_id)
                    beat_at = now
                if now - polled_at >= self._poll_seconds:
                    self._stop_requests = self.store.stop_requests(self.sweep_id)
                    polled_at = now
            except StoreUnavailable as exc:
                self._note_failure(str(exc), now)
                with self._cond:
                    self._cond.wait_for(lambda: self._gave_up is not None, timeout=backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except StoreError as exc:  # a write the store refuses: retrying cannot help
                log.info("the store refused a write", exc_info=True)
                with self._cond:
                    self._last_error = str(exc)
                    self._give_up(f"the store refused a write ({exc})")
                return
            finally:
                self._attempt_since = None
            with self._cond:
                del self._ops[: len(batch)]
                self._held_points -= sum(len(a["points"]) for k, _, a in batch if k == "points")
                self._cond.notify_all()  # flush() waits for this
            if self._failing_since is not None:
                log.info("the store answers again; the writes it missed are written")
            self._failing_since, self._last_error, backoff = None, None, 0.1

    def _note_failure(self, error: str, attempt_began: float) -> None:
        if self._failing_since is None:
            self._failing_since = attempt_began
            log.info("the store does not answer; holding writes: %s", error)
        self._last_error = error
        if time.monotonic() - self._failing_since > self.outage_limit:
            with self._cond:
                self._give_up(
                    f"the store did not answer for {self.outage_limit:g} s (the outage limit)"
                )


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def replay(store: Store, sweep_id: str, directory: Path) -> int:
    """Write the operations a stopped sweep kept in `directory`/SPILL_FILE to the store,
    then remove the file; returns how many points it held. Safe to repeat: points are
    stored once, and the file goes only after everything is written."""
    path = directory / SPILL_FILE
    if not path.exists():
        return 0
    ops: list[Op] = []
    for line in path.read_text().splitlines():
        if line.strip():
            kind, ray_id, args = json.loads(line)
            if kind == "points":
                args["points"] = [tuple(p) for p in args["points"]]
            ops.append((kind, ray_id, args))
    ids = store.trial_ids(sweep_id)
    for start in range(0, len(ops), _BATCH_OPS):
        ids.update(apply(store, sweep_id, ops[start : start + _BATCH_OPS], ids))
    path.unlink()
    return sum(len(args["points"]) for kind, _, args in ops if kind == "points")
