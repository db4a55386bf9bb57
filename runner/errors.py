"""The project's own errors: each one names what was wrong and how to fix it.

The CLI's exit status follows the kind: 2 for a mistake in the input (SweepscopeError,
SpecError, StoreError), 1 for infrastructure that failed (InfrastructureError,
StoreUnavailable) or an unexpected error.
"""

from __future__ import annotations

__all__ = [
    "InfrastructureError",
    "SpecError",
    "StoreError",
    "StoreMissing",
    "StoreUnavailable",
    "SweepTakenOver",
    "SweepscopeError",
]


class SweepscopeError(Exception):
    """An error the user can act on. The CLI prints it as one paragraph and exits 2."""


class SpecError(SweepscopeError):
    """A sweep spec that cannot run.

    Each problem is (field path, what is wrong with which value, how to fix it); the
    message names the spec file first, so a user knows where to look.
    """

    def __init__(self, source: str, problems: list[tuple[str, str, str]]) -> None:
        self.source = source
        self.problems = problems
        parts = [
            " ".join(
                (f"{field}: {problem} Fix: {fix}" if field else f"{problem} Fix: {fix}").split()
            )
            for field, problem, fix in problems
        ]  # one paragraph: YAML and pydantic messages may carry newlines
        noun = "problem" if len(parts) == 1 else f"{len(parts)} problems"
        super().__init__(f"{source}: {noun}: " + " | ".join(parts))


class StoreError(SweepscopeError):
    """The store cannot be opened, read or written; the driver error is attached as __cause__."""


class StoreMissing(StoreError):
    """The URL names no sweepscope store yet: no such SQLite file, or a database without the
    tables. A sweep's driver makes it (`sweepscope run`); readers never do, so the dashboard
    waits for it."""


class InfrastructureError(SweepscopeError):
    """Something the input did not cause failed (a store away, a cluster gone): exit 1."""


class StoreUnavailable(StoreError, InfrastructureError):
    """The store did not answer (server down, connection lost, database locked): a retry
    later may succeed, so the runner's writer holds what it could not write and retries."""


class SweepTakenOver(StoreError):
    """The store no longer counts this driver as its sweep's driver (the sweep was closed as
    stale, or another driver resumed it): this driver must stop writing, leaving the sweep
    to the other one (resumable), instead of writing beside it."""
