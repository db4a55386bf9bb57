"""A sweep's life as the store sees it: who drives it, is that driver alive, what status to
show, and closing sweeps whose driver is gone. The CLI, resume, migrate and the dashboard
share these.

A driver is identified by its host, its PID and when that process started ("host:pid/start",
`Driver`), and writes a heartbeat (by the database's clock) every few seconds. A running
sweep has lost its driver:

- on this host, when no process with that PID and that start time exists: a PID reused
  after a reboot or a container restart is not taken for the driver (rows written before
  schema version 4 say only "host:pid", and are judged by the PID alone);
- on another host, when its heartbeat is older than max(the stale window, the driver's
  outage limit + OUTAGE_MARGIN): the driver waits out a store outage that long before it
  gives up, and writes no heartbeat meanwhile.

A driver alive on this host is never judged by its heartbeat: a store that was locked or
away for a while leaves the heartbeat stale while the sweep goes on.

Heartbeats are fenced: `Store.heartbeat` writes only while the sweep is running and this
driver is its driver, and raises SweepTakenOver otherwise. Closing a sweep as stale
(`reconcile`) or resuming it from another process fences the old driver out.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import SweepscopeError, SweepTakenOver
from runner.status import SweepStatus, TrialStatus
from runner.store._base import Store

__all__ = [
    "DEFAULT_OUTAGE_LIMIT",
    "OUTAGE_MARGIN",
    "STALE_ENV",
    "Driver",
    "driver_gone",
    "driver_label",
    "gone_because",
    "live_sweeps",
    "reconcile",
    "require_sweep",
    "stale_seconds",
    "stale_window",
    "sweep_status",
    "this_driver",
    "why_alive",
]

STALE_ENV = "SWEEPSCOPE_STALE_SECONDS"
DEFAULT_STALE_SECONDS = 60.0
# Seconds the store may stay away before the writer gives up and the sweep stops (the
# default of --store-outage-limit); also the limit assumed for rows from before schema
# version 4, which recorded none.
DEFAULT_OUTAGE_LIMIT = 900.0
# Beyond the outage limit, before another host's driver counts as gone: a heartbeat period
# (5 s), the writer's retry backoff (at most 5 s) and a store call that hangs until its
# statement timeout fit in it.
OUTAGE_MARGIN = 60.0

_PROC = Path("/proc")


def stale_seconds() -> float:
    """The stale window: $SWEEPSCOPE_STALE_SECONDS, default 60 s.

    Raises:
        SweepscopeError: the variable is set to something other than a positive number.
    """
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


@dataclass(frozen=True)
class Driver:
    """The process that runs a sweep, as `sweeps.driver` records it.

    Attributes:
        host: its host name.
        pid: its process id on that host.
        start: when the process started, as `process_start` gives it; None in rows written
            before schema version 4 ("host:pid").
    """

    host: str
    pid: int
    start: str | None = None

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}" + (f"/{self.start}" if self.start else "")

    @classmethod
    def parse(cls, text: str | None) -> Driver | None:
        """The driver a `sweeps.driver` value names ("host:pid/start" or the older
        "host:pid"); None for anything else (NULL, a row from the very first schema)."""
        ident, _, start = (text or "").partition("/")  # host names hold no "/"
        host, _, pid = ident.rpartition(":")
        if not host or not pid.isdigit():
            return None
        return cls(host, int(pid), start or None)

    def alive(self) -> bool | None:
        """Whether this driver's process runs: True/False on this host, None elsewhere."""
        if self.host != socket.gethostname():
            return None
        if self.start is not None:
            now = process_start(self.pid)
            if now is not None and now[:1] == self.start[:1]:  # read the same way as recorded
                return now == self.start and not _zombie(self.pid)
            if now is None and not _pid_exists(self.pid):
                return False
            # a process we may not inspect (hidepid), or a start read another way: the PID
            # alone must tell
        return _pid_exists(self.pid)


def driver_label(text: str | None) -> str:
    """A `sweeps.driver` value as people read it: "pid 4242 on host node-3"."""
    driver = Driver.parse(text)
    if driver is None:
        return f"driver {text}" if text else "an unknown driver"
    return f"pid {driver.pid} on host {driver.host}"


