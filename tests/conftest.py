"""Shared fixtures: temporary stores on every backend, a fresh dashboard, and a loopback-only
Ray. The helpers behind them live in tests/helpers/; import helpers from there, not from here.

Markers (pyproject.toml): `ray`, `browser`, `postgres`, `slurm`, `slow`; `make test-fast`
leaves them all out. Tests are marked by hand, except `postgres`, which this file adds to
every test of a PostgreSQL fixture and to the PostgreSQL side of `store_url`.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Ray reads this at import: bind its services to 127.0.0.1 in every test.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
# A warm runtime the developer left up (`sweepscope up`) is never joined by a test's sweep:
# the tests look for one in a folder of their own (tests/test_runtime.py starts its own).
os.environ["SWEEPSCOPE_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="sweepscope-test-runtime-")

import pytest

from runner.store import Store, open_store
from tests.helpers import stores
from tests.helpers.ci import skip_outside_ci
from tests.helpers.faults import PrivatePostgres, require_postgres_bin
from tests.helpers.paths import REPO
from tests.helpers.stores import SECRET, SecuredDatabase

# Imported from here by tests/test_dashboard_auth_browser.py until it imports tests.helpers.
__all__ = ["REPO", "SECRET", "SecuredDatabase"]

POSTGRES_ENV = "SWEEPSCOPE_TEST_POSTGRES"


# Fixtures that need a PostgreSQL server: every test that uses one, even through another
# fixture, is marked `postgres` (so `make test-fast` leaves it out).
POSTGRES_FIXTURES = {"postgres_url", "pg", "password_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


# -- stores ---------------------------------------------------------------------------------
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
    with stores.temporary_database(base, prefix=f"sweepscope_test_{os.getpid()}") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty store location on each backend (schema not yet created)."""
    if request.param == "sqlite":
        yield stores.sqlite_url(tmp_path)
    else:
        url = request.getfixturevalue("postgres_url")
        stores.reset_postgres(url)
        yield url
        stores.reset_postgres(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL for an empty SQLite store location, for tests of one backend only; say why
    where it is used (the store's own tests run on both backends through `store_url`)."""
    return stores.sqlite_url(tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A fresh store with its schema, on each backend; disposed afterwards."""
    s = open_store(store_url, create=True)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    """A fresh SQLite store with its schema; disposed afterwards."""
    s = open_store(sqlite_url, create=True)
    try:
        yield s
    finally:
        s.close()


# -- the dashboard --------------------------------------------------------------------------
@pytest.fixture
def fresh_dashboard(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fresh Streamlit caches, bound to loopback, without a token (tests.helpers.apptest)."""
    from dashboard import control
    from tests.helpers.apptest import fresh_dashboard as fresh  # Streamlit: only when asked

    monkeypatch.delenv(control.TOKEN_ENV, raising=False)
    with fresh():
        yield


@pytest.fixture
def dashboard_url(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, fresh_dashboard: None) -> str:
    """An empty SQLite store location that the dashboard reads ($SWEEPSCOPE_STORE), with
    fresh caches. SQLite only: page tests check what a page draws, not the backend."""
    monkeypatch.setenv("SWEEPSCOPE_STORE", sqlite_url)
    return sqlite_url


# -- private PostgreSQL servers (mark their tests `postgres`) -------------------------------
@pytest.fixture
def pg() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL server a test may stop and start (never the shared one)."""
    require_postgres_bin()
    with PrivatePostgres() as server:
        yield server


@pytest.fixture(scope="session")
def password_server() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL server of this test session that checks passwords
    (scram-sha-256), as every real deployment does; its superuser's password is random."""
    require_postgres_bin()
    with PrivatePostgres(password=f"su-{secrets.token_hex(12)}") as server:
        yield server


@pytest.fixture
def secured_db(password_server: PrivatePostgres) -> Iterator[SecuredDatabase]:
    """A fresh database on the password-checking server, owned by a new role with PASSWORD;
    the database and every role the test added are dropped afterwards."""
    with SecuredDatabase.created(password_server) as db:
        yield db


# -- processes ------------------------------------------------------------------------------
@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of a process that runs for the whole test (a driver, as far as a store knows)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()
