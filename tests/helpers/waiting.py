"""Waiting for something another process does (a trial to start, a server to answer)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_for"]

T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T], timeout: float, every: float = 0.3) -> T:
    """Call `check` every `every` s until it returns something true, and return that; after
    `timeout` s, fail with an AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        if value := check():
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
