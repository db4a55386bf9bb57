"""Schema versions: which version a store holds, and upgrading an earlier store in place.

Version 1 is every store written before the version table existed (its very first form
had no `sweeps.storage_path` / `sweeps.driver` and a NOT NULL `points.value`). Each step
runs inside the caller's transaction, so a failed upgrade leaves the store as it was.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runner.store import _schema as t

__all__ = ["migrate", "stored_version", "write_version"]


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
            t.points.create(conn)
            names = ", ".join(c.name for c in t.points.columns)
            conn.execute(sa.text(f"INSERT INTO points ({names}) SELECT {names} FROM points_v1"))
            conn.execute(sa.text("DROP TABLE points_v1"))
    return "version 1 -> 2: added the sweepscope_meta table (and any missing version-1 columns)"


_STEPS: dict[int, Callable[[Connection], str]] = {1: _v1_to_v2}
