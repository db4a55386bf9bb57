"""The `sweepscope` command as a user runs it: a real process, from the repository root.

A test that runs `sweepscope run` or `resume` starts a Ray runtime: mark it `ray`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

__all__ = ["SWEEPSCOPE", "cli", "cli_env", "write_spec"]

SWEEPSCOPE = str(Path(sys.executable).with_name("sweepscope"))


def cli_env(**extra: str) -> dict[str, str]:
    """The environment a `sweepscope` process runs in. RAY_ADDRESS=local: start a Ray of its
    own even when another test on this machine runs a Ray cluster (ray.cluster_utils writes
    its address where a bare ray.init() finds and joins it)."""
    return {
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_ADDRESS": "local",
        **extra,
    }


def cli(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run `sweepscope ARGS`; on a timeout, end it and the Ray it started, then fail."""
    proc = subprocess.Popen(
        [SWEEPSCOPE, *args],
        cwd=cwd,
        env=env or cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"sweepscope {' '.join(args)} ran past {timeout} s:\n{out}\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def write_spec(tmp_path: Path, body: str) -> Path:
    """`body` as tmp_path/spec.yaml."""
    path = tmp_path / "spec.yaml"
    path.write_text(body)
    return path
