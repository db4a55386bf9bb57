"""Shared fixtures: temporary stores on every backend, and a loopback-only Ray."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

# Ray reads this at import: bind its services to 127.0.0.1 in every test.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import pytest
import sqlalchemy as sa

from runner.store import Store, open_store
from tests.faults import PrivatePostgres, require_postgres_bin

REPO = Path(__file__).resolve().parents[1]
POSTGRES_ENV = "SWEEPSCOPE_TEST_POSTGRES"


def skip_outside_ci(reason: str) -> NoReturn:
    """Skip for `reason` (a tool or data file missing here); in CI (env CI set), fail with
    it instead: CI must run every test, so .ci/run provides what they need."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run this test, but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards.

    Skips (with the reason) where SWEEPSCOPE_TEST_POSTGRES is unset; CI sets it.
    """
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        skip_outside_ci(
            f"PostgreSQL tests need {POSTGRES_ENV}=postgresql+psycopg://user:password@host/db "
            "(scripts/test-postgres.sh starts a server that checks passwords and prints it)"
        )
    name = f"sweepscope_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _reset_postgres(url: str) -> None:
    from runner.store._schema import metadata

    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty store location on each backend (schema not yet created)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        _reset_postgres(url)
        yield url
        _reset_postgres(url)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A fresh store with its schema, on each backend; disposed afterwards."""
    s = open_store(store_url, create=True)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'store.db'}", create=True)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def pg() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL server a test may stop and start (never the shared one)."""
    require_postgres_bin()
    with PrivatePostgres() as server:
        yield server


# -- a PostgreSQL that checks passwords ---------------------------------------------------
# The password of the owner of every SecuredDatabase: characters a URL must escape ("@",
# "/", "%", ":"), a quote, and a part (SECRET) to look for in every output.
PASSWORD = "S3cret@Passw0rd/%:'xyz"
SECRET = "Passw0rd"
# How a password reaches libpq: in the URL, as its ?password= parameter, in $PGPASSWORD, or
# in a password file ($PGPASSFILE, else ~/.pgpass).
PASSWORD_FORMS = ("url", "query", "PGPASSWORD", "pgpass")


@pytest.fixture(scope="session")
def password_server() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL server of this test session that checks passwords
    (scram-sha-256), as every real deployment does; its superuser's password is random."""
    require_postgres_bin()
    with PrivatePostgres(password=f"su-{secrets.token_hex(12)}") as server:
        yield server


def _pgpass_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


@dataclass(frozen=True)
class SecuredDatabase:
    """A database on `password_server`, owned by a LOGIN role (not a superuser) whose
    password is PASSWORD; `url(form)` and `env(form, home)` reach it with the password
    given each way a user may give it."""

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
        quoted = '"' + name.replace('"', '""') + '"'
        literal = "'" + password.replace("'", "''") + "'"
        self.server.execute(f"CREATE ROLE {quoted} LOGIN PASSWORD {literal}")


@pytest.fixture
def secured_db(password_server: PrivatePostgres) -> Iterator[SecuredDatabase]:
    """A fresh database on the password-checking server, owned by a new role with PASSWORD;
    the database and every role the test added are dropped afterwards."""
    token = secrets.token_hex(4)
    db = SecuredDatabase(
        password_server, database=f"sweepscope_auth_{token}", owner=f"sweepscope_owner_{token}"
    )
    before = _roles(password_server)
    db.add_role(db.owner, PASSWORD)
    password_server.execute(f'CREATE DATABASE "{db.database}" OWNER "{db.owner}"')
    try:
        yield db
    finally:
        password_server.execute(f'DROP DATABASE IF EXISTS "{db.database}" WITH (FORCE)')
        for role in sorted(_roles(password_server) - before):
            quoted = '"' + role.replace('"', '""') + '"'
            password_server.execute(f"DROP OWNED BY {quoted}", f"DROP ROLE {quoted}")


def _roles(server: PrivatePostgres) -> set[str]:
    engine = sa.create_engine(server.url())
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.text("SELECT rolname FROM pg_roles")).scalars())
    finally:
        engine.dispose()


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of a process that runs for the whole test (a driver, as far as a store knows)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()
