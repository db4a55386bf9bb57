"""Export a sweep to the tools people already use: TensorBoard logs or MLflow runs.

`sweepscope export SWEEP --to tensorboard DIR | --to mlflow URI` calls `export_sweep`. Each
target is an optional extra (`pip install 'sweepscope[tensorboard]'`, `'sweepscope[mlflow]'`),
imported only when asked for. Every target names a run per trial `trial-<number>`, the
trial's number within its sweep.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from runner.errors import SweepscopeError
from runner.store import Store

__all__ = ["TARGETS", "export_sweep"]

# target -> (the module it needs, the package that provides it, the sweepscope extra)
TARGETS = {
    "tensorboard": ("tensorboardX", "tensorboardX", "tensorboard"),
    "mlflow": ("mlflow", "mlflow-skinny (or mlflow)", "mlflow"),
}


def export_sweep(store: Store, sweep_id: str, to: str, dest: str) -> str:
    """Write a sweep's trials, configurations and metric histories to `to` at `dest`.

    Args:
        store: the store that holds the sweep.
        sweep_id: the sweep to export.
        to: "tensorboard" (dest: a new or empty log directory) or "mlflow" (dest: a
            tracking URI, e.g. sqlite:///mlflow.db).
        dest: where to write.

    Returns:
        One line for the CLI: what was written where.

    Raises:
        SweepscopeError: an unknown `to`, a bad `dest`, the target's library missing, or no
            such sweep.
        StoreError: the store cannot be read.
    """
    write = _writer(to)
    return write(store, sweep_id, dest)


def _writer(to: str) -> Callable[[Store, str, str], str]:
    """The target's export function, once its library imports."""
    if to not in TARGETS:
        raise SweepscopeError(
            f"--to {to!r}: not an export target. Fix: give one of {', '.join(sorted(TARGETS))}, "
            "or -o FILE.csv / FILE.parquet for a table of points."
        )
    module, package, extra = TARGETS[to]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise SweepscopeError(
            f"--to {to} needs the {package} package, which is not installed. Fix: pip install "
            f"'sweepscope[{extra}]'."
        ) from exc
    if to == "tensorboard":
        from runner.exporters._tensorboard import export_tensorboard

        return export_tensorboard
    from runner.exporters._mlflow import export_mlflow

    return export_mlflow
