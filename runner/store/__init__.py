"""The shared store: sweeps, trials and metric points, on SQLite or PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable

from runner.status import SweepStatus, TrialStatus
from runner.store._base import Point, PointColumns, Store
from runner.store._filesystem import refuse_network_filesystem
from runner.store._lifecycle import (
    DEFAULT_OUTAGE_LIMIT,
    driver_gone,
    reconcile,
    require_sweep,
    sweep_status,
)
from runner.store._sql import DEFAULT_LOCK_TIMEOUT, SqlStore
from runner.store._url import BACKENDS, parse_store_url

__all__ = [
    "BACKENDS",
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_OUTAGE_LIMIT",
    "Point",
    "PointColumns",
    "SqlStore",
    "Store",
    "SweepStatus",
    "TrialStatus",
    "default_url",
    "driver_gone",
    "migrate_store",
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
    """Open the store at `url` (default: `default_url()`); only the runner passes create.

    `create` makes the schema where the URL holds none; it never upgrades one: a store of
    an earlier schema version raises StoreError naming `sweepscope migrate` (see
    `migrate_store`), for the runner as for readers.

    Args:
        url: sqlite:///path/to/file.db or postgresql[+driver]://user@host:port/db.
        create: make the schema where the URL holds none (the runner).

    Returns:
        The open store; close it (or use it as a context manager) to release connections.

    Raises:
        StoreError: a URL of another scheme or none (see `BACKENDS`), a SQLite file on a
            network filesystem, a missing driver, or a schema version this sweepscope does
            not use.
        StoreMissing: (readers) no store there yet: no such file, or no tables.
        StoreUnavailable: the store did not answer.
    """
    url = url or default_url()
    _check_backend(url)
    return SqlStore(url, create=create)


def migrate_store(
    url: str | None = None,
    *,
    force: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    on_wait: Callable[[str], None] | None = None,
) -> Store:
    """Open the store at `url`, creating its schema or upgrading an earlier one in place
    (`sweepscope migrate`, the only command that upgrades); `migrated` on the result says
    what was upgraded. One transaction: a failure changes nothing.

    Args:
        url: as in `open_store` (default: `default_url()`).
        force: upgrade even while a sweep on the store has a live driver.
        lock_timeout: seconds to wait for the migration lock (another process creating or
            upgrading this store) and, on PostgreSQL, for each table lock the upgrade needs.
        on_wait: called once with a line to show when it has to wait for the lock.

    Returns:
        The open store, at the current schema version.

    Raises:
        StoreError: a bad URL (as in `open_store`), a later schema, or (unless `force`) a
            running sweep whose driver is alive; nothing was changed.
        StoreUnavailable: the store did not answer, or a lock stayed taken past
            `lock_timeout`; nothing was changed.
    """
    url = url or default_url()
    _check_backend(url)
    return SqlStore(
        url,
        create=True,
        upgrade=True,
        force=force,
        lock_timeout=lock_timeout,
        on_wait=on_wait,
    )


def _check_backend(url: str) -> None:
    """Choose the backend by the URL's scheme (runner.store._url) and run what that backend
    needs checked before anything connects.

    One class, `SqlStore`, serves both backends. SQLite: the file must not be on a network
    filesystem (runner.store._filesystem). PostgreSQL: nothing beforehand; a missing driver
    or an unreachable server is found on connecting.

    Raises:
        StoreError: a URL of another scheme or none; a SQLite file on a network filesystem.
    """
    backend, parsed = parse_store_url(url)
    if backend == "sqlite":
        refuse_network_filesystem(url, parsed.database)
