"""Fault tolerance with real processes: killed workers, a killed driver, concurrent writers,
malformed specs, and trials that raise, diverge or hang."""

from __future__ import annotations

import copy
import math
import os
import re
import shutil
import signal
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import SpecError, StoreError
from runner.spec import load_spec
from runner.store import Store, open_store
from tests.helpers.cli import SWEEPSCOPE, cli
from tests.helpers.paths import REPO
from tests.helpers.waiting import wait_for


def _spec(tmp_path: Path, body: dict[str, Any], name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body))
    return path


def _start(spec: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    return subprocess.Popen(
        [SWEEPSCOPE, *extra, str(spec), "--store", url],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _trials(url: str) -> list[dict[str, Any]]:
    try:
        store = open_store(url)
    except StoreError:  # the runner has not created it yet
        return []
    with store:
        sweeps = store.sweeps()
        return store.trials(sweeps[0]["id"]) if sweeps else []


def _curve_steps(url: str, trial_id: int) -> list[int]:
    with open_store(url) as store:
        sweep_id = store.sweeps()[0]["id"]
        points = store.points(sweep_id, trial_ids=[trial_id], metrics=["train_loss"])
    return sorted(points["step"].tolist())


# -- 1. a trial's worker process is killed mid-epoch ---------------------------------------
@pytest.mark.ray
@pytest.mark.parametrize("max_failures", [0, 2])
def test_killed_worker(tmp_path: Path, max_failures: int) -> None:
    spec = _spec(
        tmp_path,
        {
            "name": "kill",
            "trainable": "tests.trainables:checkpointed",
            "stop": {"epochs": 8},
            "max_failures": max_failures,
            "max_concurrent": 2,
            "fixed": {"steps_per_epoch": 10, "sleep": 0.03, "pid_dir": str(tmp_path)},
            "grid": {"scale": [1.0, 2.0]},
        },
    )
    url = f"sqlite:///{tmp_path / 's.db'}"
    proc = _start(spec, url, "run")
    try:
        victim_pid = tmp_path / "1.0.pid"
        wait_for(
            "the victim trial's second epoch",
            lambda: (
                victim_pid.exists()
                and any(
                    t["config"]["scale"] == 1.0 and (t["last_epoch"] or 0) >= 2
                    for t in _trials(url)
                )
            ),
            90,
        )
        os.kill(int(victim_pid.read_text()), signal.SIGKILL)  # mid-epoch: it sleeps every step
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    trials = {t["config"]["scale"]: t for t in _trials(url)}
    assert trials[2.0]["status"] == "completed"  # the sweep went on
    assert _curve_steps(url, trials[2.0]["id"]) == list(range(1, 81))
    killed = trials[1.0]
    steps = _curve_steps(url, killed["id"])
    if max_failures == 0:
        assert killed["status"] == "error"
        assert killed["error"]  # the text of Ray's failure
        assert len(steps) >= 20 and steps == list(range(1, len(steps) + 1))  # points kept
    else:
        assert killed["status"] == "completed"
        assert steps == list(range(1, 81))  # continuous, each step once
        with open_store(url) as store:
            history = [e["status"] for e in store.trial_events(killed["id"])]
        assert history.count("running") == 2 and "pending" in history[1:]


# -- 2. the driver is killed, then the sweep is resumed -------------------------------------
@pytest.mark.ray
def test_driver_sigkill_then_resume(tmp_path: Path) -> None:
    body = {
        "name": "resume",
        "trainable": "tests.trainables:checkpointed",
        "stop": {"epochs": 6},
        "max_concurrent": 2,
        "fixed": {"steps_per_epoch": 10, "sleep": 0.03},
        # six trials, two at a time: some are still to be created when the driver dies
        "grid": {"scale": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]},
    }
    spec = _spec(tmp_path, body)
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    proc = _start(spec, url, "run")
    try:
        wait_for(
            "a completed trial and a running one",
            lambda: (
                any(t["status"] == "completed" for t in _trials(url))
                and any(t["status"] == "running" and t["last_epoch"] for t in _trials(url))
            ),
            90,
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started
        proc.wait()
    assert "running" in {t["status"] for t in _trials(url)}  # nothing cleaned up
    assert len(_trials(url)) < 6  # the resumed sweep creates the rest

    with open_store(url) as store:
        sweep_id = store.sweeps()[0]["id"]
    changed = _spec(tmp_path, {**body, "stop": {"epochs": 7}}, "changed.yaml")
    refused = cli("resume", sweep_id, "--store", url, "--spec", str(changed))
    assert refused.returncode == 2 and "stop: differs from the spec" in refused.stderr

    resumed = cli("resume", sweep_id, "--store", url, "--spec", str(spec))
    assert resumed.returncode == 0, resumed.stderr
    with open_store(url) as store:
        sweep = store.sweep(sweep_id)
        assert sweep is not None and sweep["status"] == "completed"
        for trial in store.trials(sweep_id):
            history = [e["status"] for e in store.trial_events(trial["id"])]
            assert trial["status"] == "completed" and history.count("completed") == 1, (
                history,
                trial["error"],
            )
        killed = store.points(sweep_id)
        killed = killed[~killed.metric.str.startswith("sys/")]  # load samples: by duration
        killed_counts = killed.groupby("trial_id").size().sort_values().tolist()

    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    clean = cli("run", str(spec), "--store", clean_url)
    assert clean.returncode == 0, clean.stderr
    with open_store(clean_url) as store:
        clean_id = store.sweeps()[0]["id"]
        clean = store.points(clean_id)
        clean = clean[~clean.metric.str.startswith("sys/")]
        clean_counts = clean.groupby("trial_id").size().sort_values().tolist()
    assert killed_counts == clean_counts


@pytest.mark.ray
def test_resume_when_the_recorded_checkpoints_were_deleted(tmp_path: Path) -> None:
    """Ray Tune deletes older checkpoints as newer arrive but saves its experiment state only
    every few seconds: a driver killed in between leaves a state naming deleted checkpoints.
    Resume continues from what survived (or from the first epoch), never fails the trial."""
    body = {
        "name": "stale",
        "trainable": "tests.trainables:checkpointed",
        "stop": {"epochs": 40},
        "max_concurrent": 2,
        "fixed": {"steps_per_epoch": 10, "sleep": 0.03},
        "grid": {"scale": [1.0, 2.0]},
    }
    spec = _spec(tmp_path, body)
    url = f"sqlite:///{tmp_path / 'stale.db'}"
    proc = _start(spec, url, "run", "--storage-path", str(tmp_path / "ray"))
    try:  # past a save of the experiment state (every 5 s) that names checkpoints
        wait_for(
            "two trials at epoch 25",
            lambda: sum((t["last_epoch"] or 0) >= 25 for t in _trials(url)) == 2,
            120,
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert {t["status"] for t in _trials(url)} == {"running"}

    def settled() -> bool:  # the orphaned workers have stopped writing checkpoints
        before = sorted(tmp_path.glob("ray/*/*/checkpoint_*"))
        time.sleep(1.5)
        return before == sorted(tmp_path.glob("ray/*/*/checkpoint_*"))

    wait_for("the workers to stop writing", settled, 30)

    # What Ray Tune would have done had the driver lived a moment longer: delete the
    # checkpoints its last saved state names (and every older one); one trial loses all.
    [experiment] = (tmp_path / "ray").iterdir()
    [state] = experiment.glob("experiment_state-*.json")
    named = set(re.findall(r"checkpoint_\d{6}", state.read_text()))
    assert named, "the saved state names no checkpoint: nothing to test"
    first, second = sorted({path.parent for path in experiment.glob("*/checkpoint_*")})
    for directory in first.glob("checkpoint_*"):
        shutil.rmtree(directory)
    for directory in second.glob("checkpoint_*"):
        if directory.name <= max(named):
            shutil.rmtree(directory)

    with open_store(url) as store:
        sweep_id = store.sweeps()[0]["id"]
    resumed = cli("resume", sweep_id, "--store", url)
    assert resumed.returncode == 0, resumed.stderr
    assert "was deleted after Ray Tune last saved its state" in resumed.stderr
    assert "resuming from its first epoch" in resumed.stderr, resumed.stderr
    with open_store(url) as store:
        for trial in store.trials(sweep_id):
            history = [e["status"] for e in store.trial_events(trial["id"])]
            assert trial["status"] == "completed", (history, trial["error"])
            assert _curve_steps(url, trial["id"]) == list(range(1, 401))  # each step once


# -- 3. many processes write one store while another reads ----------------------------------
WRITERS, BATCHES, PER_BATCH = 16, 20, 250


def _write(url: str, index: int) -> None:
    with open_store(url) as store:
        trial = store.add_trial("conc", f"w{index}", {"i": index})
        for b in range(BATCHES):
            store.add_points(
                trial, [("train_loss", b * PER_BATCH + s, 1.0, 0.0) for s in range(PER_BATCH)]
            )


def _read(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    with open_store(url) as store:
        while time.monotonic() < deadline:
            store.points("conc", after_id=0)
            store.sweeps()


def _process(call: str) -> subprocess.Popen[str]:
    """A fresh Python process running `call` from this module (not multiprocessing: its
    spawn re-runs whatever __main__ is, which other tests may have pointed elsewhere)."""
    code = f"from tests.test_reliability import _read, _write; {call}"
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, text=True, stderr=subprocess.PIPE
    )


@pytest.mark.slow  # sixteen processes writing at once: ~25 s
def test_concurrent_writers_and_a_reader(store: Store, store_url: str) -> None:
    store.create_sweep("conc", name="c", spec={}, metric="val_acc", mode="max", n_trials=WRITERS)
    # The real URL: `store.url` is masked, and a server that checks passwords refuses ***.
    reader = _process(f"_read({store_url!r}, 20.0)")
    writers = [_process(f"_write({store_url!r}, {i})") for i in range(WRITERS)]
    errors = [w.communicate(timeout=180)[1] for w in writers]
    reader_error = reader.communicate(timeout=60)[1]
    assert [w.returncode for w in writers] == [0] * WRITERS, errors  # no 'database is locked'
    assert reader.returncode == 0, reader_error
    points = store.points("conc")
    assert len(points) == WRITERS * BATCHES * PER_BATCH
    assert points.groupby("trial_id").size().tolist() == [BATCHES * PER_BATCH] * WRITERS


# -- 4. fuzzed specs ----------------------------------------------------------------------
# The oracle is the construction, never load_spec: a valid spec, then zero or more known
# mistakes, each in a field of its own. No mistake: the spec loads and has the trials its grid
# makes. Mistakes: one SpecError names each mistaken field, and the CLI exits 2.
PARAMS = ["lr", "wd", "hidden", "depth", "act", "seed", "beta1", "dropout", "opt"]
WORDS = st.text(alphabet=string.ascii_letters, min_size=1, max_size=6)  # never read as a number
GOOD_NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,15}", fullmatch=True)
BAD_NAMES = st.one_of(
    st.just(""),
    st.tuples(st.sampled_from("_-. "), GOOD_NAMES).map("".join),  # a bad first character
    st.tuples(GOOD_NAMES, st.sampled_from(" !/:@#é")).map("".join),  # a character not allowed
    GOOD_NAMES.map(lambda name: name + "x" * 64),  # longer than 64
)
VALUES = st.recursive(
    st.booleans()
    | st.integers(-1000, 1000)
    | st.floats(allow_nan=False, allow_infinity=False)
    | WORDS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(WORDS, inner, max_size=3),
    max_leaves=5,
)


def _bounds(numbers: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(numbers, min_size=2, max_size=2, unique=True).map(sorted)


DISTRIBUTIONS = st.one_of(
    _bounds(st.floats(-1e3, 1e3)).map(lambda b: {"uniform": b}),
    _bounds(st.floats(1e-8, 1e3)).map(lambda b: {"loguniform": b}),
    _bounds(st.integers(-100, 100)).map(lambda b: {"int": b}),
    st.lists(VALUES, min_size=1, max_size=3).map(lambda c: {"choice": c}),
)


@st.composite
def _valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.permutations(PARAMS))  # each in one section: a name in two is refused
    grid, fixed, sample = names[: draw(st.integers(1, 3))], names[3:5], names[5:7]
    spec: dict[str, Any] = {
        "name": draw(GOOD_NAMES),
        "trainable": "tests.trainables:steady",
        "stop": {"epochs": draw(st.integers(1, 50))},
        "samples": draw(st.integers(1, 3)),
        "grid": {n: draw(st.lists(VALUES, min_size=1, max_size=4)) for n in grid},
        "fixed": {n: draw(VALUES) for n in fixed[: draw(st.integers(1, 2))]},
        "sample": {n: draw(DISTRIBUTIONS) for n in sample[: draw(st.integers(0, 2))]},
    }
    if draw(st.booleans()):
        spec["resources"] = {
            "cpu": draw(st.floats(0.1, 8)),
            "gpu": draw(st.sampled_from([0, 0.5, 2])),
        }
    if draw(st.booleans()):
        spec["scheduler"] = {"type": draw(st.sampled_from(["none", "asha", "median"]))}
    if draw(st.booleans()):
        spec["trial_timeout"] = draw(st.floats(1, 1e4))
    return spec


# Each mistake, drawn for the valid spec: (path of the mistaken field, the value to put
# there). DUPLICATE: the key is written twice in the YAML text instead.
KeyPath = tuple[str | int, ...]
DUPLICATE = object()
NOT_NUMBERS = WORDS | st.lists(st.integers(0, 9), min_size=1, max_size=2)
NOT_STRINGS = st.integers() | st.lists(WORDS, min_size=1, max_size=2)
NOT_MAPPINGS = WORDS | st.integers()
WRONG_TYPES: dict[KeyPath, st.SearchStrategy[Any]] = {
    **{(f,): NOT_STRINGS for f in ("name", "trainable", "metric", "mode", "order")},
    **{(f,): NOT_NUMBERS for f in ("samples", "max_concurrent", "max_failures", "trial_timeout")},
    **{(f,): NOT_MAPPINGS for f in ("stop", "resources", "fixed", "grid", "sample")},
    ("stop", "epochs"): NOT_NUMBERS,
    ("resources", "cpu"): NOT_NUMBERS,
    ("scheduler", "grace_period"): NOT_NUMBERS,
}
NOT_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


def _unknown_key(draw: st.DrawFn, spec: dict[str, Any]) -> tuple[KeyPath, Any]:
    keys = [("colour",), ("resources", "cpus"), ("scheduler", "kind"), ("stop", "epoch")]
    return draw(st.sampled_from(keys)), 1


def _wrong_type(draw: st.DrawFn, spec: dict[str, Any]) -> tuple[KeyPath, Any]:
    path = draw(st.sampled_from(list(WRONG_TYPES)))
    return path, draw(WRONG_TYPES[path])


def _empty_grid_list(draw: st.DrawFn, spec: dict[str, Any]) -> tuple[KeyPath, Any]:
    return ("grid", draw(st.sampled_from(sorted(spec["grid"])))), []


def _min_not_below_max(draw: st.DrawFn, spec: dict[str, Any]) -> tuple[KeyPath, Any]:
    kind = draw(st.sampled_from(["uniform", "loguniform", "int"]))
    high = draw(st.integers(1, 100))
    return ("sample", "bounds"), {kind: [high + draw(st.integers(0, 100)), high]}


def _log_of_nonpositive(draw: st.DrawFn, spec: dict[str, Any]) -> tuple[KeyPath, Any]:
    low, high = draw(st.floats(-10, 0)), draw(st.floats(0.1, 10))
    return ("sample", "logscale"), {"loguniform": [low, high]}


def _not_finite_value(draw: st.DrawFn, spec: dict[str, Any]) -> tuple[KeyPath, Any]:
    bad = draw(NOT_FINITE)
    value = draw(st.sampled_from([bad, [1, bad], {"inner": bad}]))
    key = draw(st.sampled_from(sorted(spec["grid"])))
    index = draw(st.integers(0, len(spec["grid"][key]) - 1))
    return draw(st.sampled_from([("grid", key, index), ("fixed", "unusable")])), value


def _not_finite_number(draw: st.DrawFn, spec: dict[str, Any]) -> tuple[KeyPath, Any]:
    fields = [("resources", "cpu"), ("resources", "gpu"), ("trial_timeout",)]
    fields.append(("scheduler", "reduction_factor"))
    return draw(st.sampled_from(fields)), draw(NOT_FINITE)


def _reserved_name(draw: st.DrawFn, spec: dict[str, Any]) -> tuple[KeyPath, Any]:
    section, value = draw(
        st.sampled_from([("fixed", 1), ("grid", [1, 2]), ("sample", {"uniform": [0, 1]})])
    )
    return (section, "__" + draw(WORDS)), value


def _bad_name(draw: st.DrawFn, spec: dict[str, Any]) -> tuple[KeyPath, Any]:
    return ("name",), draw(BAD_NAMES)


def _duplicate_key(draw: st.DrawFn, spec: dict[str, Any]) -> tuple[KeyPath, Any]:
    top = [(key,) for key in spec]
    inner = [(section, key) for section in ("grid", "fixed") for key in spec[section]]
    return draw(st.sampled_from(top + inner)), DUPLICATE


MISTAKES = [
    _unknown_key,
    _wrong_type,
    _empty_grid_list,
    _min_not_below_max,
    _log_of_nonpositive,
    _not_finite_value,
    _not_finite_number,
    _reserved_name,
    _bad_name,
    _duplicate_key,
]


def _field(path: KeyPath) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _yaml(spec: dict[str, Any], duplicates: list[KeyPath]) -> str:
    """The spec as a user might type it: floats spelt as in YAML 1.2 (1e-05 where PyYAML
    writes 1.0e-05; 1e16 for 1.0e+16), and the keys in `duplicates` written twice."""
    text = yaml.safe_dump(spec, default_flow_style=False)
    text = re.sub(r"\b(\d+)\.0e", r"\1e", text)  # only numbers hold digits here
    text = re.sub(r"(\d)e\+(\d)", r"\1e\2", text)
    for path in duplicates:
        head, *inner = map(str, path)  # keys, never list indexes
        if not inner:  # a top-level key: again at the end
            text += yaml.safe_dump({head: spec[head]}, default_flow_style=False)
        else:  # first in its section, before the original
            again = yaml.safe_dump({inner[0]: spec[head][inner[0]]}, default_flow_style=False)
            indented = "".join("  " + line for line in again.splitlines(keepends=True))
            section = f"\n{head}:\n"
            text = ("\n" + text).replace(section, section + indented, 1)[1:]
    return text


@st.composite
def _fuzzed_specs(draw: st.DrawFn) -> tuple[str, dict[str, Any], set[str]]:
    """(YAML text, the spec it holds, the fields a mistake was made in)."""
    valid = draw(_valid_specs())
    spec = copy.deepcopy(valid)
    mistaken: list[KeyPath] = []
    duplicates: list[KeyPath] = []
    for mistake in draw(st.lists(st.sampled_from(MISTAKES), max_size=3)):
        path, value = mistake(draw, valid)
        if any(path[: len(p)] == p or p[: len(path)] == path for p in mistaken):
            continue  # one mistake per field: a second one there could hide the first
        mistaken.append(path)
        if value is DUPLICATE:
            duplicates.append(path)
            continue
        target = spec
        for part in path[:-1]:
            target = target.setdefault(part, {}) if isinstance(part, str) else target[part]
        target[path[-1]] = value
    return _yaml(spec, duplicates), spec, {_field(p) for p in mistaken}


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=_fuzzed_specs())
def test_fuzzed_specs_load_or_name_each_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: tuple[str, dict[str, Any], set[str]]
) -> None:
    import ray

    from runner.cli import main

    text, body, mistaken = case
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    if not mistaken:
        spec = load_spec(path)
        assert spec.n_trials == math.prod(len(v) for v in body["grid"].values()) * body["samples"]
        assert spec.grid == body["grid"] and spec.fixed == body["fixed"]  # floats read as floats
        return
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert {field for field, _, _ in info.value.problems} == mistaken, text
    message = str(info.value)
    assert all(f"{field}: " in message for field in mistaken)
    db = tmp_path / "fuzz.db"
    code = main(["run", str(path), "--store", f"sqlite:///{db}"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err and err.count("\n") == 1 and "Fix:" in err
    assert not db.exists() and not ray.is_initialized()


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=40))
def test_any_text_is_a_spec_or_a_spec_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    try:
        load_spec(path)
    except SpecError as exc:
        assert "Fix:" in str(exc)


