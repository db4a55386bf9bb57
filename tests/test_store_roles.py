"""The dashboard's PostgreSQL role: it reads the whole store, sets stop requests, and can
write nothing else. Runs on the server in $SWEEPSCOPE_TEST_POSTGRES (skips without it, and
fails in CI without it, through the postgres_url fixture); the role logs in with a password
of its own, which a server that checks passwords (CI's) asks for and a trusting one
ignores. tests/test_dashboard_auth_browser.py drives the role through the dashboard."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from runner.errors import StoreError
from runner.store import Store, TrialStatus, migrate_store, open_store
from runner.store._roles import grant_dashboard_role
from tests.helpers.stores import run_sql

PERMISSION_DENIED = "42501"  # SQLSTATE insufficient_privilege


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# The dashboard role's password: a quote, and what a URL must escape.
ROLE_PASSWORD = "d'ash/b@ard:pw"


def _as(url: str, role: str) -> str:
    """`url` with its user swapped for `role`, and that role's password."""
    swapped = sa.engine.make_url(url).set(username=role, password=ROLE_PASSWORD)
    return swapped.render_as_string(hide_password=False)


@pytest.fixture
def owner_url(postgres_url: str) -> Iterator[str]:
    """The session's database with the store's tables dropped before and after."""
    from runner.store._schema import metadata

    def reset() -> None:
        engine = sa.create_engine(postgres_url)
        metadata.drop_all(engine)
        engine.dispose()

    reset()
    yield postgres_url
    reset()


@pytest.fixture
def role(owner_url: str) -> Iterator[str]:
    """A new LOGIN role whose name needs quoting: a capital, a space, a double quote, and
    what SQLAlchemy and the driver would take for parameters (:x, %s)."""
    name = f'sweepscope Dash"{secrets.token_hex(4)} :x %s;'
    password = ROLE_PASSWORD.replace("'", "''")
    run_sql(owner_url, f"CREATE ROLE {_quote(name)} LOGIN PASSWORD '{password}'")
    try:
        yield name
    finally:
        # DROP OWNED also revokes its privileges, on the database (CONNECT) included.
        run_sql(owner_url, f"DROP OWNED BY {_quote(name)}", f"DROP ROLE {_quote(name)}")


def _filled(url: str) -> tuple[Store, int]:
    store = open_store(url, create=True)
    store.create_sweep(
        "s1", name="demo", spec={"grid": {"lr": [0.1]}}, metric="val_acc", mode="max", n_trials=1
    )
    trial = store.add_trial("s1", "ray_0", {"lr": 0.1})
    store.set_trial_status(trial, TrialStatus.RUNNING)
    store.add_points(trial, [("train_loss", s, 1.0 / s, 100.0 + s) for s in range(1, 6)])
    return store, trial


pg = pytest.mark.postgres


@pg
def test_the_dashboard_role_reads_everything_sets_stop_requests_and_writes_nothing_else(
    owner_url: str, role: str
) -> None:
    owner, trial = _filled(owner_url)
    try:
        grant_dashboard_role(owner_url, role)
        grant_dashboard_role(owner_url, role)  # idempotent
        dashboard_url = _as(owner_url, role)

        with open_store(dashboard_url) as dashboard:
            assert [s["id"] for s in dashboard.sweeps()] == ["s1"]
            assert [t["id"] for t in dashboard.trials("s1")] == [trial]
            assert len(dashboard.points("s1")) == 5
            assert dashboard.request_stop("s1", trial) is True
            assert dashboard.request_stop("s1") is True
        assert owner.stop_requests("s1") == (True, {"ray_0"})

        engine = sa.create_engine(dashboard_url)
        try:
            for statement in (
                "INSERT INTO points (trial_id, metric_id, step, value, wall_ms) "
                f"VALUES ({trial}, 1, 99, 0.5, 1)",
                "INSERT INTO metrics (name) VALUES ('intruder')",
                f"INSERT INTO point_writes (trial_id, metric_id, first_step, last_step) "
                f"VALUES ({trial}, 1, 99, 99)",
                "UPDATE sweeps SET status = 'completed'",
                "UPDATE trials SET status = 'completed'",
                f"DELETE FROM trials WHERE id = {trial}",
                "TRUNCATE points",
                "CREATE TABLE intruder (x integer)",
                "DROP TABLE points",
            ):
                with pytest.raises(sa.exc.ProgrammingError) as denied, engine.begin() as conn:
                    conn.execute(sa.text(statement))
                assert getattr(denied.value.orig, "sqlstate", None) == PERMISSION_DENIED, statement
                assert "permission denied" in str(denied.value.orig) or "must be owner" in str(
                    denied.value.orig
                ), statement
        finally:
            engine.dispose()

        # Nothing but the two stop requests changed.
        sweep = owner.sweep("s1")
        assert sweep is not None and sweep["status"] == "running"
        assert [t["status"] for t in owner.trials("s1")] == [TrialStatus.RUNNING]
        assert len(owner.points("s1")) == 5
    finally:
        owner.close()


