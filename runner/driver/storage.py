"""Where a sweep keeps what is not in its store: Ray Tune's state and checkpoints
(`storage_path`), and the spill file of writes the store has not taken yet."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from runner.driver.writer import SPILL_FILE, open_append
from runner.errors import StoreError
from runner.store import Store

__all__ = [
    "DEFAULT_STORAGE",
    "absolute_storage",
    "clear_spill",
    "record_spill",
    "spill_dir",
    "spill_file",
]

DEFAULT_STORAGE = ".sweepscope/ray"


def absolute_storage(storage: str) -> str:
    """A local storage path made absolute; a URI (s3://bucket/sweeps) stays as it is."""
    return storage if "://" in storage else str(Path(storage).resolve())


def spill_dir(storage_path: str, sweep_id: str) -> Path:
    """Where a sweep keeps the writes its store never took: beside Ray Tune's state, or,
    when that state lives in a cloud URI, under ~/.sweepscope/spill (an absolute path, the
    same whatever the current directory). The store records the file's path (spill_path)."""
    if "://" not in storage_path:
        return Path(storage_path).resolve() / sweep_id
    return Path.home().resolve() / ".sweepscope" / "spill" / sweep_id


def spill_file(sweep: dict[str, Any], storage: str) -> Path:
    """The spill file of a sweep: the one its store records, else the default place."""
    return Path(sweep.get("spill_path") or spill_dir(storage, sweep["id"]) / SPILL_FILE)


def record_spill(store: Store, sweep_id: str, spill: Path) -> None:
    """Make the (empty) spill file and record its path in the store, so that `resume` from
    another directory or host finds it, or says that it is missing. Best effort: the
    default place (spill_dir) is where resume looks when nothing is recorded."""
    os.close(open_append(spill))
    try:
        store.set_spill_path(sweep_id, str(spill))
    except StoreError as exc:
        logging.getLogger(__name__).info("could not record the spill file's path: %s", exc)


def clear_spill(store: Store, sweep_id: str, spill: Path) -> None:
    """Everything is in the store: forget the spill file (kept where the store could not be
    told, so that a resume finds it, empty)."""
    try:
        store.set_spill_path(sweep_id, None)
    except StoreError:
        return
    with contextlib.suppress(OSError):
        spill.unlink()
