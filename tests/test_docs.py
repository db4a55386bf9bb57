"""The documentation is true: every code block of the README and of docs/*.md runs, every CLI
command and flag is documented, every repository path it names exists, and the site builds
with `mkdocs build --strict`.

How a block runs (marks: tests/helpers/docs.py), in page order, in a fresh directory per page:

- python: `# name.py` on its first line: written as that file, for later blocks of the page;
  otherwise run there with this Python.
- yaml: a sweep spec (or, with `# name.yaml`, a spec file), validated as `sweepscope run` does
  (runner.spec.load_spec, the trainable located too). A fragment without `trainable` (a few
  fields, as a page shows them) is validated inside a minimal spec.
- json: parsed.
- bash: lines that all start with `make` are checked with `make -n` in the repository; others
  run with bash -euo pipefail, the project's commands first on PATH and no $SWEEPSCOPE_STORE,
  so `sweepscope` uses ./sweepscope.db as a new user's shell would.
- text: output or a tree, not code: nothing to run.

A page whose blocks start a sweep (`sweepscope run`/`resume`) is marked `ray`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runner.cli import build_parser
from tests.helpers.cli import cli_env
from tests.helpers.docs import MARKS, Block, blocks, pages
from tests.helpers.paths import REPO

LANGUAGES = ("python", "yaml", "json", "bash", "text")
# What a spec fragment is completed with: the fields every spec needs.
FRAGMENT_BASE = {
    "name": "docs_fragment",
    "trainable": "experiments.train:train",
    "stop": "{epochs: 1}",
}
MKDOCS_FIX = (
    "mkdocs is not installed in this environment. Fix: `make install` (the test extra "
    "brings mkdocs, mkdocs-material and mkdocstrings[python]), or "
    "`.venv/bin/pip install mkdocs mkdocs-material 'mkdocstrings[python]'`"
)
_RAY = re.compile(r"\bsweepscope\s+(?:run|resume)\b|^\s*(?:import ray|from ray)\b", re.M)
_VALIDATE = """
import sys
from runner.spec import load_spec
from runner.errors import SweepscopeError
failed = 0
for path in sys.argv[1:]:
    try:
        load_spec(path)
    except SweepscopeError as exc:
        failed += 1
        print(f"{path}: {exc}")
