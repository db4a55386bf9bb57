"""Which checkpoint a resumed trial continues from, on a real local filesystem (no Ray
runtime): the end-to-end case is tests/test_reliability.py."""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs
import pytest

from runner.driver.checkpoints import choose_checkpoint
from runner.protocol import CHECKPOINT_STEP_FILE

FS = pyarrow.fs.LocalFileSystem()


def _trial(tmp_path: Path, steps: dict[int, int | None]) -> Path:
    """A trial directory with checkpoint_<index> holding the step it was taken at (None:
    a plain Ray Tune checkpoint, without one)."""
    for index, step in steps.items():
        directory = tmp_path / f"checkpoint_{index:06d}"
        directory.mkdir()
        (directory / "state.pkl").write_bytes(b"state")
        if step is not None:
            (directory / CHECKPOINT_STEP_FILE).write_text(str(step))
    (tmp_path / "result.json").write_text("{}")  # not a checkpoint
    return tmp_path


def _choose(trial: Path, recorded: int, stored_step: int | None) -> str | None:
    path = choose_checkpoint(FS, str(trial), str(trial / f"checkpoint_{recorded:06d}"), stored_step)
    return Path(path).name if path else None


def test_the_recorded_checkpoint_when_it_exists_and_its_points_are_stored(tmp_path: Path) -> None:
    trial = _trial(tmp_path, {4: 50, 5: 60, 6: 70})
    assert _choose(trial, recorded=5, stored_step=70) == "checkpoint_000005"
    assert _choose(trial, recorded=5, stored_step=60) == "checkpoint_000005"


def test_a_deleted_recorded_checkpoint_gives_the_newest_the_store_covers(tmp_path: Path) -> None:
    trial = _trial(tmp_path, {6: 70, 7: 80, 8: 90})  # 5 was deleted when 7 arrived
    assert _choose(trial, recorded=5, stored_step=80) == "checkpoint_000007"
    assert _choose(trial, recorded=5, stored_step=85) == "checkpoint_000007"
    assert _choose(trial, recorded=5, stored_step=95) == "checkpoint_000008"


def test_checkpoints_past_the_stored_points_are_never_taken(tmp_path: Path) -> None:
    # The store lost the points after step 65 (the writer's queue died with the driver):
    # continuing from 7 or 8 would leave steps 66..80 missing from the curve.
    trial = _trial(tmp_path, {6: 70, 7: 80, 8: 90})
    assert _choose(trial, recorded=7, stored_step=65) is None
    assert _choose(trial, recorded=5, stored_step=None) is None  # the store has nothing


def test_an_existing_recorded_checkpoint_past_the_stored_points_gives_an_older_one(
    tmp_path: Path,
) -> None:
    trial = _trial(tmp_path, {6: 70, 7: 80})
    assert _choose(trial, recorded=7, stored_step=75) == "checkpoint_000006"


@pytest.mark.parametrize(
    ("on_storage", "recorded", "expected"),
    [
        ({5: None, 6: None}, 5, "checkpoint_000005"),  # as Ray Tune recorded
        ({6: None, 7: None}, 5, "checkpoint_000006"),  # the oldest newer one: complete
        ({2: None, 3: None}, 5, "checkpoint_000003"),  # else the newest older one
        ({}, 5, None),  # else none: the first epoch
    ],
)
def test_plain_ray_tune_checkpoints_without_a_step(
    tmp_path: Path, on_storage: dict[int, int | None], recorded: int, expected: str | None
) -> None:
    assert _choose(_trial(tmp_path, on_storage), recorded, stored_step=10) == expected


def test_a_trial_directory_that_is_gone(tmp_path: Path) -> None:
    assert _choose(tmp_path / "missing", recorded=3, stored_step=10) is None
