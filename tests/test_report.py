"""The trial-side reporting API, outside Ray (reports collected in a list)."""

from __future__ import annotations

import math

import pytest

from runner import report
from runner.report import INFO_KEY, POINTS_KEY, STATUS_KEY

from . import trainables


def test_points_are_batched_into_few_reports() -> None:
    with report.collect() as reports:
        trainables.steady({"epochs": 3, "steps_per_epoch": 10})
    assert len(reports) == 1  # a fast trial: everything in one report, not one per step
    (only,) = reports
    assert only["epoch"] == 3 and only["step"] == 30 and "val_acc" in only
    losses = [p for p in only[POINTS_KEY] if p[0] == "train_loss"]
    assert [p[1] for p in losses] == list(range(1, 31))
    assert [p[1] for p in only[POINTS_KEY] if p[0] == "val_acc"] == [10, 20, 30]


def test_reports_carry_the_latest_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "FLUSH_SECONDS", 0.0)  # a report at every call
    with report.collect() as reports:
        trainables.steady({"epochs": 2, "steps_per_epoch": 3})
    assert [r["step"] for r in reports] == [1, 2, 3, 3, 4, 5, 6, 6]
    assert [r.get("epoch") for r in reports] == [None, None, None, 1, 1, 1, 1, 2]
    assert reports[4]["val_acc"] == reports[3]["val_acc"]  # step reports repeat the epoch's


def test_non_finite_loss_ends_the_trial_as_diverged() -> None:
    with report.collect() as reports:
        trainables.diverges({})
    last = reports[-1]
    assert last[STATUS_KEY] == "diverged" and last["step"] == 7
    assert math.isinf(last[POINTS_KEY][-1][2])
    report._finish(completed=True)  # the runner's end-of-trial call adds no "completed"
    assert all(r.get(STATUS_KEY) != "completed" for r in reports)


def test_finish_sends_leftover_points_and_completion() -> None:
    with report.collect() as reports:
        report.info(device="cpu")
        report.step(1, train_loss=0.5)
        report._finish(completed=True)
    assert reports[-1][STATUS_KEY] == "completed"
    assert reports[-1][INFO_KEY] == {"device": "cpu"}
    assert reports[-1][POINTS_KEY][0][:3] == ("train_loss", 1, 0.5)


def test_cpus_outside_ray_is_one() -> None:
    assert report.cpus() == 1


def test_epochs_a_scheduler_judges_are_reported_at_once() -> None:
    with report.collect() as reports:
        report._reset(decision_epochs=frozenset({1, 3, 9}))
        trainables.steady({"epochs": 10, "steps_per_epoch": 2})
    assert [r["epoch"] for r in reports] == [1, 3, 9, 10]  # 10: the rest, at the end
