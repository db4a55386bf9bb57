"""The live progress of `sweepscope run` and `resume`, in place of Ray Tune's tables: one
human line (`Progress`, the default), or JSON lines on stdout (`JsonProgress`, with
`--progress json`: one object an event, schema runner/schemas/progress.schema.json).

Both name a trial by its number within its sweep, as the store numbers it (1..N in creation
order): trials the store already holds (a resumed sweep) are told by `know`, and each new
one takes the next number as the callback registers it, the order in which the writer adds
trials to the store.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from runner.status import TrialStatus
from runner.timefmt import format_seconds
from runner.views import scrubbed

if TYPE_CHECKING:
    from runner.driver.writer import Health

__all__ = ["JsonProgress", "Progress", "event_line"]


class Progress:
    """Prints `done/running/failed of total, best, elapsed, ETA`, at most every `every` s."""

    def __init__(
        self, *, total: int, metric: str, stream: TextIO | None = None, every: float = 1.0
    ) -> None:
        self.total = total
        self.metric = metric
        self._given = stream
        self._live = self._stream.isatty()
        self._every = every if self._live else max(every, 10.0)  # a log file gets fewer lines
        self._start = time.monotonic()
        self._printed_at = 0.0
        self._store_away = False
        self._numbers: dict[str, int] = {}  # Ray trial id -> its number in the sweep

    def __getstate__(self) -> dict[str, Any]:
        # Pickled with Tune's state, where a stream may not go: a copy writes to the default.
        return self.__dict__ | {"_given": None}

    @property
    def _stream(self) -> TextIO:
        # Looked up on use: a Progress is pickled with Tune's state, a stream may not be.
        return self._given or sys.stderr

    # -- trial numbers ---------------------------------------------------------------------
    def know(self, trials: Iterable[Mapping[str, Any]]) -> None:
        """The numbers of the trials the store holds already (store.trials rows)."""
        self._numbers.update({str(t["ray_id"]): int(t["number"]) for t in trials})

    def number(self, ray_id: str) -> int:
        """The trial's number in its sweep; a trial not seen before takes the next one."""
        if ray_id not in self._numbers:
            self._numbers[ray_id] = max(self._numbers.values(), default=0) + 1
        return self._numbers[ray_id]

    # -- trial events: the human line shows only failures ---------------------------------
    def trial_added(self, ray_id: str, config: Mapping[str, Any]) -> None:
        """A trial Tune created (pending); it takes its number now."""
        self.number(ray_id)

    def trial_status(self, ray_id: str, status: str, detail: str | None = None) -> None:
        """A trial's new status as the store gets it (running, pending again, finished)."""

    def trial_reported(
        self, ray_id: str, *, epoch: int | None, step: int | None, value: float | None
    ) -> None:
        """A trial's result: its epoch and step, and its value of the metric."""

    def trial_failed(self, ray_id: str, text: str, sweep_id: str) -> None:
        """A trial raised: the last line of its error, and where the traceback is."""
        last_line = text.strip().splitlines()[-1] if text.strip() else "unknown error"
        self.note(
            f"trial {self.number(ray_id)} failed: {last_line} "
            f"(traceback: sweepscope status {sweep_id})"
        )

    # -- the line ------------------------------------------------------------------------
    def line(self, statuses: Counter[str], best: float | None, store: Health | None = None) -> str:
        done = sum(n for s, n in statuses.items() if s in TrialStatus.finished())
        failed = statuses.get(TrialStatus.ERROR, 0)
        elapsed = time.monotonic() - self._start
        eta = "--:--" if done == 0 else format_seconds(elapsed / done * (self.total - done))
        best_text = "-" if best is None else f"{best:.4g}"
        text = (
            f"trials {done}/{self.total} done, {statuses.get(TrialStatus.RUNNING, 0)} running, "
            f"{failed} failed | best {self.metric} {best_text} | "
            f"elapsed {format_seconds(elapsed)} | ETA {eta}"
        )
        if store is not None and store.away_for is not None:
            text += (
                f" | store away {format_seconds(store.away_for)}, {store.held_points:,} points held"
            )
        return text

    def update(
        self,
        statuses: Counter[str],
        best: float | None,
        *,
        store: Health | None = None,
        force: bool = False,
    ) -> None:
        now = time.monotonic()
        if not force and now - self._printed_at < self._every:
            return
        self._printed_at = now
        text = self.line(statuses, best, store)
        if self._live:
            self._stream.write("\r\033[K" + text)
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def store_changed(self, store: Health, outage_limit: float) -> None:
        """A note when the store stops answering, and when it answers again."""
        away = store.away_for is not None
        if away and not self._store_away:
            self.note(
                f"the store is not answering; trials go on and their points are held "
                f"(the sweep stops if it stays away {format_seconds(outage_limit)})"
            )
        elif not away and self._store_away:
            self.note("the store answers again; the held points are written")
        self._store_away = away

    def note(self, text: str) -> None:
        """A line of its own (e.g. a failed trial), above the progress line."""
        self._stream.write(("\r\033[K" if self._live else "") + text + "\n")
        self._stream.flush()
        self._printed_at = 0.0

    def close(self) -> None:
        if self._live:
            self._stream.write("\n")
            self._stream.flush()


