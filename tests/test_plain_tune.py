"""Existing Ray Tune code under sweepscope, unchanged: trainables that report with Ray Tune's
own API (tests/plain_trainables.py) stream their curves into the store and onto the
dashboard, the spec's stop and scheduler act on them, and a spec whose metric the trials do
not report stops the sweep at once. Sweeps run through the `sweepscope` CLI, as a user runs
them. `cli` is shared with the credential and lifecycle tests."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.store import open_store
from tests.helpers.apptest import chart_steps, fresh_dashboard, live_panels, open_page
from tests.helpers.cli import SWEEPSCOPE, cli, cli_env, write_spec  # noqa: F401 (cli_env: test_dashboard_auth_browser imports it from here)
from tests.helpers.paths import REPO


def error_line(stderr: str) -> str:
    """The CLI's error paragraph (Ray and the progress line write to stderr too)."""
    lines = [line for line in stderr.splitlines() if line.startswith("sweepscope run: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


# -- the dashboard, on the store a sweep wrote ----------------------------------------------
def test_the_plain_trainables_are_plain_ray_tune_code() -> None:
    """tests/plain_trainables.py stands for a user's existing code: it imports no sweepscope."""
    check = (
        "import sys, tests.plain_trainables; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('runner', 'dashboard')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- 1. ray.tune.report, with and without step ----------------------------------------------
REPORTS = """\
name: plain_report
trainable: tests.plain_trainables:reports
metric: val_acc
mode: max
stop: {epochs: 3}
max_concurrent: 1  # one trial at a time: each next trial reuses the last one's Ray actor
fixed: {steps_per_epoch: 4}
grid:
  eval_every: [null, 2]  # null: no step, no epoch in the result; 2: both
  scale: [1.0, 2.0]
"""


@pytest.mark.ray
def test_ray_tune_report_curves_reach_the_store_and_the_dashboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    done = cli(
        "run",
        str(write_spec(tmp_path, REPORTS)),
        "--store",
        url,
        "--storage-path",
        str(tmp_path / "ray"),
        timeout=90,  # some seconds; a trial that cannot start hangs the sweep
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "completed" in done.stdout and "best trials by val_acc (max):" in done.stdout

    with open_store(url) as store:
        (sweep,) = store.sweeps()
        assert sweep["status"] == "completed"
        assert sweep["best"] == pytest.approx(1 - 1.0 / 6 / 2)  # scale 1 at its 6th report
        trials = store.trials(sweep["id"])
        points = store.points(sweep["id"])
    assert [t["status"] for t in trials] == ["completed"] * 4
    for t in trials:
        scale = t["config"]["scale"]
        mine = points[points.trial_id == t["id"]]
        own = {m for m in mine.metric if not m.startswith("sys/")}  # sys/: the trial's load
        assert own == {"loss", "val_acc"}  # every numeric metric, nothing else
        loss = mine[mine.metric == "loss"].sort_values("step")
        if t["config"]["eval_every"] is None:
            # no `step`: points at training_iteration; no `epoch`: iterations count as epochs
            assert list(loss.step) == [1, 2, 3]
            assert t["last_epoch"] == 3
        else:
            # at the reported `step`; the stop counts the reported `epoch` (4 steps each)
            assert list(loss.step) == [2, 4, 6, 8, 10, 12]
            assert t["last_epoch"] == 3 and t["last_step"] == 12
        assert list(loss.value) == pytest.approx([scale / i for i in range(1, len(loss) + 1)])

    # the Live sweep page has a panel per metric the trials reported (sys/ panels are off by
    # default) and draws every trial's curve at the steps it reported
    with fresh_dashboard():
        monkeypatch.setenv("SWEEPSCOPE_STORE", url)
        at = open_page("live", sweep=sweep["id"])
        assert not at.exception, [e.value for e in at.exception]
        panels = live_panels(at)
        assert set(panels) == {"loss", "val_acc"}
        drawn = chart_steps(panels["loss"])
    assert {trial: sorted(steps) for trial, steps in drawn.items()} == {
        t["id"]: [1, 2, 3] if t["config"]["eval_every"] is None else [2, 4, 6, 8, 10, 12]
        for t in trials
    }


# -- 2. a tune.Trainable class, the spec's stop and ASHA -------------------------------------
QUADRATIC = """\
name: plain_class
trainable: tests.plain_trainables:Quadratic
metric: loss
mode: min
stop: {epochs: 6}
scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
# one trial at a time, the good learning rate first: the poor ones meet its results at the
# rungs (ASHA lets a trial pass that has nothing to be compared with)
max_concurrent: 1
order: grid
grid:
  lr: [0.3, 0.001, 0.002]
"""


@pytest.mark.ray
def test_trainable_class_stops_at_the_spec_and_asha_prunes_the_poor_trials(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = write_spec(tmp_path, QUADRATIC)
    done = cli("run", str(spec), "--store", url, "--storage-path", str(tmp_path / "ray"))
    assert done.returncode == 0, done.stderr

    with open_store(url) as store:
        (sweep,) = store.sweeps()
        trials = {t["config"]["lr"]: t for t in store.trials(sweep["id"])}
        points = store.points(sweep["id"], metrics=["loss"])
    assert sweep["status"] == "completed"
    status = {lr: t["status"] for lr, t in trials.items()}
    assert status[0.3] == "completed"
    assert status[0.001] == status[0.002] == "pruned"
    for lr, t in trials.items():
        steps = sorted(points[points.trial_id == t["id"]].step)
        if t["status"] == "completed":  # six step() calls: training_iteration 1..6
            assert steps == [1, 2, 3, 4, 5, 6] and t["last_epoch"] == 6, lr
        else:
            assert steps == list(range(1, t["last_epoch"] + 1)) and t["last_epoch"] < 6, lr

    best = (5 * (1 - 2 * 0.3) ** 6) ** 2  # w**2 after six steps at lr 0.3
    assert sweep["best"] == pytest.approx(best)
    summary = done.stdout.split("best trials by loss (min):\n", 1)[1].splitlines()
    first = summary[1].split()  # trial, status, lr, epochs, best loss
    assert first[1:4] == ["completed", "0.300", "6"]
    assert float(first[4]) == pytest.approx(best, rel=1e-2)  # printed to 6 decimals


# -- 3. the spec's metric must be one the trials report ------------------------------------
MISSPELT = """\
name: misspelt
trainable: {trainable}
metric: val_accuracy
mode: max
stop: {{epochs: 200}}
max_concurrent: 2
fixed: {{steps_per_epoch: 5, sleep: {sleep}}}
grid:
  scale: [1.0, 2.0, 3.0, 4.0]
"""


@pytest.mark.ray
@pytest.mark.parametrize(
    ("trainable", "sleep", "reported"),
    [
        # runner.trial.report: 5 steps of 0.05 s an epoch, so 50 s a trial, 100 s the sweep
        ("tests.trainables:steady", 0.05, {"train_loss", "val_acc"}),
        # ray.tune.report: one report of 0.25 s an epoch, the same
        ("tests.plain_trainables:reports", 0.25, {"loss", "val_acc"}),
    ],
    ids=["runner_report", "ray_tune_report"],
)
def test_a_metric_the_trials_do_not_report_stops_the_sweep_at_once(
    tmp_path: Path, trainable: str, sleep: float, reported: set[str]
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = write_spec(tmp_path, MISSPELT.format(trainable=trainable, sleep=sleep))
    started = time.monotonic()
    done = cli("run", str(spec), "--store", url, "--storage-path", str(tmp_path / "ray"))
    took = time.monotonic() - started

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    error = error_line(done.stderr)
    assert "'val_accuracy' is not reported" in error and "did you mean val_acc?" in error
    named = error.split("epoch report has ", 1)[1].split(".", 1)[0]
    assert set(named.split(", ")) == reported
    # Ray starts in a few seconds; the four trials would take 100 s more
    assert took < 45, f"{took:.0f} s"
    with open_store(url) as store:
        (sweep,) = store.sweeps()
        trials = store.trials(sweep["id"])
    assert sweep["status"] == "failed" and "did you mean val_acc?" in sweep["message"]
    assert not any(t["status"] == "running" for t in trials)
    assert all((t["last_epoch"] or 0) < 10 for t in trials), [t["last_epoch"] for t in trials]
