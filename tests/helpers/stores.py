"""Stores for tests: SQLite files, throwaway PostgreSQL databases, and a database that
checks passwords. The fixtures that hand them out are in tests/conftest.py.

Nothing here imports pytest: benchmarks use these helpers too.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from tests.helpers.faults import PrivatePostgres

__all__ = [
    "PASSWORD",
    "PASSWORD_FORMS",
    "SECRET",
    "SecuredDatabase",
    "reset_postgres",
    "roles",
    "run_sql",
    "sqlite_made",
    "sqlite_url",
    "temporary_database",
]


def sqlite_url(directory: Path, name: str = "store.db") -> str:
    """The URL of an SQLite store file `name` in `directory` (not created here)."""
    return f"sqlite:///{directory / name}"


def sqlite_made(path: Path) -> bool:
    """Whether the SQLite store file `path` exists with its tables. A sweep's driver makes
    the file a moment before it commits the tables, so a test that polls for a sweep waits
    for this rather than for the file alone."""
    from runner.errors import StoreMissing
    from runner.store import open_store

    try:
        open_store(sqlite_url(path.parent, path.name)).close()
    except StoreMissing:
        return False
    return True


def run_sql(url: str, *statements: str) -> None:
    """Run SQL statements on `url`, each in its own transaction (roles, databases, grants)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                # A colon would start a bind parameter in text().
                conn.execute(sa.text(statement.replace(":", "\\:")))
    finally:
        engine.dispose()


@contextmanager
def temporary_database(base: str, prefix: str = "sweepscope_test") -> Iterator[str]:
    """A new, empty database on the server of `base` (a URL); its URL, then dropped."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    run_sql(base, f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        run_sql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset_postgres(url: str) -> None:
    """Drop the store's tables from the database at `url`: empty again for the next test."""
    from runner.store._schema import metadata

    engine = sa.create_engine(url)
    try:
        metadata.drop_all(engine)
    finally:
        engine.dispose()


# -- a PostgreSQL that checks passwords ---------------------------------------------------
# The password of the owner of every SecuredDatabase: characters a URL must escape ("@",
# "/", "%", ":"), a quote, and a part (SECRET) to look for in every output.
PASSWORD = "S3cret@Passw0rd/%:'xyz"
SECRET = "Passw0rd"
# How a password reaches libpq: in the URL, as its ?password= parameter, in $PGPASSWORD, or
# in a password file ($PGPASSFILE, else ~/.pgpass).
PASSWORD_FORMS = ("url", "query", "PGPASSWORD", "pgpass")


def _pgpass_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class SecuredDatabase:
    """A database on a password-checking PrivatePostgres, owned by a LOGIN role (not a
    superuser) whose password is PASSWORD; `url(form)` and `env(form, home)` reach it with
    the password given each way a user may give it."""

    server: PrivatePostgres
    database: str
    owner: str
    password: str = PASSWORD

    def url(
        self, form: str = "url", *, user: str | None = None, password: str | None = None
    ) -> str:
        """The store URL for `form`: with the password in it ("url"), as ?password=
        ("query"), or without it ("PGPASSWORD", "pgpass": see env())."""
        user = user or self.owner
        password = self.password if password is None else password
        url = sa.engine.URL.create(
            "postgresql+psycopg",
            username=user,
            password=password if form == "url" else None,
            host="127.0.0.1",
            port=self.server.port,
            database=self.database,
            query={"password": password} if form == "query" else {},
        )
        return url.render_as_string(hide_password=False)

    def env(
        self, form: str, home: Path, *, user: str | None = None, password: str | None = None
    ) -> dict[str, str]:
        """The variables that give libpq the password for `form`: PGPASSWORD, or PGPASSFILE
        naming a new 0600 password file in `home`; nothing for the URL forms."""
        password = self.password if password is None else password
        if form == "PGPASSWORD":
            return {"PGPASSWORD": password}
        if form == "pgpass":
            line = ":".join(
                _pgpass_field(part)
                for part in ("127.0.0.1", str(self.server.port), self.database,
                             user or self.owner, password)
            )  # fmt: skip
            path = home / f"pgpass-{secrets.token_hex(3)}"
            path.touch(mode=0o600)
            path.write_text(line + "\n")
            return {"PGPASSFILE": str(path)}
        return {}

    def add_role(self, name: str, password: str) -> None:
        """A new LOGIN role with `password` (dropped with the database)."""
        literal = "'" + password.replace("'", "''") + "'"
        self.server.execute(f"CREATE ROLE {_quote(name)} LOGIN PASSWORD {literal}")

    @classmethod
    @contextmanager
    def created(cls, server: PrivatePostgres) -> Iterator[SecuredDatabase]:
        """A fresh one on `server`; the database and every role added meanwhile are dropped
        afterwards."""
        token = secrets.token_hex(4)
        db = cls(server, database=f"sweepscope_auth_{token}", owner=f"sweepscope_owner_{token}")
        before = roles(server)
        db.add_role(db.owner, PASSWORD)
        server.execute(f'CREATE DATABASE "{db.database}" OWNER "{db.owner}"')
        try:
            yield db
        finally:
            server.execute(f'DROP DATABASE IF EXISTS "{db.database}" WITH (FORCE)')
            for role in sorted(roles(server) - before):
                server.execute(f"DROP OWNED BY {_quote(role)}", f"DROP ROLE {_quote(role)}")


def roles(server: PrivatePostgres) -> set[str]:
    """The names of every role on `server`."""
    engine = sa.create_engine(server.url())
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.text("SELECT rolname FROM pg_roles")).scalars())
    finally:
        engine.dispose()
