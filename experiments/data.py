"""Offline datasets, as float32 tensors split into train and validation sets.

- digits:    scikit-learn's bundled 8x8 handwritten digits (1,797 images, 64 features),
             cached on disk after the first load.
- mnist1d:   the mnist1d package's default dataset (5,000 sequences of 40), generated
             locally with `make_dataset` and cached on disk; never downloaded.
- synthetic: Gaussian class blobs, instant to make, for tests.
"""

from __future__ import annotations

import functools
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["DATASETS", "Dataset", "load"]


@dataclass(frozen=True)
class Dataset:
    x_train: torch.Tensor  # (N, features) float32
    y_train: torch.Tensor  # (N,) int64
    x_val: torch.Tensor
    y_val: torch.Tensor

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_val]).max()) + 1


def _split(x: np.ndarray, y: np.ndarray, val_fraction: float, seed: int) -> Dataset:
    order = np.random.default_rng(seed).permutation(len(y))
    n_val = int(len(y) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    return Dataset(
        torch.as_tensor(x[train], dtype=torch.float32),
        torch.as_tensor(y[train], dtype=torch.int64),
        torch.as_tensor(x[val], dtype=torch.float32),
        torch.as_tensor(y[val], dtype=torch.int64),
    )


def _cache_dir() -> Path:
    return Path(os.environ.get("SWEEPSCOPE_CACHE", Path.home() / ".cache" / "sweepscope"))


def _cached(name: str, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays made once by `make` and kept in the cache folder: every later worker reads a
    small .npz instead of importing the library that made them (scikit-learn takes ~1.5 s).

    A damaged file is made again; a cache folder that cannot be written is only not used.
    """
    try:
        path = _cache_dir() / f"{name}.npz"
    except RuntimeError:  # no home folder and no $SWEEPSCOPE_CACHE
        return make()
    try:
        with np.load(path) as d:
            return {k: d[k] for k in d.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # absent or damaged
        pass
    arrays = make()
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as f:
            tmp = Path(f.name)
            np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy types the keywords as allow_pickle
        tmp.replace(path)  # atomic: concurrent trials never read half a file
    except OSError:
        pass  # a read-only cache folder: use the arrays without keeping them
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)  # gone once replaced; left by a failed write
    return arrays


def _make_digits() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return {"x": x, "y": y}


def _digits() -> Dataset:
    d = _cached("digits", _make_digits)
    return _split(d["x"] / 16.0, d["y"], val_fraction=0.2, seed=0)


def _make_mnist1d() -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    data = make_dataset(get_dataset_args())  # the package's defaults: the paper's dataset
    return {k: data[k] for k in ("x", "y", "x_test", "y_test")}


def _mnist1d() -> Dataset:
    d = _cached("mnist1d_default", _make_mnist1d)
    return Dataset(
        torch.as_tensor(d["x"], dtype=torch.float32),
        torch.as_tensor(d["y"], dtype=torch.int64),
        torch.as_tensor(d["x_test"], dtype=torch.float32),
        torch.as_tensor(d["y_test"], dtype=torch.int64),
    )


def _synthetic() -> Dataset:
    rng = np.random.default_rng(0)
    n, features, classes = 1200, 16, 4
    centers = rng.normal(0, 2.0, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    x = centers[y] + rng.normal(0, 1.5, size=(n, features))
    return _split(x, y, val_fraction=0.25, seed=0)


DATASETS = {"digits": _digits, "mnist1d": _mnist1d, "synthetic": _synthetic}


@functools.cache
def load(name: str) -> Dataset:
    """The named dataset; raises ValueError naming the known ones for any other name."""
    if name not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}. Fix: use one of {', '.join(sorted(DATASETS))}."
        )
    return DATASETS[name]()