def _zombie(pid: int) -> bool:
    """Whether the process has exited and waits for its parent to reap it."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 1 :].split()[0] in ("Z", "X")


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, alive
    return True


def _boot_id() -> str | None:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def process_start(pid: int) -> str | None:
    """When process `pid` started, as text that differs between any two processes that
    ever had this PID on this host: "b<boot id>+<start in clock ticks since boot>" from
    /proc (field 22 of /proc/PID/stat), or "t<create time>" from psutil where /proc is
    missing. None when the process does not exist or its start cannot be read."""
    boot = _boot_id()
    if boot is not None:
        try:
            stat = (_PROC / str(pid) / "stat").read_text()
        except OSError:
            return None
        # the command name (field 2) is in parentheses and may hold spaces or ")": the 20th
        # field after its last ")" is field 22, starttime
        fields = stat[stat.rindex(")") + 1 :].split()
        return f"b{boot}+{fields[19]}"
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        return None
    try:
        return f"t{psutil.Process(pid).create_time():.3f}"
    except psutil.Error:
        return None


_this: tuple[int, Driver] | None = None


def this_driver() -> Driver:
    """This process, as a driver (computed once per process; a fork computes its own)."""
    global _this
    pid = os.getpid()
    if _this is None or _this[0] != pid:
        _this = (pid, Driver(socket.gethostname(), pid, process_start(pid)))
    return _this[1]


def stale_window(sweep: dict[str, Any]) -> float:
    """How old the heartbeat of a driver on another host may grow before the driver counts
    as gone: max(the stale window, the driver's recorded outage limit + OUTAGE_MARGIN)."""
    limit = sweep.get("outage_limit")
    limit = DEFAULT_OUTAGE_LIMIT if limit is None else float(limit)
    return max(stale_seconds(), limit + OUTAGE_MARGIN)


def gone_because(sweep: dict[str, Any], now: float | None = None) -> str | None:
    """Why a sweep's driver counts as gone (see the module docstring); None while it is
    alive. `now` is the database's clock; by default the `now` store reads put in the row.
    The sweep's status is not looked at."""
    driver = Driver.parse(sweep.get("driver"))
    alive = driver.alive() if driver is not None else None
    if alive is not None:
        label = driver_label(str(driver))
        return None if alive else f"its process ({label}) is gone from this host"
    now = now if now is not None else sweep.get("now", time.time())
    beat = sweep["heartbeat_at"] or sweep["created_at"]
    window = stale_window(sweep)
    if float(now) - beat <= window:
        return None
    return (
        f"no heartbeat from its driver ({driver_label(sweep.get('driver'))}) since "
        f"{time.ctime(beat)}, more than {window:g} s"
    )


def why_alive(sweep: dict[str, Any], now: float | None = None) -> str:
    """Why a running sweep's driver counts as alive, for a refusal to act on the sweep: its
    process runs here, or its heartbeat is younger than the window (and when that ends)."""
    driver = Driver.parse(sweep.get("driver"))
    label = driver_label(sweep.get("driver"))
    if driver is not None and driver.alive():
        return f"its driver ({label}) runs on this host"
    now = now if now is not None else sweep.get("now", time.time())
    age = max(0.0, float(now) - (sweep["heartbeat_at"] or sweep["created_at"]))
    window = stale_window(sweep)
    return (
        f"its driver ({label}) wrote a heartbeat {age:.0f} s ago; a driver on another host "
        f"counts as gone only after {window:g} s without one (its outage limit plus "
        f"{OUTAGE_MARGIN:g} s, as it may be waiting out a store outage), in "
        f"{max(0.0, window - age):.0f} s"
    )


def driver_gone(sweep: dict[str, Any], now: float | None = None) -> bool:
    """Whether a sweep's driver counts as gone (see `gone_because`)."""
    return gone_because(sweep, now) is not None


def sweep_status(sweep: dict[str, Any], now: float | None = None) -> str:
    """The status to show: a `running` sweep whose driver is gone shows as interrupted."""
    if sweep["status"] == SweepStatus.RUNNING and driver_gone(sweep, now):
        return SweepStatus.INTERRUPTED
    return str(sweep["status"])


def require_sweep(store: Store, sweep_id: str) -> dict[str, Any]:
    """The sweep, or the error every command gives for an unknown one.

    Raises:
        SweepscopeError: no such sweep in the store.
        StoreError: the store cannot be read.
    """
    sweep = store.sweep(sweep_id)
    if sweep is None:
        raise SweepscopeError(
            f"no sweep {sweep_id!r} in the store {store.url}. Fix: run `sweepscope ls` to see "
            "the sweeps there, or pass --store with the right URL."
        )
    return sweep


def reconcile(store: Store, now: float | None = None) -> list[str]:
    """Close sweeps whose driver is gone: no trial stays `running` when nothing runs it.

    Such a sweep becomes `stopped`, its pending and running trials `stopped`, in one
    transaction; `sweepscope resume` continues it. Its old driver is fenced out: should it
    still run after all (another host's driver across a long outage), its next heartbeat
    raises SweepTakenOver and it stops. A sweep that another process resumed or closed
    between the read and the close is left alone. Returns the ids of the sweeps it closed.

    Raises:
        StoreError: the store cannot be read or written (StoreUnavailable: it did not answer).
    """
    closed = []
    for sweep in store.sweeps():
        if sweep["status"] != SweepStatus.RUNNING:
            continue
        why = gone_because(sweep, now)
        if why is None:
            continue
        try:
            with store.batch():
                for trial in store.trials(sweep["id"]):
                    if not TrialStatus(trial["status"]).is_finished:
                        store.set_trial_status(
                            trial["id"], TrialStatus.STOPPED, detail="the sweep's driver was gone"
                        )
                store.finish_sweep(
                    sweep["id"],
                    SweepStatus.STOPPED,
                    f"interrupted: {why}; continue with `sweepscope resume {sweep['id']}`",
                    driver=sweep["driver"],  # only if no one took it over meanwhile
                )
        except SweepTakenOver:
            continue  # resumed or closed by someone else since the read: theirs now
        closed.append(sweep["id"])
    return closed


def live_sweeps(store_rows: list[dict[str, Any]], now: float) -> list[tuple[dict[str, Any], str]]:
    """The running sweeps among `store_rows` whose driver is alive, each with a line that
    names it, its driver and its last heartbeat (for `sweepscope migrate`'s refusal)."""
    live = []
    for row in store_rows:
        if row["status"] != SweepStatus.RUNNING or driver_gone(row, now):
            continue
        beat = row["heartbeat_at"] or row["created_at"]
        live.append(
            (
                row,
                f"{row['id']} ({driver_label(row.get('driver'))}, last heartbeat "
                f"{max(0.0, now - beat):.0f} s ago)",
            )
        )
    return live
