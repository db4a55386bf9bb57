"""deploy/slurm/sweep.sbatch under a real SLURM: submitted with `sbatch`, run by `slurmd`.

The cluster is scripts/start-local-slurm.sh's: a controller and two `slurmd` nodes on this
host (n1 at 127.0.0.1, n2 at 127.0.0.2, one CPU each), which .ci/run starts. Real here: the
scheduler, its time limits and signals, `srun` steps on each node, `scancel`, the job's
requeue, the Ray head in n1's step and a Ray worker in n2's (each on its node's SLURM address),
the driver, its trials and the store (one SQLite file: both nodes are this host, and only the
driver writes). What one host cannot show: nodes with their own file systems and host names
(NodeAddr given as a host name takes the script's `hostname --ip-address` path), and CPU
binding (this cluster's TaskPlugin is task/none).

Without a SLURM controller the tests skip, saying why; under CI=true they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
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
from tests.helpers.ci import skip_outside_ci
from tests.helpers.paths import REPO
from tests.helpers.ports import free_ports

SCRIPT = REPO / "deploy" / "slurm" / "sweep.sbatch"
CONTINUED = "tests.trainables:continued"  # also reports the epoch it came back at
START = REPO / "scripts" / "start-local-slurm.sh"
# What a job's state is once it is over (a requeued job is PENDING again, not over).
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "DEADLINE"}


def _slurm_missing() -> str | None:
    """Why no SLURM job can run here, or None."""
    for tool in ("sbatch", "squeue", "scontrol", "scancel", "sinfo"):
        if shutil.which(tool) is None:
            return f"no `{tool}`: apt-get install slurm-wlm munge, then {START.name}"
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    if not conf.is_file():
        return f"no SLURM configuration {conf}: start SLURM with {START}"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return f"`scontrol ping` did not answer in 20 s: (re)start SLURM with {START}"
    if "UP" not in ping.stdout:
        return f"no slurmctld answers `scontrol ping`: start one with {START}"
    nodes = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, timeout=30
    ).stdout.split()
    if nodes[0::2] != ["n1", "n2"]:
        return f"this SLURM is not {START.name}'s (nodes n1 and n2): sinfo lists {nodes[0::2]}"
    return None


@pytest.fixture(scope="module")
def slurm() -> None:
    reason = _slurm_missing()
    if reason:
        skip_outside_ci(f"the SLURM tests need a real SLURM: {reason}")


def _squeue(*args: str) -> list[str]:
    done = subprocess.run(["squeue", "-h", *args], capture_output=True, text=True, timeout=30)
    return done.stdout.split("\n")[:-1] if done.returncode == 0 else []


def _job(job_id: str) -> dict[str, str]:
    """`scontrol show job ID` as a dict (empty once SLURM has forgotten the job)."""
    done = subprocess.run(
        ["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=30
    )
    return dict(re.findall(r"(\S+?)=(\S*)", done.stdout)) if done.returncode == 0 else {}


def _terminate_step(step: str) -> int:
    """SIGTERM to every process of job step `step` ("JOB.STEP"), as `scancel JOB` sends every
    step's processes (the children of its `slurmstepd: [JOB.STEP]`); how many got it."""
    parents: dict[int, int] = {}
    stepd = None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat[1])
        if cmdline.strip() == f"slurmstepd: [{step}]":
            stepd = int(entry.name)
    assert stepd is not None, f"no slurmstepd for step {step}"
    tree, grew = {stepd}, True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= found
        grew = bool(found)
    for pid in tree - {stepd}:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    return len(tree) - 1