sys.exit(1 if failed else 0)
"""


def _needs_ray(page: Path) -> bool:
    return any(
        b.mark is None  # neither skipped nor a synopsis
        and b.filename is None
        and b.language in ("bash", "python")
        and _RAY.search(b.body)
        for b in blocks(page)
    )


def _page_params() -> list[object]:
    return [
        pytest.param(page, id=page.name, marks=[pytest.mark.ray] if _needs_ray(page) else [])
        for page in pages()
    ]


# -- running one block -----------------------------------------------------------------------
def _run(command: list[str], block: Block, cwd: Path, timeout: float) -> None:
    """Run `command`; fail naming the block, with its output, unless it exits 0. On a
    timeout the whole process group goes (a sweep's Ray with it)."""
    env = {k: v for k, v in cli_env().items() if k != "SWEEPSCOPE_STORE"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{block.where}: still running after {timeout:.0f} s:\n{out[-3000:]}")
    assert proc.returncode == 0, f"{block.where} exited {proc.returncode}:\n{out[-3000:]}"


def _spec_text(block: Block) -> str:
    """The block as a spec file: a fragment gets the fields every spec needs, in its own
    text (so YAML 1.2 numbers stay as the page wrote them)."""
    keys = yaml.safe_load(block.body) or {}
    assert isinstance(keys, dict), f"{block.where}: a yaml block must be a spec (a mapping)"
    if "trainable" in keys:
        return block.body
    base = [f"{key}: {value}" for key, value in FRAGMENT_BASE.items() if key not in keys]
    return "\n".join(base) + "\n" + block.body


def _check_synopsis(block: Block) -> None:
    """Each `sweepscope COMMAND ...` line names a real command and only its real flags."""
    commands = _commands()
    for line in block.body.splitlines():
        words = shlex.split(line.split("#", 1)[0])
        if not words:
            continue
        assert words[0] == "sweepscope" and len(words) > 1, f"{block.where}: {line!r}"
        assert words[1] in commands, f"{block.where}: no command {words[1]!r} in {line!r}"
        flags = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", " ".join(words[2:])))
        unknown = flags - commands[words[1]]
        assert not unknown, f"{block.where}: `sweepscope {words[1]}` has no {sorted(unknown)}"


def _run_make(block: Block) -> None:
    for line in block.body.splitlines():
        command = shlex.split(line.split("#", 1)[0])
        if command:
            _run([command[0], "-n", *command[1:]], block, REPO, timeout=60)


def _run_block(block: Block, work: Path, specs: list[str]) -> None:
    if block.language not in LANGUAGES:
        pytest.fail(
            f"{block.where}: no rule runs a {block.language or 'plain'!r} block. Fix: use one "
            f"of {', '.join(LANGUAGES)}, or mark it <!-- test: skip REASON -->"
        )
    if block.mark == "synopsis":
        _check_synopsis(block)
    elif block.language == "python" and block.filename:
        (work / block.filename).write_text(block.body)
    elif block.language == "python":
        script = work / f"_block_{block.line}.py"
        script.write_text(block.body)
        _run([sys.executable, script.name], block, work, timeout=300)
    elif block.language == "yaml":
        path = work / (block.filename or f"_spec_{block.line}.yaml")
        path.write_text(_spec_text(block))
        specs.append(path.name)
    elif block.language == "json":
        json.loads(block.body)
    elif block.language == "bash" and all(
        line.lstrip().startswith("make ") for line in block.body.splitlines() if line.strip()
    ):
        _run_make(block)
    elif block.language == "bash":
        _run(["bash", "-euo", "pipefail", "-c", block.body], block, work, timeout=600)


@pytest.mark.parametrize("page", _page_params())
def test_every_code_block_of_the_page_runs(page: Path, tmp_path: Path) -> None:
    specs: list[str] = []
    for block in blocks(page):
        if block.mark == "skip":
            continue
        _run_block(block, tmp_path, specs)
    if specs:  # every spec of the page, checked once the page's files are all there
        command = [sys.executable, "-c", _VALIDATE, *specs]
        _run(command, Block(page.name, 0, "yaml", ""), tmp_path, timeout=120)


def test_marks_are_known_and_skips_say_why() -> None:
    for page in pages():
        for block in blocks(page):
            assert block.mark in (None, *MARKS), f"{block.where}: unknown mark {block.mark!r}"
            if block.mark == "skip":
                assert len(block.reason.split()) >= 3, (
                    f"{block.where}: a skipped block says why, e.g. "
                    "<!-- test: skip needs a Kubernetes cluster -->"
                )


# -- the CLI, documented ----------------------------------------------------------------------
def _commands() -> dict[str, set[str]]:
    """Every `sweepscope` command, with its option strings (-o and --output alike)."""
    parser = build_parser()
    (sub,) = (a for a in parser._actions if a.dest == "command")  # argparse's subparsers
    return {
        name: {o for action in command._actions for o in action.option_strings} - {"-h", "--help"}
        for name, command in sub.choices.items()  # type: ignore[union-attr]
    }


def test_every_cli_command_and_flag_is_in_a_synopsis() -> None:
    documented: dict[str, set[str]] = {}
    for page in pages():
        for block in blocks(page):
            if block.mark != "synopsis":
                continue
            for line in block.body.splitlines():
                words = shlex.split(line.split("#", 1)[0])
                if len(words) > 1:
                    documented.setdefault(words[1], set()).update(words[2:])
    for name, options in _commands().items():
        assert name in documented, f"`sweepscope {name}` is in no synopsis (docs/cli.md)"
        text = " ".join(documented[name])
        missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}\b", text)]
        # -o/--output: one of the pair is enough
        missing = [o for o in missing if not (o == "--output" and "-o" not in missing)]
        assert not missing, f"`sweepscope {name}`: {missing} in no synopsis (docs/cli.md)"


# -- paths and the site -----------------------------------------------------------------------
_PATH = re.compile(
    r"`((?:runner|dashboard|experiments|tests|benchmarks|deploy|scripts|docs|\.ci)/[\w./*-]*)`"
)


def test_every_repository_path_the_docs_name_exists() -> None:
    missing = []
    for page in pages():
        for found in _PATH.finditer(page.read_text()):
            path = found[1].rstrip("/.")
            if "<" in path or not any(REPO.glob(path)):
                missing.append(f"{page.name}: {found[1]}")
    assert not missing, f"paths named in the docs that do not exist: {missing}"


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None:
        pytest.fail(MKDOCS_FIX)
    done = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # Material's banner about MkDocs 2
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-4000:]}"
    page = (tmp_path / "site" / "spec" / "index.html").read_text()
    assert "system_metrics_every" in page  # the pages are in the site, not only the nav
