"""The driver's writer: on a real SQLite store whose failures a test switches on and off, then
under real faults (another process's write lock, another session's table lock, a PostgreSQL
server that stops answering, a write refused for good, a driver killed)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.driver.writer import REJECTS_FILE, SPILL_FILE, StoreWriter, replay, storable
from runner.errors import StoreUnavailable
from runner.protocol import MAX_INFO
from runner.store import Store, open_store
from tests.helpers.faults import PrivatePostgres, frozen_postgres, hold_sqlite_lock, hold_table_lock
from tests.helpers.paths import REPO


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


def _points(store: Store, sweep_id: str = "s") -> list[tuple[int, float]]:
    frame = store.points(sweep_id)
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
    assert replay(blinking.store, "s", spilled).points == 5
    assert spilled.stat().st_size == 0  # emptied once everything is in the store
    assert _points(blinking.store) == [(s, 1.0 / s) for s in range(1, 6)]
    assert blinking.store.sweep("s")["status"] == "stopped"  # type: ignore[index]
    assert replay(blinking.store, "s", spilled).points == 0  # nothing left to write


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


# -- the worst moments, on real stores ------------------------------------------------------
# Each test below breaks a real store (another process holding an SQLite write lock, another
# PostgreSQL session holding a table lock, a PostgreSQL server whose processes are stopped)
# and checks what a user would: where the points are, and that the store ends with exactly
# the points written, none lost, none doubled.

_CHILD = """
import sys, time
from pathlib import Path
from runner.store import open_store
from runner.driver.writer import StoreWriter
url, spill = sys.argv[1], Path(sys.argv[2])
store = open_store(url)
store.create_sweep("k", name="k", spec={}, metric="val_acc", mode="max", n_trials=1)
writer = StoreWriter(store, "k", spill_path=spill, call_timeout=0.3, heartbeat_seconds=0.2)
writer.add_trial("a", {"lr": 0.1})
writer.set_status("a", "running")
for step in range(1, 11):
    writer.add_points("a", [("loss", step, 1.0 / step, 0.0)])
assert writer.flush(timeout=30)
print("written", flush=True)
sys.stdin.readline()  # the test now holds the store's write lock
for step in range(11, 31):
    writer.add_points("a", [("loss", step, 1.0 / step, 0.0)])
