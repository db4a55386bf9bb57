"""Schema versions: stores written by earlier sweepscope versions, and by newer ones."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runner.errors import StoreError
from runner.store import Store, _migrate, open_store
from runner.store import _schema as t

SWEEPSCOPE = [sys.executable, "-m", "runner.cli"]


def _v2_schema(*, first: bool = False) -> sa.MetaData:
    """The tables as version 2 made them (kept here as test data, whatever the code does
    now); with `first`, the very first form of version 1 (no sweeps.storage_path or
    sweeps.driver, and points.value NOT NULL). Versions 1 and 2 differ only by the
    sweepscope_meta table, which `_write_earlier_store` adds for version 2."""
    old = sa.MetaData()
    pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    sa.Table(
        "sweeps",
        old,
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("n_trials", sa.Integer, nullable=False),
        *(
            ()
            if first
            else (sa.Column("storage_path", sa.Text), sa.Column("driver", sa.String(256)))
        ),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("heartbeat_at", sa.Float),
        sa.Column("stop_requested_at", sa.Float),
        sa.Column("message", sa.Text),
    )
    sa.Table(
        "trials",
        old,
        sa.Column("id", pk, primary_key=True, autoincrement=True),
        sa.Column("sweep_id", sa.String(128), sa.ForeignKey("sweeps.id"), nullable=False),
        sa.Column("ray_id", sa.String(64), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("ended_at", sa.Float),
        sa.Column("device", sa.String(128)),
        sa.Column("node", sa.String(128)),
        sa.Column("error", sa.Text),
        sa.Column("last_step", sa.Integer),
        sa.Column("last_epoch", sa.Integer),
        sa.Column("stop_requested_at", sa.Float),
        sa.UniqueConstraint("sweep_id", "ray_id", name="uq_trials_sweep_ray"),
    )
    sa.Table(
        "points",
        old,
        sa.Column("id", pk, primary_key=True, autoincrement=True),
        sa.Column("trial_id", pk, sa.ForeignKey("trials.id"), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("value", sa.Float, nullable=first is False),
        sa.Column("wall_time", sa.Float, nullable=False),
        sa.UniqueConstraint("trial_id", "metric", "step", name="uq_points_trial_metric_step"),
    )
    sa.Table(
        "trial_events",
        old,
        sa.Column("id", pk, primary_key=True, autoincrement=True),
        sa.Column("trial_id", pk, sa.ForeignKey("trials.id"), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text),
    )
    sa.Index("ix_trials_sweep", old.tables["trials"].c.sweep_id)
    sa.Index("ix_events_trial", old.tables["trial_events"].c.trial_id)
    return old


# (trial, metric, step, value, wall_time offset from the trial's creation) of the old stores:
# NaN (stored as NULL where allowed), inf, two metrics, steps out of order, one trial with
# no points, and a wall time far from its trial's (a clock that jumped).
TRIALS = [
    ("r0", "completed", 1_700_000_000.0, {"lr": 0.1}),
    ("r1", "diverged", 1_700_000_010.5, {"lr": 1.0}),
    ("r2", "pending", 1_700_000_020.0, {"lr": 0.01}),
]


def _old_points(first: bool) -> list[tuple[int, str, int, float, float]]:
    points = [(0, "val_acc", s, s / 10, 1.0 + s * 0.0417) for s in range(1, 4)]
    points += [(0, "train_loss", s, 1.0 / s, 0.5 + s * 0.001) for s in (5, 1, 3, 2, 4)]
    points += [(1, "train_loss", 1, 2.5, 3.25), (1, "train_loss", 2, math.inf, -86_400.0)]
    if not first:
        points.append((1, "train_loss", 3, math.nan, 4.0))
    return points


def _write_earlier_store(url: str, first: bool, version: int = 1) -> None:
    engine = sa.create_engine(url)
    old = _v2_schema(first=first)
    with engine.begin() as conn:
        old.create_all(conn)
        if version == 2:
            conn.execute(
                sa.text(
                    "CREATE TABLE sweepscope_meta "
                    "(key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)"
                )
            )
            conn.execute(sa.text("INSERT INTO sweepscope_meta VALUES ('schema_version', '2')"))
        sweep = {
            "id": "old-sweep",
            "name": "old",
            "spec": "{}",
            "status": "completed",
            "metric": "val_acc",
            "mode": "max",
            "n_trials": len(TRIALS),
            "created_at": 1.0,
        }
        conn.execute(old.tables["sweeps"].insert().values(**sweep))
        ids = []
        for ray_id, status, created, config in TRIALS:
            trial_id = conn.execute(
                old.tables["trials"]
                .insert()
                .values(
                    sweep_id="old-sweep",
                    ray_id=ray_id,
                    config=json.dumps(config),
                    status=status,
                    created_at=created,
                    last_step=3,
                )
            ).inserted_primary_key[0]
            conn.execute(
                old.tables["trial_events"]
                .insert()
                .values(trial_id=trial_id, at=created, status=status)
            )
            ids.append(trial_id)
        conn.execute(
            old.tables["points"].insert(),
            [
                {
                    "trial_id": ids[i],
                    "metric": metric,
                    "step": step,
                    "value": None if math.isnan(value) else value,
                    "wall_time": TRIALS[i][2] + offset,
                }
                for i, metric, step, value, offset in _old_points(first)
            ],
        )
    engine.dispose()


def _assert_old_points_intact(store: Store, first: bool) -> None:
    ids = [t["id"] for t in store.trials("old-sweep")]
    frame = store.points("old-sweep")
    got = {
        (ids.index(r.trial_id), r.metric, r.step): (r.value, r.wall_time)
        for r in frame.itertuples()
    }
    want = _old_points(first)
    assert len(frame) == len(got) == len(want)
    for i, metric, step, value, offset in want:
        stored, wall = got[(i, metric, step)]
        assert stored == value or (math.isnan(stored) and math.isnan(value))
        assert wall == pytest.approx(TRIALS[i][2] + offset, abs=0.0005)  # to the millisecond


def _tables(url: str) -> dict[str, set[str]]:
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        return {
            n: {c["name"] for c in inspector.get_columns(n)} for n in inspector.get_table_names()
        }
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("first", "version"),
    [(True, 1), (False, 1), (False, 2)],
    ids=["first-schema", "version-1", "version-2"],
)
def test_an_earlier_store_is_refused_by_readers_and_upgraded_by_the_runner(
    store_url: str, first: bool, version: int
) -> None:
    _write_earlier_store(store_url, first, version)
    before = _tables(store_url)

    with pytest.raises(StoreError, match=rf"schema version {version}.*sweepscope migrate --store"):
        open_store(store_url)  # a reader (dashboard, ls, export) never changes it
    assert _tables(store_url) == before

    with open_store(store_url, create=True) as store:  # the runner upgrades in place
        steps = ["version 1 -> 2", "version 2 -> 3"][version - 1 :]
        assert [m[: len(s)] for m, s in zip(store.migrated, steps, strict=True)] == steps
        assert f"rewrote {len(_old_points(first))} points" in store.migrated[-1]
        (sweep,) = store.sweeps()
        assert sweep["id"] == "old-sweep" and sweep["best"] == pytest.approx(0.3)
        trials = store.trials("old-sweep")
        assert [
            (t["ray_id"], t["status"], t["created_at"], t["config"], t["last_step"]) for t in trials
        ] == [(ray_id, status, created, config, 3) for ray_id, status, created, config in TRIALS]
        assert [[e["status"] for e in store.trial_events(t["id"])] for t in trials] == [
            [status] for _, status, _, _ in TRIALS
        ]
        _assert_old_points_intact(store, first)

        # Points written after the upgrade come to an incremental read, and only they.
        last = store.point_columns("old-sweep").last_id
        assert last > 0
        trial_id = trials[0]["id"]
        store.add_points(trial_id, [("val_acc", 4, math.nan, 2.0), ("val_acc", 3, 9.0, 2.0)])
        new = store.points("old-sweep", after_id=last)
        assert new["step"].tolist() == [4] and math.isnan(new["value"].iloc[0])
    tables = _tables(store_url)
    assert {"storage_path", "driver"} <= tables["sweeps"]
    assert tables["points"] == {"trial_id", "metric_id", "step", "value", "wall_ms"}
    assert {"metrics", "point_writes"} <= set(tables) and "points_v2" not in tables

    with open_store(store_url) as reader:  # now current: readers open it
        assert reader.schema_version == t.SCHEMA_VERSION
    with open_store(store_url, create=True) as again:
        assert again.migrated == []  # nothing left to do


def test_a_failed_upgrade_leaves_the_store_as_it_was(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole upgrade is one transaction: a failure at its very end changes nothing."""
    _write_earlier_store(store_url, first=False, version=2)
    before = _tables(store_url)
    real = _migrate._STEPS[2]

    def fails_at_the_end(conn: Connection) -> str:
        real(conn)
        raise sa.exc.OperationalError("the last step", {}, Exception("disk full"))

    monkeypatch.setitem(_migrate._STEPS, 2, fails_at_the_end)
    with pytest.raises(StoreError, match="disk full"):
        open_store(store_url, create=True)
    assert _tables(store_url) == before
    monkeypatch.setitem(_migrate._STEPS, 2, real)
    with open_store(store_url, create=True) as store:  # and a later upgrade succeeds
        assert store.migrated[0].startswith("version 2 -> 3")
        _assert_old_points_intact(store, first=False)


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
