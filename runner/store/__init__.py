"""The shared store: sweeps, trials and metric points, on SQLite or PostgreSQL."""

from __future__ import annotations

import os

from runner.status import SweepStatus, TrialStatus
from runner.store._base import Point, PointColumns, Store
from runner.store._lifecycle import driver_gone, reconcile, require_sweep, sweep_status
from runner.store._sql import SqlStore

__all__ = [
    "Point",
    "PointColumns",
    "SqlStore",
    "Store",
    "SweepStatus",
    "TrialStatus",
    "default_url",
    "driver_gone",
    "open_store",
    "reconcile",
    "require_sweep",
    "sweep_status",
]

DEFAULT_URL = "sqlite:///sweepscope.db"


def default_url() -> str:
    """The store URL used when none is given: $SWEEPSCOPE_STORE, else ./sweepscope.db."""
    return os.environ.get("SWEEPSCOPE_STORE") or DEFAULT_URL


def open_store(url: str | None = None, *, create: bool = False) -> Store:
    """Open the store at `url` (default: `default_url()`); only the runner passes create."""
    return SqlStore(url or default_url(), create=create)
