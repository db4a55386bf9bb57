"""Fractional GPUs on a CPU machine: Ray's logical GPU resources and the CUDA_VISIBLE_DEVICES
each trial is given. `resources: {gpu: 0.25}` must put four trials on one GPU at once, and a
trial given no GPU must see none (so CUDA code in it cannot touch a GPU's memory).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner import report
from runner.driver.launch import run_sweep
from runner.spec import parse_spec
from runner.store import Store
from tests.helpers.paths import REPO

UNSET = "<unset>"


def gpu_trainable(config: dict[str, Any]) -> None:
    """Test trainable: records its CUDA_VISIBLE_DEVICES and how many trials ran beside it.

    Each trial leaves a mark and waits (up to `wait` s) until `n` marks exist. A trial can
    only count `n` without timing out if all `n` were running at once: none of the others
    can have ended, since each waits for the last one to start.
    """
    marks = Path(config["marks"])
    (marks / f"trial-{config['i']}").touch()
    deadline = time.monotonic() + config["wait"]
    while len(list(marks.glob("trial-*"))) < config["n"] and time.monotonic() < deadline:
        time.sleep(0.05)
    peers = len(list(marks.glob("trial-*")))
    report.info(device=os.environ.get("CUDA_VISIBLE_DEVICES", UNSET))
    report.epoch(1, step=1, val_acc=1.0, peers=peers)


@pytest.fixture(scope="module")
def one_logical_gpu() -> Iterator[None]:
    """Ray on 127.0.0.1 with 4 CPUs and 1 GPU that exists only as a resource."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    cwd = Path.cwd()
    os.chdir(REPO)  # Ray workers import the trainable from the driver's directory
    try:
        ray.init(
            num_cpus=4,
            num_gpus=1,
            include_dashboard=False,
            configure_logging=False,
            log_to_driver=False,
            _node_ip_address="127.0.0.1",
        )
        yield
    finally:
        ray.shutdown()
        os.chdir(cwd)


def _sweep(
    store: Store, tmp_path: Path, *, gpu: float, n: int, wait: float
) -> list[dict[str, Any]]:
    marks = tmp_path / f"marks-{gpu}"
    marks.mkdir()
    spec = parse_spec(
        {
            "name": f"gpu_{gpu}".replace(".", "_"),
            "trainable": "tests.test_gpu_resources:gpu_trainable",
            "stop": {"epochs": 1},
            "resources": {"cpu": 0.5, "gpu": gpu},
            "fixed": {"marks": str(marks), "n": n, "wait": wait},
            "grid": {"i": list(range(n))},
        }
    )
    outcome = run_sweep(spec, store=store, progress=False, storage_path=str(tmp_path / "ray"))
    assert outcome.status == "completed", outcome
    trials = store.trials(outcome.sweep_id)
    peers = store.points(outcome.sweep_id, metrics=["peers"])
    by_trial = dict(zip(peers["trial_id"], peers["value"], strict=True))
    return [{**t, "peers": by_trial.get(t["id"])} for t in trials]


@pytest.mark.ray
def test_quarter_gpus_share_one_gpu(
    one_logical_gpu: None, sqlite_store: Store, tmp_path: Path
) -> None:
    trials = _sweep(sqlite_store, tmp_path, gpu=0.25, n=4, wait=30)
    assert len(trials) == 4
    assert [t["peers"] for t in trials] == [4, 4, 4, 4], "the 4 trials did not run at once"
    assert {t["device"] for t in trials} == {"0"}  # all on GPU 0


@pytest.mark.ray
def test_half_gpus_run_two_at_a_time(
    one_logical_gpu: None, sqlite_store: Store, tmp_path: Path
) -> None:
    """The control: 0.5 GPU each leaves room for 2 at once, so the 3rd never meets the 1st."""
    trials = _sweep(sqlite_store, tmp_path, gpu=0.5, n=3, wait=1.5)
    assert {t["device"] for t in trials} == {"0"}
    assert min(t["peers"] for t in trials) < 3


@pytest.mark.ray
def test_no_gpu_trials_see_no_gpu(
    one_logical_gpu: None, sqlite_store: Store, tmp_path: Path
) -> None:
    trials = _sweep(sqlite_store, tmp_path, gpu=0, n=2, wait=0)
    assert {t["device"] for t in trials} == {""}
