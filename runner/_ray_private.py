"""Every part of Ray that sweepscope relies on but Ray does not promise to keep: the one
module that reaches them.

Read from Ray 2.60.0 (pyproject.toml pins ray[tune] to 2.60.x). A private name (a leading
underscore, an `_internal` package) or undocumented state can move in any Ray release, and
most of these would then fail late and quietly: a resumed sweep would restore deleted
checkpoints, a hung trial would never be timed out. So sweepscope reaches them only through
the functions below, and `problems()` looks each one up in the installed Ray without
starting it (imports, class attributes, the source of `__init__`, signatures);
tests/test_ray_private.py fails on the first upgrade that moves one, naming it.

The parts (`PARTS` holds the same list, for the check):

- `ray.train._internal.session._TrainingResult(checkpoint, metrics)`, the entry of Ray
  Tune's checkpoint bookkeeping: runner.driver.checkpoints builds one to point a resumed trial at
  a checkpoint that survived.
- `ray.train._internal.checkpoint_manager._CheckpointManager`: `_checkpoint_results` (the
  checkpoints Tune keeps, and deletes beyond `num_to_keep`), `_latest_checkpoint_result`
  (the one a restored trial loads) and `latest_checkpoint_result` (reading it):
  runner.driver.checkpoints drops checkpoints deleted on storage and sets the one to resume from.
- `Trial.run_metadata` (`ray.tune.trainable.metadata._TrainingRunMetadata`) and its
  `checkpoint_manager`: where a trial's `_CheckpointManager` lives (runner.driver.checkpoints).
- `Trial.storage` (`ray.train._internal.storage.StorageContext`), its `trial_fs_path` and
  `current_checkpoint_index`: runner.driver.checkpoints lists the trial's checkpoints on storage
  and sets the index Tune names the next one by, so a new checkpoint never overwrites the
  one the trial resumed from.
- `Trial.temporary_state` (`ray.tune.experiment.trial._TemporaryTrialState`) and its
  `ray_actor`: runner.driver.callback kills the actor of a trial silent past `trial_timeout`.
- `Tuner._local_tuner` and its `TunerInternal.get_run_config()`: runner.driver.drive sets its
  live callbacks and stopper on a tuner right before `fit()` (`Tuner.restore` takes no
  run config, and a restored tuner carries pickled copies of the old ones).
- `TrialProgressCallback._print(msg)`: runner.driver.drive overrides it to silence the line
  Tune prints per trial result (the progress line and the store replace them).
- `ray.init(_node_ip_address=...)`: runner.driver.ray_env binds a sweep's own local Ray to
  127.0.0.1, not the LAN address.
- `__mixins__` on a function trainable, read by
  `ray.tune.trainable.function_trainable.wrap_function`: runner.trial.entry gives Tune's
  wrapper class the system-load sampler of runner.trial.sysmetrics.
- `Trainable._time_total`: runner.trial.sysmetrics continues a retried or resumed trial's
  `sys/` axis from the time its checkpoint restored.
- `ray.tune.trainable.trainable_fn_utils._in_tune_session()`: runner.trial.report sends to Tune
  only inside a Tune trial (a report elsewhere would fail).
- SIGUSR1, on which `ray.tune.tune._setup_signal_catching` ends Tune's loop and saves its
  state: runner.driver.stopper (the store stayed away) and runner.driver.interrupts (Ctrl-C)
  stop a sweep resumable this way.
- `TuneController._requeue_restored_trials(trials, resume_config)`, which
  `TuneController.resume` calls with the trials of the restored experiment state, and the
  `error_filename` and `pickled_error_filename` of a trial's `run_metadata`:
  runner.driver.launch resumes the trials that errored only because their Ray node was
  lost, as Tune resumes unfinished ones, while other errored trials stay errored
  (`resume_lost_trials`).
- `ray.air._internal.usage.tag_callbacks`, which `ray.tune.tune.run` calls through the module
  to count a run's callbacks for Ray's usage statistics: runner.driver.drive replaces it
  with one that counts nothing (`skip_callback_census`).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import signal
import textwrap
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

__all__ = [
    "PARTS",
    "READ_FROM",
    "Part",
    "bind_node_ip",
    "checkpoint_manager",
    "checkpoint_results",
    "in_tune_session",
    "interrupt_tune",
    "problems",
    "resume_lost_trials",
    "run_config",
    "set_checkpoint_results",
    "set_next_checkpoint_index",
    "silent_trial_lines",
    "skip_callback_census",
    "time_total",
    "training_result",
    "trial_actor",
    "trial_fs_path",
    "tune_listens",
    "with_mixins",
]

READ_FROM = "2.60.0"  # the Ray release every part below was read from

# Tune's own handler for this signal ends its loop and saves the experiment state.
_TUNE_STOP_SIGNAL = signal.SIGUSR1


# -- the parts, reached ------------------------------------------------------------------
def training_result(checkpoint: Any, metrics: dict[str, Any]) -> Any:
    """A `_TrainingResult`: one entry of a trial's checkpoint bookkeeping."""
    from ray.train._internal.session import _TrainingResult

    return _TrainingResult(checkpoint=checkpoint, metrics=metrics)


