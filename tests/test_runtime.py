"""The warm runtime: `sweepscope up` starts Ray (and the dashboard) that stays, runs on this
machine join it, each with its own job, Ctrl-C and resume; `down` stops it; a crashed one is
replaced, never joined."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from runner.driver import runtime
from runner.store import open_store
from tests.helpers.cli import SWEEPSCOPE, cli, cli_env
from tests.helpers.paths import REPO
from tests.helpers.ports import free_port
from tests.helpers.stores import sqlite_made
from tests.helpers.waiting import wait_for

EPOCHS, STEPS = 2, 3  # per trial: 6 train_loss points, 2 val_acc points


@pytest.fixture
def runtime_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of a user without --address: RAY_ADDRESS unset, and a runtime folder
    of this test's own (in this process too, for runner.driver.runtime)."""
    folder = str(tmp_path / "runtime")
    monkeypatch.setenv(runtime.DIR_ENV, folder)
    env = cli_env(**{runtime.DIR_ENV: folder})
    env.pop("RAY_ADDRESS")
    return env


@pytest.fixture
def up(runtime_env: dict[str, str]) -> Iterator[runtime.Runtime]:
    started = cli("up", "--no-dashboard", env=runtime_env, timeout=120)
    assert started.returncode == 0, started.stderr
    found, note = runtime.find()
    assert found is not None and note is None
    try:
        yield found
    finally:
        cli("down", env=runtime_env)


MY_MODEL = """
from runner import report

def train(config):
    step = 0
    for epoch in range(config["epochs"]):
        for _ in range(config["steps_per_epoch"]):
            step += 1
            report.step(step, train_loss=config["scale"] / step)
        report.epoch(epoch + 1, step=step, val_acc=1 - 1 / (step + 1))
"""


def _spec(tmp_path: Path, name: str, sleep: float = 0.0, trainable: str | None = None) -> Path:
    path = tmp_path / f"{name}.yaml"
    body = {
        "name": name,
        "trainable": trainable or "tests.trainables:steady",
        "metric": "val_acc",
        "mode": "max",
        "stop": {"epochs": EPOCHS},
        "fixed": {"steps_per_epoch": STEPS, "sleep": sleep},
        "grid": {"scale": [1.0, 2.0]},
    }
    path.write_text(yaml.safe_dump(body))
    return path


def _points_per_trial(url: str) -> list[int]:
    with open_store(url) as store:
        (sweep,) = store.sweeps()
        points = store.points(sweep["id"])
    points = points[~points.metric.str.startswith("sys/")]
    return sorted(points.groupby("trial_id").size().tolist())


