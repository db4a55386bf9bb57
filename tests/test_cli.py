"""The sweepscope CLI end to end: real processes, a real Ray runtime, a real store."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from runner.cli import main
from runner.errors import StoreError
from runner.store import Store, open_store
from tests.helpers.cli import SWEEPSCOPE, cli, cli_here, write_spec
from tests.helpers.paths import REPO
from tests.helpers.waiting import wait_for

MIXED = """\
name: mixed
trainable: tests.trainables:mixed
stop: {epochs: 4}
max_concurrent: 2
fixed: {steps_per_epoch: 10, sleep: 0.02}
grid:
  kind: [steady, raises, diverges, steady]
  layers: [[64, 32]]  # a list value stays whole
"""


@pytest.mark.ray
def test_run_records_every_ending_and_runs_trials_in_parallel(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    done = cli("run", str(write_spec(tmp_path, MIXED)), "--store", url)
    assert done.returncode == 0, done.stderr
    assert "sweep mixed-" in done.stdout and f"store: {url}" in done.stdout
    assert "Traceback" not in done.stderr

    with open_store(url) as store:
        (sweep,) = store.sweeps()
        assert sweep["status"] == "completed"
        trials = store.trials(sweep["id"])
        assert all(t["config"]["layers"] == [64, 32] for t in trials)
        assert not any(k.startswith("__") for t in trials for k in t["config"])
        by_kind = sorted((t["config"]["kind"], t["status"]) for t in trials)
        assert by_kind == [
            ("diverges", "diverged"),
            ("raises", "error"),
            ("steady", "completed"),
            ("steady", "completed"),
        ]
        failed = next(t for t in trials if t["status"] == "error")
        assert "boom at step 5" in failed["error"]
        points = store.points(sweep["id"])
        assert sorted(points[points.trial_id == failed["id"]]["step"]) == [1, 2, 3, 4, 5]
        steady = [t for t in trials if t["status"] == "completed"]
        for t in steady:
            losses = points[(points.trial_id == t["id"]) & (points.metric == "train_loss")]
            assert sorted(losses["step"]) == list(range(1, 41))
            assert t["node"] and t["last_epoch"] == 4
        spans = sorted((t["started_at"], t["ended_at"]) for t in steady)
        assert len(trials) == 4
        # two trials at once on two cores: some pair of trials overlaps in time
        intervals = sorted((t["started_at"], t["ended_at"]) for t in trials)
        assert any(b0 < a1 for (_, a1), (b0, _) in zip(intervals, intervals[1:], strict=False)), (
            spans
        )

    listing = cli("ls", "--store", url)
    assert (
        listing.returncode == 0 and sweep["id"] in listing.stdout and "completed" in listing.stdout
    )
    status = cli("status", sweep["id"], "--store", url)
    assert status.returncode == 0 and "diverged" in status.stdout and "error" in status.stdout

    for suffix in (".csv", ".parquet"):
        out = tmp_path / f"points{suffix}"
        exported = cli("export", sweep["id"], "-o", str(out), "--store", url)
        assert exported.returncode == 0, exported.stderr
        frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
        assert len(frame) == len(points)
        assert {"sweep_id", "trial", "metric", "step", "value", "status", "kind"} <= set(
            frame.columns
        )
        assert "trial_id" not in frame.columns  # the store's own ids stay in the store
        numbers = {t["id"]: t["number"] for t in trials}
        assert sorted(frame["trial"].unique()) == sorted(numbers.values())
        kind = frame.groupby("trial")["kind"].first().to_dict()
        assert kind == {numbers[t["id"]]: t["config"]["kind"] for t in trials}


LONG = """\
name: long
trainable: tests.trainables:steady
stop: {epochs: 200}
max_concurrent: 2
fixed: {steps_per_epoch: 5, sleep: 0.02}
grid:
  scale: [1.0, 2.0, 3.0]
