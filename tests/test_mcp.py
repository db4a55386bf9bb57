"""`sweepscope mcp`: what an AI agent sees through the Model Context Protocol.

The agent's side is the `mcp` package's own client, connected to the server in-process (or,
once, over stdio to a real `sweepscope mcp` process); the stores are real, written with the
Store API: each read tool and the stop tools on both backends (`store`), the rest on SQLite
(`sqlite_store`): they add nothing a backend could change.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runner import verdicts
from runner.agent_tools import downsample
from runner.cli import build_parser
from runner.errors import SweepscopeError
from runner.mcp_server import CONTROL_TOOLS, READ_TOOLS, build_server, register
from runner.store import Store, open_store
from tests.helpers.cli import cli_env, write_spec
from tests.helpers.paths import REPO

pytest.importorskip("mcp", reason="the mcp extra is not installed: pip install 'sweepscope[mcp]'")

from mcp import Client, StdioServerParameters  # noqa: E402

# lr 0.1 is better on average; lr 0.01's luckiest seed is the single best trial.
FINALS = {0.1: [0.80, 0.82, 0.81, 0.83], 0.01: [0.60, 0.62, 0.95, 0.61]}
SEEDED_SPEC = {
    "name": "seeded",
    "trainable": "tests.trainables:steady",
    "metric": "val_acc",
    "mode": "max",
    "stop": {"epochs": 2},
    "grid": {"lr": list(FINALS)},
    "seeds": {"n": 4, "key": "seed", "start": 0},
}


# -- the agent's side --------------------------------------------------------------------------
@asynccontextmanager
async def connected(store: Store, url: str, *, allow_control: bool = False) -> AsyncIterator[Any]:
    async with Client(build_server(store, url=url, allow_control=allow_control)) as client:
        yield client


async def answer(client: Any, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool's JSON answer; fails the test with the text of a tool error."""
    result = await client.call_tool(tool, arguments)
    text = result.content[0].text
    assert not result.is_error, text
    found: dict[str, Any] = json.loads(text)
    return found


async def error(client: Any, tool: str, **arguments: Any) -> str:
    """The message of a call that must fail."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.content[0].text
    return str(result.content[0].text)


# -- stores ------------------------------------------------------------------------------------
def seeded_sweep(store: Store, sweep_id: str = "seeded-1") -> None:
    store.create_sweep(
        sweep_id, name="seeded", spec=SEEDED_SPEC, metric="val_acc", mode="max", n_trials=8
    )
    now = time.time()
    for lr, finals in FINALS.items():
        for seed, final in enumerate(finals):
            config = {"lr": lr, "seed": seed, "epochs": 2}  # as a run gives it: with stop
            trial = store.add_trial(sweep_id, f"{lr}-{seed}", config)
            store.set_trial_status(trial, "running")
            store.add_points(trial, [("val_acc", 1, 0.99, now), ("val_acc", 2, final, now)])
            store.set_trial_status(trial, "completed", last_epoch=2)
    store.finish_sweep(sweep_id, "completed")


def plain_sweep(store: Store, sweep_id: str = "plain-1") -> dict[int, float]:
    """A sweep without seeds: 4 trials whose best val_loss (min) is 0.4, 0.1, 0.3, none;
    returns each trial's final value by number."""
    spec = {"name": "plain", "metric": "val_loss", "mode": "min", "sample": {"lr": {}}}
    store.create_sweep(sweep_id, name="plain", spec=spec, metric="val_loss", mode="min", n_trials=4)
    curves = {1: [0.9, 0.4, 0.5], 2: [0.8, 0.1, 0.2], 3: [0.7, 0.3, 0.3], 4: []}
    for number, values in curves.items():
        trial = store.add_trial(sweep_id, f"t{number}", {"lr": number / 10, "fixed": "x"})
        store.set_trial_status(trial, "running")
        store.add_points(trial, [("val_loss", s + 1, v, 0.0) for s, v in enumerate(values)])
        if values:
            store.set_trial_status(trial, "completed", last_epoch=len(values))
    return {n: v[-1] for n, v in curves.items() if v}


