"""The driver's writer, on a real SQLite store whose failures a test switches on and off."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.errors import StoreUnavailable
from runner.store import Store, open_store
from runner.writer import SPILL_FILE, StoreWriter, replay


class Blinking:
    """A store that raises StoreUnavailable on every write batch while `away` is set."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.away = False
        self.url = store.url

    def batch(self) -> Any:
        if self.away:
            raise StoreUnavailable("the store did not answer (test)")
        return self.store.batch()

    def heartbeat(self, sweep_id: str) -> None:
        if self.away:
            raise StoreUnavailable("the store did not answer (test)")
        self.store.heartbeat(sweep_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture
def blinking(tmp_path: Path) -> Iterator[Blinking]:
    with open_store(f"sqlite:///{tmp_path / 's.db'}", create=True) as store:
        store.create_sweep("s", name="s", spec={}, metric="val_acc", mode="max", n_trials=2)
        yield Blinking(store)


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _points(store: Store) -> list[tuple[int, float]]:
    frame = store.points("s")
    return sorted(zip(frame["step"].tolist(), frame["value"].tolist(), strict=True))


def _write_trial(writer: StoreWriter, steps: range) -> None:
    writer.add_trial("a", {"lr": 0.1})
    writer.set_status("a", "running")
    for step in steps:
        writer.add_points("a", [("loss", step, 1.0 / step, 0.0)])


def test_writes_land_in_order(blinking: Blinking) -> None:
    writer = StoreWriter(blinking, "s")  # type: ignore[arg-type]
    _write_trial(writer, range(1, 101))
    writer.set_status("a", "completed")
    writer.finish_sweep("completed")
    assert writer.close()
    store = blinking.store
    assert _points(store) == [(s, 1.0 / s) for s in range(1, 101)]
    (trial,) = store.trials("s")
    assert trial["status"] == "completed"
    assert [e["status"] for e in store.trial_events(trial["id"])] == [
        "pending",
        "running",
        "completed",
    ]
    assert store.sweep("s")["status"] == "completed"  # type: ignore[index]


def test_an_outage_holds_the_writes_and_loses_none(blinking: Blinking) -> None:
    writer = StoreWriter(blinking, "s")  # type: ignore[arg-type]
    _write_trial(writer, range(1, 11))
    assert writer.flush(timeout=10)
    blinking.away = True
    for step in range(11, 21):  # returns at once: the writes are held
        writer.add_points("a", [("loss", step, 1.0 / step, 0.0)])
    _eventually(lambda: writer.health().away_for is not None)
    health = writer.health()
    assert health.held_points == 10 and health.gave_up is None
    assert "did not answer" in (health.last_error or "")
    assert len(_points(blinking.store)) == 10
    blinking.away = False
    assert writer.flush(timeout=20)
    assert writer.health().away_for is None and writer.health().held_points == 0
    assert writer.close()
    assert _points(blinking.store) == [(s, 1.0 / s) for s in range(1, 21)]  # none doubled


def test_an_outage_past_the_limit_gives_up_and_spills_for_replay(
    blinking: Blinking, tmp_path: Path
) -> None:
    writer = StoreWriter(blinking, "s", outage_limit=0.5)  # type: ignore[arg-type]
    blinking.away = True
    _write_trial(writer, range(1, 6))
    writer.finish_sweep("stopped", "the store stayed away")
    assert not writer.close()  # waits for the store up to the limit, then gives up
    assert "did not answer for 0.5 s" in (writer.health().gave_up or "")
    spilled = writer.spill(tmp_path / "spill")
    assert spilled == tmp_path / "spill" / SPILL_FILE and spilled.exists()
    assert _points(blinking.store) == []

    blinking.away = False
    assert replay(blinking.store, "s", tmp_path / "spill") == 5
    assert not spilled.exists()
    assert _points(blinking.store) == [(s, 1.0 / s) for s in range(1, 6)]
    assert blinking.store.sweep("s")["status"] == "stopped"  # type: ignore[index]
    assert replay(blinking.store, "s", tmp_path / "spill") == 0  # nothing left to write


def test_memory_held_is_bounded(blinking: Blinking) -> None:
    writer = StoreWriter(blinking, "s", max_held_points=50)  # type: ignore[arg-type]
    blinking.away = True
    _write_trial(writer, range(1, 51))
    assert writer.health().gave_up is None  # at the bound: still holding
    writer.add_points("a", [("loss", 51, 1.0, 0.0)])
    assert "more than 50 points" in (writer.health().gave_up or "")
    assert not writer.close()


def test_stop_requests_are_read_in_the_background(blinking: Blinking) -> None:
    writer = StoreWriter(blinking, "s", poll_seconds=0.01)  # type: ignore[arg-type]
    _write_trial(writer, range(1, 3))
    assert writer.flush(timeout=10)
    assert writer.stop_requests() == (False, set())
    blinking.store.request_stop("s")
    _eventually(lambda: writer.stop_requests()[0])
    assert writer.close()