# -- 5. each way a trial can end ------------------------------------------------------------
@pytest.mark.ray
def test_raise_diverge_hang_each_get_their_status(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        {
            "name": "endings",
            "trainable": "tests.trainables:mixed",
            "stop": {"epochs": 3},
            "trial_timeout": 4,
            "fixed": {"steps_per_epoch": 5},
            "grid": {"kind": ["raises", "diverges", "hangs", "steady"]},
        },
    )
    url = f"sqlite:///{tmp_path / 's.db'}"
    done = cli("run", str(spec), "--store", url)
    assert done.returncode == 0, done.stderr
    by_kind = {t["config"]["kind"]: t for t in _trials(url)}
    assert {k: t["status"] for k, t in by_kind.items()} == {
        "raises": "error",
        "diverges": "diverged",
        "hangs": "timeout",
        "steady": "completed",
    }
    assert "trial_timeout" in by_kind["hangs"]["error"]
    with open_store(url) as store:
        sweep = store.sweeps()[0]
    assert sweep["status"] == "completed"


# -- schedulers ---------------------------------------------------------------------------
@pytest.mark.ray
@pytest.mark.parametrize(
    "scheduler",
    [
        {"type": "asha", "grace_period": 1, "reduction_factor": 3},
        {"type": "median", "grace_period": 1, "min_samples": 2},
    ],
    ids=["asha", "median"],
)
def test_scheduler_prunes_poor_trials(tmp_path: Path, scheduler: dict[str, Any]) -> None:
    spec = _spec(
        tmp_path,
        {
            "name": scheduler["type"],
            "trainable": "tests.trainables:checkpointed",
            "stop": {"epochs": 9},
            "checkpoint_every": 0,
            # two trials at a time on any machine, the others pending (no max_concurrent:
            # with it, Tune creates no pending trials, and those are what once made the
            # median rule pause trials)
            "resources": {"cpu": (os.cpu_count() or 2) / 2},
            "scheduler": scheduler,
            "fixed": {"steps_per_epoch": 5, "sleep": 0.01},
            "grid": {"quality": [0.2, 0.4, 0.6, 0.8, 1.0, 0.3]},
        },
    )
    url = f"sqlite:///{tmp_path / 's.db'}"
    done = cli("run", str(spec), "--store", url)
    assert done.returncode == 0, done.stderr
    trials = _trials(url)
    # trials start in the spec's shuffled order, so a sorted grid cannot defeat the scheduler
    assert [t["config"]["quality"] for t in trials] == [
        p["quality"] for p in load_spec(spec).points()
    ]
    statuses = {t["config"]["quality"]: t["status"] for t in trials}
    assert "pruned" in statuses.values()
    assert set(statuses.values()) <= {"completed", "pruned"}
    with open_store(url) as store:  # never paused and restarted: one run each, start to end
        for t in trials:
            assert [e["status"] for e in store.trial_events(t["id"])].count("running") == 1
    best = max(trials, key=lambda t: t["config"]["quality"])
    assert statuses[1.0] == "completed" and best["last_epoch"] == 9
    for t in trials:
        if t["status"] == "pruned":
            assert t["last_epoch"] < 9