def big_sweep(store: Store, sweep_id: str, *, seeded: bool) -> None:
    """1,000 trials of 10 epochs: 250 configurations x 4 seeds, or 1,000 sampled ones."""
    rng = np.random.default_rng(0)
    grid: dict[str, list[Any]] = {
        "lr": [10.0**-k for k in range(1, 11)],
        "layers": [1, 2, 3, 4, 5],
        "width": [32, 64, 128, 256, 512],
    }
    spec: dict[str, Any] = {"name": "big", "metric": "val_acc", "mode": "max"}
    spec |= (
        {"grid": grid, "seeds": {"n": 4, "key": "seed", "start": 0}}
        if seeded
        else {"sample": {k: {"type": "choice", "values": v} for k, v in grid.items()}}
    )
    store.create_sweep(sweep_id, name="big", spec=spec, metric="val_acc", mode="max", n_trials=1000)
    configs = [
        {"lr": lr, "layers": layers, "width": width}
        for lr in grid["lr"] for layers in grid["layers"] for width in grid["width"]
    ]  # fmt: skip
    with store.batch():
        for i in range(1000):
            config = configs[i % 250] | ({"seed": i // 250} if seeded else {"n": i})
            trial = store.add_trial(sweep_id, f"r{i}", config)
            quality = rng.uniform(0.5, 0.9)
            points = [
                ("val_acc", e, quality * (1 - 0.5**e) + rng.normal(0, 0.01), 1.0 * e)
                for e in range(1, 11)
            ]
            if i % 97 == 0:  # diverged: its last value is NaN
                points[-1] = ("val_acc", 10, math.nan, 10.0)
            store.add_points(trial, points + [("val_loss", e, 1 - v, w) for _, e, v, w in points])
            status = "diverged" if i % 97 == 0 else "completed"
            store.set_trial_status(trial, status, last_epoch=10)
    store.finish_sweep(sweep_id, "completed")


# -- listing -----------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_control_tools_are_listed_only_with_allow_control(sqlite_store: Store) -> None:
    url = sqlite_store.url
    async with connected(sqlite_store, url) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == set(READ_TOOLS)
        # not listed, and not callable either
        assert "stop_sweep" in await error(client, "stop_sweep", sweep_id="x")
    async with connected(sqlite_store, url, allow_control=True) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == set(READ_TOOLS) | set(CONTROL_TOOLS)
    assert all(tools[name].annotations.read_only_hint for name in READ_TOOLS)
    assert tools["stop_trial"].annotations.destructive_hint
    assert "trial" in tools["stop_trial"].input_schema["required"]


@pytest.mark.anyio
async def test_list_sweeps_gives_ids_names_statuses_counts_and_dates(store: Store) -> None:
    seeded_sweep(store)
    plain_sweep(store)
    async with connected(store, store.url) as client:
        listed = await answer(client, "list_sweeps")
        first = await answer(client, "list_sweeps", limit=1)
    by_id = {s["id"]: s for s in listed["sweeps"]}
    assert set(by_id) == {"seeded-1", "plain-1"} and listed["more"] == 0
    assert by_id["seeded-1"]["name"] == "seeded"
    assert by_id["seeded-1"]["status"] == "completed"
    assert by_id["seeded-1"]["counts"] == {"completed": 8}
    assert by_id["plain-1"]["counts"] == {"completed": 3, "running": 1}
    assert by_id["plain-1"]["metric"] == "val_loss" and by_id["plain-1"]["mode"] == "min"
    assert time.strptime(by_id["plain-1"]["created"], "%Y-%m-%dT%H:%M:%SZ")
    assert len(first["sweeps"]) == 1 and first["more"] == 1


# -- summaries ---------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_a_seeded_summary_ranks_configurations_by_mean_not_the_luckiest_trial(
    store: Store,
) -> None:
    seeded_sweep(store)
    async with connected(store, store.url) as client:
        summary = await answer(client, "summarize_sweep", sweep_id="seeded-1")
    assert summary["status"] == "completed" and summary["counts"] == {"completed": 8}
    assert (summary["metric"], summary["mode"]) == ("val_acc", "max")
    assert summary["seeds"] == {"key": "seed", "per_configuration": 4}
    assert summary["configurations"] == 2
    best, second = summary["best_configurations"]
    assert best["config"] == {"lr": 0.1} and second["config"] == {"lr": 0.01}
    assert best["mean"] == pytest.approx(np.mean(FINALS[0.1]), abs=1e-6)
    low, high = best["interval"]
    assert low < best["mean"] < high
    assert best["seeds"] == 4 and best["trials"] == [1, 2, 3, 4]
    assert second["trials"] == [5, 6, 7, 8]
    assert summary["tied_with_best"] in (0, 1)
    expected = verdicts.noise_floor(FINALS)
    assert summary["noise_floor"]["floor"] == pytest.approx(expected.floor, rel=1e-5)
    assert summary["noise_floor"]["df"] == 6


@pytest.mark.anyio
async def test_an_unseeded_summary_gives_the_best_trials_by_number(store: Store) -> None:
    finals = plain_sweep(store)
    async with connected(store, store.url) as client:
        summary = await answer(client, "summarize_sweep", sweep_id="plain-1", top=2)
    assert "best_configurations" not in summary
    assert [t["trial"] for t in summary["best_trials"]] == [2, 3]
    top = summary["best_trials"][0]
    assert top["best"] == 0.1 and top["final"] == finals[2] and top["epochs"] == 3
    assert top["config"] == {"lr": 0.2}  # the varied hyperparameter only
    # every configuration ran once: no seed noise to measure, and the note says what to run
    assert summary["noise_floor"]["floor"] is None
    assert "seeds" in summary["noise_floor"]["note"]


@pytest.mark.anyio
@pytest.mark.parametrize("seeded", [True, False], ids=["seeded", "unseeded"])
async def test_a_1000_trial_sweep_is_summarised_in_2_kb(sqlite_store: Store, seeded: bool) -> None:
    big_sweep(sqlite_store, "big", seeded=seeded)
    async with connected(sqlite_store, sqlite_store.url) as client:
        result = await client.call_tool("summarize_sweep", {"sweep_id": "big"})
    text = result.content[0].text
    assert not result.is_error, text
    assert len(text.encode()) <= 2048, f"{len(text.encode())} bytes: {text}"
    summary = json.loads(text)
    assert sum(summary["counts"].values()) == 1000
    ranked = summary["best_configurations" if seeded else "best_trials"]
    assert len(ranked) == 5 and "left_out" not in summary  # the default `top`, whole
    means = [row["mean" if seeded else "best"] for row in ranked]
    assert means == sorted(means, reverse=True)
    assert summary["status"] == "completed"
    if seeded:
        assert summary["configurations"] == 250
        assert summary["noise_floor"]["floor"] > 0
        assert all(len(row["trials"]) == 4 for row in ranked)


@pytest.mark.anyio
async def test_a_summary_of_long_configs_leaves_rows_out_to_stay_in_2_kb(
    sqlite_store: Store,
) -> None:
    names = [f"hyperparameter_{i}" for i in range(12)]
    spec = {"grid": {n: ["a long categorical value, " * 2] for n in names}}
    sqlite_store.create_sweep("wide", name="wide", spec=spec, metric="acc", mode="max", n_trials=30)
    for i in range(30):
        trial = sqlite_store.add_trial("wide", f"r{i}", {n: f"{n} value {i} " * 5 for n in names})
        sqlite_store.add_points(trial, [("acc", 1, i / 30, 0.0)])
    async with connected(sqlite_store, sqlite_store.url) as client:
        result = await client.call_tool("summarize_sweep", {"sweep_id": "wide", "top": 20})
    text = result.content[0].text
    assert len(text.encode()) <= 2048
    summary = json.loads(text)
    shown = summary["best_trials"]
    assert 1 <= len(shown) < 20 and summary["left_out"] == 20 - len(shown)
    assert [t["trial"] for t in shown] == list(range(30, 30 - len(shown), -1))  # best first
    assert all(len(v) <= 40 for v in shown[0]["config"].values())  # long values clipped


# -- curves ------------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_curves_come_downsampled_with_first_last_and_extremes(store: Store) -> None:
    store.create_sweep(
        "long", name="long", spec={"grid": {"lr": [1]}}, metric="val_acc", mode="max", n_trials=2
    )
    steady = store.add_trial("long", "a", {"lr": 1})
    values = [0.5 + 0.0001 * s for s in range(1, 1001)]
    values[499] = 5.0  # a spike at step 500 must survive the downsampling
    store.add_points(steady, [("val_acc", s, v, 0.0) for s, v in enumerate(values, 1)])
    store.add_points(steady, [("loss", s, 1.0 / s, 0.0) for s in range(1, 11)])
    diverged = store.add_trial("long", "b", {"lr": 1})
    blown = [("val_acc", s, 0.5, 0.0) for s in range(1, 300)] + [("val_acc", 300, math.nan, 0.0)]
    store.add_points(diverged, blown)
    async with connected(store, store.url) as client:
        read = await answer(
            client, "read_curves", sweep_id="long", trials=[1, 2], metrics=["val_acc", "loss"],
            max_points=20,
        )  # fmt: skip
        default = await answer(client, "read_curves", sweep_id="long", trials=[2])
    assert "MinMaxLTTB" in read["downsampling"]
    curves = {(c["trial"], c["metric"]): c for c in read["curves"]}
    assert set(curves) == {(1, "val_acc"), (1, "loss"), (2, "val_acc"), (2, "loss")}
    spiky = curves[(1, "val_acc")]
    assert spiky["n"] == 1000 and len(spiky["step"]) == len(spiky["value"]) <= 20
    assert spiky["step"][0] == 1 and spiky["step"][-1] == 1000
    assert spiky["value"][-1] == pytest.approx(values[-1]) and 5.0 in spiky["value"]
    assert spiky["step"] == sorted(spiky["step"])
    assert curves[(1, "loss")]["n"] == 10 and len(curves[(1, "loss")]["step"]) == 10  # all kept
    assert curves[(2, "loss")]["n"] == 0
    blew = curves[(2, "val_acc")]
    assert len(blew["step"]) <= 20 and blew["step"][-1] == 300 and blew["value"][-1] is None
    assert default["curves"][0]["metric"] == "val_acc"  # the sweep's metric by default
    assert len(default["curves"][0]["step"]) <= 50


def test_downsampling_keeps_short_curves_whole_and_long_ones_bounded() -> None:
    step = np.arange(1, 8)
    assert list(downsample(step, np.ones(7), 10)) == list(range(7))
    step = np.arange(1, 10_001)
    kept = downsample(step, np.sin(step / 100.0), 100)
    assert len(kept) <= 100 and kept[0] == 0 and kept[-1] == 9_999
    assert np.all(np.diff(kept) > 0)


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_mistakes_come_back_as_tool_errors_that_say_what_to_do(sqlite_store: Store) -> None:
    plain_sweep(sqlite_store)
    async with connected(sqlite_store, sqlite_store.url) as client:
        unknown = await error(client, "summarize_sweep", sweep_id="no-such-sweep")
        assert "'no-such-sweep'" in unknown and "list_sweeps" in unknown
        assert "'no-such-sweep'" in await error(
            client, "read_curves", sweep_id="no-such-sweep", trials=[1]
        )
        trials = await error(client, "read_curves", sweep_id="plain-1", trials=[2, 9])
        assert "[9]" in trials and "1..4" in trials
        metric = await error(client, "read_curves", sweep_id="plain-1", trials=[1], metrics=["acc"])
        assert "'acc'" in metric and "val_loss" in metric
        too_few = await error(client, "read_curves", sweep_id="plain-1", trials=[1], max_points=2)
        assert "max_points" in too_few


def test_without_the_mcp_package_the_server_says_what_to_install(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mcp.server.mcpserver", None)  # import fails
    with pytest.raises(SweepscopeError, match=r"pip install 'sweepscope\[mcp\]'"):
        build_server(sqlite_store, url=sqlite_store.url)


def _has_extend() -> bool:
    parser = build_parser()
    return any("extend" in (getattr(action, "choices", None) or {}) for action in parser._actions)


# -- control -----------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_stop_tools_land_stop_requests_in_the_store(store: Store) -> None:
    plain_sweep(store)  # trial 4 is still running
    async with connected(store, store.url, allow_control=True) as client:
        finished = await answer(client, "stop_trial", sweep_id="plain-1", trial=2)
        assert finished["stop_requested"] is False
        assert store.stop_requests("plain-1") == (False, set())
        stopped = await answer(client, "stop_trial", sweep_id="plain-1", trial=4)
        assert stopped == stopped | {"trial": 4, "stop_requested": True}
        assert store.stop_requests("plain-1") == (False, {"t4"})
        assert (await answer(client, "stop_sweep", sweep_id="plain-1"))["stop_requested"]
        assert store.stop_requests("plain-1")[0] is True
        assert "list_sweeps" in await error(client, "stop_sweep", sweep_id="nope")
        assert "[7]" in await error(client, "stop_trial", sweep_id="plain-1", trial=7)


@pytest.mark.slow
@pytest.mark.anyio
async def test_launching_a_bad_spec_returns_the_cli_error(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the launched process's log goes under it
    spec = write_spec(tmp_path, "name: bad\ntrainable: tests.trainables:steady\nmetric: acc\n")
    async with connected(sqlite_store, sqlite_store.url, allow_control=True) as client:
        failed = await error(client, "launch_sweep", spec=str(spec))
        missing = await error(client, "launch_sweep", spec=str(tmp_path / "none.yaml"))
    assert "exit 2" in failed and str(spec) in failed and "Fix:" in failed
    assert str(tmp_path / ".sweepscope" / "logs") in failed  # where its whole output is
    assert "none.yaml" in missing and "no such file" in missing
    assert sqlite_store.sweeps() == []


@pytest.mark.ray
@pytest.mark.anyio
async def test_launch_returns_the_new_sweeps_id_and_stop_ends_it(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in cli_env().items():
        monkeypatch.setenv(name, value)  # the launched run starts a Ray of its own
    spec = write_spec(
        tmp_path,
        "name: launched\ntrainable: tests.trainables:hangs\nmetric: val_acc\nmode: max\n"
        "stop: {epochs: 100}\ngrid: {lr: [0.1]}\n",
    )
    with open_store(sqlite_url, create=True) as store:
        async with connected(store, sqlite_url, allow_control=True) as client:
            launched = await answer(client, "launch_sweep", spec=str(spec), name="by-agent")
            try:
                sweep = store.sweep(launched["sweep"])
                assert sweep is not None and sweep["name"] == "by-agent"
                assert launched["running"] and Path(launched["log"]).is_file()
            finally:
                await answer(client, "stop_sweep", sweep_id=launched["sweep"])
        process_gone = _wait_for_exit(launched["pid"], 120)
        assert process_gone, f"sweepscope run (pid {launched['pid']}) still runs after stop"
        sweep = store.sweep(launched["sweep"])
        assert sweep is not None and sweep["status"] == "stopped"


@pytest.mark.ray
@pytest.mark.anyio
@pytest.mark.skipif(not _has_extend(), reason="`sweepscope extend` (runner.cli) not there yet")
async def test_extend_adds_a_round_whose_trials_land_in_the_store(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in cli_env().items():
        monkeypatch.setenv(name, value)  # the extension starts a Ray of its own
    with open_store(sqlite_url, create=True) as store:
        seeded_sweep(store)
        async with connected(store, sqlite_url, allow_control=True) as client:
            extended = await answer(
                client, "extend_sweep", sweep_id="seeded-1", args=["--seeds", "1"]
            )
            assert extended["round"] == 2 and "round 2" in extended["output"]
            assert _wait_for_exit(extended["pid"], 180), "sweepscope extend still runs"
            summary = await answer(client, "summarize_sweep", sweep_id="seeded-1")
    assert summary["status"] == "completed" and summary["counts"] == {"completed": 10}
    assert [c["seeds"] for c in summary["best_configurations"]] == [5, 5]
    assert sorted(
        summary["best_configurations"][0]["trials"] + summary["best_configurations"][1]["trials"]
    ) == list(range(1, 11))


def _wait_for_exit(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or "Z" in _state(pid):
            return True
        time.sleep(0.5)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.skipif(not _has_extend(), reason="`sweepscope extend` (runner.cli) not there yet")
async def test_extend_runs_the_cli_with_the_arguments_given(sqlite_store: Store) -> None:
    seeded_sweep(sqlite_store)
    async with connected(sqlite_store, sqlite_store.url, allow_control=True) as client:
        failed = await error(client, "extend_sweep", sweep_id="seeded-1", args=["--no-such-flag"])
        unknown = await error(client, "extend_sweep", sweep_id="nope", args=[])
    assert "sweepscope extend seeded-1 --no-such-flag" in failed and "--no-such-flag" in failed
    assert "exit 2" in failed
    assert "'nope'" in unknown and "list_sweeps" in unknown


# -- over stdio, as an agent client launches it --------------------------------------------------
SERVE = """
import argparse, sys
from runner.mcp_server import register
sub = argparse.ArgumentParser().add_subparsers()
register(sub, "store URL")
args = sub.choices["mcp"].parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_command_serves_over_stdio(sqlite_store: Store) -> None:
    plain_sweep(sqlite_store)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", SERVE, "--store", sqlite_store.url],
        env=cli_env(),
        cwd=str(REPO),
    )
    # mode="legacy": the initialize handshake, as agent clients of today open a session
    async with Client(params, read_timeout_seconds=60, mode="legacy") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        listed = await answer(client, "list_sweeps")
    assert names == set(READ_TOOLS)
    assert [s["id"] for s in listed["sweeps"]] == ["plain-1"]


def test_a_store_url_holding_no_store_is_refused_before_serving(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    sub = argparse.ArgumentParser().add_subparsers()
    register(sub, "store URL")
    args = sub.choices["mcp"].parse_args(["--store", url])
    assert args.allow_control is False
    with pytest.raises(SweepscopeError, match="none.db"):
        args.func(args)