def checkpoint_manager(trial: Trial) -> Any:
    """The trial's `_CheckpointManager` (None before Tune set one)."""
    return trial.run_metadata.checkpoint_manager


def checkpoint_results(manager: Any) -> list[Any]:
    """The `_TrainingResult`s the manager keeps, oldest first."""
    return list(manager._checkpoint_results)


def set_checkpoint_results(manager: Any, results: list[Any], latest: Any) -> None:
    """Replace what the manager keeps, and the result a restored trial loads (None: none)."""
    manager._checkpoint_results = results
    manager._latest_checkpoint_result = latest


def trial_fs_path(trial: Trial) -> str | None:
    """The trial's directory on its storage (None without a storage context)."""
    storage = trial.storage
    return None if storage is None else str(storage.trial_fs_path)


def set_next_checkpoint_index(trial: Trial, index: int) -> None:
    """Tune names the trial's next checkpoint `checkpoint_<index>` (a trial with storage)."""
    if trial.storage is not None:
        trial.storage.current_checkpoint_index = index


def trial_actor(trial: Trial) -> Any:
    """The Ray actor running the trial, or None."""
    return getattr(trial.temporary_state, "ray_actor", None)


def run_config(tuner: Any) -> Any:
    """The RunConfig a `tune.Tuner` (built or restored) will fit with: set on it in place."""
    return tuner._local_tuner.get_run_config()


def silent_trial_lines() -> Any:
    """A TrialProgressCallback that prints nothing: given one, Tune prints no line per
    trial result."""
    from ray.tune.progress_reporter import TrialProgressCallback

    class _SilentTrialLines(TrialProgressCallback):  # type: ignore[misc]
        def _print(self, msg: str) -> None:
            pass

    return _SilentTrialLines()


def skip_callback_census() -> None:
    """Keep Ray Tune from counting a run's callbacks by class for its usage statistics: to
    tell its own callbacks apart it imports Ray's MLflow, W&B, Comet and Aim integrations,
    0.6-0.7 s on the way to the first trial wherever mlflow is installed. The count is a
    usage tag naming which of Ray's built-in callbacks ran; sweepscope's are its own."""
    from ray.air._internal import usage

    usage.tag_callbacks = _no_census


def _no_census(callbacks: Any) -> bool:
    return False  # as tag_callbacks says when it records nothing


def bind_node_ip(address: str) -> dict[str, Any]:
    """The ray.init keyword that binds a new local Ray's services to `address`."""
    return {"_node_ip_address": address}


def with_mixins(fn: Callable[..., Any], mixins: tuple[type, ...]) -> None:
    """Make Ray Tune's Trainable class for function `fn` inherit `mixins` too."""
    fn.__mixins__ = mixins  # type: ignore[attr-defined]


def time_total(trainable: Any) -> float:
    """The trial time a Trainable has run, restored from its checkpoint (0 when fresh)."""
    return float(getattr(trainable, "_time_total", 0.0) or 0.0)


def in_tune_session() -> bool:
    """Whether this code runs inside a Ray Tune trial (where tune.report works)."""
    from ray.tune.trainable.trainable_fn_utils import _in_tune_session

    return bool(_in_tune_session())


@contextmanager
def resume_lost_trials(trial_ids: Collection[str]) -> Iterator[None]:
    """While Tune restores an experiment in this block, the trials in `trial_ids` that its
    state holds as errored are resumed from their checkpoints, as Tune resumes unfinished
    trials; other errored trials stay errored (Tune's `resume_errored` takes all or none)."""
    from ray.tune.execution.tune_controller import TuneController

    original = TuneController._requeue_restored_trials
    wanted = set(trial_ids)

    def requeue(controller: Any, trials: list[Trial], resume_config: Any) -> None:
        for trial in trials:
            if trial.trial_id in wanted and trial.status == trial.ERROR:
                trial.run_metadata.error_filename = None
                trial.run_metadata.pickled_error_filename = None
                trial.set_status(trial.PAUSED)  # unfinished: Tune resumes it
        original(controller, trials, resume_config)

    TuneController._requeue_restored_trials = requeue  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        TuneController._requeue_restored_trials = original  # type: ignore[method-assign]


