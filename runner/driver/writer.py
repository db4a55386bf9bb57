"""The driver's one writer to the store: queued, batched, retried, and never blocking Tune.

The Ray Tune callback hands every write (trials, statuses, points) to `StoreWriter`, which
returns at once; a background thread writes the queue in order, many operations to one
transaction. When the store does not answer (a PostgreSQL restart, another process holding
an SQLite write lock, a table lock, a server that stopped answering), the thread keeps what
it could not write and retries with backoff, while trials go on training and reporting. The
same thread writes the heartbeat and reads stop requests, so the Tune loop never waits on
the store. Each of its store calls is bounded (`runner.store.bounded_calls`): a call that
would hang fails within seconds instead, and counts as the store being away.

Writes held while the store is away reach the disk as they are held (write-ahead): from the
moment the writer sees the store away, every queued operation is also appended to the spill
file (one JSON line each, one write() per line, mode 0600), and the file is emptied once
they are all in the store. A driver killed mid-outage (SIGKILL, an out-of-memory kill, a
time limit) therefore loses nothing: `sweepscope resume` writes the file to the store
(`replay`) before it continues.

A store away for longer than `outage_limit` seconds, holding more than `max_held_points`
points in memory, or an error inside the thread itself makes the writer give up: the sweep
stops (resumable) and the spill file keeps what was never written. A write the store
refuses for good (a value it cannot hold) is set aside in the rejects file beside the spill
file, with the reason, and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import StoreError, StoreUnavailable, SweepTakenOver
from runner.protocol import MAX_INFO
from runner.store import DEFAULT_OUTAGE_LIMIT, Point, Store
from runner.store._sql import bounded_calls

__all__ = [
    "REJECTS_FILE",
    "SPILL_FILE",
    "Health",
    "Replayed",
    "StoreWriter",
    "open_append",
    "replay",
    "storable",
]

log = logging.getLogger(__name__)

SPILL_FILE = "sweepscope-unwritten.jsonl"
REJECTS_FILE = "sweepscope-rejected.jsonl"  # beside the spill file: writes the store refused
DEFAULT_MAX_HELD_POINTS = 2_000_000  # about 300 MB of points held while the store is away
INTERRUPT_DRAIN = 5.0  # seconds an interrupted sweep's end waits for the store at most
CALL_TIMEOUT = 5.0  # seconds one store call of the writer may take (statement, lock, busy)
MAX_TEXT = 65_536  # characters kept of an error text, a status detail or a sweep message
_BATCH_OPS = 2000  # operations per transaction
_SLOW_SECONDS = 2.0  # a write in flight this long counts as the store being away

# An operation: (kind, ray trial id or None, keyword arguments). Kinds: trial, status,
# update, points, finish. Trials are named by their Ray id: the store id comes from the
# store, which may be away when the trial first reports.
Op = tuple[str, str | None, dict[str, Any]]

# Trial fields that hold text, and the most characters each keeps (the column sizes).
_TEXT_FIELDS = {"device": MAX_INFO, "node": MAX_INFO, "error": MAX_TEXT}


@dataclass(frozen=True)
class Health:
    """What the progress line and the driver need to know about the writer."""

    away_for: float | None  # seconds the store has not answered, None while it answers
    held_points: int  # points queued, not yet in the store
    gave_up: str | None  # why the writer stopped trying, None while it tries
    last_error: str | None
    rejected: int = 0  # writes the store refused for good, set aside in the rejects file
    taken_over: bool = False  # the store gave the sweep to another driver


def storable(text: Any, limit: int = MAX_TEXT) -> Any:
    """Text the store can hold: NUL bytes removed (PostgreSQL refuses them) and at most
    `limit` characters (its head and its tail, where a traceback says what failed).
    Anything that is not a string is returned as it is."""
    if not isinstance(text, str):
        return text
    text = text.replace("\x00", "")
    if len(text) <= limit:
        return text
    marker = f"\n[... {len(text) - limit:,} characters cut ...]\n"
    keep = max(limit - len(marker), 0)
    return text[: keep // 2] + marker + text[len(text) - (keep - keep // 2) :]


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
                trial_id = store.trial_ids(sweep_id).get(ray_id)
                if trial_id is None:
                    raise StoreError(
                        f"no trial {ray_id} in sweep {sweep_id}: the store refused to "
                        "register it, so its writes cannot be stored either"
                    )
                new[ray_id] = trial_id
            if kind == "status":
                store.set_trial_status(trial_id, **args)
            elif kind == "update":
                store.update_trial(trial_id, **args)
            elif kind == "points":
                store.add_points(trial_id, args["points"])
    return new


def _one_by_one(
    store: Store, sweep_id: str, ops: list[Op], ids: dict[str, int]
) -> tuple[int, list[tuple[Op, str]], StoreUnavailable | None]:
    """Apply `ops` one transaction each, to find the ones the store refuses for good.

    Returns how many ops from the head were dealt with (written or refused), the refused
    ones with the reason, and the error that stopped it early when the store went away.
    """
    refused: list[tuple[Op, str]] = []
    for done, op in enumerate(ops):
        try:
            ids.update(apply(store, sweep_id, [op], ids))
        except StoreUnavailable as exc:
            return done, refused, exc
        except SweepTakenOver:
            raise
        except (StoreError, ValueError, TypeError) as exc:  # this op, never the store
            refused.append((op, f"{exc.__class__.__name__}: {exc}"))
    return len(ops), refused, None


def _line(op: Op) -> bytes:
    kind, ray_id, args = op
    return (json.dumps([kind, ray_id, args], default=_jsonable) + "\n").encode()


def _append(fd: int, data: bytes) -> None:
    """One write() per record on an O_APPEND file: a record is whole or (after a crash
    mid-write) a torn last line, which `replay` skips."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def open_append(path: Path) -> int:
    """A file descriptor appending to `path` (made, with its folder, if missing), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)  # a file made earlier with a wider mode
    return fd


def set_aside(path: Path, refused: list[tuple[Op, str]]) -> None:
    """Append refused writes to the rejects file `path`, one JSON line each with the reason."""
    if not refused:
        return
    fd = open_append(path)
    try:
        for (kind, ray_id, args), reason in refused:
            record = {"at": time.time(), "reason": reason, "op": [kind, ray_id, args]}
            _append(fd, (json.dumps(record, default=_jsonable) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


class StoreWriter:
    """Queues the driver's writes and writes them from a thread; see the module docstring.

    Args:
        spill_path: the spill file (write-ahead while the store is away); the rejects file
            goes beside it. None: writes are held in memory only, and `spill` needs a
            directory.
        call_timeout: seconds one store call may take before it counts as failed.
    """

    def __init__(
        self,
        store: Store,
        sweep_id: str,
        *,
        spill_path: Path | None = None,
        outage_limit: float = DEFAULT_OUTAGE_LIMIT,
        max_held_points: int = DEFAULT_MAX_HELD_POINTS,
        heartbeat_seconds: float = 5.0,
        poll_seconds: float = 0.5,
        call_timeout: float = CALL_TIMEOUT,
    ) -> None:
        self.store = store
        self.sweep_id = sweep_id
        self.spill_path = spill_path
        self.outage_limit = outage_limit
        self._max_held_points = max_held_points
        self._heartbeat_seconds = heartbeat_seconds
        self._poll_seconds = poll_seconds
        self._call_timeout = call_timeout
        self._ops: list[Op] = []
        self._held_points = 0
        self._ids: dict[str, int] = {}
        self._cond = threading.Condition()
        self._closing = False
        self._abandoned = False  # the end gave up waiting: the thread touches nothing more
        self._deadline: float | None = None  # set by hurry()/abandon(): the latest end
        self._hurry: float | None = None  # hurry(): the most seconds close() waits
        self._failing_since: float | None = None
        self._attempt_since: float | None = None
        self._gave_up: str | None = None
        self._taken_over = False
        self._finished = False  # the sweep's finish is in the store
        self._last_error: str | None = None
        self._rejected = 0
        self.refused: list[tuple[Op, str]] = []  # with no spill_path: kept here
        self._spill_fd: int | None = None  # open while held writes go to the spill file
        self._spill_error: str | None = None
        self._stop_requests: tuple[bool, set[str]] = (False, set())
        self._thread = threading.Thread(target=self._run, name="sweepscope-writer", daemon=True)
        self._thread.start()

    def __reduce__(self) -> str | tuple[Any, ...]:
        # Ray Tune pickles its callbacks with the experiment state: a writer travels as its
        # store's pickled form (no credentials, no thread); resume builds a new one.
        return self.store.__reduce__()

    @property
    def rejects_path(self) -> Path | None:
        return None if self.spill_path is None else self.spill_path.with_name(REJECTS_FILE)

    # -- what the callback calls: each returns at once --------------------------------------
    def add_trial(self, ray_id: str, config: dict[str, Any], continues: int | None = None) -> None:
        """Register a trial; `continues`: the store id of the finished trial it continues."""
        args: dict[str, Any] = {"config": config, "at": time.time()}
        if continues is not None:
            args["continues"] = continues
        self._put(("trial", ray_id, args))

    def set_status(
        self, ray_id: str, status: str, *, detail: str | None = None, **fields: Any
    ) -> None:
        self._put(
            ("status", ray_id, {"status": status, "detail": storable(detail), "at": time.time()})
        )
        if fields:
            self.update_trial(ray_id, **fields)

    def update_trial(self, ray_id: str, **fields: Any) -> None:
        self._put(("update", ray_id, {k: _storable_field(k, v) for k, v in fields.items()}))

    def add_points(self, ray_id: str, points: Iterable[Point]) -> None:
        batch = list(points)
        if batch:
            self._put(("points", ray_id, {"points": batch}))

    def finish_sweep(self, status: str, message: str | None = None) -> None:
        if self._taken_over:  # the sweep is another driver's now: not a word more
            return
        args = {"status": status, "message": storable(message), "at": time.time()}
        driver = getattr(self.store, "driver", None)
        if driver is not None:  # guarded: refused when another driver took the sweep
            args["driver"] = driver
        self._put(("finish", None, args))

    def _put(self, op: Op) -> None:
        with self._cond:
            self._ops.append(op)
            if self._spill_fd is not None:
                self._write_ahead([op])
            else:
                self._check(time.monotonic())
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
        with self._cond:
            self._check(now)
            since = self._failing_since
            attempt = self._attempt_since
            if since is None and attempt is not None and now - attempt >= _SLOW_SECONDS:
                since = attempt
            return Health(
                away_for=None if since is None else now - since,
                held_points=self._held_points,
                gave_up=self._gave_up,
                last_error=self._last_error,
                rejected=self._rejected,
                taken_over=self._taken_over,
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
    def hurry(self, seconds: float = INTERRUPT_DRAIN) -> None:
        """The driver was interrupted: `close` waits for the store `seconds` at most, from
        its own start (Tune's wind-down before it does not count), or from now when it is
        already waiting. Safe to call from a signal handler (it takes no lock)."""
        self._hurry = seconds
        if self._closing:
            end = time.monotonic() + seconds
            if self._deadline is None or end < self._deadline:
                self._deadline = end

    def abandon(self) -> None:
        """Stop waiting for the store now (a second Ctrl-C): `close` returns at once."""
        self._deadline = time.monotonic()

    def close(self, timeout: float | None = None) -> bool:
        """Write everything queued, waiting for the store at most `timeout` seconds (default:
        the outage limit and a margin; less after `hurry`); True when all of it is in the
        store. Otherwise the rest stays for `spill`, and the thread (a daemon, perhaps still
        inside a store call) writes nothing more."""
        limit = self.outage_limit + 2 * self._call_timeout if timeout is None else timeout
        start = time.monotonic()
        end = start + limit
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        while self._thread.is_alive():
            hurried = end if self._hurry is None else start + self._hurry
            left = min(end, hurried, self._deadline or end) - time.monotonic()
            if left <= 0 or self._gave_up is not None:
                break
            self._thread.join(min(left, 0.05))
        with self._cond:
            self._abandoned = True
            self._cond.notify_all()
            return not self._ops

    def spill(self, directory: Path | None = None) -> Path | None:
        """After `close`: make sure every write not in the store is on disk, in the spill
        file (or `directory`/SPILL_FILE); returns it, or None when nothing was left.

        When another driver took the sweep over, only trials and points are kept (in a
        file of this process's own beside the spill file, which `replay` reads too): the
        other driver owns the statuses now."""
        with self._cond:
            self._abandoned = True
            if directory is not None:
                self.spill_path = directory / SPILL_FILE
            if not self._ops or self.spill_path is None:
                self._end_spilling()
                return None
            if self._taken_over:
                path = self.spill_path.with_name(f"{SPILL_FILE[:-6]}.{os.getpid()}.jsonl")
                fd = open_append(path)
                try:
                    _append(fd, b"".join(_line(op) for op in self._ops if op[0] in _KEPT))
                    os.fsync(fd)
                finally:
                    os.close(fd)
                return path
            if self._spill_fd is None:
                self._start_spilling(abandoned_too=True)
            if self._spill_fd is None:  # the disk refused: say so
                raise OSError(
                    f"cannot keep {self._held_points:,} held points in {self.spill_path}: "
                    f"{self._spill_error}"
                )
            os.fsync(self._spill_fd)
            os.close(self._spill_fd)
            self._spill_fd = None
            return self.spill_path

    # -- the spill file (all under self._cond) -------------------------------------------------
    def _check(self, now: float) -> None:
        """A store call in flight for long: the store counts as away (hold writes on disk);
        past the outage limit, give up, as for a store that fails."""
        attempt = self._attempt_since
        if attempt is None or self._gave_up is not None:
            return
        if now - attempt > self.outage_limit:
            self._last_error = f"a store call did not return for {now - attempt:.0f} s"
            self._give_up(
                f"the store did not answer for {self.outage_limit:g} s (the outage limit; "
                "a call hung)"
            )
        elif now - attempt >= _SLOW_SECONDS and self._spill_fd is None:
            self._start_spilling()

    def _start_spilling(self, abandoned_too: bool = False) -> None:
        """From now on every held write goes to the spill file too: those queued now first.
        Once the writer is abandoned, only `spill` (`abandoned_too`) still does: a thread
        coming back from a store call then writes nothing."""
        if (
            self._spill_fd is not None
            or self.spill_path is None
            or self._taken_over
            or (self._abandoned and not abandoned_too)
        ):
            return
        try:
            self._spill_fd = open_append(self.spill_path)
        except OSError as exc:
            self._note_spill_error(exc)
            return
        self._write_ahead(self._ops)

    def _write_ahead(self, ops: list[Op]) -> None:
        if self._spill_fd is None or not ops:
            return
        try:
            for op in ops:
                _append(self._spill_fd, _line(op))
        except OSError as exc:
            self._note_spill_error(exc)
            with contextlib.suppress(OSError):
                os.close(self._spill_fd)
            self._spill_fd = None

    def _note_spill_error(self, exc: OSError) -> None:
        self._spill_error = str(exc)
        log.warning("cannot keep held writes in %s: %s", self.spill_path, exc)

    def _end_spilling(self) -> None:
        """Everything held is in the store: empty the spill file."""
        if self._spill_fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._spill_fd, 0)
            os.close(self._spill_fd)
        self._spill_fd = None

    # -- the thread --------------------------------------------------------------------------
    def _give_up(self, reason: str) -> None:
        if self._gave_up is None:
            self._gave_up = reason
            self._start_spilling()  # on disk now: a kill from here on loses nothing
        self._cond.notify_all()

    def _run(self) -> None:
        try:
            with bounded_calls(self._call_timeout):
                self._loop()
        except BaseException as exc:  # not a store error: never die silently
            log.error("the store writer failed", exc_info=True)
            with self._cond:
                self._last_error = f"{exc.__class__.__name__}: {exc}"
                self._give_up(f"the store writer failed ({exc.__class__.__name__}: {exc})")

    def _loop(self) -> None:
        backoff = 0.1
        beat_at = polled_at = float("-inf")
        while True:
            with self._cond:
                while not (self._ops or self._closing or self._abandoned) and not self._gave_up:
                    due = min(beat_at + self._heartbeat_seconds, polled_at + self._poll_seconds)
                    wait = due - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._gave_up is not None or self._abandoned:
                    return
                if self._closing and not self._ops:
                    return
                batch = self._ops[:_BATCH_OPS]
            now = time.monotonic()
            self._attempt_since = now
            try:
                # After a failure the heartbeat comes first: a driver whose sweep was taken
                # over meanwhile finds out before it writes anything.
                due = now - beat_at >= self._heartbeat_seconds or self._failing_since is not None
                if due and not self._finished:  # a finished sweep has no driver to beat for
                    self.store.heartbeat(self.sweep_id)
                    beat_at = now
                done, refused = self._write(batch)
            except StoreError as exc:
                if self._failed(exc, now, backoff):
                    return
                backoff = min(backoff * 2, 5.0)
                continue
            finally:
                self._attempt_since = None
            with self._cond:  # at once: what is written must never be written as held again
                if self._abandoned:
                    return
                written = self._ops[:done]
                del self._ops[:done]
                self._finished = self._finished or any(k == "finish" for k, _, _ in written)
                self._held_points -= sum(len(a["points"]) for k, _, a in written if k == "points")
                self._set_aside(refused)
                if not self._ops:
                    self._end_spilling()
                self._cond.notify_all()  # flush() waits for this
            if now - polled_at >= self._poll_seconds:
                self._attempt_since = now
                try:
                    self._stop_requests = self.store.stop_requests(self.sweep_id)
                    polled_at = now
                except StoreError as exc:
                    if self._failed(exc, now, backoff):
                        return
                    backoff = min(backoff * 2, 5.0)
                    continue
                finally:
                    self._attempt_since = None
            if self._failing_since is not None:
                log.info("the store answers again; the writes it missed are written")
            self._failing_since, self._last_error, backoff = None, None, 0.1

    def _failed(self, exc: StoreError, attempt_began: float, backoff: float) -> bool:
        """A store call failed: hold on and wait `backoff` (True when the thread must end:
        the sweep was taken over, or the store refuses the heartbeat or the stop poll)."""
        if isinstance(exc, SweepTakenOver):
            with self._cond:
                self._taken_over = True
                self._last_error = str(exc)
                self._give_up(f"another driver took the sweep over ({exc})")
            return True
        if isinstance(exc, StoreUnavailable):
            self._note_failure(str(exc), attempt_began)
            with self._cond:
                self._cond.wait_for(
                    lambda: self._gave_up is not None or self._abandoned, timeout=backoff
                )
            return False
        log.info("the store refused the writer", exc_info=True)
        with self._cond:
            self._last_error = str(exc)
            self._give_up(f"the store refused the writer ({exc})")
        return True

    def _write(self, batch: list[Op]) -> tuple[int, list[tuple[Op, str]]]:
        """Write `batch`: (how many ops from its head are done, those the store refused)."""
        if not batch:
            return 0, []
        try:
            self._ids.update(apply(self.store, self.sweep_id, batch, self._ids))
            return len(batch), []
        except (StoreUnavailable, SweepTakenOver):
            raise
        except StoreError:  # one op the store refuses for good: find it, write the others
            done, refused, away = _one_by_one(self.store, self.sweep_id, batch, self._ids)
            if away is not None and done == 0:
                raise away from None
            return done, refused

    def _set_aside(self, refused: list[tuple[Op, str]]) -> None:
        for (kind, ray_id, _), reason in refused:
            log.warning("the store refused a write (%s of trial %s), set aside: %s",
                        kind, ray_id, reason)  # fmt: skip
        self._rejected += len(refused)
        path = self.rejects_path
        if path is None:
            self.refused += refused
            return
        try:
            set_aside(path, refused)
        except OSError as exc:
            log.warning("cannot set aside refused writes in %s: %s", path, exc)
            self.refused += refused

    def _note_failure(self, error: str, attempt_began: float) -> None:
        with self._cond:
            if self._failing_since is None:
                self._failing_since = attempt_began
                log.info("the store does not answer; holding writes: %s", error)
                self._start_spilling()
            self._last_error = error
            if time.monotonic() - self._failing_since > self.outage_limit:
                self._give_up(
                    f"the store did not answer for {self.outage_limit:g} s (the outage limit)"
                )


_KEPT = ("trial", "points")  # what a taken-over driver keeps: additions, never statuses


def _storable_field(name: str, value: Any) -> Any:
    limit = _TEXT_FIELDS.get(name)
    return storable(value, limit) if limit is not None else value


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


@dataclass
class Replayed:
    """What `replay` did: points and operations written, and what it had to skip."""

    points: int = 0
    ops: int = 0
    notes: list[str] = field(default_factory=list)  # one line each, for the user


def _read_ops(path: Path, notes: list[str]) -> list[Op]:
    """The operations in a spill file; a line that is not whole JSON (torn by a crash
    mid-write) is reported in `notes` and skipped."""
    ops: list[Op] = []
    data = path.read_bytes()
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            kind, ray_id, args = json.loads(raw)
            if kind == "points":
                args["points"] = [tuple(p) for p in args["points"]]
        except (ValueError, TypeError, KeyError) as exc:
            where = "its last line" if number >= len(lines) - 1 else f"line {number}"
            notes.append(
                f"{path}: skipped {where}, which is not a whole record ({len(raw)} bytes, "
                f"{exc.__class__.__name__}): a write cut off when the driver died"
            )
            continue
        ops.append((kind, ray_id, args))
    return ops


def replay(store: Store, sweep_id: str, path: Path) -> Replayed:
    """Write the operations a stopped sweep kept in the spill file `path` (and in the files
    of drivers that were taken over, beside it) to the store, then empty the file.

    Safe to repeat: points, trials and status events are stored once, and the file is
    emptied only after everything is written. A torn last line is skipped; an operation the
    store refuses for good is set aside in the rejects file with the reason, and the rest
    are written. Raises StoreUnavailable when the store does not answer (the file stays).
    """
    done = Replayed()
    others = sorted(path.parent.glob(f"{SPILL_FILE[:-6]}.*.jsonl")) if path.parent.is_dir() else []
    for file in [path, *others]:
        if not file.exists():
            continue
        ops = _read_ops(file, done.notes)
        for kind, _, args in ops:
            if kind == "finish":  # its driver is gone: the guard would refuse the new one
                args.pop("driver", None)
        ids = store.trial_ids(sweep_id)
        for start in range(0, len(ops), _BATCH_OPS):
            batch = ops[start : start + _BATCH_OPS]
            try:
                ids.update(apply(store, sweep_id, batch, ids))
            except StoreUnavailable:
                raise
            except (StoreError, ValueError, TypeError):
                _, refused, away = _one_by_one(store, sweep_id, batch, ids)
                if away is not None:
                    raise away from None
                set_aside(path.with_name(REJECTS_FILE), refused)
                for (kind, ray_id, _), reason in refused:
                    done.notes.append(
                        f"skipped a write the store refuses ({kind} of trial {ray_id}): "
                        f"{reason}; set aside in {path.with_name(REJECTS_FILE)}"
                    )
        done.ops += len(ops)
        done.points += sum(len(args["points"]) for kind, _, args in ops if kind == "points")
        if file == path:
            with file.open("r+b") as handle:
                handle.truncate(0)
        else:
            file.unlink()
    return done
