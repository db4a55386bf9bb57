"""The one home of trial and sweep statuses.

Both are string enums: a status compares equal to its text, which is what the store keeps,
so rows read back as plain strings still match (`row["status"] == TrialStatus.RUNNING`).
This module imports nothing heavy: trials import it too.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["SweepStatus", "TrialStatus"]


class TrialStatus(StrEnum):
    """A trial's life: pending -> running -> one of the finished statuses."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    DIVERGED = "diverged"  # a reported value was NaN or inf
    ERROR = "error"
    STOPPED = "stopped"  # Ctrl-C, a lost driver or store: `sweepscope resume` reruns it
    PRUNED = "pruned"  # ended early by a scheduler
    STOPPED_BY_USER = "stopped_by_user"
    TIMEOUT = "timeout"

    @property
    def is_finished(self) -> bool:
        """Whether the trial has ended (for now: a `stopped` trial can be resumed)."""
        return self not in (TrialStatus.PENDING, TrialStatus.RUNNING)

    @property
    def is_final(self) -> bool:
        """Finished for good: `sweepscope resume` reruns only `stopped` and unstarted trials."""
        return self.is_finished and self is not TrialStatus.STOPPED

    @classmethod
    def finished(cls) -> frozenset[TrialStatus]:
        return frozenset(s for s in cls if s.is_finished)


class SweepStatus(StrEnum):
    """A sweep's life: running -> completed | failed | stopped.

    `interrupted` is derived, never stored: a running sweep whose driver is gone.
    """

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"

    @property
    def is_finished(self) -> bool:
        return self in (SweepStatus.COMPLETED, SweepStatus.FAILED, SweepStatus.STOPPED)
