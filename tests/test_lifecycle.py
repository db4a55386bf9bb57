"""A live sweep is never closed by someone else: `reconcile` (which every `sweepscope run`
and `resume` calls) closes a running sweep only when its driver is gone. A driver on this
host is judged by its process (its PID and that process's start time), whatever its
heartbeat says; one on another host by its heartbeat, against the database's clock and
max($SWEEPSCOPE_STALE_SECONDS, the driver's outage limit + a margin). Heartbeats are fenced:
a driver whose sweep was closed or taken over learns it at its next heartbeat."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from runner.errors import StoreError, SweepTakenOver
from runner.store import Store, open_store, reconcile, sweep_status
from runner.store import _schema as schema
from runner.store._lifecycle import OUTAGE_MARGIN, STALE_ENV, driver_label, process_start, why_alive
from tests.helpers.cli import SWEEPSCOPE, cli_env
from tests.helpers.faults import hold_sqlite_lock
from tests.helpers.paths import REPO
from tests.helpers.waiting import wait_for

HOUR = 3600.0


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def running_sweep(
    store: Store,
    store_url: str,
    *,
    driver: str,
    beat_age: float,
    outage_limit: float | None = 1.0,
) -> str:
    """A running sweep with a running and a pending trial, whose driver is `driver` (with
    that outage limit; None: a row from before it was recorded) and whose last heartbeat
    was `beat_age` seconds ago by the database's clock."""
    sweep_id = f"s-{driver.replace(':', '-').replace('/', '-')}-{beat_age:g}"
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
                .values(
                    driver=driver, heartbeat_at=store.now() - beat_age, outage_limit=outage_limit
                )
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
@pytest.mark.parametrize("form", ["host:pid/start", "host:pid"])
def test_a_driver_alive_on_this_host_keeps_its_sweep_whatever_its_heartbeat(
    store: Store, store_url: str, live_pid: int, form: str
) -> None:
    driver = f"{HERE}:{live_pid}"
    if form == "host:pid/start":
        driver += f"/{process_start(live_pid)}"
    else:  # as rows written before schema version 4 name it: judged by the PID alone
        assert "/" not in driver
    sweep_id = running_sweep(store, store_url, driver=driver, beat_age=HOUR)
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


def _wrong_start(pid: int, *, reboot: bool) -> str:
    """A start time of `pid` that is not its process's: an earlier process with the same
    PID (ticks differ), or one from before a reboot (the boot id differs)."""
    start = process_start(pid)
    assert start is not None and start.startswith("b"), start  # read from /proc
    boot, _, ticks = start[1:].partition("+")
    if reboot:
        return f"b{'0' * 8}-{boot[9:]}+{ticks}"
    return f"b{boot}+{max(0, int(ticks) - 500)}"


@pytest.mark.parametrize("reboot", [False, True], ids=["pid_reused", "rebooted"])
def test_a_reused_pid_is_not_taken_for_the_driver(
    store: Store, store_url: str, live_pid: int, reboot: bool
) -> None:
    """A container restart or a reboot gives the dead driver's PID to another process: the
    sweep is closed all the same, whatever its heartbeat says."""
    driver = f"{HERE}:{live_pid}/{_wrong_start(live_pid, reboot=reboot)}"
    sweep_id = running_sweep(store, store_url, driver=driver, beat_age=0)
    sweep = store.sweep(sweep_id)
    assert sweep is not None and sweep_status(sweep) == "interrupted"
    assert reconcile(store) == [sweep_id]
    assert statuses(store, sweep_id) == ("stopped", ["stopped", "stopped"])
    sweep = store.sweep(sweep_id)
    assert sweep is not None and "is gone from this host" in sweep["message"]


def test_a_driver_that_exited_but_was_not_reaped_is_gone(store: Store, store_url: str) -> None:
    """A driver that has exited is gone even while its parent has not collected it yet (a
    zombie keeps its PID and its start time)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        stat = Path(f"/proc/{proc.pid}/stat")
        wait_for("the child to exit", lambda: stat.read_text().split(") ")[1][0] == "Z", 30)
        driver = f"{HERE}:{proc.pid}/{process_start(proc.pid)}"
        sweep_id = running_sweep(store, store_url, driver=driver, beat_age=0)
        assert reconcile(store) == [sweep_id]
    finally:
        proc.wait()


def test_a_driver_on_another_host_is_stale_only_after_its_outage_limit_and_a_margin(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver waits out a store outage for its outage limit, writing no heartbeat: it is
    not judged gone before that (and a margin) has passed, whatever the stale window."""
    monkeypatch.setenv(STALE_ENV, "60")
    limit = 300.0
    waiting = running_sweep(
        store, store_url, driver=f"{ELSEWHERE}:1", beat_age=limit, outage_limit=limit
    )
    gone = running_sweep(
        store,
        store_url,
        driver=f"{ELSEWHERE}:2",
        beat_age=limit + OUTAGE_MARGIN + 30,
        outage_limit=limit,
    )
    # a row from before the limit was recorded: the default limit, 900 s
    older = running_sweep(
        store, store_url, driver=f"{ELSEWHERE}:3", beat_age=800, outage_limit=None
    )
    shown = {s["id"]: sweep_status(s) for s in store.sweeps()}
    assert shown == {waiting: "running", gone: "interrupted", older: "running"}
    assert reconcile(store) == [gone]
    assert statuses(store, waiting) == ("running", ["running", "pending"])
    assert statuses(store, older) == ("running", ["running", "pending"])
    sweep = store.sweep(gone)
    assert sweep is not None and f"more than {limit + OUTAGE_MARGIN:g} s" in sweep["message"]
    sweep = store.sweep(waiting)  # what a refused `resume` says about it
    assert sweep is not None
    assert f"counts as gone only after {limit + OUTAGE_MARGIN:g} s" in why_alive(sweep)


