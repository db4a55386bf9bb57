"""Fault tolerance with real processes: killed workers, a killed driver, concurrent writers,
malformed specs, and trials that raise, diverge or hang."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import SpecError, StoreError
from runner.spec import load_spec
from runner.store import Store, open_store

from .conftest import REPO
from .test_cli import SWEEPSCOPE, _wait_for, sweepscope


def _spec(tmp_path: Path, body: dict[str, Any], name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body))
    return path


def _start(spec: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    return subprocess.Popen(
        [SWEEPSCOPE, *extra, str(spec), "--store", url],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _trials(url: str) -> list[dict[str, Any]]:
    try:
        store = open_store(url)
    except StoreError:  # the runner has not created it yet
        return []
    with store:
        sweeps = store.sweeps()
        return store.trials(sweeps[0]["id"]) if sweeps else []


def _curve_steps(url: str, trial_id: int) -> list[int]:
    with open_store(url) as store:
        sweep_id = store.sweeps()[0]["id"]
        points = store.points(sweep_id, trial_ids=[trial_id], metrics=["train_loss"])
    return sorted(points["step"].tolist())


# -- 1. a trial's worker process is killed mid-epoch ---------------------------------------
@pytest.mark.ray
@pytest.mark.parametrize("max_failures", [0, 2])
def test_killed_worker(tmp_path: Path, max_failures: int) -> None:
    spec = _spec(
        tmp_path,
        {
            "name": "kill",
            "trainable": "tests.trainables:checkpointed",
            "stop": {"epochs": 8},
            "max_failures": max_failures,
            "max_concurrent": 2,
            "fixed": {"steps_per_epoch": 10, "sleep": 0.03, "pid_dir": str(tmp_path)},
            "grid": {"scale": [1.0, 2.0]},
        },
    )
    url = f"sqlite:///{tmp_path / 's.db'}"
    proc = _start(spec, url, "run")
    try:
        victim_pid = tmp_path / "1.0.pid"
        _wait_for(
            lambda: (
                victim_pid.exists()
                and any(
                    t["config"]["scale"] == 1.0 and (t["last_epoch"] or 0) >= 2
                    for t in _trials(url)
                )
            ),
            timeout=90,
        )
        os.kill(int(victim_pid.read_text()), signal.SIGKILL)  # mid-epoch: it sleeps every step
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    trials = {t["config"]["scale"]: t for t in _trials(url)}
    assert trials[2.0]["status"] == "completed"  # the sweep went on
    assert _curve_steps(url, trials[2.0]["id"]) == list(range(1, 81))
    killed = trials[1.0]
    steps = _curve_steps(url, killed["id"])
    if max_failures == 0:
        assert killed["status"] == "error"
        assert killed["error"]  # the text of Ray's failure
        assert len(steps) >= 20 and steps == list(range(1, len(steps) + 1))  # points kept
    else:
        assert killed["status"] == "completed"
        assert steps == list(range(1, 81))  # continuous, each step once
        with open_store(url) as store:
            history = [e["status"] for e in store.trial_events(killed["id"])]
        assert history.count("running") == 2 and "pending" in history[1:]


# -- 2. the driver is killed, then the sweep is resumed -------------------------------------
@pytest.mark.ray
def test_driver_sigkill_then_resume(tmp_path: Path) -> None:
    body = {
        "name": "resume",
        "trainable": "tests.trainables:checkpointed",
        "stop": {"epochs": 6},
        "max_concurrent": 2,
        "fixed": {"steps_per_epoch": 10, "sleep": 0.03},
        # six trials, two at a time: some are still to be created when the driver dies
        "grid": {"scale": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]},
    }
    spec = _spec(tmp_path, body)
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    proc = _start(spec, url, "run")
    try:
        _wait_for(
            lambda: (
                any(t["status"] == "completed" for t in _trials(url))
                and any(t["status"] == "running" and t["last_epoch"] for t in _trials(url))
            ),
            timeout=90,
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started
        proc.wait()
    assert "running" in {t["status"] for t in _trials(url)}  # nothing cleaned up
    assert len(_trials(url)) < 6  # the resumed sweep creates the rest

    with open_store(url) as store:
        sweep_id = store.sweeps()[0]["id"]
    changed = _spec(tmp_path, {**body, "stop": {"epochs": 7}}, "changed.yaml")
    refused = sweepscope("resume", sweep_id, "--store", url, "--spec", str(changed))
    assert refused.returncode == 2 and "stop: differs from the spec" in refused.stderr

    resumed = sweepscope("resume", sweep_id, "--store", url, "--spec", str(spec))
    assert resumed.returncode == 0, resumed.stderr
    with open_store(url) as store:
        sweep = store.sweep(sweep_id)
        assert sweep is not None and sweep["status"] == "completed"
        for trial in store.trials(sweep_id):
            history = [e["status"] for e in store.trial_events(trial["id"])]
            assert trial["status"] == "completed" and history.count("completed") == 1, history
        killed_counts = store.points(sweep_id).groupby("trial_id").size().sort_values().tolist()

    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    clean = sweepscope("run", str(spec), "--store", clean_url)
    assert clean.returncode == 0, clean.stderr
    with open_store(clean_url) as store:
        clean_id = store.sweeps()[0]["id"]
        clean_counts = store.points(clean_id).groupby("trial_id").size().sort_values().tolist()
    assert killed_counts == clean_counts


# -- 3. many processes write one store while another reads ----------------------------------
WRITERS, BATCHES, PER_BATCH = 16, 20, 250


def _write(url: str, index: int) -> None:
    with open_store(url) as store:
        trial = store.add_trial("conc", f"w{index}", {"i": index})
        for b in range(BATCHES):
            store.add_points(
                trial, [("train_loss", b * PER_BATCH + s, 1.0, 0.0) for s in range(PER_BATCH)]
            )


def _read(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    with open_store(url) as store:
        while time.monotonic() < deadline:
            store.points("conc", after_id=0)
            store.sweeps()


def _process(call: str) -> subprocess.Popen[str]:
    """A fresh Python process running `call` from this module (not multiprocessing: its
    spawn re-runs whatever __main__ is, which other tests may have pointed elsewhere)."""
    code = f"from tests.test_reliability import _read, _write; {call}"
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, text=True, stderr=subprocess.PIPE
    )


def test_concurrent_writers_and_a_reader(store: Store) -> None:
    store.create_sweep("conc", name="c", spec={}, metric="val_acc", mode="max", n_trials=WRITERS)
    reader = _process(f"_read({store.url!r}, 20.0)")
    writers = [_process(f"_write({store.url!r}, {i})") for i in range(WRITERS)]
    errors = [w.communicate(timeout=180)[1] for w in writers]
    reader_error = reader.communicate(timeout=60)[1]
    assert [w.returncode for w in writers] == [0] * WRITERS, errors  # no 'database is locked'
    assert reader.returncode == 0, reader_error
    points = store.points("conc")
    assert len(points) == WRITERS * BATCHES * PER_BATCH
    assert points.groupby("trial_id").size().tolist() == [BATCHES * PER_BATCH] * WRITERS


# -- 4. fuzzed specs ----------------------------------------------------------------------
BASE = {
    "name": "fuzz",
    "trainable": "tests.trainables:steady",
    "stop": {"epochs": 1},
    "grid": {"lr": [0.1]},
}
FIELDS = [
    "name",
    "trainable",
    "metric",
    "mode",
    "stop",
    "resources",
    "max_concurrent",
    "samples",
    "max_failures",
    "scheduler",
    "fixed",
    "grid",
    "sample",
    "checkpoint_every",
    "trial_timeout",
    "storage_path",
    "colour",
    "stop.epochs",
    "resources.gpu",
    "grid.lr",
    "sample.lr",
    "scheduler.type",
]
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _mutate(field: str, value: Any, drop: bool) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(yaml.safe_dump(BASE))
    head, _, tail = field.partition(".")
    target = spec.setdefault(head, {}) if tail else spec
    key = tail or head
    if not isinstance(target, dict):
        return spec
    if drop:
        target.pop(key, None)
    else:
        target[key] = value
    return spec


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(FIELDS),
    value=VALUES,
    drop=st.booleans(),
    raw=st.one_of(st.none(), st.text(max_size=40)),
)
def test_fuzzed_specs_exit_2_and_start_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    field: str,
    value: Any,
    drop: bool,
    raw: str | None,
) -> None:
    import ray

    from runner.cli import main

    path = tmp_path / "fuzz.yaml"
    if raw is not None:
        path.write_text(raw)
    else:
        path.write_text(yaml.safe_dump(_mutate(field, value, drop)))
    try:
        load_spec(path)
    except SpecError:
        pass
    else:
        return  # a valid spec: nothing to check here (it would start a sweep)
    db = tmp_path / "fuzz.db"
    code = main(["run", str(path), "--store", f"sqlite:///{db}"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err and err.count("\n") == 1 and "Fix:" in err
    assert not db.exists() and not ray.is_initialized()


# -- 5. each way a trial can end ------------------------------------------------------------
@pytest.mark.ray
def test_raise_diverge_hang_each_get_their_status(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        {
            "name": "endings",
            "trainable": "tests.trainables:mixed",
            "stop": {"epochs": 3},
            "trial_timeout": 4,
            "fixed": {"steps_per_epoch": 5},
            "grid": {"kind": ["raises", "diverges", "hangs", "steady"]},
        },
    )
    url = f"sqlite:///{tmp_path / 's.db'}"
    done = sweepscope("run", str(spec), "--store", url)
    assert done.returncode == 0, done.stderr
    by_kind = {t["config"]["kind"]: t for t in _trials(url)}
    assert {k: t["status"] for k, t in by_kind.items()} == {
        "raises": "error",
        "diverges": "diverged",
        "hangs": "timeout",
        "steady": "completed",
    }
    assert "trial_timeout" in by_kind["hangs"]["error"]
    with open_store(url) as store:
        sweep = store.sweeps()[0]
    assert sweep["status"] == "completed"


# -- schedulers ---------------------------------------------------------------------------
@pytest.mark.ray
@pytest.mark.parametrize(
    "scheduler",
    [
        {"type": "asha", "grace_period": 1, "reduction_factor": 3},
        {"type": "median", "grace_period": 1, "min_samples": 2},
    ],
    ids=["asha", "median"],
)
def test_scheduler_prunes_poor_trials(tmp_path: Path, scheduler: dict[str, Any]) -> None:
    spec = _spec(
        tmp_path,
        {
            "name": scheduler["type"],
            "trainable": "tests.trainables:checkpointed",
            "stop": {"epochs": 9},
            "checkpoint_every": 0,
            # two trials at a time on any machine, the others pending (no max_concurrent:
            # with it, Tune creates no pending trials, and those are what once made the
            # median rule pause trials)
            "resources": {"cpu": (os.cpu_count() or 2) / 2},
            "scheduler": scheduler,
            "fixed": {"steps_per_epoch": 5, "sleep": 0.01},
            "grid": {"quality": [0.2, 0.4, 0.6, 0.8, 1.0, 0.3]},
        },
    )
    url = f"sqlite:///{tmp_path / 's.db'}"
    done = sweepscope("run", str(spec), "--store", url)
    assert done.returncode == 0, done.stderr
    trials = _trials(url)
    # trials start in the spec's shuffled order, so a sorted grid cannot defeat the scheduler
    assert [t["config"]["quality"] for t in trials] == [
        p["quality"] for p in load_spec(spec).points()
    ]
    statuses = {t["config"]["quality"]: t["status"] for t in trials}
    assert "pruned" in statuses.values()
    assert set(statuses.values()) <= {"completed", "pruned"}
    with open_store(url) as store:  # never paused and restarted: one run each, start to end
        for t in trials:
            assert [e["status"] for e in store.trial_events(t["id"])].count("running") == 1
    best = max(trials, key=lambda t: t["config"]["quality"])
    assert statuses[1.0] == "completed" and best["last_epoch"] == 9
    for t in trials:
        if t["status"] == "pruned":
            assert t["last_epoch"] < 9
