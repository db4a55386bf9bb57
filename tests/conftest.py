"""Shared fixtures: temporary stores on every backend, and a loopback-only Ray."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

# Ray reads this at import: bind its services to 127.0.0.1 in every test.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import pytest
import sqlalchemy as sa

from runner.store import Store, open_store
from tests.faults import PrivatePostgres, require_postgres_bin

REPO = Path(__file__).resolve().parents[1]
POSTGRES_ENV = "SWEEPSCOPE_TEST_POSTGRES"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards.

    Skips (with the reason) where SWEEPSCOPE_TEST_POSTGRES is unset; CI sets it.
    """
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        if os.environ.get("CI"):
            pytest.fail(f"CI must set {POSTGRES_ENV} so the PostgreSQL tests run")
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}=postgresql+psycopg://user@host/db")
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
