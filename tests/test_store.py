"""The store contract, run on every backend (SQLite always; PostgreSQL where configured)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from runner.errors import StoreError
from runner.protocol import MAX_INFO, MAX_METRIC_NAME, MAX_STEP
from runner.store import Store, SweepStatus, TrialStatus, open_store


def _sweep(store: Store, sweep_id: str = "s1", mode: str = "max") -> None:
    store.create_sweep(
        sweep_id, name="demo", spec={"grid": {"lr": [0.1]}}, metric="val_acc", mode=mode, n_trials=2
    )


def test_sweep_round_trip(store: Store) -> None:
    _sweep(store)
    sweep = store.sweep("s1")
    assert sweep is not None
    assert sweep["status"] == "running"
    assert sweep["spec"] == {"grid": {"lr": [0.1]}}
    assert sweep["n_trials"] == 2 and sweep["counts"] == {} and sweep["best"] is None
    store.finish_sweep("s1", "completed")
    finished = store.sweep("s1")
    assert finished is not None and finished["status"] == "completed" and finished["ended_at"]
    assert store.sweep("nope") is None


def test_a_sweep_records_where_its_spill_file_is(store: Store, store_url: str) -> None:
    """`resume` from another directory or host finds the spill file through the store."""
    _sweep(store)
    assert store.sweep("s1")["spill_path"] is None  # type: ignore[index]
    store.set_spill_path("s1", "/shared/ray/s1/sweepscope-unwritten.jsonl")
    with open_store(store_url) as reader:  # another process, as far as the store knows
        (listed,) = reader.sweeps()
        assert listed["spill_path"] == "/shared/ray/s1/sweepscope-unwritten.jsonl"
    store.set_spill_path("s1", None)
    assert store.sweep("s1")["spill_path"] is None  # type: ignore[index]
    with pytest.raises(StoreError, match="no sweep 'nope'"):
        store.set_spill_path("nope", "/x")


def test_finishing_an_unknown_sweep_is_an_error(store: Store) -> None:
    with pytest.raises(StoreError, match="no sweep 'nope'.*sweepscope ls"):
        store.finish_sweep("nope", "completed")
    with pytest.raises(StoreError, match="no sweep 'nope'"):
        store.heartbeat("nope")
    with pytest.raises(StoreError, match="no sweep 'nope'"):
        store.reopen_sweep("nope")


def test_trial_reads_one_trial_as_trials_does(store: Store) -> None:
    _sweep(store)
    first = store.add_trial("s1", "ray_0", {"lr": 0.1}, at=1_700_000_000.0)
    second = store.add_trial("s1", "ray_1", {"lr": 0.01})
    store.set_trial_status(second, TrialStatus.RUNNING, node="host-a", device="cpu")
    listed = {row["id"]: row for row in store.trials("s1")}
    assert store.trial(first) == listed[first]
    assert store.trial(second) == listed[second]
    trial = store.trial(first)
    assert trial["config"] == {"lr": 0.1} and trial["ray_id"] == "ray_0"
    assert trial["status"] == TrialStatus.PENDING and trial["created_at"] == 1_700_000_000.0
    assert store.trial(second)["node"] == "host-a"


def test_unknown_trial_ids_are_errors(store: Store) -> None:
    """Every call that names one trial says when there is no such trial; the reads of a
    trial's or sweep's parts return nothing."""
    _sweep(store)
    missing = store.add_trial("s1", "a", {}) + 1000
    with pytest.raises(StoreError, match=f"no trial {missing} in .*Fix: use a store id"):
        store.trial(missing)
    with pytest.raises(StoreError, match=f"no trial {missing}"):
        store.set_trial_status(missing, TrialStatus.RUNNING)
    with pytest.raises(StoreError, match=f"no trial {missing}"):
        store.set_trial_status(missing, TrialStatus.COMPLETED, at=1.0)
    with pytest.raises(StoreError, match=f"no trial {missing}"):
        store.update_trial(missing, last_step=3)
    with pytest.raises(StoreError, match=f"no trial {missing}"):
        store.add_points(missing, [("loss", 1, 1.0, 0.0)])
    assert store.trial_events(missing) == []
    assert [row["ray_id"] for row in store.trials("s1")] == ["a"]  # nothing was written


def test_unknown_sweep_ids(store: Store) -> None:
    """Writes to an unknown sweep raise; reads of its parts are empty; `sweep` is None."""
    with pytest.raises(StoreError, match="no sweep 'nope'.*sweepscope ls"):
        store.add_trial("nope", "a", {})
    with pytest.raises(StoreError, match="no sweep 'nope'"):
        store.request_stop("nope")
    assert store.sweep("nope") is None
    assert store.trials("nope") == [] and store.trial_ids("nope") == {}
    assert store.stop_requests("nope") == (False, set())
    assert store.points("nope").empty and len(store.point_columns("nope")) == 0


@pytest.mark.parametrize("status", ["done", "running", "interrupted", "COMPLETED", "", None])
def test_finish_sweep_takes_only_a_final_status(store: Store, status: object) -> None:
    _sweep(store)
    with pytest.raises(StoreError) as raised:
        store.finish_sweep("s1", status)  # type: ignore[arg-type]
    message = str(raised.value)
    assert f"finish_sweep: status={status!r} is not allowed" in message
    assert "'completed', 'failed', 'stopped'" in message and "SweepStatus" in message
    assert store.sweep("s1")["status"] == "running"  # type: ignore[index]


@pytest.mark.parametrize("status", ["finished", "Running", "", 3])
def test_set_trial_status_takes_only_a_trial_status(store: Store, status: object) -> None:
    _sweep(store)
    tid = store.add_trial("s1", "a", {})
    with pytest.raises(StoreError) as raised:
        store.set_trial_status(tid, status)  # type: ignore[arg-type]
    message = str(raised.value)
    assert f"set_trial_status: status={status!r} is not allowed" in message
    assert ", ".join(repr(str(s)) for s in TrialStatus) in message
    assert store.trial(tid)["status"] == TrialStatus.PENDING
    assert [e["status"] for e in store.trial_events(tid)] == [TrialStatus.PENDING]


def test_statuses_are_taken_as_enums_or_their_text(store: Store) -> None:
    _sweep(store)
    tid = store.add_trial("s1", "a", {})
    for status in ("running", TrialStatus.STOPPED_BY_USER):
        store.set_trial_status(tid, status)
        assert store.trial(tid)["status"] == status
    store.finish_sweep("s1", SweepStatus.STOPPED)
    assert store.sweep("s1")["status"] == "stopped"  # type: ignore[index]
    store.reopen_sweep("s1")
    store.finish_sweep("s1", "failed")
    assert store.sweep("s1")["status"] == "failed"  # type: ignore[index]


def test_duplicate_sweep_id_is_an_error(store: Store) -> None:
    _sweep(store)
    with pytest.raises(StoreError, match="IntegrityError"):
        _sweep(store)


def test_add_trial_is_idempotent(store: Store) -> None:
    _sweep(store)
    first = store.add_trial("s1", "ray_0", {"lr": 0.1, "batch_norm": True})
    again = store.add_trial("s1", "ray_0", {"lr": 0.1, "batch_norm": True})
    other = store.add_trial("s1", "ray_1", {"lr": 0.01, "batch_norm": False})
    assert first == again != other
    trials = store.trials("s1")
    assert [t["ray_id"] for t in trials] == ["ray_0", "ray_1"]
    assert trials[0]["config"] == {"lr": 0.1, "batch_norm": True}
    assert trials[0]["status"] == TrialStatus.PENDING
    assert [e["status"] for e in store.trial_events(first)] == [TrialStatus.PENDING]


def test_status_changes_are_recorded_with_times(store: Store) -> None:
    _sweep(store)
    tid = store.add_trial("s1", "ray_0", {})
    store.set_trial_status(tid, TrialStatus.RUNNING, node="host-a", device="cpu")
    store.update_trial(tid, last_step=10, last_epoch=1)
    store.set_trial_status(tid, TrialStatus.COMPLETED)
    (trial,) = store.trials("s1")
    assert trial["status"] == TrialStatus.COMPLETED
    assert trial["node"] == "host-a" and trial["device"] == "cpu"
    assert trial["last_step"] == 10 and trial["last_epoch"] == 1
    assert trial["started_at"] <= trial["ended_at"]
    assert [e["status"] for e in store.trial_events(tid)] == [
        TrialStatus.PENDING,
        TrialStatus.RUNNING,
        TrialStatus.COMPLETED,
    ]
    with pytest.raises(ValueError, match="unknown trial fields"):
        store.update_trial(tid, colour="red")


def test_points_are_idempotent_and_incremental(store: Store) -> None:
    _sweep(store)
    a = store.add_trial("s1", "a", {})
    b = store.add_trial("s1", "b", {})
    store.add_points(a, [("train_loss", s, 1.0 / s, 100.0 + s) for s in range(1, 11)])
    store.add_points(a, [("train_loss", s, 99.0, 0.0) for s in range(5, 11)])  # a retry
    store.add_points(b, [("train_loss", 1, 2.0, 1.0), ("val_acc", 1, 0.5, 1.0)])
    everything = store.points("s1")
    assert len(everything) == 12
    assert list(everything.columns) == ["id", "trial_id", "metric", "step", "value", "wall_time"]
    a_loss = everything[everything.trial_id == a].set_index("step")["value"]
    assert a_loss[5] == pytest.approx(0.2)  # the first write wins
    assert everything["id"].is_monotonic_increasing

    seen = int(everything["id"].max())
    store.add_points(b, [("train_loss", 2, 1.5, 2.0)])
    new = store.points("s1", after_id=seen)
    assert new[["trial_id", "metric", "step", "value"]].values.tolist() == [
        [b, "train_loss", 2, 1.5]
    ]
    assert len(store.points("s1", metrics=["val_acc"])) == 1
    assert set(store.points("s1", trial_ids=[b])["trial_id"]) == {b}


def test_incremental_reads_follow_the_writes(store: Store) -> None:
    """Each read after `last_id` returns each new point once, whatever the writes overlap."""
    _sweep(store)
    a = store.add_trial("s1", "a", {})
    store.add_points(a, [("loss", s, float(s), 0.0) for s in (1, 3, 5)])
    full = store.point_columns("s1")
    assert full.last_id > 0 and list(full.step) == [1, 3, 5]
    assert list(full.write_id) == [full.last_id] * 3
    assert store.point_columns("s1", after_id=full.last_id).last_id == full.last_id  # nothing new

    # A retry that offers only stored points writes nothing a reader would fetch again.
    store.add_points(a, [("loss", s, 99.0, 0.0) for s in (1, 3, 5)])
    assert len(store.point_columns("s1", after_id=full.last_id)) == 0

    # Steps between stored ones, and two writes covering one range: each point comes once.
    store.add_points(a, [("loss", 2, 2.0, 0.0), ("loss", 8, 8.0, 0.0), ("acc", 4, 0.5, 0.0)])
    store.add_points(a, [("loss", s, float(s), 0.0) for s in (5, 6, 7)])  # 6, 7 within 2..8
    new = store.points("s1", after_id=full.last_id)
    assert sorted(new[["metric", "step"]].itertuples(index=False, name=None)) == [
        ("acc", 4),
        ("loss", 2),
        ("loss", 3),  # stored before, within a new write's step range: comes again, once
        ("loss", 5),
        ("loss", 6),
        ("loss", 7),
        ("loss", 8),
    ]
    assert new["id"].is_monotonic_increasing and (new["id"] > full.last_id).all()
    cols = store.point_columns("s1", after_id=full.last_id)
    assert cols.last_id == int(new["id"].max())
    assert len(store.point_columns("s1", after_id=cols.last_id)) == 0
    everything = store.points("s1")
    assert everything.groupby("metric").size().to_dict() == {"acc": 1, "loss": 7}
    assert everything.set_index(["metric", "step"])["value"][("loss", 3)] == 3.0  # first wins


def test_point_columns_match_points_and_keep_wall_times_to_the_millisecond(store: Store) -> None:
    _sweep(store)
    a = store.add_trial("s1", "a", {}, at=1_700_000_000.0)
    b = store.add_trial("s1", "b", {}, at=1_700_000_100.0)
    store.add_points(a, [("loss", s, 1.0 / s, 1_700_000_000.0 + 0.0123 * s) for s in range(1, 6)])
    store.add_points(b, [("acc", 1, float("nan"), 1_699_999_999.5), ("loss", 1, 2.0, 1e9)])
    frame = store.points("s1")
    cols = store.point_columns("s1")
    assert list(frame["trial_id"]) == list(cols.trial_id) == [a] * 5 + [b] * 2
    assert list(frame["metric"]) == [cols.metrics[i] for i in cols.metric]
    assert list(frame["step"]) == list(cols.step)
    assert np.array_equal(frame["value"].to_numpy(), cols.value, equal_nan=True)
    assert list(frame["wall_time"]) == list(cols.wall_time)
    assert frame.drop(columns="metric").dtypes.to_dict() == {
        "id": np.int64,
        "trial_id": np.int64,
        "step": np.int64,
        "value": np.float64,
        "wall_time": np.float64,
    }
    expected = [1_700_000_000.0 + 0.0123 * s for s in range(1, 6)] + [1e9, 1_699_999_999.5]
    assert np.allclose(cols.wall_time, expected, rtol=0, atol=0.0005)
    only_b = store.points("s1", trial_ids=[b], metrics=["loss"])
    assert only_b[["trial_id", "metric", "step", "value"]].values.tolist() == [[b, "loss", 1, 2.0]]
    assert store.points("s1", metrics=["nope"]).empty


def test_full_reads_of_several_trials_and_metrics_come_back_exactly(store: Store) -> None:
    """Every point of the sweep, and no other sweep's, whatever the trial and metric filters:
    in trial, metric, step order, each with its own trial's wall-time origin."""
    _sweep(store, "s1")
    _sweep(store, "s2")
    other = store.add_trial("s2", "x", {}, at=1_600_000_000.0)
    store.add_points(other, [("loss", 1, 9.0, 1_600_000_000.0), ("acc", 1, 9.0, 1_600_000_000.0)])
    a = store.add_trial("s1", "a", {}, at=1_700_000_000.0)
    empty = store.add_trial("s1", "empty", {}, at=1_700_000_050.0)
    b = store.add_trial("s1", "b", {}, at=1_700_000_100.0)
    expected = []
    for trial, origin, k in ((b, 1_700_000_100.0, 2), (a, 1_700_000_000.0, 1)):  # b first
        for metric, steps in (("lr", [3, 1, 2]), ("acc", [10, 5]), ("loss", range(1, 5))):
            points = [(metric, s, k * 100.0 + s / 8, origin + 0.25 * s) for s in steps]
            store.add_points(trial, points)
            expected += [(trial, *p) for p in points]
    store.add_points(b, [("loss", 7, float("nan"), 1_700_000_101.0)])  # a second write
    expected.append((b, "loss", 7, float("nan"), 1_700_000_101.0))

    def read(metrics: list[str] | None = None, trial_ids: list[int] | None = None) -> list[tuple]:
        frame = store.points("s1", metrics=metrics, trial_ids=trial_ids)
        assert list(frame.columns) == ["id", "trial_id", "metric", "step", "value", "wall_time"]
        assert frame["trial_id"].is_monotonic_increasing
        for _, steps in frame.groupby(["trial_id", "metric"], sort=False)["step"]:
            assert steps.is_monotonic_increasing and steps.is_unique
        rows = list(frame.drop(columns="id").itertuples(index=False, name=None))
        return [(int(t), m, int(s), str(v), round(w, 3)) for t, m, s, v, w in rows]

    def by_name(rows: list[tuple]) -> list[tuple]:  # the store orders metrics by its own ids
        return sorted(rows, key=lambda r: (r[0], r[1], r[2]))

    def want(trials: set[int], metrics: set[str]) -> list[tuple]:
        rows = [(t, m, s, str(v), round(w, 3)) for t, m, s, v, w in expected]
        return by_name([r for r in rows if r[0] in trials and r[1] in metrics])

    everything = {"lr", "acc", "loss"}
    assert by_name(read()) == want({a, b}, everything)
    assert len(read()) == 19
    assert by_name(read(metrics=["acc", "lr"])) == want({a, b}, {"acc", "lr"})
    assert by_name(read(trial_ids=[b, empty])) == want({b}, everything)
    assert by_name(read(trial_ids=[b, a], metrics=["loss"])) == want({a, b}, {"loss"})
    assert by_name(read(trial_ids=[a, other], metrics=["lr", "nope"])) == want({a}, {"lr"})
    assert read(trial_ids=[]) == [] and read(metrics=[]) == [] and read(trial_ids=[empty]) == []
    cols = store.point_columns("s1")
    frame = store.points("s1")
    assert list(cols.trial_id) == list(frame["trial_id"]) and list(cols.step) == list(frame["step"])
    assert set(cols.write_id) == {cols.last_id} and set(frame["id"]) == {cols.last_id}
    assert store.point_columns("s1", after_id=cols.last_id).last_id == cols.last_id
    assert len(store.point_columns("s1", after_id=cols.last_id)) == 0


