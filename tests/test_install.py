"""The image's install step works: the Dockerfile's COPY lines and its RUN scripts/install.sh,
replayed into a fresh virtualenv (there is no Docker engine here to build the image).

Slow (a minute or more: it installs torch, Ray and the rest), but it runs in CI: the wheels
come from pip's configured indexes, and torch is pinned so pip takes the CPU build.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

pytestmark = pytest.mark.slow  # a virtualenv and a pip install: minutes


def _dockerfile_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY line, relative to the WORKDIR."""
    copies = []
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            *sources, dest = line.split()[1:]
            assert not any(s.startswith("--") for s in sources), f"unsupported COPY flag: {line}"
            copies.append((sources, dest))
    return copies


def _build_context(app: Path) -> None:
    """Lay out /app as the Dockerfile's COPY lines do."""
    for sources, dest in _dockerfile_copies():
        for source in sources:
            src = REPO / source
            target = app / dest / src.name if dest.endswith("/") or dest == "./" else app / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, target)


@pytest.mark.timeout(900)
def test_image_install_step_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    run_line = next(
        line
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if line.startswith("RUN ") and "scripts/install.sh" in line
    )
    assert re.search(r"\bscripts/install\.sh$", run_line)
    app = tmp_path / "app"
    _build_context(app)
    assert (app / "scripts" / "install.sh").exists() and (
        app / "runner" / "driver" / "cluster.py"
    ).exists()

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.pop("TORCH_INDEX_URL", None)  # pip's own configuration, as on a developer's machine
    env.update(PYTHON=str(python), PATH=f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}")
    result = subprocess.run(
        ["bash", "scripts/install.sh"],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "sweepscope installed" in result.stdout

    # Installed, not imported from the build context: run from elsewhere.
    check = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m, runner.driver.cluster, psycopg, torch, ray\n"
            "print(m.version('sweepscope'), torch.__version__, ray.__version__,\n"
            "      runner.driver.cluster.__file__)",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr
    version, torch_version, ray_version, where = check.stdout.split()
    assert torch_version.startswith("2.13.0")
    assert "+cu" not in torch_version  # the pinned CPU build, not a CUDA one
    assert tuple(int(x) for x in ray_version.split(".")[:2]) >= (2, 54)
    assert "site-packages" in where
    cli = subprocess.run(
        [str(env_dir / "bin" / "sweepscope"), "run", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0 and "--storage-path" in cli.stdout, cli.stderr
