"""Schema versions: stores written by earlier sweepscope versions, and by newer ones."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import sqlalchemy as sa

from runner.errors import StoreError
from runner.store import _schema as t
from runner.store import open_store

SWEEPSCOPE = [sys.executable, "-m", "runner.cli"]


def _earlier_schema(first: bool) -> sa.MetaData:
    """The tables as an earlier sweepscope made them: no version table; with `first`, the very
    first form (no sweeps.storage_path or sweeps.driver, and points.value NOT NULL)."""
    old = sa.MetaData()
    for table in (t.sweeps, t.trials, t.points, t.events):
        columns = []
        for column in table.columns:
            if first and table is t.sweeps and column.name in ("storage_path", "driver"):
                continue
            copy = column._copy()
            if first and table is t.points and column.name == "value":
                copy.nullable = False
            columns.append(copy)
        constraints = [
            sa.UniqueConstraint(*c.columns.keys(), name=c.name)
            for c in table.constraints
            if isinstance(c, sa.UniqueConstraint)
        ]
        sa.Table(table.name, old, *columns, *constraints)
    return old


def _write_earlier_store(url: str, first: bool) -> None:
    engine = sa.create_engine(url)
    old = _earlier_schema(first)
    with engine.begin() as conn:
        old.create_all(conn)
        sweep = {
            "id": "old-sweep",
            "name": "old",
            "spec": "{}",
            "status": "completed",
            "metric": "val_acc",
            "mode": "max",
            "n_trials": 1,
            "created_at": 1.0,
        }
        conn.execute(old.tables["sweeps"].insert().values(**sweep))
        trial_id = conn.execute(
            old.tables["trials"]
            .insert()
            .values(
                sweep_id="old-sweep", ray_id="r0", config="{}", status="completed", created_at=1.0
            )
        ).inserted_primary_key[0]
        conn.execute(
            old.tables["points"].insert(),
            [
                {
                    "trial_id": trial_id,
                    "metric": "val_acc",
                    "step": s,
                    "value": s / 10,
                    "wall_time": 1.0,
                }
                for s in range(1, 4)
            ],
        )
    engine.dispose()


def _tables(url: str) -> dict[str, set[str]]:
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        return {
            n: {c["name"] for c in inspector.get_columns(n)} for n in inspector.get_table_names()
        }
    finally:
        engine.dispose()


@pytest.mark.parametrize("first", [True, False], ids=["first-schema", "version-1"])
def test_an_earlier_store_is_refused_by_readers_and_upgraded_by_the_runner(
    store_url: str, first: bool
) -> None:
    _write_earlier_store(store_url, first)
    before = _tables(store_url)

    with pytest.raises(StoreError, match=r"schema version 1.*sweepscope migrate --store"):
        open_store(store_url)  # a reader (dashboard, ls, export) never changes it
    assert _tables(store_url) == before

    with open_store(store_url, create=True) as store:  # the runner upgrades in place
        assert store.migrated and "version 1 -> 2" in store.migrated[0]
        (sweep,) = store.sweeps()
        assert sweep["id"] == "old-sweep" and sweep["best"] == pytest.approx(0.3)
        trial_id = store.trials("old-sweep")[0]["id"]
        store.add_points(trial_id, [("val_acc", 4, math.nan, 2.0)])  # NaN: NULL in the store
        values = store.points("old-sweep")["value"].tolist()
        assert values[:3] == pytest.approx([0.1, 0.2, 0.3]) and math.isnan(values[3])
    assert {"storage_path", "driver"} <= _tables(store_url)["sweeps"]

    with open_store(store_url) as reader:  # now current: readers open it
        assert reader.schema_version == t.SCHEMA_VERSION
    with open_store(store_url, create=True) as again:
        assert again.migrated == []  # nothing left to do


def test_a_newer_store_is_refused_untouched(store_url: str) -> None:
    open_store(store_url, create=True).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(t.meta.update().values(value=str(t.SCHEMA_VERSION + 1)))
    engine.dispose()
    before = _tables(store_url)
    for create in (False, True):
        with pytest.raises(StoreError, match="written by a newer sweepscope.*pip install -U"):
            open_store(store_url, create=create)
    assert _tables(store_url) == before


def test_cli_migrate_and_readers_say_what_to_run(store_url: str) -> None:
    _write_earlier_store(store_url, first=True)
    listed = subprocess.run(
        [*SWEEPSCOPE, "ls", "--store", store_url], capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 2 and "Traceback" not in listed.stderr
    assert f"sweepscope migrate --store {store_url}" in listed.stderr

    migrated = subprocess.run(
        [*SWEEPSCOPE, "migrate", "--store", store_url], capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "upgraded the schema in place" in migrated.stdout
    assert f"schema version {t.SCHEMA_VERSION}" in migrated.stdout

    listed = subprocess.run(
        [*SWEEPSCOPE, "ls", "--store", store_url], capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0 and "old-sweep" in listed.stdout
