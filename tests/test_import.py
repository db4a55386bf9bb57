"""`sweepscope import DIR`: a Ray Tune experiment folder becomes a finished sweep in the store.

One test runs real Ray Tune (a plain `tune.Tuner`, in a process of its own) and imports what
it wrote; the others write the folder by hand, in the format Ray Tune 2.60 writes
(ray/tune/execution/tune_controller.py `save_to_dir`, ray/tune/experiment/trial.py
`get_json_state`), to reach the cases a healthy run does not: torn files, trials the state
does not list, missing metric or mode, an experiment imported twice.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner.driver.ray_env import TUNE_ENV as SWEEPSCOPE_TUNE_ENV
from runner.errors import StoreError, SweepscopeError
from runner.importer import import_experiment, register, trial_points
from runner.store import Store, open_store
from tests.helpers.cli import cli_env

T0 = 1_700_000_000.0  # the hand-written experiment's start, Unix seconds


# -- a Ray Tune experiment folder, written by hand -------------------------------------------
def result(i: int, ray_id: str, config: dict[str, Any], **metrics: Any) -> dict[str, Any]:
    """A result line as Ray Tune's JSON logger writes it: the metrics, then Tune's own keys."""
    return {
        **metrics,
        "timestamp": int(T0) + i,
        "done": False,
        "training_iteration": i,
        "trial_id": ray_id,
        "date": "2023-11-14_22-13-20",
        "time_this_iter_s": 0.01,
        "time_total_s": 0.01 * i,
        "pid": 4242,
        "hostname": "node-a",
        "node_ip": "127.0.0.1",
        "config": config,
    }


def write_trial_folder(
    exp: Path, ray_id: str, config: dict[str, Any], results: list[Any], error: str | None = None
) -> str:
    """A trial's folder: params.json, result.json (dicts as JSON lines, str as written),
    error.txt; returns its name (the state's relative_logdir)."""
    logdir = f"train_{ray_id}_lr={config.get('lr')}_2023-11-14_22-13-20"
    folder = exp / logdir
    folder.mkdir()
    (folder / "params.json").write_text(json.dumps(config, indent=2))
    lines = [r if isinstance(r, str) else json.dumps(r) for r in results]
    (folder / "result.json").write_text("".join(line + "\n" for line in lines))
    if error is not None:
        (folder / "error.txt").write_text(error)
    return logdir


def write_state(
    exp: Path, trials: list[dict[str, Any]], *, metric: str | None, session: str = "2023-11-14"
) -> Path:
    """experiment_state-SESSION.json: trial_data pairs of JSON texts, runner_data, stats."""
    trial_data = []
    for n, t in enumerate(trials):
        state = {
            "trainable_name": "train",
            "trial_id": t["id"],
            "config": t["config"],
            "status": t["status"],
            "relative_logdir": t.get("logdir"),
            "results": "80054e2e",  # Tune's pickled fields: hex, never read
        }
        meta = {"start_time": T0 + n, "last_result_time": T0 + n + 5, "error_filename": None}
        trial_data.append([json.dumps(state, indent=2), json.dumps(meta, indent=2)])
    runner_data = {"_metric": metric, "_start_time": T0, "_session_str": session}
    path = exp / f"experiment_state-{session}_22-13-20.json"
    path.write_text(json.dumps({"trial_data": trial_data, "runner_data": runner_data, "stats": {}}))
    return path


ERROR_TXT = (
    "Failure # 1 (occurred at 2023-11-14_22-13-21)\n\x1b[36mray::train()\x1b[39m\n"
    "RuntimeError: first try\n\n"
    "Failure # 2 (occurred at 2023-11-14_22-13-25)\n\x1b[36mray::train()\x1b[39m\n"
    "ValueError: lr too large\n"
)


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    """Six trials, one of each kind a folder can hold:

    a: finished, 3 results (loss, acc, a nested val/loss, epoch, a NaN, a flag and a text);
    b: failed after 1 result (error.txt with two failures); c: RUNNING at the last save, 2
    results; d: PENDING, no folder; e: reports its own `step`; f: a folder the state does
    not list (Tune started it after its last save)."""
    exp = tmp_path / "lr_search"
    exp.mkdir()
    trials: list[dict[str, Any]] = []

    def add(ray_id: str, status: str, lr: float, results: list[Any], error: str | None = None):
        config = {"lr": lr, "layers": [64, 32]}
        logdir = write_trial_folder(exp, ray_id, config, results, error) if results else None
        trials.append({"id": ray_id, "status": status, "config": config, "logdir": logdir})

    def res(ray_id: str, lr: float, i: int, **extra: Any) -> dict[str, Any]:
        config = {"lr": lr, "layers": [64, 32]}
        return result(i, ray_id, config, loss=lr * (10 - i), acc=i / 10, **extra)

    add(
        "ab12c_00000",
        "TERMINATED",
        0.1,
        [
            res("ab12c_00000", 0.1, 1, val={"loss": 1.5}, epoch=1, flag=True, note="ok"),
            res("ab12c_00000", 0.1, 2, val={"loss": 1.25}, epoch=2, grad=float("nan")),
            res("ab12c_00000", 0.1, 3, val={"loss": 1.0}, epoch=3),
        ],
    )
    add("ab12c_00001", "ERROR", 0.9, [res("ab12c_00001", 0.9, 1)], error=ERROR_TXT)
    add("ab12c_00002", "RUNNING", 0.2, [res("ab12c_00002", 0.2, i) for i in (1, 2)])
    add("ab12c_00003", "PENDING", 0.3, [])
    add("ab12c_00004", "TERMINATED", 0.4, [res("ab12c_00004", 0.4, i, step=10 * i) for i in (1, 2)])
    write_state(exp, trials, metric="loss")
    write_trial_folder(exp, "ab12c_00005", {"lr": 0.5}, [res("ab12c_00005", 0.5, 1)])
    return exp


def curves(store: Store, sweep_id: str) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Ray trial id -> metric -> [(step, value)] by step, as the store holds them."""
    ray_of = {t["id"]: t["ray_id"] for t in store.trials(sweep_id)}
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for row in store.points(sweep_id).sort_values("step").itertuples():
        out.setdefault(ray_of[row.trial_id], {}).setdefault(row.metric, []).append(
            (int(row.step), float(row.value))
        )
    return out


# -- what maps to what -----------------------------------------------------------------------
def test_every_trial_its_status_config_and_points_land_in_a_finished_sweep(
    store: Store, experiment: Path
) -> None:
    notes: list[str] = []
    sweep_id = import_experiment(store, experiment, mode="min", on_note=notes.append)

    sweep = store.sweep(sweep_id)
    assert sweep is not None
    assert sweep_id.startswith("lr_search-") and sweep["name"] == "lr_search"
    assert (sweep["status"], sweep["metric"], sweep["mode"]) == ("completed", "loss", "min")
    assert sweep["n_trials"] == 6 and sweep["best"] == pytest.approx(0.1 * 7)
    assert str(experiment) in sweep["message"]
    assert sweep["spec"]["imported"]["from"] == str(experiment)

    trials = {t["ray_id"]: t for t in store.trials(sweep_id)}
    assert {r: t["status"] for r, t in trials.items()} == {
        "ab12c_00000": "completed",
        "ab12c_00001": "error",
        "ab12c_00002": "stopped",  # RUNNING when Tune last saved: it never finished
        "ab12c_00003": "stopped",  # PENDING: never started
        "ab12c_00004": "completed",
        "ab12c_00005": "stopped",  # not in the state: how it ended is unknown
    }
    assert trials["ab12c_00000"]["config"] == {"lr": 0.1, "layers": [64, 32]}
    assert trials["ab12c_00005"]["config"] == {"lr": 0.5}
    assert trials["ab12c_00001"]["error"] == "ray::train()\nValueError: lr too large"
    assert trials["ab12c_00000"]["node"] == "node-a"
    assert trials["ab12c_00000"]["last_epoch"] == 3 and trials["ab12c_00004"]["last_step"] == 20
    assert trials["ab12c_00000"]["started_at"] == T0 and trials["ab12c_00000"]["ended_at"] == T0 + 5
    events = store.trial_events(trials["ab12c_00002"]["id"])
    assert [e["status"] for e in events] == ["pending", "running", "stopped"]
    assert "RUNNING when the experiment state was last saved" in events[-1]["detail"]

    got = curves(store, sweep_id)
    assert got["ab12c_00000"] == {
        "loss": [(1, 0.9), (2, 0.8), (3, pytest.approx(0.7))],
        "acc": [(1, 0.1), (2, 0.2), (3, 0.3)],
        "val/loss": [(1, 1.5), (2, 1.25), (3, 1.0)],  # nested metrics, named as progress.csv
        "grad": [(2, pytest.approx(math.nan, nan_ok=True))],  # NaN is kept
    }  # epoch, the flag, the text and Tune's own keys are no metrics
    assert got["ab12c_00001"] == {"loss": [(1, pytest.approx(9 * 0.9))], "acc": [(1, 0.1)]}
    assert [s for s, _ in got["ab12c_00002"]["loss"]] == [1, 2]
    assert "ab12c_00003" not in got
    assert [s for s, _ in got["ab12c_00004"]["loss"]] == [10, 20]  # its own step
    assert notes == []


def test_a_torn_result_line_is_skipped_with_a_note_and_nothing_else_is_lost(
    sqlite_store: Store, tmp_path: Path
) -> None:
    exp = tmp_path / "exp"
    exp.mkdir()
    config = {"lr": 0.1}
    lines = [result(i, "ff000_00000", config, loss=1.0 / i) for i in (1, 2, 3)]
    torn = [lines[0], '{"loss": 0.5, "traini', lines[1], "[1, 2]", lines[2], '{"loss": 0.2']
    logdir = write_trial_folder(exp, "ff000_00000", config, torn)
    write_state(exp, [{"id": "ff000_00000", "status": "TERMINATED", "config": config,
                       "logdir": logdir}], metric="loss")  # fmt: skip
    notes: list[str] = []
    sweep_id = import_experiment(sqlite_store, exp, mode="min", on_note=notes.append)

    assert curves(sqlite_store, sweep_id)["ff000_00000"]["loss"] == [
        (1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))
    ]  # fmt: skip
    (note,) = notes
    assert "result.json: 3 line(s) not a JSON object" in note and "(line 2, 4, 6)" in note
    assert "3 note(s)" not in (sqlite_store.sweep(sweep_id) or {})["message"]


def test_a_trial_folder_without_result_files_is_noted(sqlite_store: Store, tmp_path: Path) -> None:
    """A run with Ray Tune's result loggers off leaves no result.json or progress.csv: the
    trial comes in with its status and config, and the note says why it has no points."""
    exp = tmp_path / "exp"
    exp.mkdir()
    folder = exp / "train_dd000_00000"
    folder.mkdir()
    (folder / "params.json").write_text('{"lr": 0.3}')
    write_state(exp, [{"id": "dd000_00000", "status": "TERMINATED", "config": {"lr": 0.3},
                       "logdir": folder.name}], metric="loss")  # fmt: skip
    notes: list[str] = []
    sweep_id = import_experiment(sqlite_store, exp, mode="min", on_note=notes.append)
    (trial,) = sqlite_store.trials(sweep_id)
    assert trial["status"] == "completed" and trial["config"] == {"lr": 0.3}
    assert any("no result.json or progress.csv" in note for note in notes), notes


def test_progress_csv_stands_in_for_a_missing_result_json(
    sqlite_store: Store, tmp_path: Path
) -> None:
    exp = tmp_path / "exp"
    exp.mkdir()
    folder = exp / "train_cc000_00000"
    folder.mkdir()
    (folder / "params.json").write_text('{"lr": 0.3}')
    (folder / "progress.csv").write_text(
        "loss,val/acc,done,training_iteration,trial_id,hostname\n"
        "2.0,0.5,False,1,cc000_00000,node-b\n"
        "1.0,0.75,False,2,cc000_00000,node-b\n"
        "0.5,0.875\n"  # torn: the run was killed mid-write
    )
    write_state(exp, [{"id": "cc000_00000", "status": "TERMINATED", "config": {"lr": 0.3},
                       "logdir": folder.name}], metric="loss")  # fmt: skip
    notes: list[str] = []
    sweep_id = import_experiment(sqlite_store, exp, mode="min", on_note=notes.append)

    assert curves(sqlite_store, sweep_id)["cc000_00000"] == {
        "loss": [(1, 2.0), (2, 1.0)],
        "val/acc": [(1, 0.5), (2, 0.75)],
    }
    assert len(notes) == 1 and "progress.csv: 1 line(s)" in notes[0]


def test_the_points_are_those_a_live_sweep_stores_for_the_same_results() -> None:
    """runner.driver.results decides a live sweep's points of a plain Ray Tune result: an
    import of the same results stores the same points, so the two compare on one axis."""
    from runner.driver.results import result_points

    config = {"lr": 0.1}
    plain = [result(i, "x_00000", config, loss=1.0 / i, acc=0.5, ok=True) for i in (1, 2)]
    stepped = [result(i, "x_00001", config, loss=1.0 / i, step=100 * i) for i in (1, 2)]
    for results in (plain, stepped):
        found, problems = trial_points(results, wall_time=T0)
        live = [p for r in results for p in result_points(r, float(r["timestamp"]))]
        assert sorted(found.points) == sorted(live) and problems == []


def test_a_metric_name_the_store_cannot_hold_is_left_out_with_a_note() -> None:
    long = "x" * 65
    found, problems = trial_points([result(1, "x_0", {}, loss=1.0, **{long: 2.0})], wall_time=T0)
    assert found.points == [("loss", 1, 1.0, T0 + 1)]
    assert problems == [
        f"metric(s) named with more than 64 characters, which the store cannot hold, left "
        f"out: {long}"
    ]


def test_a_step_some_results_lack_puts_every_point_at_training_iteration(
    sqlite_store: Store, tmp_path: Path
) -> None:
    exp = tmp_path / "exp"
    exp.mkdir()
    config = {"lr": 0.1}
    rows = [result(1, "dd000_00000", config, loss=3.0, step=50), result(2, "dd000_00000",
            config, loss=2.0)]  # fmt: skip
    logdir = write_trial_folder(exp, "dd000_00000", config, rows)
    write_state(exp, [{"id": "dd000_00000", "status": "TERMINATED", "config": config,
                       "logdir": logdir}], metric="loss")  # fmt: skip
    notes: list[str] = []
    sweep_id = import_experiment(sqlite_store, exp, mode="min", on_note=notes.append)
    assert curves(sqlite_store, sweep_id)["dd000_00000"]["loss"] == [(1, 3.0), (2, 2.0)]
    assert notes == [
        "trial dd000_00000: `step` is missing or not a whole number in some results: every "
        "point is at training_iteration"
    ]


# -- metric and mode -------------------------------------------------------------------------
def test_the_metric_and_mode_tune_recorded_are_the_sweeps(
    sqlite_store: Store, experiment: Path
) -> None:
    from ray.tune import TuneConfig

    (experiment / "tuner.pkl").write_bytes(pickle.dumps({"tune_config": TuneConfig(
        metric="loss", mode="max")}))  # fmt: skip
    sweep = sqlite_store.sweep(import_experiment(sqlite_store, experiment))
    assert sweep is not None and (sweep["metric"], sweep["mode"]) == ("loss", "max")


def test_tuner_pkl_is_read_never_unpickled(sqlite_store: Store, experiment: Path) -> None:
    marker = experiment.parent / "unpickled"

    class Trap:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (marker,))

    (experiment / "tuner.pkl").write_bytes(pickle.dumps(Trap()))
    with pytest.raises(SweepscopeError, match="mode: unknown for the metric 'loss'"):
        import_experiment(sqlite_store, experiment)
    import_experiment(sqlite_store, experiment, mode="min")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("recorded", "given", "match"),
    [
        (None, {}, r"^metric: the experiment state .* records none .* Fix: pass --metric NAME"),
        ("loss", {}, r"^mode: unknown for the metric 'loss' \(.*tuner.pkl records none\)\. Fix"),
        ("acc", {"metric": "loss"}, r"mode Tune recorded is for its metric 'acc'.*--mode min"),
        (
            "loss",
            {"metric": "bleu", "mode": "max"},
            r"'bleu': no trial .* reported acc, grad, loss, val/loss\. Fix",
        ),
        ("loss", {"mode": "best"}, r"mode: 'best' is not min or max"),
    ],
)
def test_a_metric_or_mode_neither_given_nor_recorded_is_refused_by_name(
    sqlite_store: Store,
    experiment: Path,
    recorded: str | None,
    given: dict[str, Any],
    match: str,
) -> None:
    state = next(experiment.glob("experiment_state-*.json"))
    data = json.loads(state.read_text())
    data["runner_data"]["_metric"] = recorded
    state.write_text(json.dumps(data))
    with pytest.raises(SweepscopeError, match=match):
        import_experiment(sqlite_store, experiment, **given)
    assert sqlite_store.sweeps() == []


# -- bad input -------------------------------------------------------------------------------
def test_what_is_no_experiment_folder_is_refused_with_the_folder_to_give(
    sqlite_store: Store, experiment: Path, tmp_path: Path
) -> None:
    cases = {
        tmp_path / "nowhere": r"'.*nowhere' does not exist\. Fix: give the folder",
        experiment / "tuner.txt": r"is not a folder",
        tmp_path: rf"no experiment_state-\*\.json in it.*give one of them, e.g. {experiment}",
        next(experiment.glob("train_*")): r"If it is a trial's folder, give the folder above it",
    }
    (experiment / "tuner.txt").write_text("")
    for path, match in cases.items():
        with pytest.raises(SweepscopeError, match=match):
            import_experiment(sqlite_store, path, mode="min")
    assert sqlite_store.sweeps() == []


def test_a_torn_experiment_state_gives_way_to_the_one_before(
    sqlite_store: Store, experiment: Path
) -> None:
    (experiment / "experiment_state-2023-11-15_00-00-00.json").write_text('{"trial_data": [["')
    notes: list[str] = []
    sweep_id = import_experiment(sqlite_store, experiment, mode="min", on_note=notes.append)
    assert len(sqlite_store.trials(sweep_id)) == 6
    assert "experiment_state-2023-11-15_00-00-00.json" in notes[0]
    assert "imported experiment_state-2023-11-14_22-13-20.json" in notes[0]

    for state in experiment.glob("experiment_state-*.json"):
        state.write_text("{")
    with pytest.raises(SweepscopeError, match="no experiment state reads as Ray Tune's"):
        import_experiment(sqlite_store, experiment, mode="min")


def test_an_unreadable_trial_entry_is_noted_and_its_folder_still_imported(
    sqlite_store: Store, experiment: Path
) -> None:
    state = next(experiment.glob("experiment_state-*.json"))
    data = json.loads(state.read_text())
    data["trial_data"][0][0] = '{"trial_id": "ab12c_00000", "sta'
    state.write_text(json.dumps(data))
    notes: list[str] = []
    sweep_id = import_experiment(sqlite_store, experiment, mode="min", on_note=notes.append)
    trials = {t["ray_id"]: t for t in sqlite_store.trials(sweep_id)}
    assert len(trials) == 6 and trials["ab12c_00000"]["status"] == "stopped"
    assert len(curves(sqlite_store, sweep_id)["ab12c_00000"]["loss"]) == 3
    assert notes[0].startswith("trial_data[0] of the experiment state does not read")


def test_the_same_experiment_twice_is_refused_naming_its_sweep(
    store: Store, experiment: Path, tmp_path: Path
) -> None:
    first = import_experiment(store, experiment, mode="min")
    copy = tmp_path / "copied"
    copy.mkdir()
    for item in experiment.rglob("*"):  # the same experiment, moved elsewhere
        target = copy / item.relative_to(experiment)
        target.mkdir() if item.is_dir() else target.write_bytes(item.read_bytes())
    for path in (experiment, copy):
        with pytest.raises(
            SweepscopeError, match=f"holds this experiment already, as sweep {first}"
        ):
            import_experiment(store, path, mode="min", name="again")
    assert [s["id"] for s in store.sweeps()] == [first]


def test_a_failed_import_writes_nothing(
    sqlite_store: Store, experiment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def failing(trial_id: int, points: Any) -> int:
        calls.append(trial_id)
        raise StoreError("the disk is full")

    monkeypatch.setattr(sqlite_store, "add_points", failing)
    with pytest.raises(StoreError, match="disk is full"):
        import_experiment(sqlite_store, experiment, mode="min")
    assert calls and sqlite_store.sweeps() == []


def test_a_name_that_is_no_sweep_name_is_refused(sqlite_store: Store, experiment: Path) -> None:
    with pytest.raises(SweepscopeError, match=r"--name 'my sweep!' is not a usable sweep name"):
        import_experiment(sqlite_store, experiment, mode="min", name="my sweep!")
    odd = experiment.rename(experiment.parent / "train 2023(old)")
    sweep = sqlite_store.sweep(import_experiment(sqlite_store, odd, mode="min"))
    assert sweep is not None and sweep["name"] == "train_2023_old_"


def test_every_dashboard_page_opens_an_imported_sweep(dashboard_url: str, experiment: Path) -> None:
    from tests.helpers.apptest import live_panels, open_page

    with open_store(dashboard_url, create=True) as store:
        sweep_id = import_experiment(store, experiment, mode="min")
        failed = next(t["id"] for t in store.trials(sweep_id) if t["status"] == "error")
    panels = live_panels(open_page("live", sweep=sweep_id))
    assert set(panels) == {"loss", "acc", "val/loss"}  # grad: one NaN, nothing to draw
    at = open_page("trial", sweep=sweep_id)
    at.selectbox(key="trial_id").set_value(failed).run()
    assert at.code[0].value == "ray::train()\nValueError: lr too large"
    assert list(at.dataframe[0].value["status"]) == ["pending", "running", "error"]
    for page in ("sweeps", "hparams", "compare"):
        open_page(page, sweep=sweep_id)  # raises nothing


# -- the command -----------------------------------------------------------------------------
def test_the_command_prints_the_sweep_and_how_to_open_it(
    sqlite_url: str, experiment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="sweepscope")
    register(parser.add_subparsers(dest="command"), "store URL")
    args = parser.parse_args(["import", str(experiment), "--store", sqlite_url, "--mode", "min"])
    assert args.func(args) == 0
    out = capsys.readouterr().out.strip()
    with open_store(sqlite_url) as store:
        (sweep,) = store.sweeps()
    assert out == (
        f"imported sweep {sweep['id']}: 6 trials (2 completed, 1 error, 3 stopped), 22 points; "
        f"open it: sweepscope dashboard --store {sqlite_url}"
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["import", str(experiment), "--mode", "best"])


def test_the_cli_exits_2_with_one_paragraph_on_bad_input(
    sqlite_url: str, experiment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner import cli

    try:
        cli.build_parser().parse_args(["import", str(experiment)])
    except SystemExit:
        pytest.skip("runner.cli does not register `import` yet (the lead wires it)")
    capsys.readouterr()
    assert cli.main(["import", str(experiment), "--store", sqlite_url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sweepscope import: error: mode: unknown for the metric 'loss'")
    assert "Traceback" not in err


# -- a real Ray Tune run -----------------------------------------------------------------------
TUNE_RUN = """\
import sys
import ray
from ray import tune

def train(config):
    for i in range(1, 4):
        if config["lr"] == 0.3 and i == 2:
            raise ValueError("lr 0.3 diverges")
        metrics = {"loss": config["lr"] * (10 - i), "acc": i / 10, "val": {"loss": i + 0.5}}
        if config["lr"] == 0.4:
            metrics["step"] = 10 * i
        tune.report(metrics)

ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False,
         _node_ip_address="127.0.0.1")
