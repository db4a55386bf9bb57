"""A store opened for reading: its sweeps as a table, and one sweep by id or name."""

from __future__ import annotations

import pandas as pd

from runner.errors import StoreError, StoreUnavailable, SweepscopeError
from runner.redact import mask_url
from runner.store import Store, default_url, open_store
from sweepscope._sweep import Sweep
from sweepscope._tables import sweep_table

__all__ = ["Results", "open"]

# What the store's readers say where a URL holds no store yet (runner.store._sql).
_NO_STORE = "no sweepscope store"


class Results:
    """Every sweep of one store, read-only; get it from `sweepscope.open`.

    No method writes to the store: the API has no call that creates, migrates, stops or
    changes anything. Close it (or use it as a context manager) to release the store's
    connections.

    Attributes:
        url: the store's URL with any password masked.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self.url: str = store.url

    def __repr__(self) -> str:
        return f"Results(url={self.url!r})"

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the store's connections; the Results and its Sweeps are not used
        afterwards."""
        self._store.close()

    def sweeps(self) -> pd.DataFrame:
        """Every sweep in the store, newest first.

        Returns:
            Columns id, name, status (running, completed, failed, stopped, or interrupted
            where its driver is gone), metric, mode, best (the best value of its metric;
            NaN for a seeded sweep, whose answer is `Sweep.best()`, and before any point),
            seeds (per configuration, 1 without seeds), planned (trials the spec plans),
            trials (registered so far), one count column per trial status (pending,
            running, completed, ...), created and ended (UTC timestamps, NaT while running).

        Raises:
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """
        return sweep_table(self._store.sweeps())

    def sweep(self, id_or_name: str) -> Sweep:
        """One sweep, by its id or its spec's name.

        Args:
            id_or_name: the sweep's id, or a name: the newest sweep of that name (pass the
                id for an older one; `sweeps()` lists them).

        Returns:
            The Sweep.

        Raises:
            SweepscopeError: no sweep of that id or name; the message lists some there are.
            StoreError: the store cannot be read (StoreUnavailable: it did not answer).
        """
        row = self._store.sweep(str(id_or_name), best=False)
        if row is not None:
            return Sweep(self._store, row)
        every = self._store.sweeps()  # newest first
        named = [s for s in every if s["name"] == id_or_name]
        if named:
            return Sweep(self._store, named[0])
        some = ", ".join(f"{s['id']} ({s['name']})" for s in every[:5]) or "none"
        raise SweepscopeError(
            f"no sweep with the id or name {id_or_name!r} in the store {self.url}. Fix: pass "
            f"one of the ids or names that results.sweeps() lists (newest: {some})."
        )


def open(url: str | None = None) -> Results:
    """Open a store for reading: never creates, migrates or writes to it.

    Args:
        url: sqlite:///path/to/file.db or postgresql+psycopg://user@host:port/db; None:
            $SWEEPSCOPE_STORE, else sqlite:///sweepscope.db (as the CLI).

    Returns:
        The store's Results; close it, or use it as a context manager.

    Raises:
        StoreError: a URL of no supported backend; no store at the URL (the message says
            how to make one: `sweepscope run`, or `sweepscope migrate` for an empty one);
            a store of an earlier schema version (the message names the `sweepscope
            migrate` command that upgrades it) or a later one.
        StoreUnavailable: the store did not answer.
    """
    url = url or default_url()
    try:
        store = open_store(url)
    except StoreUnavailable:
        raise
    except StoreError as exc:
        text = str(exc)
        if _NO_STORE not in text or "sweepscope migrate" in text:
            raise
        raise StoreError(
            f"{text} sweepscope.open only reads: it never creates a store. To make an empty "
            f"one there, run `sweepscope migrate --store {mask_url(url)}`."
        ) from exc
    return Results(store)
