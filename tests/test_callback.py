"""The driver callback and stopper, driven directly with fake trials (no Ray runtime)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.driver.callback import StoreCallback
from runner.driver.drive import _status_after_fit
from runner.driver.stopper import StoreStopper
from runner.driver.writer import StoreWriter
from runner.protocol import INFO_KEY, POINTS_KEY, STATUS_KEY
from runner.spec import parse_spec
from runner.store import Store
from tests.helpers.fakes import fake_trial

_writers: list[StoreWriter] = []


@pytest.fixture(autouse=True)
def _close_writers() -> Iterator[None]:
    yield
    while _writers:
        _writers.pop().close()


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """The writer's thread reads stop requests in the background: wait for it."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _setup(store: Store, scheduler: str = "none") -> tuple[StoreCallback, StoreStopper]:
    spec = parse_spec(
        {
            "name": "t",
            "trainable": "tests.trainables:steady",
            "stop": {"epochs": 2},
            "grid": {"lr": [0.1, 0.01]},
            "scheduler": {"type": scheduler},
        }
    )
    store.create_sweep("s", name="t", spec={}, metric="val_acc", mode="max", n_trials=2)
    writer = StoreWriter(store, "s", poll_seconds=0.01)
    _writers.append(writer)
    stopper = StoreStopper(writer=writer, stop=spec.stop)
    return StoreCallback(writer=writer, spec=spec, stopper=stopper), stopper


def _result(step: int, epoch: int | None = None, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "step": step,
        "hostname": "node-1",
        POINTS_KEY: [("train_loss", step, 1.0 / step, 0.0)],
        **extra,
    }
    if epoch is not None:
        result.update(epoch=epoch, val_acc=0.5 * epoch)
    return result


def _status(store: Store) -> dict[str, str]:
    """The trials' statuses in the store, once the writer has written what it holds."""
    for writer in _writers:
        assert writer.flush(timeout=10)
    return {t["ray_id"]: t["status"] for t in store.trials("s")}


def test_a_trial_life_in_the_store(sqlite_store: Store) -> None:
    cb, _ = _setup(sqlite_store)
    a, b = fake_trial("a"), fake_trial("b")
    cb.on_step_end(0, [a, b])
    assert _status(sqlite_store) == {"a": "pending", "b": "pending"}
    (row,) = [t for t in sqlite_store.trials("s") if t["ray_id"] == "a"]
    assert row["config"] == {"lr": 0.1, "epochs": 2}  # Ray's own keys are left out

    cb.on_trial_start(0, [a, b], a)
    cb.on_trial_result(0, [a, b], a, _result(1, **{INFO_KEY: {"device": "cpu"}}))
    cb.on_trial_result(0, [a, b], a, _result(2, epoch=1))
    cb.on_trial_result(0, [a, b], a, _result(3, epoch=2))
    cb.on_trial_complete(0, [a, b], a)
    assert _status(sqlite_store)["a"] == "completed"
    (row,) = [t for t in sqlite_store.trials("s") if t["ray_id"] == "a"]
    assert row["status"] == "completed" and row["device"] == "cpu" and row["node"] == "node-1"
    assert row["last_step"] == 3 and row["last_epoch"] == 2
    points = sqlite_store.points("s")
    assert sorted(points[points.metric == "train_loss"]["step"]) == [1, 2, 3]
    assert cb.best == 1.0 and cb.statuses() == {"completed": 1, "pending": 1}


def test_reported_endings(sqlite_store: Store, tmp_path: Path) -> None:
    cb, _ = _setup(sqlite_store)
    a, b, c = fake_trial("a"), fake_trial("b", "RuntimeError: boom", tmp_path), fake_trial("c")
    for t in (a, b, c):
        cb.on_trial_start(0, [], t)
    cb.on_trial_result(0, [], a, _result(7, **{STATUS_KEY: "diverged"}))
    cb.on_trial_complete(0, [], a)
    cb.on_trial_error(0, [], b)
    cb.on_trial_result(0, [], c, _result(1, **{STATUS_KEY: "completed"}))
    cb.on_trial_complete(0, [], c)
    assert _status(sqlite_store) == {"a": "diverged", "b": "error", "c": "completed"}
    (row,) = [t for t in sqlite_store.trials("s") if t["ray_id"] == "b"]
    assert row["error"] == "RuntimeError: boom"


