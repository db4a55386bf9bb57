"""A PostgreSQL that checks passwords, as every real deployment does: every command, a sweep
and every dashboard page work with the password in the URL, as ?password=, in PGPASSWORD or
in a password file (PGPASSFILE; ~/.pgpass by default), and the password never leaves: not in
what the CLI prints, not in the store's rows, not in Ray Tune's saved state or any other
file a sweep leaves behind, not in an error or its log file, not on a dashboard page. A
wrong or missing password is an input error: exit 2 and one paragraph, and a message on
the page. The server is a private one started with `initdb -A scram-sha-256`."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from runner.store import TrialStatus, open_store
from tests.helpers.apptest import fresh_dashboard, open_page
from tests.helpers.cli import SWEEPSCOPE, cli, cli_env
from tests.helpers.paths import REPO
from tests.helpers.ports import free_port
from tests.helpers.stores import PASSWORD, PASSWORD_FORMS, SECRET, SecuredDatabase
from tests.helpers.waiting import wait_for

from .test_dashboard_data import make_sweep

SPEC = """\
name: creds
trainable: tests.trainables:steady
metric: val_acc
mode: max
stop: {epochs: 2}
fixed: {steps_per_epoch: 3}
grid: {scale: [1.0, 2.0]}
"""
# Three trials one at a time, about 9 s each: time to stop one (a `sweepscope stop` takes
# a second or two to start on a busy machine) and Ctrl-C the run before the rest finish.
SLOW_SPEC = """\
name: creds_slow
trainable: tests.trainables:steady
metric: val_acc
mode: max
stop: {epochs: 3}
max_concurrent: 1
fixed: {steps_per_epoch: 10, sleep: 0.3}
grid: {scale: [1.0, 2.0, 3.0]}
"""
PAGES = (None, "live", "compare", "hparams", "trial", "versus")
DASHBOARD_ROLE = "sweepscope_dashboard_creds"
DASHBOARD_PASSWORD = "d4sh:b0ard@pw"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Where the CLI runs (its logs go to ./.sweepscope/logs), with the specs in it."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "spec.yaml").write_text(SPEC)
    (work / "slow.yaml").write_text(SLOW_SPEC)
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
        and not path.name.startswith("pgpass-")  # the password file the test wrote
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


def one_paragraph(stderr: str, command: str) -> str:
    """The CLI's error, checked to be the whole of stderr: one line, no traceback."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sweepscope {command}: error:"), stderr
    return lines[0]


