"""`sweepscope extend` on real sweeps: more seeds, more grid values, more epochs, an
extension interrupted with Ctrl-C and resumed, and what is refused."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.store import open_store
from tests.helpers.cli import SWEEPSCOPE, cli, cli_env, cli_here
from tests.helpers.paths import REPO
from tests.helpers.waiting import wait_for

EPOCHS, STEPS = 2, 3  # per trial: 6 train_loss points, 2 val_acc points

SPEC: dict[str, Any] = {
    "name": "grow",
    "trainable": "tests.trainables:continued",
    "metric": "val_acc",
    "mode": "max",
    "stop": {"epochs": EPOCHS},
    "max_concurrent": 2,
    "fixed": {"steps_per_epoch": STEPS},
    "grid": {"quality": [0.5, 1.0]},  # quality 1.0 is the best configuration
    "seeds": 2,
}


def _run(tmp_path: Path, body: dict[str, Any]) -> tuple[str, str]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(body))
    url = f"sqlite:///{tmp_path / 's.db'}"
    done = cli("run", str(spec), "--store", url, "--storage-path", str(tmp_path / "ray"))
    assert done.returncode == 0, done.stderr
    with open_store(url) as store:
        return url, store.sweeps()[0]["id"]


def _curves(url: str, sweep_id: str) -> dict[int, dict[str, list[int]]]:
    """Each trial's steps by metric (by trial number), in step order."""
    with open_store(url) as store:
        numbers = {t["id"]: t["number"] for t in store.trials(sweep_id)}
        points = store.points(sweep_id)
    points = points[~points.metric.str.startswith("sys/")]
    return {
        numbers[tid]: {m: sorted(g.step.tolist()) for m, g in by.groupby("metric")}
        for tid, by in points.groupby("trial_id")
    }


def _whole(epochs: int) -> dict[str, list[int]]:
    """The steps a trial of `epochs` epochs stores, each once."""
    return {
        "train_loss": list(range(1, epochs * STEPS + 1)),
        "val_acc": [STEPS * e for e in range(1, epochs + 1)],
        "start_epoch": [STEPS * e for e in range(1, epochs + 1)],
    }


@pytest.mark.ray
def test_seeds_grid_and_epochs_grow_one_sweep_round_by_round(tmp_path: Path) -> None:
    url, sweep_id = _run(tmp_path, SPEC)

    seeds = cli("extend", sweep_id, "--seeds", "1", "--top", "1", "--store", url)
    assert seeds.returncode == 0, seeds.stderr
    assert f"sweep {sweep_id}, round 2: 1 more seed(s) for the top 1" in seeds.stdout

    grid = cli("extend", sweep_id, "--grid", "quality=0.8", "--store", url)
    assert grid.returncode == 0, grid.stderr
    assert "round 3: grid quality += 0.8: 2 new trials" in grid.stdout

    more = cli("extend", sweep_id, "--epochs", "2", "--top", "1", "--store", url)
    assert more.returncode == 0, more.stderr
    assert "round 4: 2 more epoch(s) for the top 1 configurations' seeds: 3 trials" in more.stdout

    with open_store(url) as store:
        sweep = store.sweep(sweep_id)
        trials = {t["number"]: t for t in store.trials(sweep_id)}
        rounds = store.rounds(sweep_id)
        history = {n: [e["status"] for e in store.trial_events(t["id"])] for n, t in trials.items()}
    assert sweep is not None and sweep["status"] == "completed" and sweep["n_trials"] == 7
    assert sweep["spec"]["grid"]["quality"] == [0.5, 1.0, 0.8]
    assert sweep["spec"]["stop"]["epochs"] == EPOCHS + 2
    assert [r["kind"] for r in rounds] == ["seeds", "grid", "epochs"]
    assert [
        (n, t["round"], t["config"]["quality"], t["config"]["seed"]) for n, t in trials.items()
    ][4:] == [(5, 2, 1.0, 2), (6, 3, 0.8, 0), (7, 3, 0.8, 1)]
    assert all(t["status"] == "completed" for t in trials.values())

    curves = _curves(url, sweep_id)
    continued = [n for n, t in trials.items() if t["config"]["quality"] == 1.0]
    assert len(continued) == 3
    for n in trials:
        epochs = EPOCHS + 2 if n in continued else EPOCHS
        assert curves[n] == _whole(epochs), n  # continuous: every step once, none missing
        assert trials[n]["config"]["epochs"] == epochs and trials[n]["last_epoch"] == epochs
    for n in continued:  # each went on from its checkpoint at epoch 2, not from the start
        assert history[n] == ["pending", "running", "completed"] * 2
    with open_store(url) as store:
        starts = store.points(sweep_id, metrics=["start_epoch"])
        ids = {t["id"]: t["number"] for t in store.trials(sweep_id)}
    late = starts[starts.step > EPOCHS * STEPS]
    assert sorted({ids[i] for i in late.trial_id}) == continued and set(late.value) == {EPOCHS}


