"""A store password never leaves the store URL: not in what the CLI prints, not in the
store's rows, not in Ray Tune's saved state or any other file a sweep leaves behind, not in
an error or its log file, not on a dashboard page."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from runner.store import open_store

from .conftest import POSTGRES_ENV, REPO
from .test_dashboard_data import make_sweep
from .test_plain_tune import cli, cli_env, dashboard

PASSWORD = "S3cret@Passw0rd-xyz"  # in the URL as S3cret%40Passw0rd-xyz
SECRET = "Passw0rd-xyz"  # part of both forms, and of any wrong split at the "@"

SPEC = """\
name: creds
trainable: tests.trainables:steady
metric: val_acc
mode: max
stop: {epochs: 2}
fixed: {steps_per_epoch: 3}
grid: {scale: [1.0, 2.0]}
"""


def with_password(base: str, **parts: str | int) -> str:
    url = sa.engine.make_url(base).set(password=PASSWORD, **parts)  # type: ignore[arg-type]
    return url.render_as_string(hide_password=False)


@pytest.fixture
def secret_url() -> Iterator[str]:
    """A fresh PostgreSQL database, reached by a URL with a password (the test server
    trusts every password); dropped afterwards."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        if os.environ.get("CI"):
            pytest.fail(f"CI must set {POSTGRES_ENV} so the PostgreSQL tests run")
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}=postgresql+psycopg://user@host/db")
    name = f"sweepscope_creds_{secrets.token_hex(4)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield with_password(base, database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Where the CLI runs (its logs go to ./.sweepscope/logs), with the spec in it."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "spec.yaml").write_text(SPEC)
    return work


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    """Ray's own temporary directory (session logs): short, for Ray's socket paths."""
    path = Path(tempfile.mkdtemp(prefix="ssray-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def files_with_secret(*roots: Path) -> list[str]:
    """Every regular file under `roots` whose bytes hold the password, as text or as the hex
    of a pickle (Ray Tune keeps the objects it cannot write as JSON that way)."""
    forms = (SECRET.encode(), SECRET.encode().hex().encode())
    return [
        str(path)
        for root in roots
        for path in root.rglob("*")
        if path.is_file()
        and not path.is_symlink()
        and any(form in path.read_bytes() for form in forms)
    ]


def rows_with_secret(url: str) -> list[str]:
    """Every row of every table of the store's database that holds the password."""
    engine = sa.create_engine(url)
    try:
        tables = sa.MetaData()
        tables.reflect(engine)
        with engine.connect() as conn:
            return [
                f"{table.name}: {row}"
                for table in tables.sorted_tables
                for row in conn.execute(table.select())
                if SECRET in repr(tuple(row))
            ]
    finally:
        engine.dispose()


def logs_named(text: str) -> list[Path]:
    return [Path(p) for p in re.findall(r"(/\S+\.log)", text)]


@pytest.mark.ray
@pytest.mark.postgres
def test_a_sweep_on_a_password_url_writes_the_password_nowhere(
    tmp_path: Path, workdir: Path, ray_tmp: Path, secret_url: str
) -> None:
    env = cli_env(PYTHONPATH=str(REPO), RAY_TMPDIR=str(ray_tmp))
    storage = tmp_path / "ray"
    run = cli(
        "run",
        "spec.yaml",
        "--store",
        secret_url,
        "--storage-path",
        str(storage),
        cwd=workdir,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert "store: postgresql+psycopg://postgres:***@" in run.stdout  # shown, masked
    with open_store(secret_url) as store:
        (sweep,) = store.sweeps()
    assert sweep["status"] == "completed"
    # the read commands, with the URL from the environment as a user may set it
    reading = {**env, "SWEEPSCOPE_STORE": secret_url}
    outputs = [run, cli("ls", cwd=workdir, env=reading)]
    outputs.append(cli("status", sweep["id"], cwd=workdir, env=reading))
    for out in (tmp_path / "points.csv", tmp_path / "points.parquet"):
        outputs.append(cli("export", sweep["id"], "-o", str(out), cwd=workdir, env=reading))
    for done in outputs:
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout + done.stderr, done.args

    assert rows_with_secret(secret_url) == []
    # Ray Tune's saved state holds the runner's stopper, pickled: there is some to read
    state = storage / sweep["id"]
    assert (state / "tuner.pkl").is_file()
    (experiment,) = state.glob("experiment_state*.json")
    assert "runner.stopper" in bytes.fromhex(
        json.loads(experiment.read_text())["runner_data"]["_stopper"]["value"]
    ).decode(errors="replace")
    assert list(ray_tmp.glob("ray/session_*/logs/*"))  # and Ray's session logs
    assert files_with_secret(tmp_path, ray_tmp) == []


def test_a_store_that_is_down_names_no_password(workdir: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://postgres:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/sweeps"
    env = cli_env(PYTHONPATH=str(REPO))
    for args in (["run", "spec.yaml"], ["ls"]):
        done = cli(*args, "--store", url, cwd=workdir, env=env)
        assert done.returncode == 1, done.stderr
        assert "did not answer" in done.stderr and f"postgres:***@127.0.0.1:{port}" in done.stderr
        assert SECRET not in done.stdout + done.stderr
        logs = logs_named(done.stderr)
        assert logs and all(log.is_file() for log in logs)
    assert files_with_secret(workdir) == []  # the logs, with their tracebacks


@pytest.mark.postgres
def test_a_database_that_does_not_exist_names_no_password(workdir: Path, secret_url: str) -> None:
    missing = secret_url.rsplit("/", 1)[0] + "/no_such_database"
    env = cli_env(PYTHONPATH=str(REPO))
    for args in (["run", "spec.yaml"], ["ls"]):
        done = cli(*args, "--store", missing, cwd=workdir, env=env)
        assert done.returncode != 0 and "Traceback" not in done.stderr
        assert 'database "no_such_database" does not exist' in done.stderr
        assert "postgres:***@" in done.stderr and SECRET not in done.stdout + done.stderr
        for log in logs_named(done.stderr):
            assert log.is_file()
    assert files_with_secret(workdir) == []


def _rendered(node: object) -> bytes:
    """Everything an AppTest element tree holds, as the bytes of its protobuf messages."""
    proto = getattr(node, "proto", None)
    own = proto.SerializeToString() if proto is not None else b""
    children = getattr(node, "children", {})
    return own + b"".join(_rendered(child) for child in children.values())


@pytest.mark.postgres
def test_the_dashboard_on_a_password_url_shows_no_password(
    secret_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(secret_url, create=True) as store:
        make_sweep(store)
    missing = secret_url.rsplit("/", 1)[0] + "/no_such_database"
    with dashboard(monkeypatch) as open_page:
        for page in (None, "live", "compare", "hparams", "trial"):
            shown = _rendered(open_page(secret_url, page, sweep="bn_demo-1")._tree)
            assert b"postgres:***@" in shown and b"bn_demo-1" in shown, page
            assert SECRET.encode() not in shown, page
        # and the message for a store it cannot open
        shown = _rendered(open_page(missing)._tree)
        assert b"does not exist" in shown and SECRET.encode() not in shown
