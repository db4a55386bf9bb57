"""The trial-side reporting API, outside Ray (reports collected in a list)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from runner import report
from runner.protocol import INFO_KEY, MAX_INFO, MAX_METRIC_NAME, MAX_STEP, POINTS_KEY, STATUS_KEY
from runner.status import TrialStatus

from . import trainables


def test_points_are_batched_into_few_reports() -> None:
    with report.collect() as reports:
        trainables.steady({"epochs": 3, "steps_per_epoch": 10})
    # A fast trial: its first step at once (its curve starts as soon as it trains), then
    # everything else in one report, not one per step.
    assert len(reports) == 2
    first, rest = reports
    assert first["step"] == 1 and [p[:2] for p in first[POINTS_KEY]] == [("train_loss", 1)]
    assert rest["epoch"] == 3 and rest["step"] == 30 and "val_acc" in rest
    losses = [p for p in rest[POINTS_KEY] if p[0] == "train_loss"]
    assert [p[1] for p in losses] == list(range(2, 31))
    assert [p[1] for p in rest[POINTS_KEY] if p[0] == "val_acc"] == [10, 20, 30]


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
        assert last[STATUS_KEY] is TrialStatus.DIVERGED and last["step"] == 7
        assert math.isinf(last[POINTS_KEY][-1][2])
        report._finish(completed=True)  # the runner's end-of-trial call, the sink still attached
    assert reports[-1] is last  # ... sent nothing: a diverged trial is never also "completed"
    assert all(r.get(STATUS_KEY) != TrialStatus.COMPLETED for r in reports)


def test_finish_sends_leftover_points_and_completion() -> None:
    with report.collect() as reports:
        report.info(device="cpu")
        report.step(1, train_loss=0.5)  # the first step goes at once, with the info
        report.step(2, train_loss=0.25)
        report._finish(completed=True)
    first, last = reports
    assert first[INFO_KEY] == {"device": "cpu"} and STATUS_KEY not in first
    assert last[STATUS_KEY] is TrialStatus.COMPLETED
    assert [p[:3] for p in last[POINTS_KEY]] == [("train_loss", 2, 0.25)]


def test_cpus_outside_ray_is_one() -> None:
    assert report.cpus() == 1


def test_epochs_a_scheduler_judges_are_reported_at_once() -> None:
    with report.collect() as reports:
        report._reset(decision_epochs=frozenset({1, 3, 9}))
        trainables.steady({"epochs": 10, "steps_per_epoch": 2})
    # None: the first step, sent at once; 10: the rest, at the end
    assert [r.get("epoch") for r in reports] == [None, 1, 3, 9, 10]


# -- what the store cannot keep is refused at report time, the same on every backend --------


def test_the_limits_are_the_store_columns() -> None:
    assert (MAX_METRIC_NAME, MAX_INFO, MAX_STEP) == (64, 128, 2**31 - 1)


@pytest.mark.parametrize(
    ("bad", "shown", "fix"),
    [
        (-1, "step=-1", "count steps from 0"),
        (MAX_STEP + 1, f"step={MAX_STEP + 1}", "pass the count of optimizer steps"),
        (1.5, "step=1.5 (float)", "pass an int"),
        (2.0, "step=2.0 (float)", "pass an int"),
        (True, "step=True (bool)", "pass an int"),
        ("3", "step='3' (str)", "pass an int"),
        (np.float32(4), "step=np.float32(4.0) (float32)", "pass an int"),
    ],
)
def test_a_step_outside_the_store_is_refused(bad: Any, shown: str, fix: str) -> None:
    with report.collect() as reports:
        with pytest.raises(ValueError) as refused:
            report.step(bad, train_loss=0.5)
        assert not report._buffer  # nothing half-recorded
    message = str(refused.value)
    assert message.startswith("report.step got " + shown)
    assert "0 to 2147483647" in message or "whole number" in message
    assert "Fix: " + fix in message
    assert reports == []


@pytest.mark.parametrize(
    ("epoch", "step", "shown"),
    [
        (-1, 1, "report.epoch got epoch=-1"),
        (2**31, 1, f"report.epoch got epoch={2**31}"),
        (1.5, 1, "report.epoch got epoch=1.5 (float)"),
        (1, -5, "report.epoch got step=-5"),
        (1, 0.5, "report.epoch got step=0.5 (float)"),
    ],
)
def test_an_epoch_or_its_step_outside_the_store_is_refused(
    epoch: Any, step: Any, shown: str
) -> None:
    with report.collect() as reports:
        with pytest.raises(ValueError, match="Fix: ") as refused:
            report.epoch(epoch, step=step, val_acc=0.5)
        assert not report._buffer and not report._latest
    assert str(refused.value).startswith(shown)
    assert reports == []


def test_a_huge_step_is_shortened_in_the_message() -> None:
    with report.collect(), pytest.raises(ValueError) as refused:
        report.step(10**200, train_loss=0.5)
    message = str(refused.value)
    assert "report.step got step=1000" in message and " ... " in message and "Fix: " in message
    assert len(message) < 300
    with report.collect(), pytest.raises(ValueError, match="bits"):  # past str()'s digit limit
        report.step(10**5000, train_loss=0.5)


@pytest.mark.parametrize(
    ("name", "shown", "fix"),
    [
        ("x" * (MAX_METRIC_NAME + 1), f"'{'x' * 65}', 65 characters", "shorten the name"),
        ("", "''", "name the metric"),
    ],
)
def test_a_metric_name_the_store_cannot_keep_is_refused(name: str, shown: str, fix: str) -> None:
    for call in (
        lambda: report.step(1, **{name: 0.5}),
        lambda: report.epoch(1, step=1, **{name: 0.5}),
    ):
        with report.collect() as reports:
            with pytest.raises(ValueError) as refused:
                call()
            assert not report._buffer and not report._latest
        message = str(refused.value)
        assert f"got the metric name {shown};" in message
        assert "at most 64 characters" in message and f"Fix: {fix}" in message
        assert reports == []


def test_a_refused_name_stays_refused_and_a_good_one_is_checked_once() -> None:
    long = "n" * 100
    with report.collect():
        for _ in range(2):  # a refusal is not remembered as checked
            with pytest.raises(ValueError, match="100 characters"):
                report.step(1, ok=1.0, **{long: 0.5})
        assert long not in report._names and "ok" in report._names


def test_a_huge_metric_name_is_shortened_in_the_message() -> None:
    with report.collect(), pytest.raises(ValueError) as refused:
        report.step(1, **{"m" * 100_000: 0.5})
    message = str(refused.value)
    assert "100000 characters" in message and " ... " in message and len(message) < 400


def test_a_metric_name_that_is_not_a_str_is_refused() -> None:
    # Python refuses non-str keywords itself; the check still covers any other way in.
    with pytest.raises(ValueError, match=r"metric name 7 \(int\).*Fix: name it with a str"):
        report._check_names("report.step", {7: 0.5})  # type: ignore[dict-item]


def test_an_info_value_the_store_cannot_keep_is_refused() -> None:
    with report.collect() as reports:
        with pytest.raises(ValueError) as refused:
            report.info(device="cuda:0 " + "x" * MAX_INFO)
        report._finish()
    message = str(refused.value)
    assert message.startswith("report.info got device='cuda:0 xxx")
    assert f"{MAX_INFO + 7} characters" in message and "at most 128" in message
    assert "Fix: describe the device in 128 characters or fewer" in message
    assert reports == []  # not stored, not even the part that fits


def test_values_at_the_limits_are_accepted() -> None:
    longest = "m" * MAX_METRIC_NAME
    with report.collect() as reports:
        report.info(device="d" * MAX_INFO, node="n" * MAX_INFO)
        assert report.step(0, **{longest: 0.5})
        assert report.step(np.int64(MAX_STEP), train_loss=0.25)
        report.epoch(0, step=0, val_acc=0.1)
        report.epoch(np.int32(MAX_STEP), step=MAX_STEP, **{longest: 0.75})
    points = [p[:3] for r in reports for p in r[POINTS_KEY]]
    assert points == [
        (longest, 0, 0.5),
        ("train_loss", MAX_STEP, 0.25),
        ("val_acc", 0, 0.1),
        (longest, MAX_STEP, 0.75),
    ]
    assert all(type(p[1]) is int for r in reports for p in r[POINTS_KEY])  # numpy ints unwrapped
    assert reports[-1]["epoch"] == MAX_STEP and type(reports[-1]["epoch"]) is int
    assert reports[0][INFO_KEY] == {"device": "d" * MAX_INFO, "node": "n" * MAX_INFO}
