"""`sweepscope dashboard` as a user starts it, for browser tests: served on a free port of
127.0.0.1 over a given store, stopped (Ctrl-C, then SIGKILL to its group) afterwards.

Nothing here imports pytest: a screenshot script can use it too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers.paths import REPO
from tests.helpers.ports import free_port
from tests.helpers.waiting import wait_for

__all__ = ["served_dashboard"]


@contextmanager
def served_dashboard(store_url: str, log: Path, timeout: float = 60) -> Iterator[str]:
    """Serve the dashboard over `store_url` (its output to `log`) without a stop token;
    yields its base URL once it answers its health check."""
    env = {k: v for k, v in os.environ.items() if k != "SWEEPSCOPE_TOKEN"}
    port = free_port()
    cmd = [str(REPO / ".venv" / "bin" / "sweepscope"), "dashboard", "--store", store_url]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the dashboard exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    try:
        wait_for("the dashboard to answer", healthy, timeout)
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