tune.Tuner(
    train,
    param_space={"lr": tune.grid_search([0.1, 0.2, 0.3, 0.4]), "width": 8},
    tune_config=tune.TuneConfig(metric="loss", mode="min"),
    run_config=tune.RunConfig(name="plain_lr", storage_path=sys.argv[1], verbose=0),
).fit()
ray.shutdown()
"""


@pytest.fixture(scope="module")
def tune_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the plain Ray Tune run above wrote (run once, imported on each backend)."""
    root = tmp_path_factory.mktemp("tune")
    (root / "run_tune.py").write_text(TUNE_RUN)
    # Plain Ray Tune, with its result files: without the Tune settings sweepscope's driver
    # puts in os.environ (an earlier test in this process may have run one).
    env = {k: v for k, v in cli_env().items() if k not in SWEEPSCOPE_TUNE_ENV}
    done = subprocess.run(
        [sys.executable, str(root / "run_tune.py"), str(root / "ray")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "ray" / "plain_lr"


@pytest.mark.ray
def test_a_real_ray_tune_run_imports_as_it_ran(
    store_url: str, tune_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(store_url, create=True) as store:
        sweep_id = import_experiment(store, tune_run)
        sweep = store.sweep(sweep_id)
        trials = {t["config"]["lr"]: t for t in store.trials(sweep_id)}
        got = curves(store, sweep_id)
    assert sweep is not None
    assert (sweep["status"], sweep["metric"], sweep["mode"]) == ("completed", "loss", "min")
    assert sweep["n_trials"] == 4 and sweep["best"] == pytest.approx(0.7)
    assert {lr: t["status"] for lr, t in trials.items()} == {
        0.1: "completed", 0.2: "completed", 0.3: "error", 0.4: "completed"
    }  # fmt: skip
    assert all(t["config"] == {"lr": lr, "width": 8} for lr, t in trials.items())
    assert "ValueError: lr 0.3 diverges" in trials[0.3]["error"]
    for lr, t in trials.items():
        n = 1 if lr == 0.3 else 3
        steps = [10 * i if lr == 0.4 else i for i in range(1, n + 1)]
        assert got[t["ray_id"]] == {
            "loss": [(s, pytest.approx(lr * (10 - i))) for i, s in enumerate(steps, 1)],
            "acc": [(s, pytest.approx(i / 10)) for i, s in enumerate(steps, 1)],
            "val/loss": [(s, i + 0.5) for i, s in enumerate(steps, 1)],
        }

    # the dashboard opens it: a Live panel per metric, each trial's curve at its steps
    from tests.helpers.apptest import chart_steps, fresh_dashboard, live_panels, open_page

    with fresh_dashboard():
        monkeypatch.setenv("SWEEPSCOPE_STORE", store_url)
        panels = live_panels(open_page("live", sweep=sweep_id))
        assert set(panels) == {"loss", "acc", "val/loss"}
        drawn = chart_steps(panels["loss"])
    assert {t["id"]: sorted(drawn[t["id"]]) for t in trials.values()} == {
        t["id"]: [s for s, _ in got[t["ray_id"]]["loss"]] for t in trials.values()
    }