def test_the_stale_window_bounds_another_hosts_driver_from_below(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_id = running_sweep(store, store_url, driver=f"{ELSEWHERE}:4242", beat_age=100)
    monkeypatch.setenv(STALE_ENV, "120")  # longer than its 1 s outage limit and the margin
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
    stale = running_sweep(store, store_url, driver=f"{ELSEWHERE}:2", beat_age=100)
    host_clock(host_offset)  # this host's clock an hour off: the verdicts do not change
    shown = {s["id"]: sweep_status(s) for s in store.sweeps()}
    assert shown == {fresh: "running", stale: "interrupted"}
    assert reconcile(store) == [stale]
    assert statuses(store, fresh)[0] == "running"


# -- fencing: one driver per sweep ----------------------------------------------------------
def _age_heartbeat(store: Store, store_url: str, sweep_id: str, seconds: float) -> None:
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                schema.sweeps.update()
                .where(schema.sweeps.c.id == sweep_id)
                .values(heartbeat_at=store.now() - seconds)
            )
    finally:
        engine.dispose()


def test_a_driver_closed_as_stale_is_fenced_out_at_its_next_heartbeat(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver whose store stayed away past its outage limit (and the margin) is closed by
    a `run` on another host; when its store answers again, its heartbeat and its final
    status are refused, and the sweep stays as the closer left it, resumable."""
    store.create_sweep(
        "s", name="s", spec={}, metric="val_acc", mode="max", n_trials=1, outage_limit=1.0
    )
    trial = store.add_trial("s", "t0", {})
    store.set_trial_status(trial, "running")
    store.heartbeat("s")  # its own driver's: accepted
    _age_heartbeat(store, store_url, "s", 1.0 + OUTAGE_MARGIN + 10)
    with monkeypatch.context() as m, open_store(store_url) as closer:
        m.setattr(socket, "gethostname", lambda: ELSEWHERE)  # the closer runs elsewhere
        assert reconcile(closer) == ["s"]
    with pytest.raises(SweepTakenOver, match=r"sweep s .* it is stopped.*sweepscope resume s"):
        store.heartbeat("s")
    with pytest.raises(SweepTakenOver):
        store.finish_sweep("s", "completed", driver=store.driver)
    assert statuses(store, "s") == ("stopped", ["stopped"])
    sweep = store.sweep("s")
    assert sweep is not None and "sweepscope resume s" in sweep["message"]


def test_a_second_driver_resuming_the_sweep_fences_out_the_first(
    store: Store, store_url: str
) -> None:
    store.create_sweep("s", name="s", spec={}, metric="val_acc", mode="max", n_trials=1)
    store.finish_sweep("s", "stopped", "closed while its driver was away")
    second = subprocess.run(  # another process resumes it
        [
            sys.executable,
            "-c",
            "import sys; from runner.store import open_store; s = open_store(sys.argv[1]); "
            "s.reopen_sweep('s', outage_limit=42.0); print(s.driver)",
            store_url,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr
    driver = second.stdout.strip()
    assert driver != store.driver and driver.startswith(f"{HERE}:")
    sweep = store.sweep("s")
    assert sweep is not None and (sweep["status"], sweep["driver"]) == ("running", driver)
    assert sweep["outage_limit"] == 42.0

    with pytest.raises(
        SweepTakenOver, match=re.escape(f"another driver ({driver_label(driver)}) resumed it")
    ):
        store.heartbeat("s")  # the first driver, back: it must stop
    with pytest.raises(SweepTakenOver):
        store.finish_sweep("s", "stopped", "the first driver's end", driver=store.driver)
    sweep = store.sweep("s")
    assert sweep is not None and (sweep["status"], sweep["driver"]) == ("running", driver)
    assert sweep["message"] is None
    with pytest.raises(StoreError, match="is running"):  # a third resume meanwhile: refused
        store.reopen_sweep("s")


def test_reconcile_leaves_a_sweep_resumed_since_it_judged_it(
    store: Store, store_url: str, dead_pid: int
) -> None:
    """Two `run`s reconciling while a `resume` takes the sweep: the stale judgement was of the
    old driver, so the close is not applied to the new one."""
    sweep_id = running_sweep(store, store_url, driver=f"{HERE}:{dead_pid}", beat_age=0)
    judged = store.sweeps()
    store.finish_sweep(sweep_id, "stopped")
    store.reopen_sweep(sweep_id)  # this process resumes it between the read and the close

    class Frozen:  # the store as the reconciler saw it a moment ago
        def __init__(self) -> None:
            self.url = store.url

        def sweeps(self) -> list[dict[str, Any]]:
            return judged

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

    assert reconcile(Frozen()) == []  # type: ignore[arg-type]
    sweep = store.sweep(sweep_id)
    assert sweep is not None and (sweep["status"], sweep["driver"]) == ("running", store.driver)
    assert [t["status"] for t in store.trials(sweep_id)] == ["running", "pending"]


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
        store = wait_for("the store", lambda: _open(url), 60)
        with store:

            def first_sweep() -> dict[str, Any]:
                (sweep,) = store.sweeps()
                return sweep

            wait_for(  # both trials of the first sweep are reporting
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
                wait_for(
                    "a stale heartbeat",
                    lambda: first_sweep()["now"] - first_sweep()["heartbeat_at"] > 6,
                    20,
                )
                second = start("tiny.yaml")  # reconciles on start: reads go on under the lock
                wait_for("the second run to open the store", lambda: _has_open(second.pid, db), 30)
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
