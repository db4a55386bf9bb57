"""The private parts of Ray that sweepscope relies on (runner._ray_private): each is where
sweepscope reads it in the installed Ray, the check names any an upgrade moves, and no
other module reaches them. No Ray runtime is started: imports, classes, sources and
signatures only, plus Ray's own bookkeeping objects built in this process."""

from __future__ import annotations

import ast
import contextlib
import io
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import ray
from packaging.requirements import Requirement
from ray import tune
from ray.train._internal import checkpoint_manager as ray_checkpoint_manager
from ray.train._internal import session as ray_session
from ray.train._internal.storage import StorageContext
from ray.tune import tune as ray_tune_run
from ray.tune.experiment.trial import Trial
from ray.tune.progress_reporter import TrialProgressCallback
from ray.tune.trainable import trainable_fn_utils
from ray.tune.trainable.function_trainable import wrap_function

from runner import _ray_private as ray_private
from runner._ray_private import PARTS, READ_FROM, Part, problems
from tests.helpers.paths import REPO


# -- the installed Ray has every part ----------------------------------------------------
def test_the_installed_ray_has_every_private_part_sweepscope_uses() -> None:
    found = problems()
    assert not found, "\n\n".join(found)


def test_the_parts_were_read_from_the_ray_release_pyproject_pins() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    (pin,) = [Requirement(d) for d in pyproject["project"]["dependencies"] if d.startswith("ray")]
    assert READ_FROM in pin.specifier, (
        f"pyproject.toml now pins {pin}, but runner/_ray_private.py was read from Ray "
        f"{READ_FROM}. Fix: check each part in PARTS against the new Ray, then set READ_FROM."
    )
    assert ray.__version__ in pin.specifier


def test_the_module_docstring_lists_every_part() -> None:
    doc = ray_private.__doc__ or ""
    assert READ_FROM in doc
    unlisted = [f"{p.where} {p.name}" for p in PARTS if p.name not in doc]
    assert not unlisted, f"runner/_ray_private.py's docstring does not list: {unlisted}"


# -- the check fails, naming what moved ----------------------------------------------------
class _RenamedManager:
    """A _CheckpointManager whose list of results a Ray release has renamed."""

    def __init__(self, checkpoint_config: Any = None) -> None:
        self._results: list[Any] = []
        self._latest_checkpoint_result = None

    @property
    def latest_checkpoint_result(self) -> Any:
        return self._latest_checkpoint_result


def _session_catching_no_sigusr1() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.mark.parametrize(
    ("target", "attr", "replacement", "where", "name", "says"),
    [
        (
            ray_session,
            "_TrainingResult",
            None,
            "ray.train._internal.session._TrainingResult",
            "_TrainingResult",
            "is gone",
        ),
        (
            ray_checkpoint_manager,
            "_CheckpointManager",
            _RenamedManager,
            "ray.train._internal.checkpoint_manager._CheckpointManager",
            "_checkpoint_results",
            "no longer has the attribute _checkpoint_results",
        ),
        (
            StorageContext,
            "trial_fs_path",
            None,
            "ray.train._internal.storage.StorageContext",
            "trial_fs_path",
            "no longer has the attribute trial_fs_path",
        ),
        (
            TrialProgressCallback,
            "_print",
            None,
            "ray.tune.progress_reporter.TrialProgressCallback",
            "_print",
            "no longer has the method _print",
        ),
        (
            trainable_fn_utils,
            "_in_tune_session",
            lambda world_rank: False,
            "ray.tune.trainable.trainable_fn_utils._in_tune_session",
            "_in_tune_session",
            "now takes ('world_rank',), not ()",
        ),
        (
            ray_tune_run,
            "_setup_signal_catching",
            _session_catching_no_sigusr1,
            "ray.tune.tune._setup_signal_catching",
            "SIGUSR1",
            "no longer reads SIGUSR1",
        ),
    ],
)
def test_the_check_names_a_part_that_ray_moved(
    monkeypatch: pytest.MonkeyPatch,
    target: Any,
    attr: str,
    replacement: Any,
    where: str,
    name: str,
    says: str,
) -> None:
    if replacement is None:
        monkeypatch.delattr(target, attr)
    else:
        monkeypatch.setattr(target, attr, replacement)
    found = problems()
    assert len(found) == 1, found
    (message,) = found
    assert message.startswith(f"{where} {says}"), message
    assert f"moved {name}," in message
    assert f"Ray {ray.__version__}" in message and f"read from Ray {READ_FROM}" in message
    assert "runner/_ray_private.py" in message