print("held", flush=True)
time.sleep(600)
"""


def _spilled_points(path: Path) -> int:
    if not path.exists():
        return 0
    ops = [json.loads(line) for line in path.read_text().splitlines() if line.endswith("]")]
    return sum(len(args["points"]) for kind, _, args in ops if kind == "points")


def test_held_writes_reach_the_disk_as_they_are_held_and_survive_sigkill(
    blinking: Blinking, tmp_path: Path
) -> None:
    """A driver killed (SIGKILL) while another process holds the SQLite store's write lock:
    the points it held are in the spill file already, and replay writes exactly them."""
    db, spill = tmp_path / "s.db", tmp_path / "spill" / SPILL_FILE
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, f"sqlite:///{db}", str(spill)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "written"
        with hold_sqlite_lock(db, 60.0):
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "held"
            _eventually(lambda: _spilled_points(spill) == 20, timeout=15)
            assert stat.S_IMODE(spill.stat().st_mode) == 0o600
            child.kill()  # SIGKILL: no drain, no spill at the end, no finally
            child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert len(_points(blinking.store, "k")) == 10
    done = replay(blinking.store, "k", spill)
    assert done.points == 20 and not done.notes
    assert _points(blinking.store, "k") == [(s, 1.0 / s) for s in range(1, 31)]


def test_a_lock_that_never_frees_bounds_close_and_replay_is_idempotent(
    blinking: Blinking, tmp_path: Path
) -> None:
    """Writes fail within the writer's call timeout while another process holds the write
    lock; close() returns by its deadline; the spill file (0600) survives a torn last line;
    replaying it twice stores every point and status event once."""
    db, spill = tmp_path / "s.db", tmp_path / "spill" / SPILL_FILE
    writer = StoreWriter(blinking, "s", spill_path=spill, call_timeout=0.3)  # type: ignore[arg-type]
    _write_trial(writer, range(1, 6))
    assert writer.flush(timeout=10)
    with hold_sqlite_lock(db, 60.0):
        for step in range(6, 11):
            writer.add_points("a", [("loss", step, 1.0 / step, 0.0)])
        writer.set_status("a", "completed", detail="done")
        _eventually(lambda: writer.health().away_for is not None, timeout=5)
        assert "locked" in (writer.health().last_error or "")
        t0 = time.monotonic()
        assert not writer.close(timeout=1.0)
        assert time.monotonic() - t0 < 2.0
        assert writer.spill() == spill
    assert stat.S_IMODE(spill.stat().st_mode) == 0o600
    with spill.open("a") as out:
        out.write('["points", "a", {"points": [["loss", 99, 1.0')  # a write cut off
    first = replay(blinking.store, "s", spill)
    assert first.points == 5
    assert len(first.notes) == 1 and "its last line" in first.notes[0]
    store = blinking.store
    (trial,) = store.trials("s")
    events = store.trial_events(trial["id"])
    assert [e["status"] for e in events] == ["pending", "running", "completed"]
    again = tmp_path / "again.jsonl"
    again.write_text(
        "".join(
            json.dumps(op) + "\n"
            for op in [
                ["status", "a", {"status": "completed", "detail": "done", "at": events[2]["at"]}],
                ["points", "a", {"points": [["loss", s, 1.0 / s, 0.0] for s in range(6, 11)]}],
            ]
        )
    )
    replay(store, "s", again)
    replay(store, "s", again)  # a replay interrupted, then run again: once is once
    assert [e["status"] for e in store.trial_events(trial["id"])] == [
        "pending",
        "running",
        "completed",
    ]
    assert _points(store) == [(s, 1.0 / s) for s in range(1, 11)]


def test_an_error_inside_the_writer_gives_up_with_the_reason(
    blinking: Blinking, tmp_path: Path
) -> None:
    """A value no store can take (not a number) raises inside the writer's thread: it gives
    up with the reason (the driver then stops the sweep, resumable) instead of dying
    silently, keeps what it held on disk, and replay sets the bad write aside."""
    spill = tmp_path / "spill" / SPILL_FILE
    writer = StoreWriter(blinking, "s", spill_path=spill, heartbeat_seconds=0.05)  # type: ignore[arg-type]
    _write_trial(writer, range(1, 4))
    assert writer.flush(timeout=10)
    writer.add_points("a", [("loss", 4, "not a number", 0.0)])  # type: ignore[list-item]
    writer.add_points("a", [("loss", 5, 0.2, 0.0)])
    _eventually(lambda: writer.health().gave_up is not None)
    assert "the store writer failed (ValueError" in (writer.health().gave_up or "")
    assert _spilled_points(spill) == 2  # on disk the moment it gave up
    assert not writer.close()
    assert writer.spill() == spill
    done = replay(blinking.store, "s", spill)
    assert any("refuses" in note and "ValueError" in note for note in done.notes), done.notes
    rejected = [json.loads(x) for x in spill.with_name(REJECTS_FILE).read_text().splitlines()]
    assert [r["op"][2]["points"][0][1] for r in rejected] == [4]
    assert _points(blinking.store) == [(s, 1.0 / s) for s in range(1, 4)] + [(5, 0.2)]


def test_a_sweep_taken_over_writes_nothing_more(blinking: Blinking, tmp_path: Path) -> None:
    """Another process closed the sweep (as `reconcile` does for a driver it judged gone): the
    writer's next heartbeat finds out; it gives up at once and writes nothing more to the
    store, not even the sweep's end, and keeps the points it held for a later replay."""
    spill = tmp_path / "spill" / SPILL_FILE
    writer = StoreWriter(blinking, "s", spill_path=spill, heartbeat_seconds=0.05)  # type: ignore[arg-type]
    _write_trial(writer, range(1, 4))
    assert writer.flush(timeout=10)
    other = open_store(blinking.url.replace("***", ""))
    try:
        other.finish_sweep("s", "stopped", "closed by another process")
    finally:
        other.close()
    _eventually(lambda: writer.health().taken_over)
    writer.add_points("a", [("loss", 4, 0.25, 0.0)])
    writer.set_status("a", "stopped")
    writer.finish_sweep("stopped", "this driver's own end")
    assert not writer.close()
    path = writer.spill()
    assert path is not None and path.parent == spill.parent and path != spill
    sweep = blinking.store.sweep("s")
    assert sweep is not None and sweep["message"] == "closed by another process"
    assert len(_points(blinking.store)) == 3
    assert replay(blinking.store, "s", spill).points == 1  # the taken-over file, beside it
    assert not path.exists()
    (trial,) = blinking.store.trials("s")
    assert trial["status"] == "running"  # statuses are the other driver's to write


def test_text_is_made_storable_before_it_is_queued() -> None:
    assert storable("a\x00b") == "ab"
    long = "x" * 100 + "TAIL"
    cut = storable(long, 60)
    assert len(cut) == 60 and cut.endswith("TAIL") and "characters cut" in cut
    assert storable(None) is None and storable(3) == 3


