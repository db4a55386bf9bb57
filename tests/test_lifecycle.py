"""A live sweep is never closed by someone else: `reconcile` (which every `sweepscope run`
and `resume` calls) closes a running sweep only when its driver is gone. A driver on this
host is judged by its process, whatever its heartbeat says; one on another host by its
heartbeat, against the database's clock and the window $SWEEPSCOPE_STALE_SECONDS."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from runner.errors import StoreError
from runner.store import Store, open_store, reconcile, sweep_status
from runner.store import _schema as schema
from runner.store._lifecycle import STALE_ENV

from .conftest import REPO
from .faults import hold_sqlite_lock
from .test_plain_tune import SWEEPSCOPE, cli_env

HOUR = 3600.0


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of a process that runs for the whole test (a driver, as far as a store knows)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def running_sweep(store: Store, store_url: str, *, driver: str, beat_age: float) -> str:
    """A running sweep with a running and a pending trial, whose driver is `driver` and
    whose last heartbeat was `beat_age` seconds ago by the database's clock."""
    sweep_id = f"s-{driver.replace(':', '-')}-{beat_age:g}"
    store.create_sweep(sweep_id, name="s", spec={}, metric="val_acc", mode="max", n_trials=2)
    running = store.add_trial(sweep_id, "t0", {"lr": 0.1})
    store.set_trial_status(running, "running")
    store.add_trial(sweep_id, "t1", {"lr": 0.01})
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                schema.sweeps.update()
                .where(schema.sweeps.c.id == sweep_id)
                .values(driver=driver, heartbeat_at=store.now() - beat_age)
            )
    finally:
        engine.dispose()
    return sweep_id


def statuses(store: Store, sweep_id: str) -> tuple[str, list[str]]:
    sweep = store.sweep(sweep_id)
    assert sweep is not None
    return sweep["status"], [t["status"] for t in store.trials(sweep_id)]


