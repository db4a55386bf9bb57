"""Schema versions: which version a store holds, and upgrading an earlier store in place.

Version 1 is every store written before the version table existed (its very first form
had no `sweeps.storage_path` / `sweeps.driver` and a NOT NULL `points.value`). Version 2
added the version table. Version 3 made points compact: a metric id instead of the name,
the wall time as milliseconds after the trial's creation, no row id, and the
`point_writes` log for incremental reads. Version 4 added `sweeps.spill_path` and
`sweeps.outage_limit`. Version 5 numbered trials within their sweep, recorded the round
that added each trial and added `sweep_rounds`. Each step runs inside the caller's
transaction, so a failed upgrade leaves the store as it was.

Only `sweepscope migrate` runs these steps (runner.store.migrate_store): `run` and `resume`
refuse an older store rather than change it under older readers and drivers.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runner.store import _schema as t

__all__ = ["WALL_MS_LIMIT", "migrate", "stored_version", "write_version"]

# Wall times further than this (in ms, about 285,000 years) from their trial's creation are
# not times at all (NaN, inf): they are stored as the trial's creation time.
WALL_MS_LIMIT = 9_000_000_000_000_000

# `points` as versions 1 and 2 made it (the v1 -> v2 step rebuilds it in this form on SQLite).
_v2 = sa.MetaData()
_V2_POINTS = sa.Table(
    "points",
    _v2,
    sa.Column("id", t._Id, primary_key=True, autoincrement=True),
    sa.Column("trial_id", t._Id, nullable=False),
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("wall_time", sa.Float, nullable=False),
    sa.UniqueConstraint("trial_id", "metric", "step", name="uq_points_trial_metric_step"),
)


def stored_version(conn: Connection) -> int | None:
    """The store's schema version; None where the database holds no sweepscope tables."""
    inspector = sa.inspect(conn)
    if inspector.has_table(t.meta.name):
        value = conn.execute(
            sa.select(t.meta.c.value).where(t.meta.c.key == "schema_version")
        ).scalar()
        return int(value) if value is not None else 1
    return 1 if inspector.has_table(t.points.name) else None


def write_version(conn: Connection, version: int = t.SCHEMA_VERSION) -> None:
    t.meta.create(conn, checkfirst=True)
    row = {"key": "schema_version", "value": str(version)}
    updated = conn.execute(
        t.meta.update().where(t.meta.c.key == "schema_version").values(value=str(version))
    )
    if updated.rowcount == 0:
        conn.execute(t.meta.insert().values(**row))


def migrate(conn: Connection, from_version: int) -> list[str]:
    """Upgrade the schema from `from_version` to SCHEMA_VERSION; returns what each step did."""
    done = []
    for version in range(from_version, t.SCHEMA_VERSION):
        done.append(_STEPS[version](conn))
    write_version(conn)
    return done


def _v1_to_v2(conn: Connection) -> str:
    """Add the version table, and bring the very first schema up to version 1's columns."""
    inspector = sa.inspect(conn)
    columns = {c["name"] for c in inspector.get_columns("sweeps")}
    for name, kind in (("storage_path", "TEXT"), ("driver", "VARCHAR(256)")):
        if name not in columns:
            conn.execute(sa.text(f"ALTER TABLE sweeps ADD COLUMN {name} {kind}"))
    value = next(c for c in inspector.get_columns("points") if c["name"] == "value")
    if not value["nullable"]:  # NaN is stored as NULL
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE points ALTER COLUMN value DROP NOT NULL"))
        else:  # SQLite cannot drop a constraint: copy the table
            conn.execute(sa.text("ALTER TABLE points RENAME TO points_v1"))
            _V2_POINTS.create(conn)
            names = ", ".join(c.name for c in _V2_POINTS.columns)
            conn.execute(sa.text(f"INSERT INTO points ({names}) SELECT {names} FROM points_v1"))
            conn.execute(sa.text("DROP TABLE points_v1"))
    return "version 1 -> 2: added the sweepscope_meta table (and any missing version-1 columns)"


def _readers(conn: Connection, table: str) -> list[str]:
    """PostgreSQL roles other than the owner that may SELECT `table` (PUBLIC included), as
    SQL names: the migration grants them the same on the tables it adds."""
    rows = conn.execute(
        sa.text(
            "SELECT DISTINCT a.grantee FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a "
            "WHERE c.relname = :t AND n.nspname = current_schema() "
            "AND a.privilege_type = 'SELECT' AND a.grantee <> c.relowner"
        ),
        {"t": table},
    ).scalars()
    names = []
    for oid in rows:
        if oid == 0:
            names.append("PUBLIC")
        else:
            name = conn.execute(sa.text("SELECT pg_get_userbyid(:o)"), {"o": oid}).scalar()
            names.append('"' + str(name).replace('"', '""') + '"')
    return names


