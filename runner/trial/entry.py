"""The function Ray Tune runs in a worker for each trial: the user's trainable, plus plumbing.

It resolves the trainable by name in the worker (its module's imports, torch say, are the
trial's cost, never the driver's), points runner.trial.report at Ray Tune's session, says
where the trial runs, and samples the process's load when the spec asks for it. A user's own
`tune.Trainable` class gets the same config (the runner's keys taken out) and sampling.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from typing import Any

from runner import _ray_private as ray_private
from runner.protocol import START_CHECKPOINT_KEY
from runner.spec import resolve_trainable, user_config
from runner.trial import report, sysmetrics

__all__ = ["TRIAL_NICE", "class_entry", "lower_priority", "node_label", "trial_entry"]

# Trials run at this nice level (0 normal, 19 lowest): on a machine they keep busy, the
# driver and the dashboard beside them still get the CPU they ask for (the live page opens
# in about 4 s instead of 6 while trials use both cores of a 2-core machine). A sweep on
# its own machine runs no slower: nice only orders who runs first.
TRIAL_NICE = 10


def trial_entry(
    trainable: str,
    checkpoint_every: int,
    decision_epochs: frozenset[int] = frozenset(),
    system_metrics: float | None = None,
) -> Callable[[dict[str, Any]], None]:
    """The function Ray Tune runs for each trial: the user's trainable, plus report plumbing.

    With `system_metrics` (seconds), the trial's process is sampled that often (sys/ points,
    see runner.trial.sysmetrics): Ray's wrapper class for the function takes the sampling mixin.
    """

    def run_trial(config: dict[str, Any]) -> None:
        import ray

        lower_priority()
        if not ray.get_gpu_ids():  # Ray 2.60 leaves a gpu-0 trial every GPU: hide them
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        fn = resolve_trainable(trainable)
        report._reset(checkpoint_every, decision_epochs, config.get(START_CHECKPOINT_KEY))
        report.info(node=node_label())
        try:
            fn(user_config(config))
        except SystemExit:
            # Tune ended the trial (stopper, scheduler) from inside its report: a further
            # report would block this thread forever, and the actor could not be reused.
            raise
        except BaseException:
            report._finish()  # send points still buffered, then let Tune record the error
            raise
        report._finish(completed=True)

    run_trial.__name__ = trainable.replace(":", ".").rsplit(".", 1)[-1]
    if system_metrics is not None:
        ray_private.with_mixins(run_trial, (sysmetrics.sampling(system_metrics),))
    return run_trial


def class_entry(cls: type, system_metrics: float | None = None) -> type:
    """A user's own `tune.Trainable` class, seeing the config without the runner's keys;
    sampled every `system_metrics` seconds when given (runner.trial.sysmetrics)."""
    bases = (cls,) if system_metrics is None else (sysmetrics.sampling(system_metrics), cls)

    class Entry(*bases):  # type: ignore[misc]
        def setup(self, config: dict[str, Any]) -> None:
            lower_priority()
            super().setup(user_config(config))

    Entry.__name__ = Entry.__qualname__ = cls.__name__
    return Entry


def node_label() -> str:
    """Where this process runs, as the store records it: "hostname (node id prefix)".

    The hostname is what a user recognises; the first 8 hex digits of Ray's node id tell
    apart raylets that share a hostname (several nodes on one machine or one pod name).
    Outside Ray, just the hostname.
    """
    host = socket.gethostname()
    try:
        import ray

        if not ray.is_initialized():
            return host
        node_id = ray.get_runtime_context().get_node_id()
    except Exception:  # Ray absent or not connected: the hostname alone still helps
        return host
    return f"{host} ({node_id[:8]})"


def lower_priority(nice: int = TRIAL_NICE) -> None:
    """Every thread of this process at `nice` or lower priority; never raises it back.

    Linux keeps a nice level per thread, and Ray's and torch's threads exist before the
    trial starts: each one is lowered."""
    if not hasattr(os, "setpriority"):
        return  # Windows
    try:
        threads = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]  # no /proc (macOS): the whole process
    for tid in threads:
        with contextlib.suppress(OSError):  # a thread that has just ended
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