def test_the_check_names_a_module_that_is_gone() -> None:
    part = Part(
        "ray.train._internal.gone_module._TrainingResult",
        "_TrainingResult",
        "callable",
        "runner.driver.checkpoints",
        "why",
        expect=("checkpoint", "metrics"),
    )
    (message,) = problems([part])
    assert message.startswith("ray.train._internal.gone_module._TrainingResult is gone")
    assert "runner.driver.checkpoints relies on" in message


# -- what the parts do, on Ray's own objects -----------------------------------------------
@pytest.fixture
def trial(tmp_path: Path) -> Trial:
    """A real Ray Tune Trial (a stub: no trainable registered, no runtime)."""
    storage = StorageContext(
        storage_path=str(tmp_path), experiment_dir_name="sweep", trial_dir_name="trial_0"
    )
    return Trial("train", stub=True, storage=storage)


def test_ray_restores_the_checkpoint_set_through_the_module(tmp_path: Path, trial: Trial) -> None:
    manager = ray_private.checkpoint_manager(trial)
    results = []
    for index in range(3):
        path = tmp_path / f"checkpoint_{index:06d}"
        path.mkdir()
        results.append(ray_private.training_result(tune.Checkpoint(str(path)), {"step": index}))
        manager.register_checkpoint(results[-1])
    assert ray_private.checkpoint_results(manager) == results

    ray_private.set_checkpoint_results(manager, results[:1], results[0])
    # Ray's own readers: what a restored trial loads, and what Tune keeps.
    assert manager.latest_checkpoint_result is results[0]
    assert manager.best_checkpoint_results == results[:1]
    assert trial.checkpoint is not None and trial.checkpoint.path == str(results[0].checkpoint.path)


def test_the_next_checkpoint_takes_the_index_set_through_the_module(
    tmp_path: Path, trial: Trial
) -> None:
    assert ray_private.trial_fs_path(trial) == str(tmp_path / "sweep" / "trial_0")
    ray_private.set_next_checkpoint_index(trial, 7)
    assert trial.storage.checkpoint_fs_path.endswith("trial_0/checkpoint_000007")


def test_tune_resumes_the_lost_trials_named_and_no_other_errored_one(tmp_path: Path) -> None:
    """Tune's own requeue of a restored experiment, under resume_lost_trials: the errored
    trial named is resumed (pending, its error forgotten), the other stays errored, as
    Tune's default ResumeConfig leaves every errored trial."""
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.tune_config import ResumeConfig

    lost, failed = (
        Trial(
            "train",
            stub=True,
            trial_id=name,
            storage=StorageContext(
                storage_path=str(tmp_path), experiment_dir_name="sweep", trial_dir_name=name
            ),
        )
        for name in ("lost", "failed")
    )
    for t in (lost, failed):
        t.set_status(Trial.ERROR)
        t.run_metadata.error_filename = "error.txt"
    controller = TuneController.__new__(TuneController)  # its requeue needs only add_trial
    added: list[Trial] = []
    controller.add_trial = added.append  # type: ignore[method-assign]

    with ray_private.resume_lost_trials(["lost"]):
        controller._requeue_restored_trials([lost, failed], ResumeConfig())
    assert added == [lost, failed]
    assert lost.status == Trial.PENDING and lost.run_metadata.error_filename is None
    assert failed.status == Trial.ERROR and failed.run_metadata.error_filename == "error.txt"

    failed.set_status(Trial.ERROR)
    controller._requeue_restored_trials([failed], ResumeConfig())  # outside: Tune's own
    assert failed.status == Trial.ERROR


def test_a_trial_not_started_has_no_actor(trial: Trial) -> None:
    assert ray_private.trial_actor(trial) is None


def test_the_run_config_set_through_the_module_is_the_one_fit_uses(tmp_path: Path) -> None:
    def train(config: dict[str, Any]) -> None:
        pass

    tuner = tune.Tuner(train, run_config=tune.RunConfig(name="x", storage_path=str(tmp_path)))
    ray_private.run_config(tuner).callbacks = ["mine"]
    assert tuner._local_tuner is not None
    assert tuner._local_tuner.get_run_config().callbacks == ["mine"]
    assert not ray.is_initialized()


def test_the_silent_trial_lines_print_nothing(trial: Trial) -> None:
    def printed(callback: Any) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            callback.on_trial_complete(0, [trial], trial)
        return out.getvalue()

    assert "completed" in printed(TrialProgressCallback())  # what is silenced
    assert printed(ray_private.silent_trial_lines()) == ""


