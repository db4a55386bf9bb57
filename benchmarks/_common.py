"""What every benchmark shares: the machine line, running the CLI, tables, its fragment.

Each benchmark prints its figures and writes a markdown fragment to benchmarks/results/;
`python -m benchmarks.run_all` (`make bench`) runs them all and assembles RESULTS.md.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SWEEPSCOPE = str(Path(sys.executable).with_name("sweepscope"))


def machine(packages: tuple[str, ...] = ("ray", "torch", "sqlalchemy", "pandas")) -> str:
    """Cores, CPU model, Python and package versions: the line each fragment carries."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    libs = ", ".join(f"{p} {version(p)}" for p in packages)
    return (
        f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {cpu}; "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; {libs}; "
        f"{platform.system()} {platform.release()}"
    )


def stamp(
    command: str, packages: tuple[str, ...] = ("ray", "torch", "sqlalchemy", "pandas")
) -> str:
    """The command, date and machine lines that end every fragment; a store URL in the
    command keeps no password (fragments are committed)."""
    from runner.redact import mask_url

    command = " ".join(mask_url(word) if "://" in word else word for word in command.split(" "))
    return (
        f"- command: `{command}`\n"
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
        f"- machine: {machine(packages)}\n"
    )


def write_fragment(name: str, text: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text)
    print(text)
    print(f"written to {path.relative_to(REPO)}")
    return path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A markdown table; `align` has one letter a column, l or r (default: the first left)."""
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def run_cli(*args: str, timeout: float = 1800) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run `sweepscope ARGS` from the repo root, Ray on loopback; returns (wall s, result)."""
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    start = time.perf_counter()
    done = subprocess.run(
        [SWEEPSCOPE, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"sweepscope {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
        )
    return wall, done


def run_python(*args: str, timeout: float = 1800) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run `python ARGS` from the repo root (a fresh process: imports counted in the wall)."""
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"python {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return wall, done
