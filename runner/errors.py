"""The project's own errors: each one names what was wrong and how to fix it."""

from __future__ import annotations

__all__ = ["SpecError", "StoreError", "SweepscopeError"]


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
