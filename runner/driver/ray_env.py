"""The Ray a sweep runs on: this machine's own (bound to 127.0.0.1), or a cluster's.

Also quiets what Ray Tune would print or write that the store and the progress line replace.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from runner import _ray_private as ray_private
from runner import collector
from runner.errors import InfrastructureError, SweepscopeError

if TYPE_CHECKING:
    from runner.driver.runtime import Runtime

__all__ = ["TUNE_ENV", "importing", "init_ray"]

# Ray Tune's own loggers and tables are replaced by the store and the progress line.
TUNE_ENV = {  # set in os.environ by init_ray (where not set already)
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",  # step flushes carry no epoch metric
    "TUNE_DISABLE_SIGINT_HANDLER": "1",  # Ctrl-C (and SIGTERM): runner.driver.interrupts
    "RAY_AIR_NEW_OUTPUT": "0",  # the classic output, silenced by ray_private.silent_trial_lines
    "TUNE_GLOBAL_CHECKPOINT_S": "5",  # experiment state for resume, at most 5 s old
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}


def _is_local(address: str | None) -> bool:
    return address in (None, "local") or str(address).split(":")[0] in ("127.0.0.1", "localhost")


def init_ray(address: str | None, meanwhile: tuple[str, ...] = ()) -> bool:
    """Start or join Ray; returns True when this process started or joined it (and must
    shut it down: for a joined Ray, disconnect). No `address` (and no $RAY_ADDRESS): the warm
    runtime of `sweepscope up` when one is up, else a new Ray of this process's own;
    "local": always a new one.

    ray.init mostly waits for the processes it starts: the modules named in `meanwhile`
    (Ray Tune's, say) are imported on a thread in that time.
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    for key, value in TUNE_ENV.items():
        os.environ.setdefault(key, value)
    if _is_local(address):
        # Read by Ray at import: bind every Ray service to 127.0.0.1, not the LAN address.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    warm = _warm_runtime() if address is None else None  # its token is read at Ray's import
    import ray

    # Tune's result files are off (the store has the results): silence its complaint.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    # A failed trial is reported in one line by StoreCallback, its traceback kept in the store;
    # after Ctrl-C the CLI says how to resume (with sweepscope, not Tuner.restore).
    logging.getLogger("ray.tune.execution.tune_controller").addFilter(
        lambda record: not str(record.msg).startswith("Trial task failed")
    )
    logging.getLogger("ray.tune.tune").addFilter(
        lambda record: (
            not str(record.msg).startswith(
                ("Experiment has been interrupted", "Stop signal received")
            )
        )
    )
    if ray.is_initialized():
        return False
    if warm is not None:
        _join_runtime(ray, warm, meanwhile)
        return True
    if address in (None, "local"):
        with importing(*meanwhile):
            ray.init(
                address="local",  # a new Ray of its own, never a cluster left on this host
                include_dashboard=False,
                configure_logging=False,
                log_to_driver=False,
                **ray_private.bind_node_ip("127.0.0.1"),
            )
        return True
    try:
        with importing(*meanwhile):
            ray.init(address=address, configure_logging=False, log_to_driver=False)
    except (ConnectionError, RuntimeError) as exc:
        raise SweepscopeError(
            f"cannot connect to the Ray cluster at --address {address!r}: {exc}. Fix: start the "
            "cluster (ray start --head) and pass its address, e.g. --address 10.0.0.5:6380, "
            "or leave --address out to run on this machine."
        ) from None
    return True


def _warm_runtime() -> Runtime | None:
    """The warm runtime of `sweepscope up` if one is up, with this process set to join it
    (a stale one is cleared by runtime.find, which says so)."""
    from runner.driver import runtime

    found, note = runtime.find()
    if note is not None:
        print(f"note: {note}", file=sys.stderr)
    if found is not None:
        os.environ.update(runtime.client_env(found))
    return found


def _join_runtime(ray: Any, warm: Runtime, meanwhile: tuple[str, ...]) -> None:
    try:
        with importing(*meanwhile):
            ray.init(
                address=warm.address,
                configure_logging=False,
                log_to_driver=False,
                **ray_private.bind_node_ip("127.0.0.1"),
            )
    except (ConnectionError, RuntimeError) as exc:
        raise InfrastructureError(
            f"cannot join the runtime of `sweepscope up` at {warm.address}: {exc}. Fix: "
            "`sweepscope down`, then `sweepscope up` again; or run this sweep on a Ray of its "
            "own with --address local."
        ) from None
    from runner.driver import runtime

    runtime.note_driver()  # `down` refuses while this sweep runs
    print(f"on the runtime at {warm.address} (`sweepscope down` stops it)", file=sys.stderr)


@contextmanager
def importing(*modules: str) -> Iterator[None]:
    """Import `modules` on a thread while the block runs (one that mostly waits, so the
    import gets the interpreter meanwhile); the block's end waits for the import. A failed
    import is left for the block's caller to meet when it imports the module itself."""

    def load() -> None:
        with contextlib.suppress(Exception):
            for name in modules:
                importlib.import_module(name)

    thread = threading.Thread(target=load, name="sweepscope-import", daemon=True)
    with collector.imports():  # ray.init and Ray Tune quicker (runner.collector)
        thread.start()
        try:
            yield
        finally:
            thread.join()