class Jobs:
    """The jobs one test submits: one name, one store, one Ray port, and their outputs."""

    def __init__(self, tmp: Path, ray_tmp: str) -> None:
        self.tmp = tmp
        self.name = f"sweepscope-test-{secrets.token_hex(3)}"
        self.store = f"sqlite:///{tmp / 'store.db'}"
        self.port, dashboard = free_ports(2)  # never 6379: Redis's on these machines
        self.ray_tmp = ray_tmp
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            # Two Ray nodes on one host: n2's Ray listens on 127.0.0.2, so not loopback-only.
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",
            "SWEEPSCOPE_STORE": self.store,
            "SWEEPSCOPE_STORAGE_PATH": str(tmp / "storage"),
            "SWEEPSCOPE_RAY_PORT": str(self.port),
            "SWEEPSCOPE_RAY_DASHBOARD_PORT": str(dashboard),
            "SWEEPSCOPE_RAY_START_ARGS": f"--object-store-memory=100000000 --temp-dir={ray_tmp}",
            "SWEEPSCOPE_JOIN_TIMEOUT": "90",
        }
        for key in list(self.env):
            if key.startswith(("SLURM_", "SBATCH_", "SRUN_")) or key in (
                "RAY_ADDRESS",
                "RAY_AUTH_TOKEN",
                "SWEEPSCOPE_RESUME",
                "SWEEPSCOPE_AUTO_RESUME",
            ):
                del self.env[key]

    def spec(
        self, *, epochs: int, steps: int, sleep: float, scales: list[float], **more: Any
    ) -> Path:
        """A sweep of tests.trainables:checkpointed, one CPU a trial, one checkpoint an epoch."""
        path = self.tmp / "spec.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "name": "slurm_test",
                    "trainable": "tests.trainables:checkpointed",
                    "metric": "val_acc",
                    "stop": {"epochs": epochs},
                    "resources": {"cpu": 1},
                    "system_metrics": False,  # the points are then exactly the trainable's
                    "fixed": {"steps_per_epoch": steps, "sleep": sleep},
                    "grid": {"scale": scales},
                    **more,
                }
            )
        )
        return path

    def submit(self, *args: str, **env: str) -> str:
        """`sbatch --job-name=NAME --output=... ARGS`, from the repository; the job's id."""
        done = subprocess.run(
            [
                "sbatch",
                "--parsable",
                f"--job-name={self.name}",
                f"--output={self.tmp}/job-%j.out",
                *args,
            ],
            cwd=REPO,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().split(";")[0]

    def output(self, job_id: str) -> str:
        path = self.tmp / f"job-{job_id}.out"
        return path.read_text(errors="replace") if path.exists() else "(no output yet)"

    def wait(self, job_id: str, timeout: float = 240) -> dict[str, str]:
        """Until the job is over (through any requeues); its `scontrol show job` fields."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = _job(job_id)
            if info.get("JobState") in FINAL:
                return info
            time.sleep(1)
        pytest.fail(
            f"job {job_id} not over in {timeout}s ({_job(job_id).get('JobState')}):\n"
            f"{self.output(job_id)[-4000:]}"
        )

    def sweep(self) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
        with open_store(self.store) as store:
            (sweep,) = store.sweeps()
            return sweep, store.trials(sweep["id"]), store.points(sweep["id"])

    def wait_for_epochs(self, job_id: str, trials: int, epochs: int) -> list[dict[str, Any]]:
        """Until `trials` trials have each reported (and checkpointed) `epochs` epochs."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = _job(job_id).get("JobState")
            assert state in ("PENDING", "RUNNING"), f"job {job_id} {state}:\n{self.output(job_id)}"
            found: list[dict[str, Any]] = []
            if (self.tmp / "store.db").exists():
                with contextlib.suppress(StoreError, ValueError):  # no tables, or no sweep, yet
                    found = self.sweep()[1]
            if len(found) == trials and min(t["last_epoch"] or 0 for t in found) >= epochs:
                return found
            time.sleep(0.5)
        pytest.fail(f"the trials never reached epoch {epochs}:\n{self.output(job_id)[-4000:]}")

    def ray_processes(self) -> list[str]:
        """Every live process of this test's Ray clusters (by GCS port or temp dir)."""
        marks = re.compile(
            rf"(:{self.port}\b|_port={self.port}\b|--port={self.port}\b|{self.ray_tmp})"
        )
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
            if state != "Z" and marks.search(cmdline):
                found.append(f"{entry.name}: {cmdline[:160]}")
        return found

    def wait_until_ray_is_gone(self, timeout: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout
        while (left := self.ray_processes()) and time.monotonic() < deadline:
            time.sleep(0.5)
        return left

    def cleanup(self) -> None:
        """Cancel what is left of this test's jobs, wait until the queue has drained and both
        nodes are idle again, and end any Ray process left behind."""
        subprocess.run(["scancel", f"--name={self.name}"], capture_output=True, timeout=30)
        for line in self.ray_processes():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
        deadline = time.monotonic() + 60
        while _squeue() or _node_states() - {"idle"}:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"SLURM's queue did not drain (scancel what is left): {_squeue()}, "
                    f"nodes {_node_states()}"
                )
            time.sleep(1)


def _node_states() -> set[str]:
    done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    return set(done.stdout.split())


@pytest.fixture
def jobs(slurm: None, tmp_path: Path) -> Iterator[Jobs]:
    ray_tmp = tempfile.mkdtemp(prefix="ssl-", dir="/tmp")  # short: Ray's socket paths
    made = Jobs(tmp_path, ray_tmp)
    made.cleanup()  # the queue drained, both nodes idle: each test gets the whole cluster
    try:
        yield made
    finally:
        made.cleanup()
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _check_points(points: Any, trials: list[dict[str, Any]], epochs: int, steps: int) -> None:
    """Each trial's curve whole and stored once: every step's loss, every epoch's accuracy."""
    assert len(points) == len(trials) * (epochs * steps + epochs), len(points)
    assert not points.duplicated(["trial_id", "metric", "step"]).any()
    for trial in trials:
        mine = points[points.trial_id == trial["id"]]
        loss = sorted(mine[mine.metric == "train_loss"].step.astype(int))
        assert loss == list(range(1, epochs * steps + 1)), (trial["id"], loss)
        accuracy = sorted(mine[mine.metric == "val_acc"].step.astype(int))
        assert accuracy == list(range(steps, epochs * steps + 1, steps)), (trial["id"], accuracy)


def _completed(jobs: Jobs, epochs: int, steps: int, n_trials: int) -> list[dict[str, Any]]:
    sweep, trials, points = jobs.sweep()
    assert sweep["status"] == "completed", sweep
    assert len(trials) == n_trials
    ended = [(t["number"], t["status"], t["error"]) for t in trials]
    assert {t["status"] for t in trials} == {"completed"}, ended
    _check_points(points, trials, epochs, steps)
    return trials


@pytest.mark.slurm
@pytest.mark.ray
def test_sweep_across_two_nodes(jobs: Jobs) -> None:
    """sbatch --nodes=2: Ray's head in n1's step on 127.0.0.1, a worker in n2's on 127.0.0.2
    (n2's SLURM address), one trial on each node at once, the sweep completed, Ray gone."""
    epochs, steps = 4, 4
    spec = jobs.spec(epochs=epochs, steps=steps, sleep=0.25, scales=[1.0, 2.0])
    job = jobs.submit("--nodes=2", "--cpus-per-task=1", "--time=10", str(SCRIPT), str(spec))
    info = jobs.wait(job, timeout=180)
    out = jobs.output(job)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", out[-4000:]
    assert info["NodeList"] == "n[1-2]"
    assert f"head on n1 (127.0.0.1:{jobs.port}), 1 worker node(s)" in out
    assert "worker on n2 (127.0.0.2)" in out
    assert "Local node IP: 127.0.0.2" in out  # Ray's own word: n2's raylet on n2's address
    assert out.index("all 2 Ray node(s) joined") < out.index("sweep.sbatch: driver:")
    assert "Ray stopped on 2 node(s)" in out
    assert jobs.wait_until_ray_is_gone() == []

    trials = _completed(jobs, epochs, steps, 2)
    # One trial on each Ray node (1 CPU each): the store names two nodes.
    assert len({t["node"] for t in trials}) == 2, [t["node"] for t in trials]


@pytest.mark.slurm
@pytest.mark.ray
def test_time_limit_requeues_the_job_with_its_own_resources(jobs: Jobs) -> None:
    """Options that differ from the script's #SBATCH lines (3 nodes, 8 CPUs a task, 4 h, USR1
    at 300 s: this 2-node, 1-CPU partition can give none of these): one node, one CPU, a time
    limit of two minutes and USR1 70 s before it. The signal stops the sweep resumable, the
    job requeues itself, and the same job, with the resources it was given (the #SBATCH
    --exclusive it did not override included), resumes and completes it."""
    epochs, steps = 5, 6
    spec = jobs.spec(epochs=epochs, steps=steps, sleep=0.4, scales=[1.0, 2.0, 3.0, 4.0])
    job = jobs.submit(
        "--nodes=1",
        "--cpus-per-task=1",
        "--time=2",
        "--signal=B:USR1@70",
        str(SCRIPT),
        str(spec),
        SWEEPSCOPE_AUTO_RESUME="1",
    )
    info = jobs.wait(job, timeout=420)
    out = jobs.output(job)  # every run of the job: --open-mode=append
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", out[-4000:]
    assert int(info["Restarts"]) >= 1, out[-4000:]
    # The requeued job is this one, with what it was submitted with.
    assert info["NumNodes"] == "1" and info["CPUs/Task"] == "1", info
    assert info["TimeLimit"] == "00:02:00" and info["OverSubscribe"] == "NO", info
    sweep_id = jobs.sweep()[0]["id"]
    assert info["Comment"] == f"sweepscope-sweep:{sweep_id}"
    assert "SIGUSR1 received: stopping the sweep" in out
    assert f"sweep {sweep_id} stopped at the time limit: requeueing job {job}" in out
    assert f"job {job} requeued (restart 1): resuming sweep {sweep_id}" in out
    assert f"driver: sweepscope resume {sweep_id} --address 127.0.0.1:{jobs.port}" in out
    assert jobs.wait_until_ray_is_gone() == []
    _completed(jobs, epochs, steps, 4)


@pytest.mark.slurm
@pytest.mark.ray
@pytest.mark.parametrize("how", ["scancel", "scancel --batch --signal=TERM"])
def test_cancelled_sweep_resumes_from_a_new_job(jobs: Jobs, how: str) -> None:
    """`scancel JOB` (every process of the job killed) or `scancel --batch --signal=TERM JOB`
    (the script stops the sweep itself) mid-sweep: no requeue, even with
    SWEEPSCOPE_AUTO_RESUME=1; then `sbatch ... --resume SWEEP` completes the sweep."""
    epochs, steps = 8, 4
    spec = jobs.spec(epochs=epochs, steps=steps, sleep=0.3, scales=[1.0, 2.0])
    options = ["--nodes=2", "--cpus-per-task=1", "--time=10"]
    job = jobs.submit(*options, str(SCRIPT), str(spec), SWEEPSCOPE_AUTO_RESUME="1")
    jobs.wait_for_epochs(job, 2, 2)
    subprocess.run([*how.split(), job], check=True, timeout=30)
    info = jobs.wait(job, timeout=120)
    out = jobs.output(job)
    assert info["Restarts"] == "0", out[-4000:]
    assert jobs.wait_until_ray_is_gone() == []
    sweep, trials, _ = jobs.sweep()
    assert {t["status"] for t in trials} != {"completed"}  # stopped mid-sweep
    if how == "scancel":
        assert info["JobState"] == "CANCELLED", out[-4000:]
    else:
        assert "SIGTERM received: stopping the sweep" in out
        assert sweep["status"] == "stopped", out[-4000:]
        assert f"{SCRIPT} --resume {sweep['id']}" in out

    again = jobs.submit(*options, str(SCRIPT), "--resume", sweep["id"])
    info = jobs.wait(again, timeout=180)
    out = jobs.output(again)
    assert info["JobState"] == "COMPLETED", out[-4000:]
    assert f"driver: sweepscope resume {sweep['id']} --address 127.0.0.1:{jobs.port}" in out
    assert jobs.wait_until_ray_is_gone() == []
    _completed(jobs, epochs, steps, 2)


@pytest.mark.slurm
@pytest.mark.ray
def test_lost_worker_node_is_retried_on_the_head(jobs: Jobs) -> None:
    """Every process of n2's step killed mid-sweep (its Ray node gone): the trial it ran is
    retried (max_failures) on n1 from its checkpoint, and the sweep completes, nothing lost."""
    epochs, steps = 10, 4
    spec = jobs.spec(epochs=epochs, steps=steps, sleep=0.3, scales=[1.0, 2.0], max_failures=2)
    job = jobs.submit("--nodes=2", "--cpus-per-task=1", "--time=10", str(SCRIPT), str(spec))
    before = jobs.wait_for_epochs(job, 2, 2)
    assert len({t["node"] for t in before}) == 2, [t["node"] for t in before]
    (worker_step,) = [
        line.split()[0]
        for line in _squeue("-s", "-j", job, "-o", "%i %N")
        if line.split()[1:] == ["n2"]
    ]
    subprocess.run(["scancel", "--signal=KILL", worker_step], check=True, timeout=30)
    info = jobs.wait(job, timeout=240)
    out = jobs.output(job)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", out[-4000:]
    assert jobs.wait_until_ray_is_gone() == []
    trials = _completed(jobs, epochs, steps, 2)
    # The trial that ran on n2 finished on n1's Ray node, where the other trial ran.
    head = next(t["node"] for t in before if t["node"] in {u["node"] for u in trials})
    assert {t["node"] for t in trials} == {head}, ([t["node"] for t in before], trials)


@pytest.mark.slurm
@pytest.mark.ray
def test_trial_of_a_lost_node_resumes_from_a_new_job(jobs: Jobs) -> None:
    """n2's step ended mid-sweep (SIGTERM to every process of it, as `scancel` of a job sends
    them all: Ray stops the node and says so), with no retries: the trial it ran is not an
    error of its own but `stopped` (Ray's text kept), the sweep ends stopped, resumable, and
    `sbatch ... --resume` continues that trial from its checkpoint to completion."""
    epochs, steps = 8, 4
    spec = jobs.spec(epochs=epochs, steps=steps, sleep=0.3, scales=[1.0, 2.0], trainable=CONTINUED)
    options = ["--nodes=2", "--cpus-per-task=1", "--time=10"]
    job = jobs.submit(*options, str(SCRIPT), str(spec))
    jobs.wait_for_epochs(job, 2, 2)
    (worker_step,) = [
        line.split()[0]
        for line in _squeue("-s", "-j", job, "-o", "%i %N")
        if line.split()[1:] == ["n2"]
    ]
    assert _terminate_step(worker_step) > 0
    info = jobs.wait(job, timeout=240)
    out = jobs.output(job)
    assert info["ExitCode"] == "130:0" and info["Restarts"] == "0", out[-4000:]
    assert "lost its Ray node; it ends stopped" in out, out[-4000:]
    sweep, trials, _ = jobs.sweep()
    assert sweep["status"] == "stopped", out[-4000:]
    (lost,) = [t for t in trials if t["status"] == "stopped"]
    assert "its node has died" in lost["error"] and lost["last_epoch"] < epochs, trials
    assert [t["status"] for t in trials if t["id"] != lost["id"]] == ["completed"]
    assert f"{SCRIPT} --resume {sweep['id']}" in out
    assert jobs.wait_until_ray_is_gone() == []

    again = jobs.submit(*options, str(SCRIPT), "--resume", sweep["id"])
    info = jobs.wait(again, timeout=180)
    out = jobs.output(again)
    assert info["JobState"] == "COMPLETED", out[-4000:]
    assert jobs.wait_until_ray_is_gone() == []
    sweep, trials, points = jobs.sweep()
    assert sweep["status"] == "completed" and {t["status"] for t in trials} == {"completed"}
    curves = points[points.metric != "start_epoch"]
    _check_points(curves, trials, epochs, steps)  # every step of both curves stored once
    starts = points[(points.trial_id == lost["id"]) & (points.metric == "start_epoch")]
    assert starts.value.max() >= 2, starts  # it came back at a checkpoint, not at epoch 0


def test_refuses_to_start_without_a_store(tmp_path: Path) -> None:
    """Checked before anything reaches SLURM: no store URL, no shared storage, no spec file."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SLURM_")},
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "SWEEPSCOPE_STORE": f"sqlite:///{tmp_path / 'store.db'}",
        "SWEEPSCOPE_STORAGE_PATH": str(tmp_path / "storage"),
    }
    cases = [
        ({**env, "SWEEPSCOPE_STORE": ""}, [str(spec)], "SWEEPSCOPE_STORE"),
        ({**env, "SWEEPSCOPE_STORAGE_PATH": ""}, [str(spec)], "SWEEPSCOPE_STORAGE_PATH"),
        (env, [str(tmp_path / "missing.yaml")], "no spec file"),
        (env, ["--resume"], "usage:"),
    ]
    for case_env, args, message in cases:
        done = subprocess.run(
            ["bash", str(SCRIPT), *args],
            cwd=REPO,
            env=case_env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr
        assert "head on" not in done.stdout  # nothing was started