@pg
def test_an_upgrade_keeps_the_dashboard_role_reading(owner_url: str, role: str) -> None:
    """A role granted on a version-2 store reads the tables the upgrade adds, and still
    cannot write them."""
    from tests.test_migrate import _old_points, _write_earlier_store

    _write_earlier_store(owner_url, first=False, version=2)
    grant_dashboard_role(owner_url, role)
    with migrate_store(owner_url) as owner:  # only `sweepscope migrate` upgrades
        assert owner.migrated[0].startswith("version 2 -> 3")
    with open_store(_as(owner_url, role)) as dashboard:
        assert len(dashboard.points("old-sweep")) == len(_old_points(first=False))
        assert dashboard.sweep("old-sweep") is not None
    engine = sa.create_engine(_as(owner_url, role))
    try:
        for statement in (
            "INSERT INTO metrics (name) VALUES ('intruder')",
            "DELETE FROM point_writes",
            "UPDATE points SET value = 0",
        ):
            with pytest.raises(sa.exc.ProgrammingError) as denied, engine.begin() as conn:
                conn.execute(sa.text(statement))
            assert getattr(denied.value.orig, "sqlstate", None) == PERMISSION_DENIED, statement
    finally:
        engine.dispose()


def test_a_sqlite_store_has_no_roles() -> None:
    with pytest.raises(StoreError, match="needs PostgreSQL"):
        grant_dashboard_role("sqlite:///store.db", "sweepscope_dashboard")


@pg
def test_a_missing_role_is_refused(owner_url: str) -> None:
    _filled(owner_url)[0].close()
    missing = f"sweepscope_nobody_{secrets.token_hex(4)}"
    with pytest.raises(StoreError, match=f"the role '{missing}' does not exist.*CREATE ROLE"):
        grant_dashboard_role(owner_url, missing)


@pg
def test_a_store_without_tables_is_refused(owner_url: str, role: str) -> None:
    with pytest.raises(StoreError, match="has no sweepscope tables.*migrate"):
        grant_dashboard_role(owner_url, role)


@pg
@pytest.mark.parametrize("how", ["owner", "public", "superuser"])
def test_a_role_that_could_still_write_is_refused_and_nothing_is_granted(
    owner_url: str, role: str, how: str
) -> None:
    _filled(owner_url)[0].close()
    target = role
    if how == "owner":
        run_sql(owner_url, f"ALTER TABLE points OWNER TO {_quote(role)}")
        expected = "every table .* owns"
    elif how == "public":
        run_sql(owner_url, "GRANT INSERT ON trial_events TO PUBLIC")
        expected = r"trial_events \(INSERT\)"
    else:
        target = str(sa.engine.make_url(owner_url).username)  # the test server's superuser
        expected = "superuser"
    try:
        with pytest.raises(
            StoreError, match=f"could still write more than stop requests.*{expected}"
        ):
            grant_dashboard_role(owner_url, target)
        # One transaction: the refusal left the role without even SELECT.
        if how != "superuser":
            engine = sa.create_engine(owner_url)
            try:
                with engine.connect() as conn:
                    granted = conn.execute(
                        sa.text("SELECT has_table_privilege(:r, 'sweeps', 'SELECT')"),
                        {"r": role},
                    ).scalar()
            finally:
                engine.dispose()
            assert granted is False
    finally:
        if how == "owner":
            run_sql(owner_url, "ALTER TABLE points OWNER TO CURRENT_USER")
        elif how == "public":
            run_sql(owner_url, "REVOKE INSERT ON trial_events FROM PUBLIC")