def tune_listens() -> bool:
    """Whether Tune's loop is running in this process, ready to be ended by interrupt_tune."""
    return callable(signal.getsignal(_TUNE_STOP_SIGNAL))


def interrupt_tune() -> None:
    """End Tune's loop as its Ctrl-C handler does: it saves the experiment state and
    returns, unfinished trials staying resumable."""
    os.kill(os.getpid(), _TUNE_STOP_SIGNAL)


# -- the check ---------------------------------------------------------------------------
Kind = Literal["callable", "attribute", "method", "source"]


@dataclass(frozen=True)
class Part:
    """One private part: `where` is the dotted path of a module-level object (a class or a
    function) in Ray; `name` the part of it sweepscope uses; `kind` how to check it:

    - callable: `where` is the part itself, called with the parameters `expect` names;
    - attribute: `where` is a class, whose instances have `name` (a class attribute, a
      property, or `self.name = ...` in the class's source);
    - method: `where` is a class with method `name`, taking the parameters `expect` names;
    - source: `where` is a function whose source contains `expect` (Ray reads `name` there).
    """

    where: str
    name: str
    kind: Kind
    used_by: str
    why: str
    expect: tuple[str, ...] = ()


_MANAGER = "ray.train._internal.checkpoint_manager._CheckpointManager"
_TRIAL = "ray.tune.experiment.trial.Trial"
_STORAGE = "ray.train._internal.storage.StorageContext"

PARTS: tuple[Part, ...] = (
    Part(
        "ray.train._internal.session._TrainingResult",
        "_TrainingResult",
        "callable",
        "runner.driver.checkpoints",
        "a resumed trial is pointed at a surviving checkpoint with a new entry",
        expect=("checkpoint", "metrics"),
    ),
    Part(
        _MANAGER,
        "_checkpoint_results",
        "attribute",
        "runner.driver.checkpoints",
        "checkpoints deleted on storage are dropped from it",
    ),
    Part(
        _MANAGER,
        "_latest_checkpoint_result",
        "attribute",
        "runner.driver.checkpoints",
        "a resumed trial restores the checkpoint set there",
    ),
    Part(
        _MANAGER,
        "latest_checkpoint_result",
        "attribute",
        "runner.driver.checkpoints",
        "the checkpoint Tune recorded for the trial",
    ),
    Part(
        _TRIAL,
        "run_metadata",
        "attribute",
        "runner.driver.checkpoints",
        "holds the trial's checkpoint manager",
    ),
    Part(
        "ray.tune.trainable.metadata._TrainingRunMetadata",
        "checkpoint_manager",
        "attribute",
        "runner.driver.checkpoints",
        "the trial's _CheckpointManager",
    ),
    Part(
        _TRIAL,
        "storage",
        "attribute",
        "runner.driver.checkpoints",
        "the trial's StorageContext",
    ),
    Part(
        _STORAGE,
        "trial_fs_path",
        "attribute",
        "runner.driver.checkpoints",
        "where the trial's checkpoints are listed",
    ),
    Part(
        _STORAGE,
        "current_checkpoint_index",
        "attribute",
        "runner.driver.checkpoints",
        "the index of the trial's next checkpoint, set past the one it resumes from",
    ),
    Part(
        _TRIAL,
        "temporary_state",
        "attribute",
        "runner.driver.callback",
        "holds the trial's actor",
    ),
    Part(
        "ray.tune.experiment.trial._TemporaryTrialState",
        "ray_actor",
        "attribute",
        "runner.driver.callback",
        "the actor killed when a trial is silent past trial_timeout",
    ),
    Part(
        "ray.tune.tuner.Tuner",
        "_local_tuner",
        "attribute",
        "runner.driver.drive",
        "the live callbacks and stopper are set on its run config before fit",
    ),
    Part(
        "ray.tune.impl.tuner_internal.TunerInternal",
        "get_run_config",
        "method",
        "runner.driver.drive",
        "returns the run config that fit uses",
        expect=("self",),
    ),
    Part(
        "ray.tune.progress_reporter.TrialProgressCallback",
        "_print",
        "method",
        "runner.driver.drive",
        "overridden to silence Tune's line per trial result",
        expect=("self", "msg"),
    ),
    Part(
        "ray._private.worker.init",
        "_node_ip_address",
        "source",
        "runner.driver.ray_env",
        "a sweep's own local Ray binds to 127.0.0.1",
        expect=('"_node_ip_address"',),
    ),
    Part(
        "ray.tune.trainable.function_trainable.wrap_function",
        "__mixins__",
        "source",
        "runner.trial.entry",
        "a function trainable's Trainable class takes the system-load sampler",
        expect=("__mixins__",),
    ),
    Part(
        "ray.tune.trainable.trainable.Trainable",
        "_time_total",
        "attribute",
        "runner.trial.sysmetrics",
        "a retried or resumed trial's sys/ points go on from its restored time",
    ),
    Part(
        "ray.tune.trainable.trainable_fn_utils._in_tune_session",
        "_in_tune_session",
        "callable",
        "runner.trial.report",
        "reports go to Tune only inside a Tune trial",
        expect=(),
    ),
    Part(
        "ray.air._internal.usage.tag_callbacks",
        "tag_callbacks",
        "callable",
        "runner.driver.drive",
        "replaced by one that imports nothing, so a sweep starts 0.6 s sooner",
        expect=("callbacks",),
    ),
    Part(
        "ray.tune.tune.run",
        "tag_callbacks",
        "source",
        "runner.driver.drive",
        "Tune looks the census up on the module each run, so the replacement is the one called",
        expect=("air_usage.tag_callbacks(",),
    ),
    Part(
        "ray.tune.execution.tune_controller.TuneController",
        "_requeue_restored_trials",
        "method",
        "runner.driver.launch",
        "trials errored by a lost node are made unfinished before Tune requeues them",
        expect=("self", "trials", "resume_config"),
    ),
    Part(
        "ray.tune.execution.tune_controller.TuneController.resume",
        "_requeue_restored_trials",
        "source",
        "runner.driver.launch",
        "a restored experiment's trials are requeued there",
        expect=("self._requeue_restored_trials(trials, resume_config)",),
    ),
    Part(
        "ray.tune.trainable.metadata._TrainingRunMetadata",
        "error_filename",
        "attribute",
        "runner.driver.launch",
        "a lost trial resumed is no longer errored",
    ),
    Part(
        "ray.tune.trainable.metadata._TrainingRunMetadata",
        "pickled_error_filename",
        "attribute",
        "runner.driver.launch",
        "a lost trial resumed is no longer errored",
    ),
    Part(
        "ray.tune.tune._setup_signal_catching",
        "SIGUSR1",
        "source",
        "runner.driver.stopper, runner.driver.interrupts",
        "SIGUSR1 ends Tune's loop with its state saved, so a stopped sweep resumes",
        expect=("signal.SIGUSR1",),
    ),
)


