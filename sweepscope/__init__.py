"""Read sweep results from Python: a small, typed, read-only API over any sweepscope store.

    import sweepscope

    with sweepscope.open("sqlite:///sweepscope.db") as results:
        print(results.sweeps())               # every sweep, newest first
        sweep = results.sweep("bn-vs-lr")     # by id, or the newest of that name
        trials = sweep.trials()               # one row per trial, by number 1..N
        curves = sweep.curves("val_loss")     # one row per point
        best = sweep.best()                   # best trial, or best configuration over seeds
        sweep.plot()                          # the dashboard's live panel, as plotly

A running sweep can be polled for new points only:

    points, cursor = sweep.curves(since=sweepscope.Cursor())
    ...
    new, cursor = sweep.curves(since=cursor)

Reads go through the store's columnar reads, the ones the dashboard uses; nothing here
writes to a store, creates one or upgrades one (that is `sweepscope migrate`).
docs/python-api.md has a longer guide.
"""

from __future__ import annotations

from runner.errors import StoreError, StoreUnavailable, SweepscopeError
from sweepscope._best import Best
from sweepscope._points import Cursor, CurveUpdate
from sweepscope._results import Results, open
from sweepscope._sweep import Sweep

__all__ = [
    "Best",
    "Cursor",
    "CurveUpdate",
    "Results",
    "StoreError",
    "StoreUnavailable",
    "Sweep",
    "SweepscopeError",
    "open",
]
