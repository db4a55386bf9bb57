"""The CLI's JSON outputs: `ls`, `status` and `export` with --json, and `run --progress json`,
each checked against its JSON Schema (runner/schemas/, described in docs/json.md).

The read commands run on a store built with the Store API (no Ray); one real sweep checks the
progress lines end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import pytest
import sqlalchemy as sa

from runner.cli import main
from runner.store import Store, open_store
from runner.views import SCHEMA_DIR, schema
from tests.helpers.cli import cli, write_spec

OUTPUTS = ("ls", "status", "export", "progress")
# In a trial's error and a sweep's message: a password the JSON must never show.
LEAKY = "could not reach postgresql://runner:Hunter2Secret@db.example/sweeps"


def _validate(name: str, document: Any) -> None:
    jsonschema.Draft202012Validator(schema(name)).validate(document)


def _json_of(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """Run `sweepscope ARGV` in this process; its stdout, which must be one JSON document
    without the password of the --store URL (PostgreSQL's, in CI, has one)."""
    capsys.readouterr()
    assert main(list(argv)) == 0
    out = capsys.readouterr().out
    password = sa.engine.make_url(argv[argv.index("--store") + 1]).password
    assert not password or str(password) not in out
    document: dict[str, Any] = json.loads(out)
    return document


def _sweep(
    store: Store,
    sweep_id: str,
    *,
    seeds: int | None = None,
    trials: list[tuple[dict[str, Any], str, list[float]]],
) -> list[int]:
    """A finished sweep of `trials` (config, status, val_loss per epoch); their store ids."""
    spec: dict[str, Any] = {"trainable": "tests.trainables:steady", "grid": {"lr": [0.1, 0.01]}}
    if seeds is not None:
        spec["seeds"] = {"n": seeds, "key": "seed"}
    store.create_sweep(
        sweep_id, name=sweep_id, spec=spec, metric="val_loss", mode="min", n_trials=len(trials)
    )
    ids = []
    for i, (config, status, losses) in enumerate(trials):
        trial_id = store.add_trial(sweep_id, f"ray-{sweep_id}-{i}", config)
        store.set_trial_status(trial_id, "running")
        store.add_points(
            trial_id, [("val_loss", e + 1, v, 1000.0 + e) for e, v in enumerate(losses)]
        )
        error = LEAKY if status == "error" else None
        store.set_trial_status(trial_id, status, error=error, last_epoch=len(losses))
        ids.append(trial_id)
    store.finish_sweep(sweep_id, "completed", f"done; {LEAKY}")
    return ids


@pytest.fixture
def filled(store: Store, store_url: str) -> str:
    """Two sweeps: `plain` (its store ids are not its numbers: `first` took ids 1-2) and
    `seeded` (two configurations, three seeds each), with an error, a diverged trial and a
    NaN point among them."""
    _sweep(store, "first", trials=[({"lr": 0.1}, "completed", [1.0]), ({"lr": 0.5}, "error", [])])
    _sweep(
        store,
        "plain",
        trials=[
            ({"lr": 0.1}, "completed", [0.9, 0.5]),
            ({"lr": 0.01}, "error", [0.8]),
            ({"lr": 1.0}, "diverged", [math.nan]),
        ],
    )
    _sweep(
        store,
        "seeded",
        seeds=3,
        trials=[
            ({"lr": lr, "seed": seed}, "completed", [base + 0.01 * seed])
            for lr, base in ((0.1, 0.3), (0.01, 0.6))
            for seed in range(3)
        ],
    )
    return store_url


def test_every_schema_is_a_valid_json_schema_with_its_id() -> None:
    files = sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json"))
    assert files == sorted(f"{name}.schema.json" for name in OUTPUTS)
    for name in OUTPUTS:
        jsonschema.Draft202012Validator.check_schema(schema(name))
        assert schema(name)["$id"] == f"sweepscope/{name}/v1"
    # status repeats ls's sweep (each file stands alone): the two must not drift apart
    assert schema("status")["$defs"]["sweep"] == schema("ls")["$defs"]["sweep"]


def test_ls_json(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    listing = _json_of(capsys, "ls", "--json", "--store", filled)
    _validate("ls", listing)
    by_id = {s["id"]: s for s in listing["sweeps"]}
    assert list(by_id) == ["seeded", "plain", "first"]  # newest first
    plain = by_id["plain"]
    assert plain["status"] == "completed" and plain["n_trials"] == 3 and plain["done"] == 3
    assert plain["counts"] == {"completed": 1, "diverged": 1, "error": 1}
    assert plain["best"] == pytest.approx(0.5)
    assert "Hunter2Secret" not in json.dumps(listing) and "***" in plain["message"]


def test_ls_json_of_an_empty_store(
    store: Store, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = _json_of(capsys, "ls", "--json", "--store", store_url)
    _validate("ls", listing)
    assert listing["sweeps"] == []


def test_status_json_names_trials_by_their_number(
    filled: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = _json_of(capsys, "status", "plain", "--json", "--store", filled)
    _validate("status", status)
    trials = status["trials"]
    assert [t["number"] for t in trials] == [1, 2, 3]  # not the store's ids 3, 4, 5
    assert [t["status"] for t in trials] == ["completed", "error", "diverged"]
    assert trials[0]["best"] == pytest.approx(0.5) and trials[0]["last_epoch"] == 2
    assert trials[2]["best"] is None  # NaN has no JSON form
    assert trials[1]["error"] is not None and "Hunter2Secret" not in trials[1]["error"]
    assert status["sweep"]["varied"] == ["lr"] and status["configurations"] is None


def test_status_json_of_a_seeded_sweep(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    status = _json_of(capsys, "status", "seeded", "--json", "--store", filled)
    _validate("status", status)
    configurations = status["configurations"]
    assert configurations["seed_key"] == "seed"
    rows = configurations["rows"]
    assert [r["config"] for r in rows] == [{"lr": 0.1}, {"lr": 0.01}]  # lower mean first
    assert rows[0]["trials"] == [1, 2, 3] and rows[1]["trials"] == [4, 5, 6]
    assert rows[0]["seeds"] == 3 and rows[0]["mean"] == pytest.approx(0.31)
    best = configurations["best"]
    assert best["config"] == {"lr": 0.1} and best["seeds"] == 3
    assert best["low"] <= best["mean"] <= best["high"]


def test_export_json(filled: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "points.csv"
    summary = _json_of(capsys, "export", "plain", "-o", str(out), "--json", "--store", filled)
    _validate("export", summary)
    frame = pd.read_csv(out)
    assert summary["points"] == len(frame) == 4 and summary["trials"] == 3
    assert summary["columns"] == list(frame.columns) and summary["path"] == str(out.resolve())
    assert sorted(frame["trial"].unique()) == [1, 2, 3] and "trial_id" not in frame.columns


def test_read_command_errors_stay_off_stdout(
    store: Store, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["status", "nope", "--json", "--store", store_url]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "no sweep 'nope'" in captured.err


def test_no_password_of_a_store_url_reaches_json() -> None:
    """SQLite URLs hold no password: this checks the PostgreSQL forms on the documents'
    own path (the store field, a message, a progress event)."""
    from runner.driver.progress import event_line
    from runner.views import dumps, ls_view

    url = "postgresql+psycopg://runner:Hunter2Secret@db.example/sweeps?sslpassword=Other9Pass"
    document = ls_view(url, [])
    text = dumps(document) + event_line("note", text=f"store {url} is away")
    assert "Hunter2Secret" not in text and "Other9Pass" not in text
    assert json.loads(dumps(document))["store"].startswith("postgresql+psycopg://runner:***@")


def test_json_progress_numbers_trials_as_the_store_does() -> None:
    """The driver's side without Ray: trials the store holds keep their numbers (a resumed
    sweep), new ones take the next; every event validates."""
    import io
    from collections import Counter

    from runner.driver.progress import JsonProgress, Progress

    out = io.StringIO()
    progress = JsonProgress(total=4, metric="val_loss", stream=out)
    progress.know([{"ray_id": "a", "number": 1}, {"ray_id": "b", "number": 2}])
    progress.trial_added("c", {"lr": 0.1})
    progress.trial_added("a", {"lr": 1.0})
    progress.trial_status("c", "running")
    progress.trial_reported("c", epoch=1, step=10, value=math.nan)
    progress.trial_status("c", "pending", "retrying after: boom")
    progress.trial_status("c", "error", "Traceback ...\nRuntimeError: boom")
    progress.update(Counter({"error": 1, "completed": 2}), 0.25, force=True)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    for event in events:
        _validate("progress", event)
    assert [(e["event"], e.get("trial")) for e in events] == [
        ("trial_started", 3),
        ("trial_reported", 3),
        ("trial_retrying", 3),
        ("trial_ended", 3),
        ("progress", None),
    ]
    assert events[0]["config"] == {"lr": 0.1} and events[1]["value"] is None
    assert events[3]["detail"] == "RuntimeError: boom"  # the last line; the store has all
    assert events[4]["done"] == 3 and events[4]["failed"] == 1 and events[4]["best"] == 0.25

    human = io.StringIO()
    line = Progress(total=4, metric="val_loss", stream=human)
    line.know([{"ray_id": "a", "number": 1}])
    line.trial_added("b", {})
    line.trial_failed("b", "Traceback ...\nRuntimeError: boom", "s1")
    assert human.getvalue() == (
        "trial 2 failed: RuntimeError: boom (traceback: sweepscope status s1)\n"
    )


MIXED = """\
name: mixed
trainable: tests.trainables:mixed
stop: {epochs: 2}
max_concurrent: 2
fixed: {steps_per_epoch: 5, sleep: 0.01}
grid:
  kind: [steady, raises, diverges, steady]
"""


@pytest.mark.ray
def test_run_progress_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    done = cli("run", str(write_spec(tmp_path, MIXED)), "--store", url, "--progress", "json")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    events = [json.loads(line) for line in lines]  # every line of stdout is one JSON object
    for event in events:
        _validate("progress", event)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "sweep_started" and kinds[-1] == "sweep_ended", kinds
    assert {"trial_started", "trial_reported", "trial_ended", "progress"} <= set(kinds)

    with open_store(url) as store:
        (sweep,) = store.sweeps()
        trials = {t["number"]: t for t in store.trials(sweep["id"])}
    started, ended = events[0], events[-1]
    assert started["sweep_id"] == ended["sweep_id"] == sweep["id"]
    assert ended["status"] == "completed"
    assert ended["counts"] == {"completed": 2, "diverged": 1, "error": 1} == sweep["counts"]
    assert ended["best"] == pytest.approx(sweep["best"])
    # each trial, by its number in the store, ended once with the status the store holds
    endings = {e["trial"]: e["status"] for e in events if e["event"] == "trial_ended"}
    assert endings == {n: t["status"] for n, t in trials.items()}
    starts = {e["trial"]: e["config"]["kind"] for e in events if e["event"] == "trial_started"}
    assert starts == {n: t["config"]["kind"] for n, t in trials.items()}
    assert ended["best_trial"]["number"] in trials
    assert trials[ended["best_trial"]["number"]]["config"]["kind"] == "steady"


def test_run_progress_json_error_is_the_last_line(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "name: t\ntrainable: tests.trainables:steady\ngrid: {lr: []}\n")
    done = cli("run", str(spec), "--store", f"sqlite:///{tmp_path / 's.db'}", "--progress", "json")
    assert done.returncode == 2
    (line,) = done.stdout.splitlines()
    event = json.loads(line)
    _validate("progress", event)
    assert event["event"] == "error" and event["exit"] == 2 and "grid.lr" in event["message"]
