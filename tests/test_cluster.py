"""Beyond one machine: a real two-node Ray cluster on loopback, a sweep run against it with
--address into PostgreSQL, and the shared-storage check.

The two nodes are separate raylets with their own CPUs (ray.cluster_utils.Cluster; conftest
sets RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, so every Ray service binds 127.0.0.1). They share
a hostname, so the trials tell them apart by Ray node id.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner import report
from runner.cli import main
from runner.driver.cluster import check_storage
from runner.errors import SweepscopeError
from runner.store import open_store
from runner.trial.entry import node_label
from tests.helpers.paths import REPO

N_TRIALS = 4
STEPS = 20
CPUS_PER_NODE = 2


def node_trainable(config: dict[str, Any]) -> None:
    """Test trainable: notes its Ray node, waits until every trial runs, reports known points.

    The wait (a barrier on files) makes the placement deterministic: 4 one-CPU trials that
    run at once on two 2-CPU nodes must use both nodes.
    """
    import ray

    marks = Path(config["marks"])
    i = int(config["i"])
    (marks / f"trial-{i}").write_text(ray.get_runtime_context().get_node_id())
    deadline = time.monotonic() + 30
    while len(list(marks.glob("trial-*"))) < config["n"] and time.monotonic() < deadline:
        time.sleep(0.05)
    for step in range(1, STEPS + 1):
        report.step(step, train_loss=i * 1000 + step)
    report.epoch(1, step=STEPS, val_acc=i / 10)


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[Any]:
    """A head and a worker raylet on 127.0.0.1, each with its own CPUs; shut down after."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": CPUS_PER_NODE, "include_dashboard": False},
    )
    try:
        cluster.add_node(num_cpus=CPUS_PER_NODE)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


@pytest.mark.ray
def test_cluster_is_two_loopback_raylets(two_nodes: Any) -> None:
    nodes = two_nodes.list_all_nodes()
    assert len(nodes) == 2
    assert {n.node_ip_address for n in nodes} == {"127.0.0.1"}
    assert len({n.node_id for n in nodes}) == 2
    assert two_nodes.address.startswith("127.0.0.1:")
    assert not two_nodes.address.endswith(":6379")  # Redis's port on these machines


@pytest.fixture(scope="module")
def two_node_sweep(
    two_nodes: Any,
    postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> dict[str, Any]:
    """`sweepscope run SPEC --address ... --store postgresql+psycopg://...` on the cluster."""
    tmp = tmp_path_factory.mktemp("two_nodes")
    marks = tmp / "marks"
    marks.mkdir()
    spec = {
        "name": "two_nodes",
        "trainable": "tests.test_cluster:node_trainable",
        "metric": "val_acc",
        "stop": {"epochs": 1},
        "resources": {"cpu": 1},
        "fixed": {"marks": str(marks), "n": N_TRIALS},
        "grid": {"i": list(range(N_TRIALS))},
    }
    spec_file = tmp / "two_nodes.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    name = f"two_nodes_{secrets.token_hex(3)}"
    argv = [
        "run",
        str(spec_file),
        "--address",
        two_nodes.address,
        "--store",
        postgres_url,
        "--storage-path",
        str(tmp / "ray"),
        "--name",
        name,
    ]
    # Capture off: Tune pickles the run's callbacks, and the progress line holds stderr,
    # which pickles only as the real sys.stderr (pytest's capture stream does not).
    capture = request.config.pluginmanager.getplugin("capturemanager")
    cwd = Path.cwd()
    os.chdir(REPO)  # Ray workers import the trainable from the driver's directory
    try:
        with capture.global_and_fixture_disabled():
            code = main(argv)
    finally:
        os.chdir(cwd)
    with open_store(postgres_url) as store:
        sweep_id = next(s["id"] for s in store.sweeps() if s["name"] == name)
        trials = store.trials(sweep_id)
        points = store.points(sweep_id)
    ran_on = {p.name: p.read_text() for p in marks.glob("trial-*")}
    return {"code": code, "trials": trials, "points": points, "ran_on": ran_on}


@pytest.mark.ray
@pytest.mark.postgres
def test_sweep_with_address_runs_on_both_nodes_into_postgres(
    two_nodes: Any, two_node_sweep: dict[str, Any]
) -> None:
    assert two_node_sweep["code"] == 0
    node_ids = {n.node_id for n in two_nodes.list_all_nodes()}
    assert len(two_node_sweep["ran_on"]) == N_TRIALS
    assert set(two_node_sweep["ran_on"].values()) == node_ids, "the trials did not use both nodes"

    trials, points = two_node_sweep["trials"], two_node_sweep["points"]
    assert len(trials) == N_TRIALS
    assert {t["status"] for t in trials} == {"completed"}
    assert all(t["node"] for t in trials)
    # Every point of every trial, exactly: STEPS train_loss values and one val_acc each.
    by_trial = {t["id"]: int(t["config"]["i"]) for t in trials}
    got = sorted(
        (by_trial[row.trial_id], row.metric, int(row.step), float(row.value))
        for row in points.itertuples()
        if not row.metric.startswith("sys/")  # load samples: as many as the trial took seconds
    )
    want = sorted(
        [
            (i, "train_loss", s, float(i * 1000 + s))
            for i in range(N_TRIALS)
            for s in range(1, STEPS + 1)
        ]
        + [(i, "val_acc", STEPS, i / 10) for i in range(N_TRIALS)]
    )
    assert got == want


@pytest.mark.ray
@pytest.mark.postgres
def test_store_tells_the_two_nodes_apart(two_nodes: Any, two_node_sweep: dict[str, Any]) -> None:
    prefixes = {n.node_id[:8] for n in two_nodes.list_all_nodes()}
    recorded = {t["node"] for t in two_node_sweep["trials"]}
    assert {label.rsplit("(", 1)[-1].rstrip(")") for label in recorded} == prefixes


@pytest.mark.ray
def test_missing_storage_on_two_nodes_is_a_clear_error(two_nodes: Any) -> None:
    import ray

    ray.init(address=two_nodes.address, configure_logging=False, log_to_driver=False)
    try:
        with pytest.raises(SweepscopeError) as err:
            check_storage(None)
        text = str(err.value)
        assert "2 nodes" in text and "--storage-path" in text and "storage_path" in text
        assert "None" in text and "Fix:" in text
        with pytest.raises(SweepscopeError):
            check_storage("  ")
        check_storage("s3://bucket/sweeps")
        check_storage("/mnt/nfs/sweeps")  # explicit: taken as a mount every node shares
        # The driver's own node, as the store should record it: hostname and node id prefix.
        label = node_label()
        assert label.endswith(f"({ray.get_runtime_context().get_node_id()[:8]})")
    finally:
        ray.shutdown()


def test_storage_rule_without_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """One node: nothing needed. Several: an explicit path or URI, never nothing."""
    import runner.driver.cluster as cluster

    monkeypatch.setattr(cluster, "alive_nodes", lambda: 1)
    check_storage(None)
    check_storage(".sweepscope/ray")
    monkeypatch.setattr(cluster, "alive_nodes", lambda: 3)
    with pytest.raises(SweepscopeError, match="3 nodes"):
        check_storage(None)
    with pytest.raises(SweepscopeError, match=r"is ''"):
        check_storage("")
    check_storage("gs://bucket/sweeps")
    check_storage("/shared/sweeps")


def test_node_label_outside_ray_is_the_hostname() -> None:
    import socket

    import ray

    if ray.is_initialized():
        pytest.skip("a Ray session from another test is still connected")
    assert node_label() == socket.gethostname()
