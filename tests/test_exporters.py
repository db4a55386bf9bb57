"""`export_sweep` to TensorBoard and MLflow, read back with each tool's own readers.

A small sweep is written through the store API as the runner would (no Ray); the export is
then read with TensorBoard's EventAccumulator and its HParams plugin backend (what the
HParams tab shows), and with MlflowClient.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runner.errors import SweepscopeError
from runner.exporters import export_sweep
from runner.exporters._mlflow import RUN_STATUS, mlflow_key
from runner.status import TrialStatus
from runner.store import Store

SWEEP = "export_demo-20261205-030000-ab12"
# (config, status, error): lists and nested settings, and an end of each kind the targets tell
# apart (success, failure, stopped, still running, not started).
TRIALS: list[tuple[dict[str, Any], str, str | None]] = [
    ({"lr": 0.1, "layers": [64, 32], "opt": {"name": "sgd", "momentum": 0.9}}, "completed", None),
    ({"lr": 0.01, "layers": [64], "opt": {"name": "adam", "momentum": 0.0}}, "error", "boom"),
    (
        {"lr": 1e-3, "layers": [32], "opt": {"name": "adam", "momentum": 0.5}},
        "stopped_by_user",
        None,
    ),
    ({"lr": 0.5, "layers": [8], "opt": {"name": "sgd", "momentum": 0.1}}, "running", None),
    ({"lr": 0.2, "layers": [8], "opt": {"name": "sgd", "momentum": 0.2}}, "pending", None),
]
RUNS = [f"trial-{n}" for n in range(1, len(TRIALS) + 1)]
STEPS = {"running": 15, "pending": 0}  # else 30
T0 = 1_800_000_000.0


def _points(i: int, n: int) -> list[tuple[str, int, float, float]]:
    """train_loss at every step, val acc@1 every fifth (a name MLflow must rewrite)."""
    pts = [("train_loss", s, 1.0 / (s + i), T0 + 10 * i + 0.25 * s) for s in range(1, n + 1)]
    pts += [("val/acc@1", s, 0.5 + 0.01 * s - 0.1 * i, T0 + 10 * i + 0.25 * s + 0.1)
            for s in range(5, n + 1, 5)]  # fmt: skip
    return pts


def make_sweep(store: Store) -> None:
    store.create_sweep(
        SWEEP, name="export_demo", spec={"name": "export_demo"}, metric="val/acc@1",
        mode="max", n_trials=len(TRIALS),
    )  # fmt: skip
    for i, (config, status, error) in enumerate(TRIALS):
        trial = store.add_trial(SWEEP, f"ray{i:05d}", config, at=T0 + 10 * i)
        if status == "pending":
            continue
        store.set_trial_status(trial, "running", at=T0 + 10 * i + 1)
        store.add_points(trial, _points(i, STEPS.get(status, 30)))
        if status != "running":
            store.set_trial_status(trial, status, at=T0 + 10 * i + 9, error=error)


def expected(i: int, metric: str) -> tuple[list[int], list[float], list[float]]:
    rows = [p for p in _points(i, STEPS.get(TRIALS[i][1], 30)) if p[0] == metric]
    return [p[1] for p in rows], [p[2] for p in rows], [p[3] for p in rows]


# -- TensorBoard ---------------------------------------------------------------------------
def test_tensorboard_runs_hold_each_trials_scalars_with_their_steps(
    store: Store, tmp_path: Path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    make_sweep(store)
    logdir = tmp_path / "tb"
    line = export_sweep(store, SWEEP, "tensorboard", str(logdir))
    n_points = 3 * len(_points(0, 30)) + len(_points(0, 15))  # 2 ended, 1 stopped, 1 running
    assert f"5 trials ({n_points:,} points)" in line and str(logdir) in line

    assert sorted(p.name for p in logdir.iterdir()) == RUNS
    for i, (_, status, _) in enumerate(TRIALS):
        acc = EventAccumulator(str(logdir / RUNS[i]), size_guidance={"scalars": 0})
        acc.Reload()
        if status == "pending":
            assert acc.Tags()["scalars"] == []
            continue
        assert sorted(acc.Tags()["scalars"]) == ["train_loss", "val/acc@1"]
        for metric in ("train_loss", "val/acc@1"):
            steps, values, walls = expected(i, metric)
            events = acc.Scalars(metric)
            assert [e.step for e in events] == steps
            np.testing.assert_allclose([e.value for e in events], values, rtol=1e-6)
            np.testing.assert_allclose([e.wall_time for e in events], walls, rtol=0, atol=1e-3)


def _hparams_tab(logdir: Path) -> tuple[Any, Any]:
    """What TensorBoard's HParams tab asks its backend for: the experiment (hyperparameter and
    metric columns) and the session groups (one row per trial), through the plugin's own
    handlers on TensorBoard's data provider for `logdir`."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import (
        api_pb2,
        backend_context,
        get_experiment,
        list_session_groups,
    )

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
    backend = backend_context.Context(
        base_plugin.TBContext(logdir=str(logdir), data_provider=provider, multiplexer=mux)
    )
    ctx = context.RequestContext()
    experiment = get_experiment.Handler(ctx, backend, "", api_pb2.GetExperimentRequest()).run()
    request = api_pb2.ListSessionGroupsRequest(
        start_index=0,
        slice_size=100,
        allowed_statuses=list(api_pb2.Status.values()),
    )
    groups = list_session_groups.Handler(ctx, backend, "", request).run()
    return experiment, groups