def _number_or_none(value: Any) -> float | None:
    """A value JSON can hold: NaN and infinities become null."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def event_line(event: str, **fields: Any) -> str:
    """One progress event as a JSON line (passwords masked), with its time (Unix seconds)."""
    body = {"event": event, "time": round(time.time(), 3), **fields}
    return json.dumps(scrubbed(body), allow_nan=False, default=str) + "\n"


class JsonProgress(Progress):
    """The same progress as JSON lines on `stream` (default stdout), one object an event:
    trial_started, trial_reported, trial_retrying, trial_ended, progress (the counts, at
    most every `every` s when they change) and note (the store away, or back); the CLI
    adds sweep_started, sweep_ended and error (`emit`)."""

    def __init__(
        self, *, total: int, metric: str, stream: TextIO | None = None, every: float = 1.0
    ) -> None:
        super().__init__(total=total, metric=metric, stream=stream, every=every)
        self._every = every  # a pipe is not a terminal, but its reader wants every change
        self._configs: dict[str, dict[str, Any]] = {}
        self._last_counts: dict[str, Any] | None = None

    @property
    def _stream(self) -> TextIO:
        return self._given or sys.stdout

    def emit(self, event: str, **fields: Any) -> None:
        self._stream.write(event_line(event, **fields))
        self._stream.flush()

    def trial_added(self, ray_id: str, config: Mapping[str, Any]) -> None:
        self.number(ray_id)
        self._configs[ray_id] = dict(config)

    def trial_status(self, ray_id: str, status: str, detail: str | None = None) -> None:
        trial = self.number(ray_id)
        if status == TrialStatus.RUNNING:
            self.emit("trial_started", trial=trial, config=self._configs.get(ray_id))
        elif status == TrialStatus.PENDING:
            self.emit("trial_retrying", trial=trial, detail=detail)
        elif TrialStatus(status).is_finished:
            # A traceback's last line says what failed; the whole of it is in the store.
            last = detail.strip().splitlines()[-1] if detail and detail.strip() else None
            self.emit("trial_ended", trial=trial, status=str(status), detail=last)

    def trial_reported(
        self, ray_id: str, *, epoch: int | None, step: int | None, value: float | None
    ) -> None:
        self.emit(
            "trial_reported",
            trial=self.number(ray_id),
            epoch=epoch,
            step=step,
            value=_number_or_none(value),
        )

    def trial_failed(self, ray_id: str, text: str, sweep_id: str) -> None:
        """Said by trial_ended, whose detail holds the error."""

    def update(
        self,
        statuses: Counter[str],
        best: float | None,
        *,
        store: Health | None = None,
        force: bool = False,
    ) -> None:
        """A `progress` event when the counts, the best value or the store's state changed
        (at most every `every` s), and always when forced (the sweep's end)."""
        now = time.monotonic()
        counts = {str(s): n for s, n in sorted(statuses.items())}
        state = {
            "counts": counts,
            "best": _number_or_none(best),
            "store_away": store is not None and store.away_for is not None,
        }
        if not force and (state == self._last_counts or now - self._printed_at < self._every):
            return
        self._printed_at, self._last_counts = now, state
        done = sum(n for s, n in statuses.items() if s in TrialStatus.finished())
        elapsed = time.monotonic() - self._start
        self.emit(
            "progress",
            done=done,
            running=statuses.get(TrialStatus.RUNNING, 0),
            failed=statuses.get(TrialStatus.ERROR, 0),
            total=self.total,
            counts=counts,
            metric=self.metric,
            best=state["best"],
            elapsed=round(elapsed, 3),
            eta=None if done == 0 else round(elapsed / done * max(self.total - done, 0), 3),
            store_away_for=None if store is None else store.away_for,
            held_points=0 if store is None else store.held_points,
        )

    def note(self, text: str) -> None:
        self.emit("note", text=text)

    def close(self) -> None:
        self._stream.flush()
