"""The trial-side reporting API, outside Ray (reports collected in a list)."""

from __future__ import annotations

import math

import pytest

from runner import report
from runner.report import INFO_KEY, POINTS_KEY, STATUS_KEY

from . import trainables


def test_steps_are_batched_into_epoch_reports() -> None:
    with report.collect() as reports:
        trainables.steady({"epochs": 3, "steps_per_epoch": 10})
    assert len(reports) == 3  # one per epoch, not one per step
    first = reports[0]
    assert first["epoch"] == 1 and first["step"] == 10 and "val_acc" in first
    losses = [p for p in first[POINTS_KEY] if p[0] == "train_loss"]
    assert [p[1] for p in losses] == list(range(1, 11))
    assert [p[0] for p in first[POINTS_KEY]].count("val_acc") == 1


def test_a_long_epoch_is_flushed_every_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "FLUSH_SECONDS", 0.0)
    with report.collect() as reports:
        trainables.steady({"epochs": 1, "steps_per_epoch": 4})
    assert len(reports) == 5  # four step flushes and the epoch report
    assert reports[0]["step"] == 1 and "epoch" not in reports[0]


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