@pytest.fixture
def host_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Set this host's clock (time.time) `offset` seconds off; the database's stays right."""
    real = time.time

    def set_offset(offset: float) -> None:
        monkeypatch.setattr(time, "time", lambda: real() + offset)

    return set_offset


HERE = socket.gethostname()
ELSEWHERE = "another-host.example"


# -- unit level, on SQLite and PostgreSQL ----------------------------------------------------
def test_a_driver_alive_on_this_host_keeps_its_sweep_whatever_its_heartbeat(
    store: Store, store_url: str, live_pid: int
) -> None:
    sweep_id = running_sweep(store, store_url, driver=f"{HERE}:{live_pid}", beat_age=HOUR)
    assert reconcile(store) == []
    assert statuses(store, sweep_id) == ("running", ["running", "pending"])
    sweep = store.sweep(sweep_id)
    assert sweep is not None and sweep_status(sweep) == "running"  # not shown interrupted


def test_a_driver_gone_from_this_host_has_its_sweep_closed(
    store: Store, store_url: str, dead_pid: int
) -> None:
    sweep_id = running_sweep(store, store_url, driver=f"{HERE}:{dead_pid}", beat_age=0)
    sweep = store.sweep(sweep_id)
    assert sweep is not None and sweep_status(sweep) == "interrupted"  # before any closing
    assert reconcile(store) == [sweep_id]
    assert statuses(store, sweep_id) == ("stopped", ["stopped", "stopped"])
    sweep = store.sweep(sweep_id)
    assert sweep is not None and f"sweepscope resume {sweep_id}" in sweep["message"]
    assert reconcile(store) == []  # once


def test_a_driver_on_another_host_is_judged_by_its_heartbeat_and_the_stale_window(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_id = running_sweep(store, store_url, driver=f"{ELSEWHERE}:4242", beat_age=40)
    monkeypatch.setenv(STALE_ENV, "60")
    assert reconcile(store) == []
    assert statuses(store, sweep_id) == ("running", ["running", "pending"])
    monkeypatch.setenv(STALE_ENV, "30")
    assert reconcile(store) == [sweep_id]
    assert statuses(store, sweep_id) == ("stopped", ["stopped", "stopped"])


@pytest.mark.parametrize("host_offset", [HOUR, -HOUR], ids=["host_ahead", "host_behind"])
def test_heartbeats_are_judged_by_the_database_clock_not_the_hosts(
    store: Store,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
    host_clock: Callable[[float], None],
    host_offset: float,
) -> None:
    monkeypatch.setenv(STALE_ENV, "30")
    fresh = running_sweep(store, store_url, driver=f"{ELSEWHERE}:1", beat_age=5)
    stale = running_sweep(store, store_url, driver=f"{ELSEWHERE}:2", beat_age=40)
    host_clock(host_offset)  # this host's clock an hour off: the verdicts do not change
    shown = {s["id"]: sweep_status(s) for s in store.sweeps()}
    assert shown == {fresh: "running", stale: "interrupted"}
    assert reconcile(store) == [stale]
    assert statuses(store, fresh)[0] == "running"


# -- for real: a sweep whose heartbeat went stale while its store was locked ----------------
LONG = """\
name: long
trainable: tests.trainables:steady
stop: {epochs: 70}
fixed: {steps_per_epoch: 10, sleep: 0.05}  # 0.5 s an epoch: 35 s a trial
grid: {scale: [1.0, 2.0]}
"""
TINY = """\
name: tiny
trainable: tests.trainables:steady
stop: {epochs: 1}
fixed: {steps_per_epoch: 2}
grid: {scale: [1.0]}
"""


def _wait_for(what: str, predicate: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)
    return found


def _open(url: str) -> Store | None:
    """The store, once the runner has created it."""
    try:
        return open_store(url)
    except StoreError:
        return None


def _has_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has the file `path` open."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) == str(path) for fd in fds.iterdir())
    except OSError:  # a descriptor closed while we looked
        return False


@pytest.mark.ray
def test_a_second_run_does_not_close_a_live_sweep_whose_heartbeat_went_stale(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    (tmp_path / "long.yaml").write_text(LONG)
    (tmp_path / "tiny.yaml").write_text(TINY)
    env = cli_env(**{STALE_ENV: "5"})
    ray = str(tmp_path / "ray")

    def start(spec: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [SWEEPSCOPE, "run", str(tmp_path / spec), "--store", url, "--storage-path", ray],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    first = start("long.yaml")
    second = None
    try:
        store = _wait_for("the store", lambda: _open(url), 60)
        with store:

            def first_sweep() -> dict[str, Any]:
                (sweep,) = store.sweeps()
                return sweep

            _wait_for(  # both trials of the first sweep are reporting
                "points",
                lambda: (
                    store.sweeps()
                    and sum(bool(t["last_step"]) for t in store.trials(first_sweep()["id"])) == 2
                ),
                90,
            )
            sweep_id = first_sweep()["id"]
            with hold_sqlite_lock(db, 60) as lock:
                # its writes wait for the lock: no heartbeat for longer than the 5 s window
                _wait_for(
                    "a stale heartbeat",
                    lambda: first_sweep()["now"] - first_sweep()["heartbeat_at"] > 6,
                    20,
                )
                second = start("tiny.yaml")  # reconciles on start: reads go on under the lock
                _wait_for("the second run to open the store", lambda: _has_open(second.pid, db), 30)
                time.sleep(2)  # reconcile is done (a close would wait for the lock)
                assert first.poll() is None, "the first sweep ended before the second began"
                assert first_sweep()["status"] == "running"
                lock.release()
            out, err = second.communicate(timeout=120)
            assert second.returncode == 0, err
            assert "lost its driver" not in out

            out, err = first.communicate(timeout=120)
            assert first.returncode == 0, err
            sweep = store.sweep(sweep_id)
            assert sweep is not None
            assert sweep["status"] == "completed" and sweep["message"] is None
            trials = store.trials(sweep_id)
            assert [t["status"] for t in trials] == ["completed", "completed"]
            assert all(t["last_epoch"] == 70 for t in trials)
            for t in trials:  # never stopped on the way, even for a moment
                history = [e["status"] for e in store.trial_events(t["id"])]
                assert history == ["pending", "running", "completed"], history
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
