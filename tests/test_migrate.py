"""Schema versions: stores written by earlier sweepscope versions, and by newer ones."""

from __future__ import annotations

import contextlib
import json
import math
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runner.errors import StoreError
from runner.redact import mask_url
from runner.store import Store, _migrate, migrate_store, open_store
from runner.store import _schema as t
from tests.helpers.cli import cli_here
from tests.helpers.faults import hold_sqlite_lock
from tests.helpers.paths import REPO
from tests.helpers.stores import reset_postgres

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
def test_an_earlier_store_is_refused_by_readers_and_the_runner_and_upgraded_by_migrate(
    store_url: str, first: bool, version: int
) -> None:
    _write_earlier_store(store_url, first, version)
    before = _tables(store_url)

    for create in (False, True):  # a reader (dashboard, ls, export) or the runner: unchanged
        with pytest.raises(
            StoreError, match=rf"schema version {version}.*sweepscope migrate --store"
        ):
            open_store(store_url, create=create)
        assert _tables(store_url) == before

    with migrate_store(store_url) as store:  # only migrate upgrades in place
        steps = ["version 1 -> 2", "version 2 -> 3", "version 3 -> 4", "version 4 -> 5"]
        steps = steps[version - 1 :]
        assert [m[: len(s)] for m, s in zip(store.migrated, steps, strict=True)] == steps
        assert f"rewrote {len(_old_points(first))} points" in store.migrated[-3]
        (sweep,) = store.sweeps()
        assert sweep["id"] == "old-sweep" and sweep["best"] == pytest.approx(0.3)
        assert sweep["spill_path"] is None and sweep["outage_limit"] is None
        trials = store.trials("old-sweep")
        assert [
            (t["ray_id"], t["status"], t["created_at"], t["config"], t["last_step"]) for t in trials
        ] == [(ray_id, status, created, config, 3) for ray_id, status, created, config in TRIALS]
        assert [(t["number"], t["round"]) for t in trials] == [
            (i, 1) for i in range(1, len(TRIALS) + 1)
        ]
        assert store.rounds("old-sweep") == []
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
    assert {"storage_path", "driver", "spill_path", "outage_limit"} <= tables["sweeps"]
    assert tables["points"] == {"trial_id", "metric_id", "step", "value", "wall_ms"}
    assert {"metrics", "point_writes"} <= set(tables) and "points_v2" not in tables

    with open_store(store_url) as reader:  # now current: readers open it
        assert reader.schema_version == t.SCHEMA_VERSION
    with migrate_store(store_url) as again:
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
        migrate_store(store_url)
    assert _tables(store_url) == before
    monkeypatch.setitem(_migrate._STEPS, 2, real)
    with migrate_store(store_url) as store:  # and a later upgrade succeeds
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
    with pytest.raises(StoreError, match="written by a newer sweepscope.*pip install -U"):
        migrate_store(store_url)
    assert _tables(store_url) == before


def test_cli_migrate_and_readers_say_what_to_run(store_url: str) -> None:
    _write_earlier_store(store_url, first=True)
    listed = cli_here("ls", "--store", store_url)
    assert listed.returncode == 2 and "Traceback" not in listed.stderr
    assert f"sweepscope migrate --store {mask_url(store_url)}" in listed.stderr

    migrated = cli_here("migrate", "--store", store_url)
    assert migrated.returncode == 0, migrated.stderr
    assert "upgraded the schema in place" in migrated.stdout
    assert f"schema version {t.SCHEMA_VERSION}" in migrated.stdout

    listed = cli_here("ls", "--store", store_url)
    assert listed.returncode == 0 and "old-sweep" in listed.stdout


# -- upgrades are explicit -------------------------------------------------------------------
def _undo_v5(conn: Connection) -> None:
    """Take a current store back to version 4's tables: no trial numbers, rounds or
    sweep_rounds."""
    conn.execute(sa.text("DROP INDEX uq_trials_sweep_number"))
    for column in ("number", '"round"'):
        conn.execute(sa.text(f"ALTER TABLE trials DROP COLUMN {column}"))
    conn.execute(sa.text("DROP TABLE sweep_rounds"))
    conn.execute(t.meta.update().values(value="4"))


def _write_v3_store(url: str) -> None:
    """A store as schema version 3 left it: today's tables without the two columns version 4
    added to `sweeps` and what version 5 added."""
    open_store(url, create=True).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _undo_v5(conn)
        for column in ("spill_path", "outage_limit"):
            conn.execute(sa.text(f"ALTER TABLE sweeps DROP COLUMN {column}"))
        conn.execute(t.meta.update().values(value="3"))
    engine.dispose()