def _v2_to_v3(conn: Connection) -> str:
    """Rewrite every point into the compact table and log one write per (trial, metric)."""
    postgres = conn.dialect.name == "postgresql"
    readers = _readers(conn, "points") if postgres else []
    t.metrics.create(conn)
    conn.execute(
        sa.text("INSERT INTO metrics (name) SELECT DISTINCT metric FROM points ORDER BY metric")
    )
    conn.execute(sa.text("ALTER TABLE points RENAME TO points_v2"))
    t.points.create(conn)
    t.point_writes.create(conn)  # with its index
    offset = "(p.wall_time - tr.created_at) * 1000"
    wall_ms = (
        f"CASE WHEN {offset} BETWEEN -{WALL_MS_LIMIT} AND {WALL_MS_LIMIT} "
        f"THEN CAST(round({offset}) AS BIGINT) ELSE 0 END"
    )
    moved = conn.execute(
        sa.text(
            "INSERT INTO points (trial_id, metric_id, step, value, wall_ms) "
            f"SELECT p.trial_id, m.id, p.step, p.value, {wall_ms} FROM points_v2 p "
            "JOIN metrics m ON m.name = p.metric JOIN trials tr ON tr.id = p.trial_id "
            "ORDER BY p.trial_id, m.id, p.step"
        )
    ).rowcount
    before = conn.execute(sa.text("SELECT count(*) FROM points_v2")).scalar_one()
    if moved != before:  # every point has its trial (a foreign key): never true, but check
        raise RuntimeError(f"migration moved {moved} of {before} points; nothing was changed")
    conn.execute(
        sa.text(
            "INSERT INTO point_writes (trial_id, metric_id, first_step, last_step) "
            "SELECT trial_id, metric_id, min(step), max(step) FROM points "
            "GROUP BY trial_id, metric_id ORDER BY trial_id, metric_id"
        )
    )
    conn.execute(sa.text("DROP TABLE points_v2"))
    for who in readers:  # e.g. the dashboard role: it reads the new tables as it read points
        grant = f"GRANT SELECT ON points, metrics, point_writes TO {who}"
        conn.execute(sa.text(grant.replace(":", "\\:")))  # a colon would start a parameter
    return (
        f"version 2 -> 3: rewrote {before:,} points compactly (metric ids, wall times in ms, "
        "no row id) and added the point_writes log for incremental reads"
    )


def _v3_to_v4(conn: Connection) -> str:
    """Add the sweep's spill file location and its driver's outage limit (both nullable:
    existing rows keep NULL, read as "no spill file recorded" and "the default limit")."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns("sweeps")}
    for name, kind in (("spill_path", "TEXT"), ("outage_limit", "FLOAT")):
        if name not in columns:
            conn.execute(sa.text(f"ALTER TABLE sweeps ADD COLUMN {name} {kind}"))
    return (
        "version 3 -> 4: added sweeps.spill_path (where a driver keeps the writes its store "
        "missed) and sweeps.outage_limit (how long its driver waits out a store outage)"
    )


def _v4_to_v5(conn: Connection) -> str:
    """Number each sweep's trials 1..N in creation order (the order of their ids), put every
    existing trial in round 1, and add the table of extension rounds."""
    postgres = conn.dialect.name == "postgresql"
    readers = _readers(conn, "trials") if postgres else []
    columns = {c["name"] for c in sa.inspect(conn).get_columns("trials")}
    if "number" not in columns:
        conn.execute(sa.text("ALTER TABLE trials ADD COLUMN number INTEGER NOT NULL DEFAULT 0"))
    if "round" not in columns:
        conn.execute(sa.text('ALTER TABLE trials ADD COLUMN "round" INTEGER NOT NULL DEFAULT 1'))
    numbered = conn.execute(
        sa.text(
            "UPDATE trials SET number = n.number FROM (SELECT id, row_number() OVER "
            "(PARTITION BY sweep_id ORDER BY id) AS number FROM trials) AS n "
            "WHERE trials.id = n.id"
        )
    ).rowcount
    if postgres:  # new rows always give their number; SQLite cannot drop a default
        conn.execute(sa.text("ALTER TABLE trials ALTER COLUMN number DROP DEFAULT"))
    conn.execute(
        sa.text(
            "CREATE UNIQUE INDEX IF NOT EXISTS uq_trials_sweep_number ON trials (sweep_id, number)"
        )
    )
    t.sweep_rounds.create(conn, checkfirst=True)
    for who in readers:  # e.g. the dashboard role: it reads rounds as it reads trials
        conn.execute(sa.text(f"GRANT SELECT ON sweep_rounds TO {who}".replace(":", "\\:")))
    return (
        f"version 4 -> 5: numbered {numbered:,} trials within their sweeps (1..N, what users "
        "see), recorded each trial's round and added sweep_rounds for `sweepscope extend`"
    )


_STEPS: dict[int, Callable[[Connection], str]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
}
