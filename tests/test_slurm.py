"""deploy/slurm/sweep.sbatch, run end to end on fake SLURM commands (tests/slurm_shims/).

There is no SLURM here. What is real: the script itself, run by bash as a batch step; the
Ray head it starts with `ray start --head` through `srun`; a second raylet joined to that
head (started by the fake `srun` with Ray's Node API, because `ray start` cannot add a second
node on one machine's loopback: see tests/slurm_shims/srun); the sweepscope driver and its
trials on those two nodes; the store; the signals. What is fake: `sbatch` runs the script at
once instead of queueing it (and only records a submission made from inside a job),
`scontrol show hostnames` expands the fake node list, every fake node is 127.0.0.1, and
the scheduler's own signalling is done here with os.kill / os.killpg.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.errors import StoreError
from runner.store import open_store

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "deploy" / "slurm" / "sweep.sbatch"
SHIMS = REPO / "tests" / "slurm_shims"
EPOCHS = 5
STEPS_PER_EPOCH = 4


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Job:
    """One fake SLURM allocation: its environment, call log, store and Ray ports."""

    def __init__(self, tmp: Path, ray_tmp: str) -> None:
        self.tmp = tmp
        self.calls = tmp / "calls.jsonl"
        self.store = f"sqlite:///{tmp / 'store.db'}"
        self.port, dashboard, agent = _free_ports(3)  # never 6379: Redis's on these machines
        self.spec = tmp / "slurm_smoke.yaml"
        self.spec.write_text(
            yaml.safe_dump(
                {
                    "name": "slurm_smoke",
                    "trainable": "tests.trainables:checkpointed",
                    "metric": "val_acc",
                    "stop": {"epochs": EPOCHS},
                    "resources": {"cpu": 1},
                    "fixed": {"steps_per_epoch": STEPS_PER_EPOCH, "sleep": 0.25},
                    "grid": {"scale": [1.0, 2.0]},
                }
            )
        )
        self.env = {
            **os.environ,
            "PATH": f"{SHIMS}:{Path(sys.executable).parent}:{os.environ['PATH']}",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # every fake node is on 127.0.0.1
            "FAKE_SLURM_LOG": str(self.calls),
            "SWEEPSCOPE_STORE": self.store,
            "SWEEPSCOPE_STORAGE_PATH": str(tmp / "storage"),
            "SWEEPSCOPE_RAY_PORT": str(self.port),
            "SWEEPSCOPE_RAY_DASHBOARD_PORT": str(dashboard),
            "SWEEPSCOPE_RAY_START_ARGS": (
                f"--dashboard-agent-listen-port={agent} --object-store-memory=100000000 "
                f"--temp-dir={ray_tmp}"
            ),
            "SWEEPSCOPE_JOIN_TIMEOUT": "90",
        }
        for key in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "SLURM_JOB_ID", "SWEEPSCOPE_RESUME"):
            self.env.pop(key, None)
        self.outputs: list[Path] = []

    def submit(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """`sbatch --nodes=2 --cpus-per-task=1 ARGS`: the batch step starts now, in a session
        of its own (its process group is what `scancel --batch` signals)."""
        out = self.tmp / f"job-{len(self.outputs) + 1}.out"
        self.outputs.append(out)
        return subprocess.Popen(
            [str(SHIMS / "sbatch"), "--nodes=2", "--cpus-per-task=1", *args],
            cwd=REPO,
            env={**self.env, **env},
            stdout=out.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.outputs[-1].read_text(errors="replace")

    def recorded(self) -> list[dict[str, Any]]:
        if not self.calls.exists():
            return []
        return [json.loads(line) for line in self.calls.read_text().splitlines()]

    def ray_processes(self) -> list[str]:
        """Every process of this job's Ray cluster still alive (by its GCS port)."""
        marks = (f"127.0.0.1:{self.port}", f"--gcs_server_port={self.port}", f"--port={self.port}")
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                raw = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            cmdline = raw.replace(b"\0", b" ").decode(errors="replace")
            if state != "Z" and any(mark in cmdline for mark in marks):
                found.append(f"{entry.name}: {cmdline[:160]}")
        return found

    def wait_until_ray_is_gone(self, timeout: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout
        while (left := self.ray_processes()) and time.monotonic() < deadline:
            time.sleep(0.5)
        return left

    def kill_leftovers(self) -> None:
        for line in self.ray_processes():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)