def test_version_4_trials_are_numbered_within_their_sweep_in_creation_order(
    store_url: str,
) -> None:
    """Two sweeps whose trials were created interleaved (store ids 1..6 alternate): each
    sweep's trials become 1, 2, 3 in the order of their ids, all in round 1."""
    open_store(store_url, create=True).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        _undo_v5(conn)
        for sweep_id in ("a", "b"):
            conn.execute(
                sa.text(
                    "INSERT INTO sweeps (id, name, spec, status, metric, mode, n_trials, "
                    "created_at) VALUES (:id, :id, '{}', 'completed', 'loss', 'min', 3, 1.0)"
                ),
                {"id": sweep_id},
            )
        for i in range(6):
            conn.execute(
                sa.text(
                    "INSERT INTO trials (sweep_id, ray_id, config, status, created_at) "
                    "VALUES (:s, :r, '{}', 'terminated', 1.0)"
                ),
                {"s": "ab"[i % 2], "r": f"t{i}"},
            )
    engine.dispose()
    with migrate_store(store_url) as store:
        assert [m[:14] for m in store.migrated] == ["version 4 -> 5"]
        assert "numbered 6 trials" in store.migrated[0]
        for sweep_id, rays in (("a", ["t0", "t2", "t4"]), ("b", ["t1", "t3", "t5"])):
            trials = store.trials(sweep_id)
            assert [(x["ray_id"], x["number"], x["round"]) for x in trials] == [
                (r, n, 1) for n, r in enumerate(rays, 1)
            ]
        # New trials continue each sweep's numbering.
        store.add_trial("a", "t6", {})
        assert store.trials("a")[-1]["number"] == 4