def test_tensorboard_hparams_tab_shows_each_trials_configuration_and_final_metrics(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """SQLite only: what is checked here is TensorBoard's reading, not the store's."""
    from tensorboard.plugins.hparams import api_pb2

    make_sweep(sqlite_store)
    logdir = tmp_path / "tb"
    export_sweep(sqlite_store, SWEEP, "tensorboard", str(logdir))
    experiment, groups = _hparams_tab(logdir)

    columns = {h.name: api_pb2.DataType.Name(h.type) for h in experiment.hparam_infos}
    assert columns == {
        "lr": "DATA_TYPE_FLOAT64",
        "layers": "DATA_TYPE_STRING",
        "opt/name": "DATA_TYPE_STRING",
        "opt/momentum": "DATA_TYPE_FLOAT64",
    }
    assert sorted(m.name.tag for m in experiment.metric_infos) == ["train_loss", "val/acc@1"]

    rows = {g.name: g for g in groups.session_groups}
    assert sorted(rows) == RUNS
    statuses = ["SUCCESS", "FAILURE", "UNKNOWN", "UNKNOWN", "UNKNOWN"]
    for i, (config, status, _) in enumerate(TRIALS):
        group = rows[RUNS[i]]
        assert group.hparams["lr"].number_value == pytest.approx(config["lr"])
        assert group.hparams["layers"].string_value == str(config["layers"])
        assert group.hparams["opt/name"].string_value == config["opt"]["name"]
        (session,) = group.sessions
        assert api_pb2.Status.Name(session.status) == f"STATUS_{statuses[i]}"
        finals = {m.name.tag: (m.training_step, m.value) for m in session.metric_values}
        if status == "pending":
            assert finals == {}
            continue
        for metric in ("train_loss", "val/acc@1"):
            steps, values, _ = expected(i, metric)
            assert finals[metric][0] == steps[-1]
            assert finals[metric][1] == pytest.approx(values[-1], rel=1e-6)


def test_tensorboard_refuses_a_directory_with_logs_and_a_file(
    sqlite_store: Store, tmp_path: Path
) -> None:
    make_sweep(sqlite_store)
    logdir = tmp_path / "tb"
    export_sweep(sqlite_store, SWEEP, "tensorboard", str(logdir))
    with pytest.raises(SweepscopeError, match="holds TensorBoard event files already.*Fix: "):
        export_sweep(sqlite_store, SWEEP, "tensorboard", str(logdir))
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    with pytest.raises(SweepscopeError, match="notes.txt'.*a file, not a directory"):
        export_sweep(sqlite_store, SWEEP, "tensorboard", str(afile))


# -- MLflow --------------------------------------------------------------------------------
def test_mlflow_runs_hold_params_metric_histories_statuses_and_tags(
    store: Store, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    make_sweep(store)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    line = export_sweep(store, SWEEP, "mlflow", uri)
    assert "5 trials" in line and uri in line

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(SWEEP)
    assert experiment is not None and experiment.tags["sweepscope.metric"] == "val/acc@1"
    runs = {
        r.info.run_name: r for r in client.search_runs([experiment.experiment_id], max_results=10)
    }
    assert sorted(runs) == RUNS
    assert mlflow_key("val/acc@1") == "val/acc_1"
    for i, (config, status, error) in enumerate(TRIALS):
        run = runs[RUNS[i]]
        assert run.data.params == {
            "lr": str(config["lr"]),
            "layers": str(config["layers"]),
            "opt/name": config["opt"]["name"],
            "opt/momentum": str(config["opt"]["momentum"]),
        }
        assert run.info.status == RUN_STATUS[TrialStatus(status)]
        started = T0 + 10 * i + (0 if status == "pending" else 1)
        assert run.info.start_time == int(started * 1000)
        ended = None if status in ("pending", "running") else int((T0 + 10 * i + 9) * 1000)
        assert run.info.end_time == ended
        tags = run.data.tags
        assert tags["sweepscope.sweep_id"] == SWEEP
        assert tags["sweepscope.trial_number"] == str(i + 1)
        assert tags["sweepscope.status"] == status
        assert tags.get("sweepscope.error") == error
        for metric in ("train_loss", "val/acc@1"):
            steps, values, walls = expected(i, metric)
            history = sorted(
                client.get_metric_history(run.info.run_id, mlflow_key(metric)),
                key=lambda m: m.step,
            )
            assert [m.step for m in history] == steps
            assert [m.value for m in history] == pytest.approx(values, rel=1e-12)
            assert [m.timestamp for m in history] == [int(w * 1000) for w in walls]
    statuses = [runs[name].info.status for name in RUNS]
    assert statuses == ["FINISHED", "FAILED", "KILLED", "RUNNING", "SCHEDULED"]


def test_mlflow_refuses_a_second_export_and_a_uri_it_cannot_use(
    sqlite_store: Store, tmp_path: Path
) -> None:
    make_sweep(sqlite_store)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    export_sweep(sqlite_store, SWEEP, "mlflow", uri)
    with pytest.raises(SweepscopeError, match="holds runs already.*Fix: "):
        export_sweep(sqlite_store, SWEEP, "mlflow", uri)
    with pytest.raises(SweepscopeError, match=r"'ftp://nowhere/x': MLflow refused.*Fix: "):
        export_sweep(sqlite_store, SWEEP, "mlflow", "ftp://nowhere/x")
    with pytest.raises(SweepscopeError, match="tracking URI is empty"):
        export_sweep(sqlite_store, SWEEP, "mlflow", " ")


# -- both ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "module", "extra"),
    [("tensorboard", "tensorboardX", "tensorboard"), ("mlflow", "mlflow", "mlflow")],
)
def test_a_missing_library_names_the_extra_to_install(
    sqlite_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    module: str,
    extra: str,
) -> None:
    make_sweep(sqlite_store)
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(SweepscopeError, match=rf"pip install 'sweepscope\[{extra}\]'"):
        export_sweep(sqlite_store, SWEEP, target, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_bad_target_or_sweep_is_named(sqlite_store: Store, tmp_path: Path) -> None:
    make_sweep(sqlite_store)
    with pytest.raises(SweepscopeError, match=r"--to 'wandb': not an export target.*mlflow"):
        export_sweep(sqlite_store, SWEEP, "wandb", str(tmp_path))
    with pytest.raises(SweepscopeError, match="no sweep 'nope'"):
        export_sweep(sqlite_store, "nope", "tensorboard", str(tmp_path / "tb"))
