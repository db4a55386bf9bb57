"""The fault helpers themselves: a private PostgreSQL that really goes down and comes back with
its data, and another process that really holds an SQLite store's write lock."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from runner.store import open_store
from tests.helpers.faults import PrivatePostgres, hold_sqlite_lock, require_postgres_bin
from tests.helpers.paths import REPO
from tests.helpers.ports import port_open


def _count(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one())
    finally:
        engine.dispose()


def test_private_postgres_stop_and_start_keep_the_data(pg: PrivatePostgres) -> None:
    url = pg.create_database("faults")
    assert url == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/faults"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (a int)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1), (2)"))
        pg.stop()
        assert not pg.is_running()
        # The pooled connection was cut: no pre-ping here, so the query itself fails.
        with pytest.raises(sa.exc.OperationalError), engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        with pytest.raises(sa.exc.OperationalError):  # and no new one is accepted
            _count(url)
        pg.start()
        assert _count(url) == 2
        assert _count(pg.url("faults", password="anything")) == 2  # trust auth
    finally:
        engine.dispose()
    assert len(pg.timings["stop"]) == 1 and len(pg.timings["start"]) == 2


def test_background_outage_keeps_the_server_down_for_its_length(pg: PrivatePostgres) -> None:
    engine = sa.create_engine(pg.url(), pool_pre_ping=True)
    try:
        outage = pg.start_outage(2.0, after=0.2)
        time.sleep(0.2 + 0.8)
        with pytest.raises(sa.exc.OperationalError), engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        outage.join(timeout=30)
        assert outage.down_seconds is not None and 2.0 <= outage.down_seconds < 5.0
        with engine.connect() as conn:  # pre-ping replaces the connection the outage cut
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_private_postgres_is_removed_when_the_block_fails() -> None:
    require_postgres_bin()
    with pytest.raises(RuntimeError, match="test failed"), PrivatePostgres() as server:
        base, port = server.data_dir.parent, server.port
        assert base.is_dir() and port_open(port)
        raise RuntimeError("test failed")
    assert not base.exists()
    assert not port_open(port)


@pytest.mark.postgres
def test_private_postgres_is_removed_when_its_owner_is_killed() -> None:
    require_postgres_bin()
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from tests.helpers.faults import PrivatePostgres\n"
            "pg = PrivatePostgres().setup()\n"
            "print(pg.base, pg.port, flush=True)\n"
            "time.sleep(600)",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        base, port = owner.stdout.readline().split()
        assert port_open(int(port))
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    deadline = time.monotonic() + 20
    while (Path(base).exists() or port_open(int(port))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(base).exists() and not port_open(int(port))


@pytest.mark.slow  # holds a lock for 3 s
def test_held_sqlite_lock_blocks_writers_but_not_readers(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with open_store(f"sqlite:///{path}", create=True):  # the store's schema, in WAL mode
        pass
    conn = sqlite3.connect(path, timeout=0.2, isolation_level=None)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        with hold_sqlite_lock(path, 3.0) as lock:
            assert lock.held and lock.locked_at is not None
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                conn.execute("CREATE TABLE blocked (a)")
            assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
            with open_store(f"sqlite:///{path}") as store:  # the store's own pragmas, too
                assert store.sweeps() == []
            released_at = lock.wait(timeout=20)
        assert 3.0 <= released_at - lock.locked_at < 6.0 and not lock.released_early
        conn.execute("CREATE TABLE written (a)")
    finally:
        conn.close()


def test_sqlite_lock_can_be_released_early_and_needs_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    with pytest.raises(FileNotFoundError):
        hold_sqlite_lock(path, 1.0)
    assert not path.exists()
    sqlite3.connect(path).close()
    started = time.monotonic()
    with hold_sqlite_lock(path, 60.0) as lock:
        lock.release()
    assert lock.released_early and not lock.held
    assert time.monotonic() - started < 10
    assert lock.proc.returncode == 0
