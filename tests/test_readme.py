"""The README's own-experiment example runs as written, with the results it promises.

tests/test_docs.py runs every other block of the README and the docs; this test runs the
README's sweep itself and checks what it stored."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from runner.store import open_store
from tests.helpers.cli import SWEEPSCOPE
from tests.helpers.docs import blocks
from tests.helpers.paths import REPO


def _block(language: str, first_line: str) -> str:
    for block in blocks(REPO / "README.md"):
        if block.language == language and block.body.startswith(first_line):
            return block.body
    raise AssertionError(f"README has no {language} block starting {first_line!r}")


@pytest.mark.ray
def test_readme_own_experiment(tmp_path: Path) -> None:
    (tmp_path / "mymodel.py").write_text(_block("python", "# mymodel.py"))
    (tmp_path / "mysweep.yaml").write_text(_block("yaml", "# mysweep.yaml"))
    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    done = subprocess.run(
        [SWEEPSCOPE, "run", "mysweep.yaml", "--store", url],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    with open_store(url) as store:
        (sweep,) = store.sweeps()
        trials = store.trials(sweep["id"])
        assert sorted(t["config"]["lr"] for t in trials) == [0.001, 0.01, 0.1]
        assert {t["status"] for t in trials} == {"completed"}
        loss = store.points(sweep["id"], metrics=["val_loss"])
        final = loss.sort_values("step").groupby("trial_id")["value"].last()
        by_lr = {t["config"]["lr"]: final[t["id"]] for t in trials}
        assert by_lr[0.1] < by_lr[0.01] < by_lr[0.001]  # a larger step descends faster
        assert len(store.points(sweep["id"], metrics=["train_loss"])) == 3 * 500