# -- PostgreSQL: a table lock, a server that stops answering, a write refused for good -------
@pytest.fixture
def pg_store(pg: PrivatePostgres) -> Iterator[tuple[str, Store]]:
    url = pg.create_database("writer")
    with open_store(url, create=True) as store:
        store.create_sweep("s", name="s", spec={}, metric="val_acc", mode="max", n_trials=2)
        yield url, store


def test_a_table_lock_held_by_another_session_is_an_outage_within_seconds(
    pg_store: tuple[str, Store], tmp_path: Path
) -> None:
    url, store = pg_store
    spill = tmp_path / "spill" / SPILL_FILE
    writer = StoreWriter(store, "s", spill_path=spill, call_timeout=1.0)
    _write_trial(writer, range(1, 6))
    assert writer.flush(timeout=10)
    with hold_table_lock(url, "points"):
        t0 = time.monotonic()
        for step in range(6, 11):
            writer.add_points("a", [("loss", step, 1.0 / step, 0.0)])
        _eventually(lambda: "lock timeout" in (writer.health().last_error or ""), timeout=10)
        assert time.monotonic() - t0 < 5.0  # seconds, not for as long as the lock is held
        assert writer.health().away_for is not None
        assert _spilled_points(spill) == 5  # held on disk as well
    assert writer.flush(timeout=20)
    assert spill.stat().st_size == 0  # everything in the store: the file is emptied
    assert writer.close()
    assert _points(store) == [(s, 1.0 / s) for s in range(1, 11)]


def test_a_server_that_stops_answering_is_an_outage_and_close_has_a_deadline(
    pg: PrivatePostgres, pg_store: tuple[str, Store], tmp_path: Path
) -> None:
    _, store = pg_store
    spill = tmp_path / "spill" / SPILL_FILE
    writer = StoreWriter(store, "s", spill_path=spill, outage_limit=4.0, call_timeout=1.0)
    _write_trial(writer, range(1, 6))
    assert writer.flush(timeout=10)
    with frozen_postgres(pg):
        for step in range(6, 11):
            writer.add_points("a", [("loss", step, 1.0 / step, 0.0)])
        _eventually(lambda: writer.health().away_for is not None, timeout=5)
        _eventually(lambda: _spilled_points(spill) == 5, timeout=5)
        t0 = time.monotonic()
        assert not writer.close()  # the outage limit and a margin, not as long as it hangs
        assert time.monotonic() - t0 < 4.0 + 2 * 1.0 + 1.0
        assert writer.spill() == spill
    # The batch in flight when the server stopped may land once it runs again: replay
    # writes the rest, and nothing twice.
    done = replay(store, "s", spill)
    assert done.points == 5
    assert _points(store) == [(s, 1.0 / s) for s in range(1, 11)]


def test_a_write_the_store_refuses_is_set_aside_and_the_sweep_goes_on(
    pg_store: tuple[str, Store], tmp_path: Path
) -> None:
    _, store = pg_store
    spill = tmp_path / "spill" / SPILL_FILE
    writer = StoreWriter(store, "s", spill_path=spill)
    _write_trial(writer, range(1, 4))
    # NUL bytes in text PostgreSQL refuses: removed before the write is queued
    writer.set_status("a", "error", detail="boom\x00", error="Traceback\x00: boom")
    writer.update_trial("a", node="n" * 500)
    writer.add_points("a", [("lo\x00ss", 4, 0.25, 0.0)])  # a metric name it refuses
    writer.add_points("a", [("loss", 5, 0.2, 0.0)])
    assert writer.flush(timeout=20)
    health = writer.health()
    assert health.gave_up is None and health.rejected == 1
    (trial,) = store.trials("s")
    assert trial["status"] == "error" and trial["error"] == "Traceback: boom"
    assert len(trial["node"]) == MAX_INFO
    assert store.trial_events(trial["id"])[-1]["detail"] == "boom"
    rejected = [json.loads(x) for x in spill.with_name(REJECTS_FILE).read_text().splitlines()]
    assert len(rejected) == 1 and "NUL" in rejected[0]["reason"]
    assert _points(store) == [(s, 1.0 / s) for s in range(1, 4)] + [(5, 0.2)]
    writer.set_status("a", "completed")
    assert writer.close()

    # the same write in a spill file: replay skips it with a note, writes the rest
    held = tmp_path / "held.jsonl"
    held.write_text(
        json.dumps(["points", "a", {"points": [["lo\x00ss", 6, 0.1, 0.0]]}])
        + "\n"
        + json.dumps(["points", "a", {"points": [["loss", 6, 1.0 / 6, 0.0]]}])
        + "\n"
    )
    done = replay(store, "s", held)
    assert len(done.notes) == 1 and "NUL" in done.notes[0]
    assert (6, 1.0 / 6) in _points(store)