@pytest.mark.ray
def test_ctrl_c_during_an_extension_then_resume_stores_each_point_once(tmp_path: Path) -> None:
    body = {**SPEC, "fixed": {"steps_per_epoch": STEPS, "sleep": 0.4}, "max_concurrent": 1}
    url, sweep_id = _run(tmp_path, body)
    # The extension's trials take 2.4 s each, one at a time: Ctrl-C lands mid-round.
    proc = subprocess.Popen(
        [SWEEPSCOPE, "extend", sweep_id, "--seeds", "2", "--all", "--store", url],
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with open_store(url) as store:

            def started() -> bool:
                return any(
                    t["round"] == 2 and (t["last_epoch"] or 0) >= 1 for t in store.trials(sweep_id)
                )

            wait_for("an extension trial's first epoch", started, 90)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    with open_store(url) as store:
        sweep = store.sweep(sweep_id)
        assert sweep is not None and sweep["status"] == "stopped"
        late = [t for t in store.trials(sweep_id) if t["round"] == 2]
        assert len([t for t in late if t["status"] == "completed"]) < 4  # some left to run

    resumed = cli("resume", sweep_id, "--store", url)
    assert resumed.returncode == 0, resumed.stderr
    with open_store(url) as store:
        sweep = store.sweep(sweep_id)
        trials = store.trials(sweep_id)
    assert sweep is not None and sweep["status"] == "completed" and sweep["n_trials"] == 8
    assert [t["number"] for t in trials] == list(range(1, 9))
    assert [t["round"] for t in trials] == [1] * 4 + [2] * 4
    assert all(t["status"] == "completed" for t in trials)
    seeds = sorted((t["config"]["quality"], t["config"]["seed"]) for t in trials)
    assert seeds == [(q, s) for q in (0.5, 1.0) for s in range(4)]
    curves = _curves(url, sweep_id)
    assert all(curves[t["number"]] == _whole(EPOCHS) for t in trials)


@pytest.mark.ray
def test_epochs_are_refused_for_a_trainable_that_never_checkpointed(tmp_path: Path) -> None:
    url, sweep_id = _run(tmp_path, {**SPEC, "checkpoint_every": 0, "seeds": 1})
    refused = cli("extend", sweep_id, "--epochs", "1", "--store", url)
    assert refused.returncode == 2
    assert "left no checkpoint to continue from" in refused.stderr and "Fix:" in refused.stderr
    with open_store(url) as store:  # nothing changed
        sweep = store.sweep(sweep_id)
        assert sweep is not None and sweep["status"] == "completed" and sweep["n_trials"] == 2
        assert store.rounds(sweep_id) == []
        assert sweep["spec"]["stop"]["epochs"] == EPOCHS


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], "give one of --seeds N, --grid KEY=V1,V2 or --epochs N"),
        (["--seeds", "1", "--grid", "quality=2"], "give one of --seeds N, --grid"),
        (["--grid", "quality=2", "--top", "1"], "--top goes with --seeds or --epochs"),
        (["--epochs", "1", "--where", "undecided"], "--where goes with --seeds"),
        (["--seeds", "1"], "no sweep 'nope'"),
    ],
)
def test_extend_refuses_what_cannot_work_before_touching_anything(
    tmp_path: Path, args: list[str], words: str
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    open_store(url, create=True).close()
    done = cli_here("extend", "nope", *args, "--store", url)  # what it says: no process needed
    assert done.returncode == 2 and words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
