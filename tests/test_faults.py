"""The store blinks in the middle of a real sweep; the sweep goes on and loses nothing.

Each test runs `sweepscope run` as a subprocess (real Ray, real store) and breaks the store
once the first points are in: a PostgreSQL restart (20 s down), an SQLite write lock held
for 75 s (the writer's calls wait 5 s for it, then fail and are retried), and a
PostgreSQL server that stays down past `--store-outage-limit` (the sweep stops, resumable,
and `sweepscope resume` writes the held points first), and the driver interrupted (Ctrl-C,
SIGTERM, SIGKILL) while PostgreSQL is down and points are held: they are on disk as they
are held, and `resume` writes them. Every trial must end with exactly
the points `tests.trainables.steady_points` computes from the trainable's definition: what
an uninterrupted run stores (tests/test_cli.py checks an uninterrupted `steady` sweep
against the same steps), none lost, none doubled.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.driver.writer import SPILL_FILE, StoreWriter
from runner.errors import StoreError
from runner.store import open_store
from tests.helpers.faults import PrivatePostgres, hold_sqlite_lock
from tests.helpers.paths import REPO

from .trainables import steady_points

SWEEPSCOPE = str(Path(sys.executable).with_name("sweepscope"))
SCALES = [1.0, 2.0, 3.0, 4.0]  # four trials; `resources: {cpu: 1}` runs two at once on 2 cores


def _spec(tmp_path: Path, name: str, *, epochs: int, steps_per_epoch: int, sleep: float) -> Path:
    body = {
        "name": name,
        "trainable": "tests.trainables:steady",
        "metric": "val_acc",
        "mode": "max",
        "stop": {"epochs": epochs},
        "resources": {"cpu": 1},
        "max_concurrent": 2,
        "fixed": {"steps_per_epoch": steps_per_epoch, "sleep": sleep},
        "grid": {"scale": SCALES},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


class Run:
    """`sweepscope ARGS` in its own process group, its output in files (no pipe to fill)."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = tmp_path / "run.out", tmp_path / "run.err"
        env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [SWEEPSCOPE, *args], cwd=REPO, env=env, stdout=out, stderr=err,
                start_new_session=True,
            )  # fmt: skip
        self.ended_at: float | None = None

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def output(self) -> str:
        """Both streams, for assertion messages."""
        return f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"

    def wait(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running after {timeout} s\n{self.output()}") from None
        self.ended_at = time.time()
        return code

    def kill(self) -> None:
        """End the driver and the Ray it started (a failed test leaves nothing running)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:
        run.kill()


def _start(runs: list[Run], tmp_path: Path, *args: str) -> Run:
    run = Run(tmp_path, *args)
    runs.append(run)
    return run


def _first_points(url: str, run: Run, timeout: float = 120.0) -> str:
    """Wait until the sweep has points in the store; returns its id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.proc.poll() is not None:
            raise AssertionError(f"the run ended before any point\n{run.output()}")
        try:
            with open_store(url) as store:
                sweeps = store.sweeps()
                if sweeps and not store.points(sweeps[0]["id"]).empty:
                    return str(sweeps[0]["id"])
        except StoreError:
            pass  # no schema yet
        time.sleep(0.25)
    run.kill()
    raise AssertionError(f"no point in the store after {timeout} s\n{run.output()}")


def _check_sweep(url: str, sweep_id: str, spec: Path, run: Run) -> dict[str, Any]:
    """Every trial completed, once, with exactly the points of an uninterrupted run."""
    fixed = yaml.safe_load(spec.read_text())
    with open_store(url) as store:
        sweep = store.sweep(sweep_id)
        trials = store.trials(sweep_id)
        points = store.points(sweep_id)
        events = {t["id"]: [e["status"] for e in store.trial_events(t["id"])] for t in trials}
    diag = run.output()
    assert sweep is not None and sweep["status"] == "completed", (sweep, diag)
    assert sorted(t["config"]["scale"] for t in trials) == SCALES, diag
    for t in trials:
        assert t["status"] == "completed", (t, diag)
        assert events[t["id"]].count("completed") == 1, (events[t["id"]], diag)
    keys = ["trial_id", "metric", "step"]
    doubled = points[points.duplicated(keys, keep=False)]
    assert doubled.empty, f"points stored twice:\n{doubled}"
    for t in trials:
        config = {**fixed["fixed"], "epochs": fixed["stop"]["epochs"]}
        config["scale"] = t["config"]["scale"]
        expected = steady_points(config)
        # the trial's own points (sys/ load samples depend on how long it ran)
        mine = points[(points.trial_id == t["id"]) & ~points.metric.str.startswith("sys/")]
        got = {
            metric: sorted(zip(group.step.tolist(), group.value.tolist(), strict=True))
            for metric, group in mine.groupby("metric")
        }
        counts = {m: len(v) for m, v in got.items()}
        want = {m: len(v) for m, v in expected.items()}
        assert counts == want, f"trial scale={t['config']['scale']}: {counts} != {want}\n{diag}"
        for metric, pairs in expected.items():
            assert [s for s, _ in got[metric]] == [s for s, _ in pairs], (metric, diag)
            assert all(
                math.isclose(v, w, rel_tol=1e-9)
                for (_, v), (_, w) in zip(got[metric], pairs, strict=True)
            ), (metric, diag)
    return {"sweep": sweep, "trials": trials, "points": len(points)}


# The progress line while the store is away (stderr is not a TTY: a line every 10 s).
AWAY = re.compile(r"\| store away \d\d:\d\d, ([\d,]+) points held$", re.MULTILINE)


def _said_store_away(run: Run) -> None:
    """The note and a progress line with points held, as the CLI prints them."""
    err = run.stderr
    assert "the store is not answering; trials go on" in err, run.output()
    held = [int(n.replace(",", "")) for n in AWAY.findall(err)]
    assert any(n > 0 for n in held), f"no progress line with points held\n{run.output()}"


# -- a. PostgreSQL restarts mid-sweep -----------------------------------------------------------
@pytest.mark.ray
def test_postgres_restart_mid_sweep_loses_nothing(
    tmp_path: Path, pg: PrivatePostgres, runs: list[Run]
) -> None:
    url = pg.create_database("sweeps")
    # 4 trials of 18 s (6 epochs x 30 steps x 0.1 s), two at a time: about 36 s of training
    spec = _spec(tmp_path, "pg_outage", epochs=6, steps_per_epoch=30, sleep=0.1)
    run = _start(runs, tmp_path, "run", str(spec), "--store", url,
                 "--storage-path", str(tmp_path / "ray"))  # fmt: skip
    sweep_id = _first_points(url, run)
    outage = pg.outage(20.0)  # stop, 20 s down, start: blocks throughout
    assert run.proc.poll() is None, f"the sweep ended during the outage\n{run.output()}"
    code = run.wait(timeout=240)
    assert code == 0, run.output()
    assert "Traceback" not in run.stderr, run.output()
    assert outage.down_seconds is not None and outage.down_seconds >= 20.0
    _said_store_away(run)
    assert "the store answers again" in run.stderr, run.output()
    _check_sweep(url, sweep_id, spec, run)


# -- b. another process holds the SQLite store's write lock for 75 s ----------------------------
@pytest.mark.ray
def test_sqlite_lock_past_the_busy_timeout_loses_nothing(tmp_path: Path, runs: list[Run]) -> None:
    db = tmp_path / "store.db"
    url = f"sqlite:///{db}"
    # 4 trials of 50 s (10 epochs x 50 steps x 0.1 s), two at a time: about 100 s of training,
    # so the lock (75 s from the first point) is gone before the sweep ends
    spec = _spec(tmp_path, "sqlite_lock", epochs=10, steps_per_epoch=50, sleep=0.1)
    run = _start(runs, tmp_path, "run", str(spec), "--store", url,
                 "--storage-path", str(tmp_path / "ray"))  # fmt: skip
    sweep_id = _first_points(url, run)
    with hold_sqlite_lock(db, 75.0) as lock:
        code = run.wait(timeout=300)  # the lock lets go on its own meanwhile
    assert code == 0, run.output()
    assert "Traceback" not in run.stderr, run.output()
    assert lock.locked_at is not None and lock.released_at is not None, run.output()
    assert not lock.released_early
    assert lock.released_at - lock.locked_at >= 75.0
    assert run.ended_at is not None and lock.released_at < run.ended_at
    _said_store_away(run)
    _check_sweep(url, sweep_id, spec, run)


# -- c. the store stays away past --store-outage-limit: stopped, then resumed --------------------
@pytest.mark.ray
def test_outage_past_the_limit_stops_resumably_and_resume_writes_the_rest(
    tmp_path: Path, pg: PrivatePostgres, runs: list[Run]
) -> None:
    url = pg.create_database("sweeps")
    storage = tmp_path / "ray"
    # 4 trials of 12 s (6 epochs x 20 steps x 0.1 s): the limit is reached while they run
    spec = _spec(tmp_path, "pg_gone", epochs=6, steps_per_epoch=20, sleep=0.1)
    run = _start(runs, tmp_path, "run", str(spec), "--store", url, "--storage-path",
                 str(storage), "--store-outage-limit", "5")  # fmt: skip
    sweep_id = _first_points(url, run)
    pg.stop()
    code = run.wait(timeout=180)
    assert code == 1, run.output()
    err = run.stderr
    assert "Traceback" not in err, run.output()
    spill = storage / sweep_id / SPILL_FILE
    # The last thing on stderr is one paragraph, one line: what failed, the file, the fix.
    paragraph = err.strip().splitlines()[-1]
    assert paragraph.startswith("sweepscope run: error:"), run.output()
    assert str(spill) in paragraph, run.output()
    assert f"sweepscope resume {sweep_id}" in paragraph and "Fix:" in paragraph, run.output()
    held = re.search(r"the ([\d,]+) points and the status changes the store missed", paragraph)
    assert held is not None, run.output()
    log = Path(paragraph.rsplit("(details: ", 1)[-1].rstrip(")"))
    assert log.is_file() and "Traceback" in log.read_text(), run.output()
    log.unlink()  # the CLI's log lands in the repo's .sweepscope/logs: leave none behind
    # Everything else on stderr is the progress line and its notes: no other error text.
    others = [line for line in err.strip().splitlines()[:-1] if "error" in line.lower()]
    assert not others, run.output()
    assert spill.is_file() and spill.stat().st_size > 0, run.output()
    assert "the store is not answering" in err, run.output()

    pg.start()  # the store is back: resume writes the held points first, then continues
    resume = _start(runs, tmp_path / "resume", "resume", sweep_id, "--store", url)
    code = resume.wait(timeout=240)
    assert code == 0, f"{run.output()}\n=== resume ===\n{resume.output()}"
    assert "Traceback" not in resume.stderr, resume.output()
    assert not spill.exists(), resume.output()
    assert f"wrote {held.group(1)} points the store had missed" in resume.stderr, resume.output()
    _check_sweep(url, sweep_id, spec, resume)


# -- d. the driver interrupted while the store is away and points are held ----------------------
def _spilled_points(path: Path) -> int:
    """Points in a spill file (whole lines only: the writer may be appending)."""
    if not path.exists():
        return 0
    total = 0
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            kind, _, args = json.loads(line)
            total += len(args["points"]) if kind == "points" else 0
    return total


@pytest.mark.ray
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_interrupted_while_the_store_is_away_keeps_every_point(
    tmp_path: Path, pg: PrivatePostgres, runs: list[Run], sig: str
) -> None:
    """Ctrl-C, SIGTERM (SLURM, Kubernetes) or SIGKILL while PostgreSQL is down: the points
    held reach the spill file as they are held; Ctrl-C and SIGTERM return within seconds,
    say where the points are (not "in the store"), and leave the sweep resumable; after the
    store is back, `resume` writes them and completes the sweep with exactly the points of
    an uninterrupted run."""
    url = pg.create_database("sweeps")
    storage = tmp_path / "ray"
    # 4 trials of 15 s (5 epochs x 30 steps x 0.1 s), two at a time
    spec = _spec(tmp_path, f"away_{sig.lower()}", epochs=5, steps_per_epoch=30, sleep=0.1)
    run = _start(runs, tmp_path, "run", str(spec), "--store", url,
                 "--storage-path", str(storage))  # fmt: skip
    sweep_id = _first_points(url, run)
    spill = storage / sweep_id / SPILL_FILE
    pg.stop()
    deadline = time.monotonic() + 60
    while _spilled_points(spill) < 50:  # held on disk while the driver still runs
        assert run.proc.poll() is None and time.monotonic() < deadline, run.output()
        time.sleep(0.2)
    assert stat.S_IMODE(spill.stat().st_mode) == 0o600
    signalled = time.monotonic()
    if sig == "SIGKILL":
        os.killpg(run.proc.pid, signal.SIGKILL)  # the driver and its Ray: nothing unwinds
        run.wait(timeout=30)
    else:
        os.kill(run.proc.pid, getattr(signal, sig))
        code = run.wait(timeout=60)
        took = time.monotonic() - signalled
        assert code == 130, run.output()
        assert took < 30, f"{sig} took {took:.0f} s to return\n{run.output()}"
        err = run.stderr
        assert "Traceback" not in err, run.output()
        assert str(spill) in err and "not in the store yet" in err, run.output()
        assert "points are in the store" not in err, run.output()
        assert f"sweepscope resume {sweep_id}" in err, run.output()
    held = _spilled_points(spill)
    assert held >= 50, run.output()

    pg.start()
    resume = _start(runs, tmp_path / "resume", "resume", sweep_id, "--store", url)
    code = resume.wait(timeout=240)
    assert code == 0, f"{run.output()}\n=== resume ===\n{resume.output()}"
    assert "Traceback" not in resume.stderr, resume.output()
    assert re.search(r"wrote [\d,]+ points the store had missed", resume.stderr), resume.output()
    assert not spill.exists(), resume.output()  # the sweep completed: nothing is held
    _check_sweep(url, sweep_id, spec, resume)


# -- e. resume after the store returns, with nothing left to run; a spill file not here --------
def _gave_up_with_held_writes(tmp_path: Path) -> tuple[str, str, Path]:
    """A sweep whose every trial completed while another process held the SQLite store's
    write lock: the driver gave up and its last writes (the points, the completions, the
    sweep's end) are only in the spill file; then the driver exited, as one that gave up
    does (a live one is refused by resume). Returns (url, sweep id, spill file)."""
    code = f"from tests.test_faults import _give_up_holding_writes as g; g({str(tmp_path)!r})"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return f"sqlite:///{tmp_path / 'held.db'}", "held-1", tmp_path / "ray" / "held-1" / SPILL_FILE


def _give_up_holding_writes(directory: str) -> None:
    """The driver of `_gave_up_with_held_writes`, in a process of its own."""
    tmp_path = Path(directory)
    db = tmp_path / "held.db"
    url, sweep_id = f"sqlite:///{db}", "held-1"
    spill = tmp_path / "ray" / sweep_id / SPILL_FILE
    store = open_store(url, create=True)
    try:
        store.create_sweep(sweep_id, name="held", spec={"name": "held"}, metric="loss",
                           mode="min", n_trials=1, storage_path=str(tmp_path / "ray"))  # fmt: skip
        store.set_spill_path(sweep_id, str(spill))
        writer = StoreWriter(store, sweep_id, spill_path=spill, outage_limit=1.0,
                             call_timeout=0.3)  # fmt: skip
        writer.add_trial("t1", {"lr": 0.1})
        writer.set_status("t1", "running")
        writer.add_points("t1", [("loss", s, 1.0 / s, time.time()) for s in range(1, 6)])
        assert writer.flush(timeout=10)
        with hold_sqlite_lock(db, 60.0):
            writer.add_points("t1", [("loss", s, 1.0 / s, time.time()) for s in range(6, 11)])
            writer.set_status("t1", "completed")
            writer.finish_sweep("completed")
            assert not writer.close()  # gave up: the lock outlasted the outage limit
            assert writer.spill() == spill
    finally:
        store.close()


@pytest.mark.slow  # a lock held out, then a `sweepscope resume`
def test_resume_after_the_store_returns_writes_the_held_points_and_exits_0(
    tmp_path: Path,
) -> None:
    url, sweep_id, spill = _gave_up_with_held_writes(tmp_path)
    done = subprocess.run([SWEEPSCOPE, "resume", sweep_id, "--store", url], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wrote 5 points the store had missed" in done.stderr, done.stderr
    assert "no trial left to run" in done.stderr, done.stderr
    assert f"sweep {sweep_id} completed" in done.stdout, done.stdout
    with open_store(url) as store:
        sweep = store.sweep(sweep_id)
        assert sweep is not None and sweep["status"] == "completed"
        assert sweep["spill_path"] is None
        assert sorted(store.points(sweep_id)["step"].tolist()) == list(range(1, 11))
    assert not spill.exists()


@pytest.mark.slow  # a lock held out, then two `sweepscope resume`s
def test_resume_says_when_the_spill_file_is_not_here(tmp_path: Path) -> None:
    url, sweep_id, spill = _gave_up_with_held_writes(tmp_path)
    moved = spill.rename(tmp_path / "elsewhere.jsonl")  # as seen from another host
    done = subprocess.run([SWEEPSCOPE, "resume", sweep_id, "--store", url], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert str(spill) in done.stderr and f"touch {spill}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    moved.rename(spill)  # the file back where the store says: resume finds it
    done = subprocess.run([SWEEPSCOPE, "resume", sweep_id, "--store", url], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_the_spill_file_of_cloud_storage_is_the_same_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.driver.storage import spill_dir

    monkeypatch.chdir(tmp_path)
    here = spill_dir("s3://bucket/sweeps", "sw-1")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert spill_dir("s3://bucket/sweeps", "sw-1") == here
    assert here.is_absolute() and tmp_path not in here.parents
