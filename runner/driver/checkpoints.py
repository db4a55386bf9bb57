"""A resumed sweep continues each trial from a checkpoint that exists and whose points the
store holds.

Ray Tune saves its experiment state every few seconds, but deletes a trial's older
checkpoints (`num_to_keep`) as soon as newer ones arrive. A driver killed in between
(SIGKILL, out of memory, a lost node, a SLURM job killed at its limit) leaves a state that
names checkpoints which no longer exist, and Ray Tune then fails those trials ("Could not
recover from checkpoint as it does not exist on storage anymore"). The checkpoints that did
survive can be newer than the points the store received before the kill, and continuing from
one of those would leave a gap in the curve.

So before any trial restores, each unfinished trial is pointed at the newest checkpoint on
storage taken at or before the last step the store holds for it (the step is written into
every checkpoint by runner.trial.report), or, when there is none, at no checkpoint: the trial
starts again from its first epoch, and the store keeps each step once. A checkpoint without
that step (a plain Ray Tune trainable's) is trusted where Ray Tune recorded it; when that
one is gone, the oldest surviving newer one is taken.

This sets private fields of Ray Tune's trial bookkeeping (its `_CheckpointManager`), through
runner._ray_private, whose test names any of them an upgrade of Ray moves.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

import pyarrow.fs
from ray import tune

from runner import _ray_private as ray_private
from runner.protocol import CHECKPOINT_STEP_FILE

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

__all__ = ["SurvivingCheckpoints", "choose_checkpoint", "last_checkpoints"]

_NAME = re.compile(r"checkpoint_(\d+)$")


def _index(path: str) -> int | None:
    match = _NAME.search(path.rstrip("/"))
    return int(match.group(1)) if match else None


def _order(path: str) -> int:
    return _index(path) or 0


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _step(fs: pyarrow.fs.FileSystem, path: str) -> int | None:
    """The step written into a checkpoint by runner.trial.report, or None (not one of ours)."""
    try:
        with fs.open_input_stream(f"{path.rstrip('/')}/{CHECKPOINT_STEP_FILE}") as stream:
            return int(stream.readall().decode())
    except (OSError, ValueError):
        return None


def _on_storage(fs: pyarrow.fs.FileSystem, trial_path: str) -> list[str]:
    """The trial's checkpoint directories, oldest first."""
    found = fs.get_file_info(pyarrow.fs.FileSelector(trial_path, allow_not_found=True))
    paths = [
        info.path.rstrip("/")
        for info in found
        if info.type == pyarrow.fs.FileType.Directory and _index(info.path) is not None
    ]
    return sorted(paths, key=_order)


def choose_checkpoint(
    fs: pyarrow.fs.FileSystem,
    trial_path: str,
    recorded: str,
    stored_step: int | None,
    *,
    paths: list[str] | None = None,
) -> str | None:
    """The checkpoint under `trial_path` to resume from, given the one Ray Tune `recorded`
    and the last step the store holds for the trial; None: start from the first epoch.
    `paths`: the trial's checkpoint directories, when the caller has listed them."""
    held = stored_step if stored_step is not None else -1
    paths = _on_storage(fs, trial_path) if paths is None else paths
    steps = {path: _step(fs, path) for path in paths}
    recorded = recorded.rstrip("/")
    step = steps.get(recorded)
    if recorded in steps and (step is None or step <= held):
        return recorded
    ours = [(step, path) for path, step in steps.items() if step is not None]
    if ours:
        covered = [(step, path) for step, path in ours if step <= held]
        return max(covered)[1] if covered else None
    want = _index(recorded)
    newer = [path for path in steps if want is None or (_index(path) or 0) > want]
    return newer[0] if newer else (list(steps)[-1] if steps else None)


def last_checkpoints(
    storage: str, experiments: list[str], trials: dict[str, int | None]
) -> dict[str, str | None]:
    """For finished trials (Ray id -> last step stored), the checkpoint each was left with:
    the newest of runner.trial.report's (it holds its step) at or before the last stored
    step, searched in the sweep's experiments (its rounds) under `storage`; None for a
    trial with none (a trainable that never saved state, or a plain Ray Tune one)."""
    fs, root = pyarrow.fs.FileSystem.from_uri(storage)
    dirs: list[str] = []
    for experiment in experiments:
        listed = fs.get_file_info(
            pyarrow.fs.FileSelector(f"{root.rstrip('/')}/{experiment}", allow_not_found=True)
        )
        dirs += [i.path for i in listed if i.type == pyarrow.fs.FileType.Directory]
    found: dict[str, str | None] = {}
    for ray_id, last_step in trials.items():
        found[ray_id] = None
        for trial_dir in (d for d in dirs if f"_{ray_id}_" in _name(d)):
            ours = [(s, p) for p in _on_storage(fs, trial_dir) if (s := _step(fs, p)) is not None]
            held = [(s, p) for s, p in ours if last_step is None or s <= last_step]
            if held:
                path = max(held)[1]
                found[ray_id] = (
                    path if "://" not in storage else f"{storage.split('://')[0]}://{path}"
                )
    return found


class SurvivingCheckpoints(tune.Callback):
    """Before the first trial restores, repoint the trials of a resumed sweep (see above).

    `stored_steps`: the last step the store holds, by Ray Tune trial id.
    """

    def __init__(self, *, stored_steps: dict[str, int | None]) -> None:
        self._stored_steps = stored_steps
        self._checked = False

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if self._checked:
            return
        self._checked = True
        for trial in trials:
            if trial.status not in (trial.TERMINATED, trial.ERROR):
                _repoint(trial, self._stored_steps.get(trial.trial_id))


def _repoint(trial: Trial, stored_step: int | None) -> None:
    manager, trial_path = ray_private.checkpoint_manager(trial), ray_private.trial_fs_path(trial)
    latest = manager.latest_checkpoint_result if manager is not None else None
    if manager is None or trial_path is None or latest is None or latest.checkpoint is None:
        return
    fs: pyarrow.fs.FileSystem = latest.checkpoint.filesystem
    recorded = latest.checkpoint.path.rstrip("/")
    paths = _on_storage(fs, trial_path)  # listed once: storage may be remote
    path = choose_checkpoint(fs, trial_path, recorded, stored_step, paths=paths)
    if path == recorded:
        return
    kept = [
        r
        for r in ray_private.checkpoint_results(manager)
        if r.checkpoint is not None
        and r.checkpoint.path.rstrip("/") != path
        and r.checkpoint.path.rstrip("/") in paths
    ]
    replacement = None
    if path is not None:
        # The metrics are those recorded with the other checkpoint, so Tune's iteration
        # count is off by the reports in between; the trial's own epoch is in its state.
        checkpoint = tune.Checkpoint(path, filesystem=fs)
        replacement = ray_private.training_result(checkpoint, dict(latest.metrics))
        kept.append(replacement)
    ray_private.set_checkpoint_results(manager, kept, replacement)
    # The trial's next checkpoint follows the one it resumes from, or every one on storage.
    last = path or max([*paths, recorded], key=_order)
    ray_private.set_next_checkpoint_index(trial, _order(last) + 1)
    why = (
        "is past the last step the store holds"
        if recorded in paths
        else "was deleted after Ray Tune last saved its state"
    )
    print(
        f"trial {trial.trial_id}: its recorded checkpoint {_name(recorded)} {why}; "
        f"resuming from {_name(path) if path else 'its first epoch'}",
        file=sys.stderr,
    )