def _add_v3_sweep(url: str, sweep_id: str, *, driver: str, beat_age: float) -> None:
    """A running sweep in a version-3 store, as an earlier sweepscope wrote it."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO sweeps (id, name, spec, status, metric, mode, n_trials, driver, "
                "created_at, heartbeat_at) VALUES (:id, 'old', '{}', 'running', 'val_acc', "
                "'max', 1, :driver, :at, :beat)"
            ),
            {
                "id": sweep_id,
                "driver": driver,
                "at": time.time() - 4000,
                "beat": time.time() - beat_age,
            },
        )
    engine.dispose()


def _version(url: str) -> int | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return _migrate.stored_version(conn)
    finally:
        engine.dispose()


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SWEEPSCOPE, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


TINY = """\
name: tiny
trainable: tests.trainables:steady
stop: {epochs: 1}
fixed: {steps_per_epoch: 2}
grid: {scale: [1.0]}
"""


def test_run_and_resume_refuse_an_older_store_and_name_the_migrate_command(
    store_url: str, tmp_path: Path
) -> None:
    """A newer sweepscope never upgrades a shared store as a side effect of a sweep: older
    readers and drivers would break. It exits 2 with the command that upgrades."""
    secret = sa.engine.make_url(store_url).password or "hunter2-secret"
    if store_url.startswith("postgresql"):  # a trusting server takes any password
        store_url = (
            sa.engine.make_url(store_url).set(password=secret).render_as_string(hide_password=False)
        )
    _write_v3_store(store_url)
    before = _tables(store_url)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    shown = sa.engine.make_url(store_url).render_as_string(hide_password=True)
    for args in (["run", str(spec)], ["resume", "old-sweep"]):
        done = cli_here(*args, "--store", store_url)  # refused before any Ray starts
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert "schema version 3" in done.stderr
        assert f"sweepscope migrate --store {shown}" in done.stderr
        assert str(secret) not in done.stderr + done.stdout
        assert _version(store_url) == 3 and _tables(store_url) == before
    migrated = cli_here("migrate", "--store", store_url)
    assert migrated.returncode == 0, migrated.stderr
    assert "version 3 -> 4" in migrated.stdout and _version(store_url) == t.SCHEMA_VERSION
    assert "version 4 -> 5" in migrated.stdout
    assert "older than this one now refuse this store" in migrated.stdout


@pytest.mark.parametrize("how", ["force", "after_it_ends"])
def test_migrate_refuses_while_a_sweep_has_a_live_driver_unless_forced(
    store_url: str, live_pid: int, how: str
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_v3_store(store_url)
    here = socket.gethostname()
    _add_v3_sweep(store_url, "live-here", driver=f"{here}:{live_pid}", beat_age=600)
    _add_v3_sweep(store_url, "live-elsewhere", driver="another-host.example:7", beat_age=10)
    _add_v3_sweep(store_url, "dead-here", driver=f"{here}:{dead.pid}", beat_age=0)
    _add_v3_sweep(store_url, "gone-elsewhere", driver="another-host.example:8", beat_age=3600)

    refused = cli_here("migrate", "--store", store_url)
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    assert "2 running sweep(s) with a live driver" in refused.stderr
    assert "live-here" in refused.stderr and "live-elsewhere" in refused.stderr
    assert "dead-here" not in refused.stderr and "gone-elsewhere" not in refused.stderr
    assert "--force" in refused.stderr and "nothing was changed" in refused.stderr
    assert _version(store_url) == 3

    if how == "force":
        done = cli_here("migrate", "--store", store_url, "--force")
    else:  # both live sweeps end: the dead and the stale ones do not hold the upgrade back
        engine = sa.create_engine(store_url)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE sweeps SET status = 'completed' WHERE id LIKE 'live-%'"))
        engine.dispose()
        done = cli_here("migrate", "--store", store_url)
    assert done.returncode == 0, done.stderr
    assert "version 3 -> 4" in done.stdout and _version(store_url) == t.SCHEMA_VERSION


@contextlib.contextmanager
def _hold_migration_lock(url: str) -> Iterator[None]:
    """Another process creating or upgrading the store: on PostgreSQL a session holding the
    migration's advisory lock, on SQLite a process holding the file's write lock."""
    if url.startswith("sqlite"):
        with hold_sqlite_lock(sa.engine.make_url(url).database or "", 120):
            yield
        return
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(7152001)"))
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(7152001)"))
                conn.commit()
    finally:
        engine.dispose()


@pytest.mark.slow  # waits out a held lock: ~6 s
def test_migrate_waits_for_the_migration_lock_with_a_message_and_a_deadline(
    store_url: str,
) -> None:
    _write_v3_store(store_url)
    with _hold_migration_lock(store_url):
        began = time.monotonic()
        done = _cli("migrate", "--store", store_url, "--lock-timeout", "3")
        took = time.monotonic() - began
        assert done.returncode == 1, done.stderr  # a busy store, not a mistake in the input
        assert "waiting for the migration lock" in done.stderr
        assert "(at most 3 s)" in done.stderr
        assert "waited 3 s for the migration lock" in done.stderr
        assert "Nothing was changed" in done.stderr and "--lock-timeout" in done.stderr
        assert 3 <= took < 30, took
        assert _version(store_url) == 3

        # a migration that waits long enough goes ahead when the lock is let go
        waiting = subprocess.Popen(
            [*SWEEPSCOPE, "migrate", "--store", store_url, "--lock-timeout", "60"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(3)
            assert waiting.poll() is None, waiting.communicate()
        except BaseException:
            waiting.kill()
            raise
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert "waiting for the migration lock" in err and "version 3 -> 4" in out
    assert _version(store_url) == t.SCHEMA_VERSION


def test_migrate_gives_up_on_a_table_another_session_holds(postgres_url: str) -> None:
    """PostgreSQL: a long open transaction that has read `sweeps` (a dashboard, a psql
    session) holds a lock the upgrade needs; the upgrade waits at most its lock timeout
    rather than block the store's every reader behind it."""
    reset_postgres(postgres_url)
    _write_v3_store(postgres_url)
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as reader:
            reader.execute(sa.text("SELECT count(*) FROM sweeps"))  # holds ACCESS SHARE
            done = _cli("migrate", "--store", postgres_url, "--lock-timeout", "2")
            assert done.returncode == 1, done.stderr
            assert "waited 2 s for a table that another session is using" in done.stderr
            assert _version(postgres_url) == 3
            reader.rollback()
        done = _cli("migrate", "--store", postgres_url, "--lock-timeout", "2")
        assert done.returncode == 0, done.stderr
        assert _version(postgres_url) == t.SCHEMA_VERSION
    finally:
        engine.dispose()
        reset_postgres(postgres_url)


def test_migrate_creates_a_new_store_and_leaves_a_current_one_alone(store_url: str) -> None:
    """Compose and KubeRay run `migrate` at every start: on a current store it changes
    nothing and waits for no lock, even while another process holds it."""
    created = _cli("migrate", "--store", store_url)
    assert created.returncode == 0, created.stderr
    assert f"schema version {t.SCHEMA_VERSION}" in created.stdout
    assert "upgraded" not in created.stdout and _version(store_url) == t.SCHEMA_VERSION
    with _hold_migration_lock(store_url):
        again = _cli("migrate", "--store", store_url, "--lock-timeout", "30", timeout=25)
    assert again.returncode == 0, again.stderr
    assert "waiting" not in again.stderr and "upgraded" not in again.stdout
