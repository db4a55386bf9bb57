"""The `sweepscope` command as a user runs it: a real process, from the repository root
(`cli`); or, where a test is about what the command checks and says rather than its
process, `runner.cli.main` in the test's own process (`cli_here`: no interpreter to start).

A test that runs `sweepscope run` or `resume` starts a Ray runtime: mark it `ray`.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runner.cli import main
from tests.helpers.paths import REPO

__all__ = ["SWEEPSCOPE", "cli", "cli_env", "cli_here", "write_spec"]

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


def cli_here(*args: str) -> subprocess.CompletedProcess[str]:
    """`sweepscope ARGS` as `cli` runs it, but in this process: its exit status (argparse's
    too, for --help and usage errors), stdout and stderr. Only for commands that end without
    starting a sweep: one that starts would start Ray here."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse: --help, or a usage error
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(["sweepscope", *args], code, out.getvalue(), err.getvalue())


def write_spec(tmp_path: Path, body: str) -> Path:
    """`body` as tmp_path/spec.yaml."""
    path = tmp_path / "spec.yaml"
    path.write_text(body)
    return path
