"""The store blinks in the middle of a real sweep; the sweep goes on and loses nothing.

Each test runs `sweepscope run` as a subprocess (real Ray, real store) and breaks the store
once the first points are in: a PostgreSQL restart (20 s down), an SQLite write lock held
for 75 s (longer than the store's 60 s busy timeout, so writes fail and are retried), and a
PostgreSQL server that stays down past `--store-outage-limit` (the sweep stops, resumable,
and `sweepscope resume` writes the held points first). Every trial must end with exactly
the points `tests.trainables.steady_points` computes from the trainable's definition: what
an uninterrupted run stores (tests/test_cli.py checks an uninterrupted `steady` sweep
against the same steps), none lost, none doubled.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.errors import StoreError
from runner.store import open_store
from runner.writer import SPILL_FILE

from .conftest import REPO
from .faults import PrivatePostgres, hold_sqlite_lock
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
