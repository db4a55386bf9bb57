"""The dashboard's own PostgreSQL role: it reads the whole store and writes stop requests.

The runner owns the tables. A dashboard that other machines can reach connects as a role of
its own, so a flaw in it cannot alter or delete what the sweeps wrote: the role may read
every table in schema public and update one column, `stop_requested_at`, of `sweeps` and
`trials`. `sweepscope migrate --grant-dashboard ROLE` calls grant_dashboard_role after the
schema is in place; the role itself (LOGIN, with its password) is created beforehand by
whoever administers the server (deploy/postgres/ does it for docker compose).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runner.errors import StoreError
from runner.store import _schema as t

__all__ = ["grant_dashboard_role"]

SCHEMA = "public"
# (table, column): the only values the dashboard may change.
STOP_COLUMNS = frozenset(
    {(t.sweeps.name, "stop_requested_at"), (t.trials.name, "stop_requested_at")}
)


def grant_dashboard_role(url: str, role: str) -> None:
    """Let `role` read every table of the store at `url` and set stop requests, no more.

    Grants CONNECT on the database, USAGE on schema public, SELECT on every table in it and
    UPDATE (stop_requested_at) on sweeps and trials, after revoking whatever else the role
    held on those tables. Idempotent, and one transaction: a failure changes nothing. Run it
    as the tables' owner (or a superuser), after the schema exists, and again after a
    migration adds a table. It then checks the role's effective privileges, so that a role
    that could still write through another path (a superuser, the owner or a member of it,
    privileges granted to PUBLIC) is refused rather than trusted.

    Args:
        url: the store's PostgreSQL URL, as the owner of its tables.
        role: the existing role the dashboard logs in as; any name (it is quoted).

    Raises:
        StoreError: `url` is not PostgreSQL, the role does not exist, the store has no
            tables yet, the grant fails, or the role could still write more than stop
            requests.
    """
    where = _masked(url)
    engine = _engine(url, where)
    try:
        with engine.begin() as conn:
            _grant(conn, role, where)
    except sa.exc.SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise StoreError(
            f"granting the dashboard role {role!r} on {where} failed: {cause}. Fix: run it as "
            "the owner of the database and its tables (the user the runner connects as)."
        ) from exc
    finally:
        engine.dispose()


def _masked(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "the given store URL"


def _engine(url: str, where: str) -> sa.Engine:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(
            f"{where} is not a database URL. Fix: use postgresql+psycopg://user@host:5432/db."
        ) from exc
    if parsed.get_backend_name() != "postgresql":
        raise StoreError(
            f"the store {where} is {parsed.get_backend_name()}, which has no roles: a dashboard "
            "role needs PostgreSQL. Fix: pass --grant-dashboard only with a "
            "postgresql+psycopg:// store; a SQLite store is protected by its file's permissions."
        )
    try:
        return sa.create_engine(parsed)
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"the store {where} needs the PostgreSQL driver, which is not installed. "
            "Fix: pip install 'sweepscope[postgres]'."
        ) from exc


def _grant(conn: Connection, role: str, where: str) -> None:
    found = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    if found.first() is None:
        raise StoreError(
            f"the role {role!r} does not exist on {where}. Fix: create it first, as an "
            f"administrator: CREATE ROLE {_quote(role)} LOGIN PASSWORD '...' "
            "(docker compose does it from deploy/postgres/ when the database is first created)."
        )
    tables = set(sa.inspect(conn).get_table_names(schema=SCHEMA))
    missing = sorted({table for table, _ in STOP_COLUMNS} - tables)
    if missing:
        raise StoreError(
            f"{where} has no sweepscope tables ({', '.join(missing)} missing in schema "
            f"{SCHEMA}). Fix: create the schema first (sweepscope migrate --store URL)."
        )
    who = _quote(role)
    database = _quote(str(conn.execute(sa.text("SELECT current_database()")).scalar()))
    stop_tables = ", ".join(
        f"{SCHEMA}.{_quote(table)}" for table in sorted({t for t, _ in STOP_COLUMNS})
    )
    for statement in (
        f"GRANT CONNECT ON DATABASE {database} TO {who}",
        f"GRANT USAGE ON SCHEMA {SCHEMA} TO {who}",
        # Start from nothing on the tables, so a privilege granted by hand does not linger.
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {SCHEMA} FROM {who}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {who}",
        f"GRANT UPDATE (stop_requested_at) ON {stop_tables} TO {who}",
    ):
        # A colon would start a bind parameter in text(); text() escapes "%" itself.
        conn.execute(sa.text(statement.replace(":", "\\:")))
    excess = _writable(conn, role)
    if excess:
        raise StoreError(
            f"the role {role!r} on {where} could still write more than stop requests: "
            f"{'; '.join(excess)}. Fix: give the dashboard a role of its own, neither a "
            "superuser nor a member of the tables' owner (CREATE ROLE name LOGIN PASSWORD "
            f"'...'), and where PostgreSQL is older than 15, REVOKE CREATE ON SCHEMA {SCHEMA} "
            "FROM PUBLIC."
        )


def _quote(name: str) -> str:
    """`name` as a quoted SQL identifier: any characters, case kept, quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def _writable(conn: Connection, role: str) -> list[str]:
    """What `role` may still change beyond the stop columns, as the server sees its effective
    privileges: its attributes, the owners it can become, grants to PUBLIC included."""
    params = {"r": role, "s": SCHEMA}
    excess = []
    superuser, createrole = conn.execute(
        sa.text("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = :r"), params
    ).one()
    if superuser:
        return ["everything (it is a superuser)"]
    if createrole:
        excess.append("roles and their memberships (CREATEROLE)")
    owners = conn.execute(
        sa.text(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s "
            "AND c.relkind IN ('r', 'p') AND pg_has_role(:r, c.relowner, 'MEMBER') ORDER BY 1"
        ),
        params,
    ).scalars()
    excess += [f"every table {owner} owns (it is, or can SET ROLE to, {owner})" for owner in owners]
    if conn.execute(sa.text("SELECT has_schema_privilege(:r, :s, 'CREATE')"), params).scalar():
        excess.append(f"new tables in schema {SCHEMA} (CREATE)")
    rows = conn.execute(
        sa.text(
            "SELECT c.relname, a.attname, p.privilege, "
            "has_column_privilege(:r, c.oid, a.attnum, p.privilege) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "CROSS JOIN (VALUES ('INSERT'), ('UPDATE'), ('REFERENCES')) AS p(privilege) "
            "WHERE n.nspname = :s AND c.relkind IN ('r', 'p') "
            "UNION ALL "
            "SELECT c.relname, NULL, p.privilege, has_table_privilege(:r, c.oid, p.privilege) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "CROSS JOIN (VALUES ('DELETE'), ('TRUNCATE'), ('TRIGGER')) AS p(privilege) "
            "WHERE n.nspname = :s AND c.relkind IN ('r', 'p')"
        ),
        params,
    )
    held: dict[str, set[str]] = {}
    for table, column, privilege, granted in rows:
        if granted and not (privilege == "UPDATE" and (table, column) in STOP_COLUMNS):
            held.setdefault(table, set()).add(privilege)
    excess += [f"{table} ({', '.join(sorted(held[table]))})" for table in sorted(held)]
    return excess