def test_other_sweeps_points_stay_apart(store: Store) -> None:
    _sweep(store, "s1")
    _sweep(store, "s2")
    store.add_points(store.add_trial("s1", "x", {}), [("train_loss", 1, 1.0, 0.0)])
    store.add_points(store.add_trial("s2", "x", {}), [("train_loss", 1, 2.0, 0.0)])
    assert store.points("s1")["value"].tolist() == [1.0]
    assert store.points("s2")["value"].tolist() == [2.0]
    # A sweep's last write is its own: another sweep's later writes are not skipped past.
    first = store.point_columns("s1").last_id
    assert store.point_columns("s2").last_id > first
    store.add_points(store.trial_ids("s1")["x"], [("train_loss", 2, 3.0, 0.0)])
    assert store.points("s1", after_id=first)["value"].tolist() == [3.0]


@pytest.mark.parametrize(("mode", "best"), [("max", 0.9), ("min", 0.1)])
def test_sweep_counts_and_best(store: Store, mode: str, best: float) -> None:
    """Counts are per status; best is the sweep's metric over every trial, finished or not."""
    _sweep(store, mode=mode)
    done = store.add_trial("s1", "a", {})
    running = store.add_trial("s1", "b", {})
    store.add_trial("s1", "c", {})  # pending
    store.set_trial_status(done, TrialStatus.COMPLETED)
    store.set_trial_status(running, TrialStatus.RUNNING)
    store.add_points(done, [("val_acc", 1, 0.1, 0.0), ("val_acc", 2, 0.5, 0.0)])
    # The max is the running trial's: a live sweep's best includes trials still running.
    # The other metric's values lie beyond both ends: best reads the sweep's metric only.
    store.add_points(
        running,
        [("val_acc", 1, 0.9, 0.0), ("train_loss", 1, 7.0, 0.0), ("train_loss", 2, -7.0, 0.0)],
    )
    _sweep(store, "s2", mode=mode)  # another sweep's points beyond both ends count for s2 only
    store.add_points(
        store.add_trial("s2", "a", {}), [("val_acc", 1, 5.0, 0.0), ("val_acc", 2, -5.0, 0.0)]
    )
    sweep = store.sweep("s1")
    assert sweep is not None
    assert sweep["counts"] == {
        TrialStatus.COMPLETED: 1,
        TrialStatus.RUNNING: 1,
        TrialStatus.PENDING: 1,
    }
    assert sweep["best"] == pytest.approx(best)
    assert {s["id"]: s["best"] for s in store.sweeps()}["s1"] == pytest.approx(best)