# -- every command and a sweep, with the password given each way ---------------------------
@pytest.mark.ray
@pytest.mark.postgres
@pytest.mark.parametrize("form", PASSWORD_FORMS)
def test_every_command_works_on_a_server_that_checks_passwords(
    form: str, secured_db: SecuredDatabase, tmp_path: Path, workdir: Path, ray_tmp: Path
) -> None:
    """migrate --grant-dashboard, run, stop, Ctrl-C, resume, ls, status, export: each
    logs in, does its work, and shows the password nowhere."""
    url = secured_db.url(form)
    env = cli_env(
        PYTHONPATH=str(REPO),
        RAY_TMPDIR=str(ray_tmp),
        SWEEPSCOPE_STORE=url,  # as a user sets it once; `run` gets --store as well
        **secured_db.env(form, tmp_path),
    )
    secured_db.add_role(DASHBOARD_ROLE, DASHBOARD_PASSWORD)
    outputs = [cli("migrate", "--grant-dashboard", DASHBOARD_ROLE, cwd=workdir, env=env)]
    assert outputs[-1].returncode == 0, outputs[-1].stderr
    assert f"role {DASHBOARD_ROLE}: may read the store" in outputs[-1].stdout

    owner = open_store(secured_db.url())  # the test's own view, password in the URL
    storage = tmp_path / "ray"
    run = subprocess.Popen(
        [SWEEPSCOPE, "run", "slow.yaml", "--store", url, "--storage-path", str(storage)],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:

        def a_trial_with_points() -> dict[str, Any] | None:
            if run.poll() is not None:
                raise AssertionError(f"the sweep ended early: {run.communicate()}")
            sweeps = owner.sweeps()
            running = [
                t
                for t in (owner.trials(sweeps[0]["id"]) if sweeps else [])
                if t["status"] == TrialStatus.RUNNING and t["last_step"]
            ]
            return running[0] if running else None

        trial = wait_for("a running trial with points", a_trial_with_points, 120)
        sweep_id = owner.sweeps()[0]["id"]
        stop = cli("stop", sweep_id, "--trial", str(trial["number"]), cwd=workdir, env=env)
        assert stop.returncode == 0 and "stop requested" in stop.stdout, stop.stderr
        outputs.append(stop)
        wait_for(
            "the trial to stop",
            lambda: (
                {t["id"]: t["status"] for t in owner.trials(sweep_id)}[trial["id"]]
                == TrialStatus.STOPPED_BY_USER
            ),
            30,
        )
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=90)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.communicate()
    assert run.returncode == 130, err
    assert "Traceback" not in err
    outputs.append(subprocess.CompletedProcess(run.args, run.returncode, out, err))
    if form in ("url", "query"):
        assert re.search(r"store: postgresql\+psycopg://sweepscope_owner_\w+(:\*\*\*)?@", out)
        assert "***" in out, out  # shown, masked

    resume = cli("resume", sweep_id, cwd=workdir, env=env)
    assert resume.returncode == 0, resume.stderr
    outputs.append(resume)
    sweep = owner.sweep(sweep_id)
    assert sweep is not None and sweep["status"] == "completed"
    statuses = sorted(t["status"] for t in owner.trials(sweep_id))
    assert statuses == ["completed", "completed", "stopped_by_user"]

    outputs += [cli("ls", cwd=workdir, env=env), cli("status", sweep_id, cwd=workdir, env=env)]
    assert sweep_id in outputs[-2].stdout and "completed" in outputs[-1].stdout
    export = tmp_path / "points.csv"
    outputs.append(cli("export", sweep_id, "-o", str(export), cwd=workdir, env=env))
    assert export.read_text().count(sweep_id) == len(owner.points(sweep_id))
    owner.close()
    for done in outputs:
        assert done.returncode in (0, 130), (done.args, done.stderr)
        assert SECRET not in done.stdout + done.stderr, done.args
    assert rows_with_secret(secured_db.url()) == []
    assert files_with_secret(tmp_path, ray_tmp) == []


@pytest.mark.ray
@pytest.mark.postgres
def test_a_sweep_on_a_password_url_writes_the_password_nowhere(
    tmp_path: Path, workdir: Path, ray_tmp: Path, secured_db: SecuredDatabase
) -> None:
    secret_url = secured_db.url()
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
    assert f"store: postgresql+psycopg://{secured_db.owner}:***@" in run.stdout  # shown, masked
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
    assert "runner.driver.stopper" in bytes.fromhex(
        json.loads(experiment.read_text())["runner_data"]["_stopper"]["value"]
    ).decode(errors="replace")
    assert list(ray_tmp.glob("ray/session_*/logs/*"))  # and Ray's session logs
    assert files_with_secret(tmp_path, ray_tmp) == []


# -- a wrong or missing password -----------------------------------------------------------
COMMANDS = {
    "run": ["run", "spec.yaml"],
    "resume": ["resume", "creds-1"],
    "ls": ["ls"],
    "status": ["status", "creds-1"],
    "export": ["export", "creds-1", "-o", "out.csv"],
    "stop": ["stop", "creds-1"],
    "migrate": ["migrate"],
    "migrate --grant-dashboard": ["migrate", "--grant-dashboard", DASHBOARD_ROLE],
    "dashboard": ["dashboard"],  # refused before it serves anything
}


