"""System load per trial: the sampler's readings, the Trainable mixin, the callback storing
sys/ points apart from the metric check, the spec settings, and real sweeps with sampling on
and off."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from runner import report
from runner.driver.callback import StoreCallback
from runner.driver.stopper import StoreStopper
from runner.driver.writer import StoreWriter
from runner.errors import SpecError
from runner.protocol import POINTS_KEY, SYS_KEY, is_system_metric
from runner.protocol import SYSTEM_PREFIX as PREFIX
from runner.spec import parse_spec
from runner.store import Store, open_store
from runner.trial.entry import class_entry
from runner.trial.sysmetrics import Sampler, sampling
from tests.helpers.apptest import chart, open_page, texts
from tests.helpers.cli import cli, write_spec
from tests.helpers.fakes import fake_trial

from .test_dashboard_data import make_sweep


def _burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(1000))


def test_a_reading_is_sane() -> None:
    sampler = Sampler(1.0, gpus=[])  # no GPU asked for: no GPU readings, whatever the host
    ticks, wall = os.times(), time.monotonic()
    _burn(0.5)
    values = sampler.read()
    ticks_after, wall = os.times(), time.monotonic() - wall
    assert set(values) == {"sys/cpu_percent", "sys/rss_mb"}
    # one busy thread: what the kernel's tick counts say it got (on a shared machine, maybe
    # much less than a core), never more than the cores there are
    used = (ticks_after.user + ticks_after.system) - (ticks.user + ticks.system)
    assert abs(values["sys/cpu_percent"] - 100 * used / wall) < 10
    assert 0 < values["sys/cpu_percent"] <= 100 * len(os.sched_getaffinity(0)) + 5
    assert 10 < values["sys/rss_mb"] < 100_000  # a Python process holds tens of MiB at least
    time.sleep(0.5)
    idle = sampler.read()["sys/cpu_percent"]
    assert idle < 5 and idle < values["sys/cpu_percent"]  # asleep: next to nothing
    sampler.stop()


@pytest.mark.slow  # samples for seconds of wall time
def test_samples_are_whole_trial_seconds_from_the_offset() -> None:
    sampler = Sampler(1.0, offset=100.0, gpus=[]).start()
    time.sleep(2.4)
    sampler.stop()
    points = sampler.take()
    steps = [step for name, step, _, _ in points if name == "sys/cpu_percent"]
    # one sample a second, at the whole seconds after 100 (a loaded machine may be late)
    assert steps[:2] == [101, 102] or (len(steps) == 1 and steps[0] in (101, 102)), points
    assert steps == sorted(set(steps)) and steps[-1] <= 103
    assert {name for name, *_ in points} == {"sys/cpu_percent", "sys/rss_mb"}
    assert all(abs(wall - time.time()) < 10 for *_, wall in points)
    assert sampler.take() == []  # taken once
    time.sleep(1.2)
    assert sampler.take() == []  # stopped: no more samples


def test_every_below_a_second_is_refused() -> None:
    with pytest.raises(ValueError, match="once a second"):
        Sampler(0.5)


def test_gpu_ids_nvml_cannot_find_give_no_gpu_readings() -> None:
    sampler = Sampler(1.0, gpus=["GPU-00000000-not-a-real-uuid"])
    assert not sampler.has_gpu
    assert not any("gpu" in name for name in sampler.read())
    sampler.stop()


class _FakeNvml:
    """Stands for pynvml on a machine with two GPUs: this process holds 300 MiB on GPU 1,
    another process 5 GiB on each; GPU 0 is 40 % busy, GPU 1 60 %."""

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        self.opened = 0
        self.uuids = {"GPU-aaaa": 0, "GPU-bbbb": 1}

    def nvmlInit(self) -> None:
        self.opened += 1

    def nvmlShutdown(self) -> None:
        self.opened -= 1

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if index > 1:
            raise self.NVMLError("invalid argument")
        return index

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:
        if uuid not in self.uuids:
            raise self.NVMLError("not found")
        return self.uuids[uuid]

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return SimpleNamespace(gpu=[40, 60][handle])

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[Any]:
        mine = [SimpleNamespace(pid=os.getpid(), usedGpuMemory=300 * 2**20)] if handle else []
        return [SimpleNamespace(pid=1, usedGpuMemory=5 * 2**30), *mine]


@pytest.mark.parametrize(
    "visible,ids,util,memory",
    [
        (None, None, 50.0, 300.0),  # every GPU
        ("1", None, 60.0, 300.0),
        ("GPU-aaaa", None, 40.0, None),  # no memory of ours there, and torch has no CUDA
        ("0,7,1", None, 40.0, None),  # CUDA stops at the first id it cannot use
        ("", None, None, None),  # hidden: no GPU
        (None, ["1"], 60.0, 300.0),  # the ids Ray gave the trial
        (None, [], None, None),  # Ray gave it none
    ],
)
def test_gpu_readings_through_nvml(
    monkeypatch: pytest.MonkeyPatch,
    visible: str | None,
    ids: list[str] | None,
    util: float | None,
    memory: float | None,
) -> None:
    nvml = _FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setitem(sys.modules, "torch", None)  # torch's fallback: not imported
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    sampler = Sampler(1.0, gpus=ids)
    values = sampler.read()
    assert values.get("sys/gpu_util") == util
    assert values.get("sys/gpu_mem_mb") == memory
    sampler.stop()
    assert nvml.opened == 0  # every init matched by a shutdown


def test_nvml_without_a_driver_gives_cpu_and_memory_only(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = _FakeNvml()

    def no_driver() -> None:
        raise nvml.NVMLError("Driver Not Loaded")

    nvml.nvmlInit = no_driver  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    sampler = Sampler(1.0)
    assert set(sampler.read()) == {"sys/cpu_percent", "sys/rss_mb"}
    sampler.stop()


class _Base:
    """Stands for Ray's Trainable: step() returns the trial's result."""

    _time_total = 50.0

    def __init__(self) -> None:
        self.cleaned = False

    def step(self) -> dict[str, Any]:
        time.sleep(0.25)
        return {"loss": 1.0}

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        return True

    def cleanup(self) -> None:
        self.cleaned = True


@pytest.mark.slow  # samples for seconds of wall time
def test_the_mixin_adds_samples_to_results_at_the_restored_trial_time() -> None:
    trainable = type("Sampled", (sampling(1.0), _Base), {})()
    results = [trainable.step() for _ in range(6)]  # 1.5 s
    samples = [p for r in results for p in r.get(SYS_KEY, [])]
    assert samples and all(r["loss"] == 1.0 for r in results)
    assert {step for _, step, _, _ in samples} == {51}  # 50 s restored from the checkpoint
    assert trainable.reset_config({}) is True  # a reused actor: a new trial, a new clock
    trainable._time_total = 0.0
    results = [trainable.step() for _ in range(6)]
    assert {s for r in results for _, s, _, _ in r.get(SYS_KEY, [])} == {1}
    trainable.cleanup()
    assert trainable.cleaned and trainable._sys_sampler is None


def test_a_sampler_that_cannot_start_leaves_the_trial_alone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("no /proc here")

    monkeypatch.setattr("runner.trial.sysmetrics.Sampler", broken)
    trainable = type("Sampled", (sampling(1.0), _Base), {})()
    assert [trainable.step() for _ in range(2)] == [{"loss": 1.0}] * 2
    assert "system metrics are off for this trial" in caplog.text
    trainable.cleanup()


def test_a_trainable_class_is_sampled() -> None:
    from tests.plain_trainables import Quadratic

    trainable = class_entry(Quadratic, 1.0)(config={"lr": 0.1, "sleep": 0.1})
    results: list[dict[str, Any]] = []
    try:  # steps until the first sample (after 1 s of the trial), at most 8 s of them
        while not any(SYS_KEY in r for r in results) and len(results) < 80:
            results.append(trainable.train())
    finally:
        trainable.stop()
    samples = [p for r in results for p in r.get(SYS_KEY, [])]
    assert {name for name, *_ in samples} >= {"sys/cpu_percent", "sys/rss_mb"}
    assert class_entry(Quadratic).__mro__[1] is Quadratic  # off: the class alone


# -- the driver side -----------------------------------------------------------------------
def _callback(store: Store, metric: str = "val_acc") -> StoreCallback:
    spec = parse_spec(
        {"name": "t", "trainable": "tests.trainables:steady", "metric": metric,
         "stop": {"epochs": 2}, "grid": {"lr": [0.1]}}
    )  # fmt: skip
    store.create_sweep("s", name="t", spec={}, metric=metric, mode="max", n_trials=1)
    writer = StoreWriter(store, "s", poll_seconds=0.01)
    return StoreCallback(
        writer=writer, spec=spec, stopper=StoreStopper(writer=writer, stop=spec.stop)
    )


def _load(step: int) -> list[tuple[str, int, float, float]]:
    return [("sys/cpu_percent", step, 97.0, time.time()), ("sys/rss_mb", step, 300.0, time.time())]


def test_sys_points_are_stored_and_never_the_metric(sqlite_store: Store) -> None:
    cb = _callback(sqlite_store)
    a = fake_trial("a")
    cb.on_trial_start(0, [a], a)
    result = {"step": 1, POINTS_KEY: [("train_loss", 1, 0.5, 0.0)], SYS_KEY: _load(2)}
    cb.on_trial_result(0, [a], a, result)
    assert SYS_KEY not in result  # taken out before any other callback or Tune keeps it
    cb.on_trial_result(0, [a], a, {"step": 2, "epoch": 1, "val_acc": 0.7, POINTS_KEY: []})
    assert cb.metric_problem is None and cb.best == 0.7
    cb._writer.close()
    points = sqlite_store.points("s")
    assert sorted(points.metric) == ["sys/cpu_percent", "sys/rss_mb", "train_loss"]
    assert set(points[points.metric.str.startswith(PREFIX)].step) == {2}


def test_the_metric_check_ignores_sys_metrics(sqlite_store: Store) -> None:
    cb = _callback(sqlite_store, metric="cpu_percent")
    a = fake_trial("a")
    cb.on_trial_start(0, [a], a)
    result = {
        "step": 3,
        "epoch": 1,
        "val_acc": 0.5,
        POINTS_KEY: [("sys/cpu_percent", 3, 1.0, 0.0)],  # even a trial's own sys/ name
        SYS_KEY: _load(3),
    }
    cb.on_trial_result(0, [a], a, result)
    cb._writer.close()
    assert cb.metric_problem is not None
    text = str(cb.metric_problem)
    assert "has val_acc." in text and "sys/" not in text  # no sys/ metric offered as the fix


def test_trials_cannot_report_sys_names() -> None:
    with report.collect(), pytest.raises(ValueError, match=r"runner's own system-load.*sys_x"):
        report.step(1, **{"sys/x": 1.0})
    with report.collect(), pytest.raises(ValueError, match="system-load"):
        report.epoch(1, step=1, **{"sys/rss_mb": 1.0})


def test_spec_settings() -> None:
    base = {"name": "t", "trainable": "m:f", "stop": {"epochs": 1}, "grid": {"lr": [0.1]}}
    spec = parse_spec(base)
    assert spec.system_metrics is True and spec.system_metrics_every == 2.0
    assert parse_spec({**base, "system_metrics": False}).system_metrics is False
    with pytest.raises(SpecError, match=r"system_metrics_every: .*greater than or equal to 1"):
        parse_spec({**base, "system_metrics_every": 0.2})
    with pytest.raises(SpecError, match=r"metric: 'sys/rss_mb' is a system-load metric.*Fix:"):
        parse_spec({**base, "metric": "sys/rss_mb"})
    assert is_system_metric("sys/gpu_util") and not is_system_metric("system_loss")


# -- real sweeps -----------------------------------------------------------------------------
SPEC = """
name: load
trainable: tests.trainables:steady
metric: val_acc
stop: {epochs: 3}
resources: {cpu: 1}
system_metrics_every: 1
fixed: {steps_per_epoch: 10, sleep: 0.1}
grid: {scale: [1.0]}
"""


def _sys_points(url: str) -> tuple[list[dict[str, Any]], Any]:
    with open_store(url) as store:
        (sweep,) = store.sweeps()
        trials = store.trials(sweep["id"])
        points = store.points(sweep["id"])
    return trials, points[points.metric.str.startswith(PREFIX)]


@pytest.mark.ray
def test_a_sweep_stores_its_trials_load(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'on.db'}"
    done = cli("run", str(write_spec(tmp_path, SPEC)), "--store", url, timeout=240)
    assert done.returncode == 0, done.stderr
    (trial,), load = _sys_points(url)
    assert trial["status"] == "completed"
    assert set(load.metric) >= {"sys/cpu_percent", "sys/rss_mb"}
    cpu = load[load.metric == "sys/cpu_percent"]
    # a 3 s trial sampled every second; steps are its whole seconds
    assert len(cpu) >= 2 and cpu.step.is_unique and (cpu.step >= 1).all()
    assert ((cpu.value >= 0) & (cpu.value <= 100 * (os.cpu_count() or 1) + 5)).all()
    rss = load[load.metric == "sys/rss_mb"]
    assert (rss.value > 10).all()


@pytest.mark.ray
def test_system_metrics_false_stores_none(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'off.db'}"
    spec = write_spec(tmp_path, SPEC + "system_metrics: false\n")
    done = cli("run", str(spec), "--store", url, timeout=240)
    assert done.returncode == 0, done.stderr
    (trial,), load = _sys_points(url)
    assert trial["status"] == "completed" and load.empty


# -- Trial detail ------------------------------------------------------------------------------
@pytest.mark.usefixtures("fresh_dashboard")
def test_trial_detail_shows_the_system_load_apart_from_the_curves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("SWEEPSCOPE_STORE", url)
    with open_store(url, create=True) as store:
        ids = make_sweep(store, steps=40)
        load = [
            (name, second, value, 1e6 + second)
            for second in range(2, 12, 2)
            for name, value in (("sys/cpu_percent", 95.0 + second), ("sys/rss_mb", 300.0))
        ]
        store.add_points(ids[0], load)
        at = open_page("trial", sweep="bn_demo-1")
        at.selectbox(key="trial_id").set_value(ids[0]).run()
        assert "System load" in [h.value for h in at.subheader]
        figure = chart(at, "trial_load_chart")
        titles = [a["text"] for a in figure["layout"]["annotations"]]
        assert titles == ["CPU (% of one core)", "memory (RSS, MiB)"]
        assert "seconds since the trial started" in json.dumps(figure["layout"])
        assert "CPU (% of one core): mean 101, peak 105" in texts(at, "caption")
        curves = [a["text"] for a in chart(at, "trial_chart")["layout"]["annotations"]]
        assert curves and not any(t.startswith("sys/") for t in curves)
        at.selectbox(key="trial_id").set_value(ids[1]).run()  # a trial without samples
        assert "No samples yet" in texts(at, "caption")
        assert not [c for c in at.get("plotly_chart") if "trial_load_chart" in c.proto.id]


@pytest.mark.ray
def test_a_plain_ray_tune_trainable_class_is_sampled_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'class.db'}"
    spec = write_spec(
        tmp_path,
        "name: load_class\ntrainable: tests.plain_trainables:Quadratic\nmetric: val_acc\n"
        "stop: {epochs: 8}\nsystem_metrics_every: 1\nfixed: {sleep: 0.4}\ngrid: {lr: [0.1]}\n",
    )
    done = cli("run", str(spec), "--store", url, timeout=240)
    assert done.returncode == 0, done.stderr
    (trial,), load = _sys_points(url)
    assert trial["status"] == "completed"
    assert set(load.metric) >= {"sys/cpu_percent", "sys/rss_mb"}
    assert load[load.metric == "sys/rss_mb"].step.is_unique