def test_stop_requests(store: Store) -> None:
    _sweep(store)
    running = store.add_trial("s1", "run", {})
    done = store.add_trial("s1", "done", {})
    store.set_trial_status(running, TrialStatus.RUNNING)
    store.set_trial_status(done, TrialStatus.COMPLETED)
    assert store.stop_requests("s1") == (False, set())
    assert store.request_stop("s1", running) is True
    assert store.request_stop("s1", running) is True  # repeating changes nothing
    assert store.request_stop("s1", done) is False  # finished: a no-op
    assert store.stop_requests("s1") == (False, {"run"})
    assert store.request_stop("s1") is True
    assert store.stop_requests("s1")[0] is True
    with pytest.raises(StoreError, match="no sweep 'zzz'"):
        store.request_stop("zzz")
    with pytest.raises(StoreError, match="has no trial 999"):
        store.request_stop("s1", 999)
    store.finish_sweep("s1", "completed")
    assert store.request_stop("s1") is False


def test_store_pickles_without_its_password(postgres_url: str) -> None:
    """Ray Tune pickles the callback (and its store) into its saved state: no password may
    reach the disk, and a handle restored from it says so instead of half-working."""
    base = sa.engine.make_url(postgres_url)
    secret = base.password or "hunter2-secret"  # a server that trusts takes any password
    url = base.set(password=secret)
    with open_store(url.render_as_string(hide_password=False), create=True) as store:
        blob = pickle.dumps(store)
        assert secret.encode() not in blob
        assert secret not in store.url
        copy = pickle.loads(blob)
        assert copy.url == store.url
        with pytest.raises(StoreError, match="restored from saved state without its credentials"):
            copy.sweeps()


