"""A sweep's life as the store sees it: is its driver alive, what status to show, and
closing sweeps whose driver is gone. The CLI, resume and the dashboard share these.

A driver writes a heartbeat (by the database's clock) every few seconds and records its
"host:pid". A running sweep has lost its driver when that process is gone from this host,
or, for a driver on another host, when its heartbeat is older than the stale window. A
driver alive on this host is never judged by its heartbeat: a store that was locked or
away for a while leaves the heartbeat stale while the sweep goes on.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from runner.errors import SweepscopeError
from runner.status import SweepStatus, TrialStatus
from runner.store._base import Store

__all__ = [
    "STALE_ENV",
    "driver_gone",
    "reconcile",
    "require_sweep",
    "stale_seconds",
    "sweep_status",
]

STALE_ENV = "SWEEPSCOPE_STALE_SECONDS"
DEFAULT_STALE_SECONDS = 60.0


def stale_seconds() -> float:
    """The stale window: $SWEEPSCOPE_STALE_SECONDS, default 60 s."""
    text = os.environ.get(STALE_ENV, "")
    try:
        value = float(text) if text else DEFAULT_STALE_SECONDS
    except ValueError:
        raise SweepscopeError(
            f"{STALE_ENV}={text!r} is not a number of seconds. Fix: set it to e.g. 60, or unset it."
        ) from None
    if not value > 0 or value == float("inf"):
        raise SweepscopeError(f"{STALE_ENV}={text!r} must be a positive number of seconds.")
    return value


def _process_alive(driver: str | None) -> bool | None:
    """Whether the driver's process is alive: True/False on this host, None elsewhere."""
    host, _, pid = (driver or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, alive
    return True


def driver_gone(sweep: dict[str, Any], now: float | None = None) -> bool:
    """Whether a running sweep has lost its driver (see the module docstring).

    `now` is the database's clock; by default the `now` that store reads put in the row.
    """
    alive = _process_alive(sweep.get("driver"))
    if alive is not None:
        return not alive
    now = now if now is not None else sweep.get("now", time.time())
    beat = sweep["heartbeat_at"] or sweep["created_at"]
    return float(now) - beat > stale_seconds()


def sweep_status(sweep: dict[str, Any], now: float | None = None) -> str:
    """The status to show: a `running` sweep whose driver is gone shows as interrupted."""
    if sweep["status"] == SweepStatus.RUNNING and driver_gone(sweep, now):
        return SweepStatus.INTERRUPTED
    return str(sweep["status"])


def require_sweep(store: Store, sweep_id: str) -> dict[str, Any]:
    """The sweep, or the error every command gives for an unknown one."""
    sweep = store.sweep(sweep_id)
    if sweep is None:
        raise SweepscopeError(
            f"no sweep {sweep_id!r} in the store {store.url}. Fix: run `sweepscope ls` to see "
            "the sweeps there, or pass --store with the right URL."
        )
    return sweep


def reconcile(store: Store, now: float | None = None) -> list[str]:
    """Close sweeps whose driver is gone: no trial stays `running` when nothing runs it.

    Such a sweep becomes `stopped`, its pending and running trials `stopped`;
    `sweepscope resume` continues it. Returns the ids of the sweeps it closed.
    """
    closed = []
    for sweep in store.sweeps():
        if sweep["status"] != SweepStatus.RUNNING or not driver_gone(sweep, now):
            continue
        beat = sweep["heartbeat_at"] or sweep["created_at"]
        for trial in store.trials(sweep["id"]):
            if not TrialStatus(trial["status"]).is_finished:
                store.set_trial_status(
                    trial["id"], TrialStatus.STOPPED, detail="the sweep's driver was gone"
                )
        store.finish_sweep(
            sweep["id"],
            SweepStatus.STOPPED,
            f"interrupted: no heartbeat from the driver since {time.ctime(beat)}; "
            f"continue with `sweepscope resume {sweep['id']}`",
        )
        closed.append(sweep["id"])
    return closed