@pytest.mark.postgres
@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("how", ["wrong", "missing"])
def test_a_wrong_or_missing_password_is_an_input_error(
    command: str, how: str, secured_db: SecuredDatabase, workdir: Path
) -> None:
    """Exit 2, one paragraph that says what the server said and how to fix it, at once
    (no retrying as for a server that is away), and no password."""
    if how == "wrong":
        url, expected = secured_db.url(password=f"{SECRET}-wrong"), "password authentication"
    else:
        url, expected = secured_db.url("PGPASSWORD"), "no password supplied"
    env = cli_env(PYTHONPATH=str(REPO))
    env.pop("PGPASSWORD", None)
    env.pop("PGPASSFILE", None)
    env["HOME"] = str(workdir)  # no ~/.pgpass of the machine's
    args = COMMANDS[command]
    if command == "dashboard":
        args = [*args, "--port", str(free_port())]
    started = time.monotonic()
    done = cli(*args, "--store", url, cwd=workdir, env=env, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    error = one_paragraph(done.stderr, command.split()[0])
    assert expected in error and "Fix:" in error and "Traceback" not in error
    assert f"{secured_db.owner}" in error and SECRET not in done.stdout + done.stderr
    assert time.monotonic() - started < 30
    assert files_with_secret(workdir) == []


def test_a_store_that_is_down_names_no_password(workdir: Path) -> None:
    port = free_port()  # nothing listens on it
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
def test_a_database_that_does_not_exist_names_no_password(
    workdir: Path, secured_db: SecuredDatabase
) -> None:
    missing = secured_db.url().rsplit("/", 1)[0] + "/no_such_database"
    env = cli_env(PYTHONPATH=str(REPO))
    for args in (["run", "spec.yaml"], ["ls"]):
        done = cli(*args, "--store", missing, cwd=workdir, env=env)
        assert done.returncode != 0 and "Traceback" not in done.stderr
        assert 'database "no_such_database" does not exist' in done.stderr
        assert f"{secured_db.owner}:***@" in done.stderr
        assert SECRET not in done.stdout + done.stderr
        for log in logs_named(done.stderr):
            assert log.is_file()
    assert files_with_secret(workdir) == []


# -- the dashboard -------------------------------------------------------------------------
def _rendered(node: object) -> bytes:
    """Everything an AppTest element tree holds, as the bytes of its protobuf messages."""
    proto = getattr(node, "proto", None)
    own = proto.SerializeToString() if proto is not None else b""
    children = getattr(node, "children", {})
    return own + b"".join(_rendered(child) for child in children.values())


@pytest.mark.postgres
@pytest.mark.parametrize("form", PASSWORD_FORMS)
def test_every_dashboard_page_works_on_a_server_that_checks_passwords(
    form: str, secured_db: SecuredDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each page lists the sweep and draws it, with no error, through every rerun (the
    sidebar's sweep list is read again on each), and shows the password nowhere."""
    with open_store(secured_db.url(), create=True) as store:
        make_sweep(store)
        make_sweep(store, sweep_id="bn_demo-2")
    for name, value in secured_db.env(form, tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SWEEPSCOPE_STORE", secured_db.url(form))
    with fresh_dashboard():
        for page in PAGES:
            at = open_page(page, sweep="bn_demo-1")
            at.run()  # a rerun, as the live pages do every few seconds
            assert not at.exception, [e.value for e in at.exception]
            assert [e.value for e in at.error] == [], page
            shown = _rendered(at._tree)
            assert b"bn_demo-1" in shown and b"bn_demo-2" in shown, page
            assert SECRET.encode() not in shown, page
            if form in ("url", "query"):
                assert b"***" in shown, page  # the store's URL, masked, in the sidebar


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["wrong", "missing"])
def test_the_dashboard_says_a_refused_password_on_the_page(
    how: str, secured_db: SecuredDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(secured_db.url(), create=True) as store:
        make_sweep(store)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.delenv("PGPASSFILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.pgpass of the machine's
    if how == "wrong":
        url, expected = secured_db.url(password=f"{SECRET}-wrong"), "password authentication"
    else:
        url, expected = secured_db.url("PGPASSWORD"), "no password supplied"
    monkeypatch.setenv("SWEEPSCOPE_STORE", url)
    with fresh_dashboard():
        for page in PAGES:
            at = open_page(page)  # fails the test on any exception (a traceback)
            (error,) = at.error
            assert expected in error.value and "Fix:" in error.value, page
            assert f"{secured_db.owner}" in error.value and SECRET not in error.value
            assert SECRET.encode() not in _rendered(at._tree)


@pytest.mark.postgres
def test_the_dashboard_on_a_missing_database_shows_no_password(
    secured_db: SecuredDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = secured_db.url().rsplit("/", 1)[0] + "/no_such_database"
    monkeypatch.setenv("SWEEPSCOPE_STORE", missing)
    with fresh_dashboard():
        shown = _rendered(open_page()._tree)
    assert b"does not exist" in shown and SECRET.encode() not in shown