def test_a_function_trainable_takes_the_mixins() -> None:
    class Mixin:
        pass

    def train(config: dict[str, Any]) -> None:
        pass

    ray_private.with_mixins(train, (Mixin,))
    assert issubclass(wrap_function(train), Mixin)


def test_outside_a_trial_there_is_no_tune_session() -> None:
    assert ray_private.in_tune_session() is False


@pytest.mark.parametrize("skipped", [False, True])
def test_the_callback_census_imports_no_integration_once_skipped(skipped: bool) -> None:
    """Tune's census of a run's callbacks imports Ray's MLflow integration (and mlflow, where
    installed: 0.6 s); skipped, it imports nothing. In a fresh process: nothing imported yet."""
    code = (
        "import sys\n"
        "from ray import tune\n"
        "from ray.air._internal import usage\n"
        "from runner import _ray_private\n"
        f"if {skipped}: _ray_private.skip_callback_census()\n"
        "usage.tag_callbacks([tune.Callback()])\n"
        "print('ray.air.integrations.mlflow' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[-1] == str(not skipped), out.stderr


@contextlib.contextmanager
def _sigusr1(handler: Any) -> Iterator[None]:
    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_interrupting_tune_sends_the_signal_its_loop_listens_for() -> None:
    with _sigusr1(signal.SIG_IGN):
        assert not ray_private.tune_listens()  # no Tune loop: nothing to interrupt
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    with _sigusr1(handler):
        assert ray_private.tune_listens()
        ray_private.interrupt_tune()
    assert received == [signal.SIGUSR1]


# -- no other module reaches them ----------------------------------------------------------
_WATCHED = {p.name for p in PARTS if p.kind in ("attribute", "method", "source")} - {
    "storage",  # a common word: reached as trial.storage in runner._ray_private only
    "SIGUSR1",  # also SLURM's warning signal (sbatch --signal=B:USR1), not only Tune's
    "latest_checkpoint_result",  # a public property of the manager the module hands out
}


def _private_reaches(path: Path) -> list[str]:
    """Where a module imports a private Ray name, or reads a watched attribute other than
    through runner._ray_private's functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ray":
            module = node.module or ""
            names = [a.name for a in node.names]
            if any(p.startswith("_") for p in module.split(".")) or any(
                n.startswith("_") for n in names
            ):
                found.append(f"line {node.lineno}: from {module} import {', '.join(names)}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "ray" and any(p.startswith("_") for p in parts):
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr in _WATCHED:
            module = node.value.id if isinstance(node.value, ast.Name) else None
            if module not in ("ray_private", "_ray_private"):
                found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.keyword) and node.arg in _WATCHED and node.arg[0] == "_":
            found.append(f"line {node.lineno}: {node.arg}=")
        elif isinstance(node, ast.FunctionDef) and node.name in _WATCHED and node.name[0] == "_":
            found.append(f"line {node.lineno}: def {node.name}")  # overrides a private method
        elif isinstance(node, ast.Constant) and node.value in _WATCHED:
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


def test_only_the_module_reaches_private_ray_parts() -> None:
    own = REPO / "runner" / "_ray_private.py"
    reaches = {
        str(path.relative_to(REPO)): found
        for folder in ("runner", "dashboard", "experiments", "benchmarks")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path != own and (found := _private_reaches(path))
    }
    assert not reaches, (
        f"private Ray parts reached outside runner/_ray_private.py: {reaches}. Fix: add a "
        "function (and a PARTS entry) there and call it."
    )


def test_the_fence_sees_a_private_reach(tmp_path: Path) -> None:
    source = tmp_path / "launch.py"
    source.write_text(
        "from ray.train._internal.session import _TrainingResult\n"
        "config = tuner._local_tuner\n"
        "ray.init(_node_ip_address='127.0.0.1')\n"
        "offset = getattr(self, '_time_total', 0.0)\n"
        "actor = ray_private.trial_actor(trial)\n"  # through the module: fine
        "class Quiet(TrialProgressCallback):\n"
        "    def _print(self, msg): pass\n"
    )
    assert sorted(_private_reaches(source)) == [
        "line 1: from ray.train._internal.session import _TrainingResult",
        "line 2: ._local_tuner",
        "line 3: _node_ip_address=",
        "line 4: '_time_total'",
        "line 7: def _print",
    ]