def _listening_ports(pids: list[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket the processes `pids` listen on, from /proc."""
    inodes = set()
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        for fd in fds.iterdir() if fds.exists() else []:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            host, port = fields[1].split(":")
            raw = bytes.fromhex(host)
            if family == socket.AF_INET:
                address = socket.inet_ntop(family, raw[::-1])
            else:  # four little-endian 32-bit words
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                address = socket.inet_ntop(family, words)
            found.add((address.removeprefix("::ffff:"), int(port, 16)))
    return found


# -- no Ray ---------------------------------------------------------------------------------
def test_a_runtime_whose_process_is_gone_is_cleared_and_said(runtime_env: dict[str, str]) -> None:
    folder = runtime.runtime_dir()
    folder.mkdir(parents=True)
    token = folder / runtime.TOKEN_FILE
    token.write_text("x")
    # Our own pid: alive, but not the runtime's Ray (a pid taken again by another process).
    runtime.record(
        runtime.Runtime(
            address=f"127.0.0.1:{free_port()}",
            pid=os.getpid(),
            token_path=str(token),
            started_at=0.0,
        )
    )
    found, note = runtime.find()
    assert found is None
    assert note is not None and f"its Ray process {os.getpid()} is not running" in note
    assert not (folder / runtime.STATE_FILE).exists() and not token.exists()
    assert runtime.find() == (None, None)


def test_an_unreadable_state_is_cleared(runtime_env: dict[str, str]) -> None:
    folder = runtime.runtime_dir()
    folder.mkdir(parents=True)
    (folder / runtime.STATE_FILE).write_text("{not json")
    found, note = runtime.find()
    assert found is None and note is not None and "unreadable" in note


def test_the_drivers_are_those_noted_and_still_running(runtime_env: dict[str, str]) -> None:
    runtime.note_driver()  # this process, as a sweep's driver that joined the runtime
    folder = runtime.runtime_dir() / runtime.DRIVERS_DIR
    (folder / "999999999").write_text("1")  # a driver that is gone
    (folder / str(os.getppid())).write_text("0")  # its pid taken again by another process
    assert runtime.drivers() == [os.getpid()]
    assert [p.name for p in folder.iterdir()] == [str(os.getpid())]  # the stale notes removed


def test_down_without_a_runtime_says_so(runtime_env: dict[str, str]) -> None:
    done = cli("down", env=runtime_env)
    assert done.returncode == 0 and "no runtime is up" in done.stdout


def test_up_refuses_a_dashboard_port_in_use(runtime_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = cli("up", "--port", str(port), env=runtime_env)
    assert refused.returncode == 2
    assert f"--port {port}: another process listens there" in refused.stderr
    assert "Fix:" in refused.stderr
    assert not (runtime.runtime_dir() / runtime.STATE_FILE).exists()  # nothing started


# -- a real runtime ---------------------------------------------------------------------------
@pytest.mark.ray
def test_runs_join_the_runtime_each_with_its_own_points(
    tmp_path: Path, up: runtime.Runtime, runtime_env: dict[str, str]
) -> None:
    folder = runtime.runtime_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in (runtime.STATE_FILE, runtime.TOKEN_FILE):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    listening = _listening_ports(runtime.group_members(up.pid))
    assert ("127.0.0.1", up.port) in listening
    assert len(listening) > 1 and {address for address, _ in listening} == {"127.0.0.1"}

    # The user's own module, in the directory the second sweep is run from: importable by
    # its trials as without a runtime, though the runtime started elsewhere.
    (tmp_path / "mymodel.py").write_text(MY_MODEL)
    for name, cwd in (("first", REPO), ("second", tmp_path)):  # one after the other
        url = f"sqlite:///{tmp_path / name}.db"
        spec = _spec(tmp_path, name, trainable="mymodel:train" if cwd == tmp_path else None)
        done = cli("run", str(spec), "--store", url, env=runtime_env, cwd=cwd)
        assert done.returncode == 0, done.stderr
        assert f"on the runtime at {up.address}" in done.stderr
        assert ": 2 completed" in done.stdout
        assert _points_per_trial(url) == [EPOCHS * STEPS + EPOCHS] * 2
        # The sweep's trials ended with its driver: no trial process is left for the next.
        wait_for(
            "the sweep's trial processes to end",
            lambda: (
                not any(
                    b"ImplicitFunc" in Path(f"/proc/{p}/cmdline").read_bytes()
                    for p in runtime.group_members(up.pid)
                    if Path(f"/proc/{p}/cmdline").exists()
                )
            ),
            30,
        )
    assert runtime.find()[0] == up  # the same runtime throughout

    again = cli("up", "--no-dashboard", env=runtime_env)
    assert again.returncode == 0 and "already up" in again.stdout

    # A driver still on the runtime (a stand-in that notes itself as a sweep's driver does):
    # `down` refuses, naming it; --force stops the runtime all the same.
    note = "from runner.driver import runtime; runtime.note_driver(); import time; time.sleep(60)"
    with subprocess.Popen([sys.executable, "-c", note], cwd=REPO, env=runtime_env) as driver:
        try:
            wait_for("the stand-in's note", lambda: runtime.drivers() == [driver.pid], 30)
            refused = cli("down", env=runtime_env)
            assert refused.returncode != 0 and f"(pid {driver.pid})" in refused.stderr
            assert "would end their trials" in refused.stderr and "--force" in refused.stderr
            assert runtime.find()[0] == up
            down = cli("down", "--force", env=runtime_env)
        finally:
            driver.kill()
    assert down.returncode == 0 and "runtime stopped" in down.stdout
    assert runtime.group_members(up.pid) == [] and not runtime.answers(up.port)
    assert not (folder / runtime.STATE_FILE).exists()


@pytest.mark.ray
def test_ctrl_c_on_the_runtime_then_resume_stores_each_point_once(
    tmp_path: Path, up: runtime.Runtime, runtime_env: dict[str, str]
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = _spec(tmp_path, "slow", sleep=0.4)
    proc = subprocess.Popen(
        [SWEEPSCOPE, "run", str(spec), "--store", url, "--max-concurrent", "1"],
        cwd=REPO,
        env=runtime_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def started() -> bool:
            if not sqlite_made(tmp_path / "s.db"):
                return False
            with open_store(url) as store:
                sweeps = store.sweeps()
                return bool(sweeps) and any(
                    (t["last_step"] or 0) >= 2 for t in store.trials(sweeps[0]["id"])
                )

        wait_for("the first trial's second step", started, 90)
        refused = cli("down", env=runtime_env)  # the sweep's trials would end with the runtime
        assert refused.returncode != 0 and f"(pid {proc.pid})" in refused.stderr
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert runtime.find()[0] == up  # Ctrl-C stops the sweep, not the runtime
    assert runtime.drivers() == []  # its driver forgot itself as it exited
    with open_store(url) as store:
        (sweep,) = store.sweeps()
        assert sweep["status"] == "stopped"

    resumed = cli("resume", sweep["id"], "--store", url, env=runtime_env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"on the runtime at {up.address}" in resumed.stderr
    with open_store(url) as store:
        assert store.sweep(sweep["id"])["status"] == "completed"  # type: ignore[index]
    assert _points_per_trial(url) == [EPOCHS * STEPS + EPOCHS] * 2


@pytest.mark.ray
def test_a_crashed_runtime_is_replaced_never_joined(
    tmp_path: Path, up: runtime.Runtime, runtime_env: dict[str, str]
) -> None:
    os.killpg(up.pid, signal.SIGKILL)  # Ray's processes die at once, as in a crash
    wait_for("the runtime's processes to die", lambda: not runtime.answers(up.port), 30)
    url = f"sqlite:///{tmp_path / 's.db'}"
    done = cli("run", str(_spec(tmp_path, "after")), "--store", url, env=runtime_env)
    assert done.returncode == 0, done.stderr
    assert f"the runtime left by `sweepscope up` at {up.address} is gone" in done.stderr
    assert "on the runtime" not in done.stderr  # a Ray of its own
    assert _points_per_trial(url) == [EPOCHS * STEPS + EPOCHS] * 2
    assert not (runtime.runtime_dir() / runtime.STATE_FILE).exists()


def _ray_starts_for(folder: Path) -> list[int]:
    """The `ray start` processes started for the runtime in `folder` (by the token they use)."""
    token = f"RAY_AUTH_TOKEN_PATH={folder / runtime.TOKEN_FILE}".encode()
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"start" in command and b"--head" in command and token in environ:
            pids.append(int(proc.name))
    return pids


@pytest.mark.ray
def test_two_up_at_once_start_one_runtime(runtime_env: dict[str, str]) -> None:
    """Two `sweepscope up` at the same moment: one starts the runtime, the other waits for it
    and finds it up; `down` then leaves no Ray of either behind."""
    ups = [
        subprocess.Popen(
            [SWEEPSCOPE, "up", "--no-dashboard"],
            env=runtime_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        outs = [up.communicate(timeout=120) for up in ups]
        assert [up.returncode for up in ups] == [0, 0], outs
        said = sorted(out.split()[:3] for out, _ in outs)
        assert said == [["runtime", "up", "in"], ["the", "runtime", "is"]], outs
        found, _ = runtime.find()
        assert found is not None
        assert _ray_starts_for(runtime.runtime_dir()) == [found.pid]  # none forgotten
        assert cli("down", env=runtime_env).returncode == 0
        folder = runtime.runtime_dir()
        wait_for("the runtime's Ray to stop", lambda: not _ray_starts_for(folder), 30)
    finally:
        for pid in _ray_starts_for(runtime.runtime_dir()):  # a failed run's
            os.killpg(pid, signal.SIGKILL)


@pytest.mark.ray
def test_up_serves_the_dashboard_and_down_stops_it(
    tmp_path: Path, runtime_env: dict[str, str]
) -> None:
    port = free_port()
    url = f"sqlite:///{tmp_path / 's.db'}"
    started = cli("up", "--port", str(port), "--store", url, env=runtime_env, timeout=120)
    try:
        assert started.returncode == 0, started.stderr
        assert f"dashboard at http://127.0.0.1:{port}" in started.stdout
        found, _ = runtime.find()
        assert found is not None and found.dashboard_pid is not None
        state = json.loads((runtime.runtime_dir() / runtime.STATE_FILE).read_text())
        assert state["store"] == url
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200
    finally:
        down = cli("down", env=runtime_env)
    assert down.returncode == 0
    assert not runtime.answers(port) and not runtime.answers(found.port)