"""


def _open_when_created(url: str) -> Store:
    """The store, once the runner has created its schema (the file appears a moment before)."""
    opened: list[Store] = []

    def opens() -> bool:
        try:
            opened.append(open_store(url))
        except StoreError:
            return False
        return True

    wait_for("the store", opens, 60)
    return opened[0]


@pytest.mark.ray
def test_stop_one_trial_then_ctrl_c_the_sweep(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    proc = subprocess.Popen(
        [SWEEPSCOPE, "run", str(write_spec(tmp_path, LONG)), "--store", url],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        store = _open_when_created(url)

        def running() -> list[dict]:  # type: ignore[type-arg]
            sweeps = store.sweeps()
            return (
                [
                    t
                    for t in store.trials(sweeps[0]["id"])
                    if t["status"] == "running" and t["last_step"]
                ]
                if sweeps
                else []
            )

        wait_for("two running trials", lambda: len(running()) == 2, 60)
        sweep_id = store.sweeps()[0]["id"]
        victim = running()[0]
        stopped = cli("stop", sweep_id, "--trial", str(victim["number"]), "--store", url)
        assert stopped.returncode == 0 and "stop requested" in stopped.stdout
        wait_for(
            "the trial to stop",
            lambda: (
                {t["id"]: t["status"] for t in store.trials(sweep_id)}[victim["id"]]
                == "stopped_by_user"
            ),
            20,
        )
        # the others go on: the third trial takes the freed slot
        wait_for("the next trial", lambda: len(running()) == 2, 30)

        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        sweep = store.sweep(sweep_id)
        assert sweep is not None and sweep["status"] == "stopped"
        statuses = {t["id"]: t["status"] for t in store.trials(sweep_id)}
        assert statuses[victim["id"]] == "stopped_by_user"
        assert "running" not in statuses.values() and "pending" not in statuses.values()
        again = cli("stop", sweep_id, "--trial", str(victim["number"]), "--store", url)
        assert again.returncode == 0 and "already finished" in again.stdout
        store.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _two_sweeps(store: Store) -> dict[str, list[int]]:
    """Sweeps `a` (2 trials) and `b` (3 trials, store ids 3-5 but numbers 1-3), all
    running; their trials' store ids, by sweep."""
    ids: dict[str, list[int]] = {}
    for sweep_id, n in (("a", 2), ("b", 3)):
        spec = {"trainable": "tests.trainables:steady", "grid": {"lr": list(range(n))}}
        store.create_sweep(sweep_id, name=sweep_id, spec=spec, metric="m", mode="min", n_trials=n)
        ids[sweep_id] = []
        for i in range(n):
            trial_id = store.add_trial(sweep_id, f"{sweep_id}{i}", {"lr": i})
            store.set_trial_status(trial_id, "running")
            ids[sweep_id].append(trial_id)
    return ids


# SQLite only, here and below: the CLI maps numbers to ids alike on every backend; the
# store's numbering itself is checked on both in tests/test_store.py.
def test_stop_takes_the_trial_number_within_the_sweep(
    sqlite_store: Store, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _two_sweeps(sqlite_store)
    assert main(["stop", "b", "--trial", "2", "--store", sqlite_url]) == 0
    assert "stop requested for trial 2 of sweep b" in capsys.readouterr().out
    requested = {
        (sweep_id, number + 1): sqlite_store.trial(trial_id)["stop_requested_at"] is not None
        for sweep_id, trials in ids.items()
        for number, trial_id in enumerate(trials)
    }
    assert [key for key, asked in requested.items() if asked] == [("b", 2)]

    assert main(["stop", "b", "--trial", "4", "--store", sqlite_url]) == 2
    err = capsys.readouterr().err
    assert "--trial 4" in err and "1 to 3" in err and "Traceback" not in err


def test_status_shows_trial_numbers_not_store_ids(
    sqlite_store: Store, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _two_sweeps(sqlite_store)
    capsys.readouterr()
    assert main(["status", "b", "--store", sqlite_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["trial", "status"])
    rows = [line.split() for line in lines[header + 1 :]]
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("1", "running", "0"),
        ("2", "running", "1"),
        ("3", "running", "2"),
    ]


def test_bad_spec_exits_2_with_one_paragraph_and_writes_nothing(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path, "name: t\ntrainable: tests.trainables:steady\nstop: {epochs: 1}\ngrid: {lr: []}\n"
    )
    db = tmp_path / "s.db"
    done = cli("run", str(spec), "--store", f"sqlite:///{db}")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "grid.lr" in done.stderr and "Fix:" in done.stderr and str(spec) in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not db.exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["status", "nope"], "no sweep 'nope'"),
        (["stop", "nope"], "no sweep 'nope'"),
        (["export", "nope", "-o", "x.json"], "unknown file type '.json'"),
        (["ls", "--store", "mysql://x"], "does not support"),
        (["ls", "--store", "sqlite:////nonexistent/dir/s.db"], "does not exist"),
    ],
)
def test_cli_errors_are_one_paragraph(tmp_path: Path, args: list[str], words: str) -> None:
    """What each command says (in this process: the message, not the process, is tested
    here; test_bad_spec_exits_2_with_one_paragraph_and_writes_nothing runs a real one)."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    open_store(url, create=True).close()
    if "--store" not in args:
        args = [*args, "--store", url]
    done = cli_here(*args)
    assert done.returncode == 2, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr


def test_help_everywhere() -> None:
    top = cli("--help")  # the installed command itself ...
    assert top.returncode == 0 and "usage: sweepscope" in top.stdout
    for command in (  # ... and every command's help, from its parser (in this process)
        ["run"],
        ["resume"],
        ["migrate"],
        ["ls"],
        ["status"],
        ["export"],
        ["stop"],
        ["dashboard"],
    ):
        done = cli_here(*command, "--help")
        assert done.returncode == 0 and "usage: sweepscope" in done.stdout