@pytest.fixture
def job(tmp_path: Path) -> Iterator[Job]:
    ray_tmp = tempfile.mkdtemp(prefix="ssl-", dir="/tmp")  # short: Ray's socket paths
    fake = Job(tmp_path, ray_tmp)
    try:
        yield fake
    finally:
        fake.kill_leftovers()  # only if a test failed half-way: this job's port only
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _wait(proc: subprocess.Popen[bytes], job: Job, timeout: float = 150) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"the batch script did not end in {timeout}s:\n{job.output()[-3000:]}")


def _sweep(job: Job) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
    with open_store(job.store) as store:
        (sweep,) = store.sweeps()
        return sweep, store.trials(sweep["id"]), store.points(sweep["id"])


def _wait_for_epochs(job: Job, proc: subprocess.Popen[bytes], epochs: int) -> None:
    """Until every trial has reported (and checkpointed) `epochs` epochs."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the batch script ended early:\n{job.output()[-3000:]}"
        trials = []
        if (job.tmp / "store.db").exists():
            try:
                with open_store(job.store) as store:
                    sweeps = store.sweeps()
                    trials = store.trials(sweeps[0]["id"]) if sweeps else []
            except StoreError:  # the driver has not created the tables yet
                pass
            if len(trials) == 2 and min(t["last_epoch"] or 0 for t in trials) >= epochs:
                return
        time.sleep(0.5)
    pytest.fail(f"the trials never reached epoch {epochs}:\n{job.output()[-3000:]}")


def _srun_ray_starts(job: Job) -> list[dict[str, Any]]:
    return [c for c in job.recorded() if c["command"] == "srun" and "ray" in c["argv"]]


def _check_cluster_shape(job: Job) -> None:
    """Head first, on the first node, then a worker on the second one, joined to the head."""
    calls = job.recorded()
    assert [c["command"] for c in calls][:2] == ["sbatch", "scontrol"]
    starts = _srun_ray_starts(job)
    assert [c["node"] for c in starts] == ["fake-node1", "fake-node2"]
    head, worker = starts
    assert "--head" in head["argv"] and f"--port={job.port}" in head["argv"]
    assert "--node-ip-address=127.0.0.1" in head["argv"]
    assert "--head" not in worker["argv"]
    assert f"--address=127.0.0.1:{job.port}" in worker["argv"]
    assert worker["time"] > head["time"]
    for start in starts:
        assert "--block" in start["argv"] and "--num-cpus=1" in start["argv"]
    out = job.output()
    # The worker was started only once the head answered.
    assert out.index("fake srun: worker raylet") > out.index("Ray runtime started")
    assert out.index("all 2 Ray node(s) joined") < out.index("sweep.sbatch: driver:")


@pytest.mark.ray
def test_cancelled_sweep_is_stopped_torn_down_and_resumed(job: Job) -> None:
    """scancel --batch --signal=TERM, sent to the batch step's whole process group: the script
    stops the driver (in a session of its own, it does not get the SIGTERM itself) through
    SIGINT, the sweep ends `stopped`, Ray goes down; `sbatch ... --resume` finishes it."""
    proc = job.submit(str(SCRIPT), str(job.spec), SWEEPSCOPE_AUTO_RESUME="1")
    _wait_for_epochs(job, proc, 1)
    os.killpg(proc.pid, signal.SIGTERM)
    assert _wait(proc, job) == 130, job.output()[-3000:]
    out = job.output()
    _check_cluster_shape(job)
    driver_line = next(line for line in out.splitlines() if "sweep.sbatch: driver:" in line)
    assert f"sweepscope run {job.spec} --address 127.0.0.1:{job.port}" in driver_line
    assert f"--storage-path {job.tmp / 'storage'}" in driver_line
    assert "--store" not in driver_line  # from the environment: never on a command line
    assert "SIGTERM received: stopping the sweep" in out
    assert "Ray stopped on 2 node(s)" in out
    assert job.wait_until_ray_is_gone() == []

    sweep, trials, points = _sweep(job)
    assert sweep["status"] == "stopped"
    assert {t["status"] for t in trials} == {"stopped"}
    assert f"sbatch {SCRIPT} --resume {sweep['id']}" in out
    # Both nodes ran a trial: the driver ran against the head's two-node cluster.
    assert len({t["node"] for t in trials}) == 2, [t["node"] for t in trials]
    # A cancellation is not a time limit: the job does not resubmit itself.
    assert not [c for c in job.recorded() if c["command"] == "sbatch" and c["queued"]]

    job.calls.unlink()
    proc = job.submit(str(SCRIPT), "--resume", sweep["id"])
    assert _wait(proc, job) == 0, job.output()[-3000:]
    out = job.output()
    _check_cluster_shape(job)
    assert f"driver: sweepscope resume {sweep['id']} --address 127.0.0.1:{job.port}" in out
    assert "Ray stopped on 2 node(s)" in out
    assert job.wait_until_ray_is_gone() == []

    sweep, trials, points = _sweep(job)
    assert sweep["status"] == "completed"
    assert {t["status"] for t in trials} == {"completed"}
    # Each trial's curve is whole and stored once: every step, every epoch.
    for trial in trials:
        mine = points[points.trial_id == trial["id"]]
        steps = sorted(mine[mine.metric == "train_loss"].step.astype(int))
        assert steps == list(range(1, EPOCHS * STEPS_PER_EPOCH + 1))
        assert len(mine[mine.metric == "val_acc"]) == EPOCHS


@pytest.mark.ray
def test_time_limit_stops_the_sweep_and_resubmits_it(job: Job) -> None:
    """--signal=B:USR1@300: the batch shell alone is told the time is nearly up; with
    SWEEPSCOPE_AUTO_RESUME=1 it stops the sweep and queues `sbatch SCRIPT --resume SWEEP`."""
    proc = job.submit(str(SCRIPT), str(job.spec), SWEEPSCOPE_AUTO_RESUME="1")
    _wait_for_epochs(job, proc, 1)
    os.kill(proc.pid, signal.SIGUSR1)
    assert _wait(proc, job) == 130, job.output()[-3000:]
    assert "SIGUSR1 received" in job.output()
    assert job.wait_until_ray_is_gone() == []
    sweep, trials, _ = _sweep(job)
    assert sweep["status"] == "stopped"
    queued = [c for c in job.recorded() if c["command"] == "sbatch" and c["queued"]]
    assert len(queued) == 1
    assert queued[0]["argv"] == [str(SCRIPT), "--resume", sweep["id"]]


def test_refuses_to_start_without_a_store(job: Job) -> None:
    """Checked before any srun: no store URL, no shared storage, no spec file."""
    env = {**job.env, "SWEEPSCOPE_STORE": ""}
    cases = [
        (env, [str(job.spec)], "SWEEPSCOPE_STORE"),
        ({**job.env, "SWEEPSCOPE_STORAGE_PATH": ""}, [str(job.spec)], "SWEEPSCOPE_STORAGE_PATH"),
        (job.env, [str(job.tmp / "missing.yaml")], "no spec file"),
        (job.env, ["--resume"], "usage:"),
    ]
    for case_env, args, message in cases:
        done = subprocess.run(
            [str(SHIMS / "sbatch"), str(SCRIPT), *args],
            cwd=REPO,
            env=case_env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr
    assert not [c for c in job.recorded() if c["command"] == "srun"]


def test_shims_expand_slurm_host_lists() -> None:
    sys.path.insert(0, str(SHIMS))
    try:
        from _fake import expand_hostlist
    finally:
        sys.path.remove(str(SHIMS))
    assert expand_hostlist("fake-node[1-3]") == ["fake-node1", "fake-node2", "fake-node3"]
    assert expand_hostlist("gpu[08-10,12],login1") == ["gpu08", "gpu09", "gpu10", "gpu12", "login1"]
