"""Trials run at a lower priority than the driver and the dashboard beside them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from runner.trial.entry import TRIAL_NICE

# In a process of its own: a nice level, once raised, cannot be taken back.
PROBE = textwrap.dedent(
    """
    import os, threading, time
    from runner.trial.entry import lower_priority

    start = int(os.environ.get("START_NICE", "0"))
    if start:
        os.setpriority(os.PRIO_PROCESS, 0, start)
    ready, seen = threading.Event(), {}

    def worker():  # a thread that exists before the call, as Ray's and torch's do
        seen["tid"] = threading.get_native_id()
        ready.set()
        time.sleep(2)

    threading.Thread(target=worker, daemon=True).start()
    ready.wait()
    lower_priority()
    lower_priority()  # twice does no harm
    later = {}
    t = threading.Thread(target=lambda: later.update(n=os.getpriority(os.PRIO_PROCESS, 0)))
    t.start(); t.join()
    print(os.getpriority(os.PRIO_PROCESS, 0), os.getpriority(os.PRIO_PROCESS, seen["tid"]),
          later["n"])
    """
)


def _probe(start: int = 0) -> list[int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={"START_NICE": str(start), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [int(n) for n in done.stdout.split()]


def test_every_thread_of_a_trial_runs_at_the_trial_nice_level() -> None:
    assert _probe() == [TRIAL_NICE] * 3  # the caller, a thread started before, one after


def test_a_trial_already_lower_stays_there() -> None:
    assert _probe(start=TRIAL_NICE + 5) == [TRIAL_NICE + 5] * 3