def test_reader_never_creates_a_store(store_url: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="Fix: run a sweep first"):
        open_store(store_url)
    if store_url.startswith("sqlite"):
        assert not (tmp_path / "store.db").exists()
    else:
        engine = sa.create_engine(store_url)
        try:
            assert not sa.inspect(engine).has_table("points")
        finally:
            engine.dispose()


def test_sqlite_uses_wal(sqlite_store: Store) -> None:
    engine = sa.create_engine(sqlite_store.url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


def test_nan_and_inf_points_survive(store: Store) -> None:
    _sweep(store)
    tid = store.add_trial("s1", "a", {})
    store.add_points(
        tid, [("train_loss", 1, float("nan"), 0.0), ("train_loss", 2, float("inf"), 0.0)]
    )
    values = store.points("s1")["value"].tolist()
    assert values[0] != values[0] and values[1] == float("inf")


def test_both_backends_keep_values_at_the_report_limits(store: Store) -> None:
    """What report.py lets through (its MAX_* limits) is stored and read back unchanged."""
    _sweep(store)
    tid = store.add_trial("s1", "a", {})
    longest = "m" * MAX_METRIC_NAME
    store.set_trial_status(
        tid, TrialStatus.RUNNING, device="d" * MAX_INFO, node="n" * MAX_INFO, last_step=MAX_STEP
    )
    store.update_trial(tid, last_epoch=MAX_STEP)
    store.add_points(tid, [(longest, 0, 0.5, 1.0)])
    first = int(store.points("s1")["id"].max())
    store.add_points(tid, [(longest, MAX_STEP, 0.25, 2.0)])
    store.add_points(tid, [(longest, MAX_STEP, 99.0, 3.0)])  # a retry at the top step: skipped
    points = store.points("s1", metrics=[longest])
    assert points[["metric", "step", "value"]].values.tolist() == [
        [longest, 0, 0.5],
        [longest, MAX_STEP, 0.25],
    ]
    assert store.points("s1", after_id=first)["step"].tolist() == [MAX_STEP]
    (trial,) = store.trials("s1")
    assert trial["device"] == "d" * MAX_INFO and trial["node"] == "n" * MAX_INFO
    assert trial["last_step"] == MAX_STEP and trial["last_epoch"] == MAX_STEP
