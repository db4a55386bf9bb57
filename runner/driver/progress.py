"""The one-line live progress of `sweepscope run`, in place of Ray Tune's tables."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, TextIO

from runner.status import TrialStatus
from runner.timefmt import format_seconds

if TYPE_CHECKING:
    from runner.driver.writer import Health

__all__ = ["Progress"]


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

    @property
    def _stream(self) -> TextIO:
        # Looked up on use: a Progress is pickled with Tune's state, a stream may not be.
        return self._given or sys.stderr

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