# Ray's text for an actor whose node died, as Tune writes it to the trial's error file
NODE_DIED = """The actor died unexpectedly before finishing this task.
\tclass_name: ImplicitFunc
\tactor_id: ad9a0a5326bcb99adbc0925f03000000
\tip: 127.0.0.2
The actor died because its node has died. Node Id: ea97c3e3b50b19
\tthe actor's node was terminated expectedly: received SIGTERM"""


def test_a_trial_whose_node_died_ends_stopped_and_the_sweep_resumable(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """A lost node is not the trial's error: the trial ends `stopped` (resume reruns it),
    its text kept; a sweep that ran to its end with one such trial ends stopped, not
    completed, saying how to continue."""
    cb, _ = _setup(sqlite_store)
    writer = _writers[-1]
    a, b = fake_trial("a"), fake_trial("b", NODE_DIED, tmp_path)
    for t in (a, b):
        cb.on_trial_start(0, [], t)
    cb.on_trial_error(0, [], b)
    cb.on_trial_result(0, [], a, _result(1, **{STATUS_KEY: "completed"}))
    cb.on_trial_complete(0, [], a)
    assert _status(sqlite_store) == {"a": "completed", "b": "stopped"}
    (row,) = [t for t in sqlite_store.trials("s") if t["ray_id"] == "b"]
    assert "its node has died" in row["error"]
    status, message, error = _status_after_fit(cb, writer, None, "s")
    assert status == "stopped" and error is None
    assert message == "1 trial(s) lost their Ray node; continue with `sweepscope resume s`"


def test_user_stop_goes_through_the_store(sqlite_store: Store) -> None:
    cb, stopper = _setup(sqlite_store)
    a, b = fake_trial("a"), fake_trial("b")
    for t in (a, b):
        cb.on_trial_start(0, [], t)
        cb.on_trial_result(0, [], t, _result(1, epoch=1))
    _status(sqlite_store)
    trial_id = {t["ray_id"]: t["id"] for t in sqlite_store.trials("s")}["a"]
    assert stopper("a", {}) is False
    sqlite_store.request_stop("s", trial_id)
    assert _eventually(lambda: stopper("a", {}))
    assert stopper("b", {}) is False
    assert stopper.stop_all() is False
    cb.on_trial_complete(0, [], a)
    assert _status(sqlite_store)["a"] == "stopped_by_user"
    sqlite_store.request_stop("s")
    assert _eventually(stopper.stop_all)
    cb.close_open_trials("the sweep was stopped")
    assert _status(sqlite_store) == {"a": "stopped_by_user", "b": "stopped_by_user"}


def test_scheduler_stops_are_pruned(sqlite_store: Store) -> None:
    cb, _ = _setup(sqlite_store, scheduler="asha")
    a = fake_trial("a")
    cb.on_trial_start(0, [], a)
    cb.on_trial_result(0, [], a, _result(1, epoch=1))
    cb.on_trial_complete(0, [], a)
    assert _status(sqlite_store) == {"a": "pruned"}


def test_retry_goes_back_to_pending(sqlite_store: Store, tmp_path: Path) -> None:
    cb, _ = _setup(sqlite_store)
    a = fake_trial("a", "worker died", tmp_path)
    cb.on_trial_start(0, [], a)
    cb.on_trial_recover(0, [], a)
    assert _status(sqlite_store) == {"a": "pending"}
    cb.on_trial_start(0, [], a)
    assert _status(sqlite_store) == {"a": "running"}
    events = sqlite_store.trial_events(sqlite_store.trials("s")[0]["id"])
    assert "retrying after: worker died" in [e["detail"] for e in events]