def _resolve(where: str) -> Any:
    """The object at dotted path `where`: the longest importable module, then attributes."""
    parts = where.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            found = getattr(found, attr)
        return found
    raise ImportError(f"no module of {where} imports")


def _assigned_on_self(cls: type, name: str) -> bool:
    """Whether the source of `cls` or a base sets `self.<name>`."""
    for klass in cls.__mro__:
        if klass is object:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, ast.AnnAssign | ast.AugAssign):
                targets = [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr == name
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    return True
    return False


def _parameters(fn: Any) -> tuple[str, ...]:
    return tuple(inspect.signature(fn).parameters)


def _problem(part: Part) -> str | None:
    """What is wrong with `part` in the installed Ray, or None."""
    try:
        found = _resolve(part.where)
    except (ImportError, AttributeError) as exc:
        return f"{part.where} is gone ({exc})"
    if part.kind == "callable":
        if not callable(found):
            return f"{part.where} is no longer callable"
        if _parameters(found) != part.expect:
            return f"{part.where} now takes {_parameters(found)}, not {part.expect}"
    elif part.kind == "attribute":
        if not (hasattr(found, part.name) or _assigned_on_self(found, part.name)):
            return f"{part.where} no longer has the attribute {part.name}"
    elif part.kind == "method":
        method = getattr(found, part.name, None)
        if not callable(method):
            return f"{part.where} no longer has the method {part.name}"
        if _parameters(method) != part.expect:
            return f"{part.where}.{part.name} now takes {_parameters(method)}, not {part.expect}"
    else:
        try:
            text = inspect.getsource(found)
        except (OSError, TypeError) as exc:
            return f"the source of {part.where} cannot be read ({exc})"
        if not all(piece in text for piece in part.expect):
            return f"{part.where} no longer reads {part.name} (its source lacks {part.expect})"
    return None


def problems(parts: Sequence[Part] = PARTS) -> list[str]:
    """One paragraph per part the installed Ray no longer has as sweepscope uses it; none
    when all are there. Imports Ray's modules; starts no Ray runtime."""
    import ray

    found = []
    for part in parts:
        problem = _problem(part)
        if problem is not None:
            found.append(
                f"{problem}: Ray {ray.__version__} moved {part.name}, which {part.used_by} "
                f"relies on ({part.why}; read from Ray {READ_FROM}). Fix: find where Ray "
                f"{ray.__version__} keeps it, and change runner/_ray_private.py (the part's "
                "function and its entry in PARTS)."
            )
    return found
