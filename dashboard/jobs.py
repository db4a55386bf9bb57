"""Slow computations off the page's script run, once per key in the server process.

A page asks for a result by a key that names everything it depends on; the first ask
starts it on one background thread, and the page shows a notice until it is done (a
fragment polls, then reruns the page). A 10,000-trial sweep's hyperparameter importance
takes seconds: the page stays usable meanwhile, and every session asking the same gets
the same job. Jobs never touch Streamlit; only the page does.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["MAX_JOBS", "submit"]

T = TypeVar("T")
MAX_JOBS = 32  # results kept; the oldest asked for goes first

_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweepscope-job")
_JOBS: OrderedDict[Hashable, Future[Any]] = OrderedDict()
_LOCK = threading.Lock()


def submit(key: Hashable, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
    """The job for `key`: the one started before if it is still kept, else `fn(*args,
    **kwargs)` started now. Its result (or exception) is read with `.done()`/`.result()`."""
    with _LOCK:
        job = _JOBS.get(key)
        if job is None:
            job = _JOBS[key] = _POOL.submit(fn, *args, **kwargs)
            while len(_JOBS) > MAX_JOBS:
                _JOBS.popitem(last=False)
        else:
            _JOBS.move_to_end(key)
        return job
