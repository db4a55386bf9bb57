"""The BN page: what it chooses from the sweep (called directly, without AppTest), and the
page itself with each band kind, one level only, and a sweep still running."""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
from streamlit.testing.v1 import AppTest

from dashboard import compare
from dashboard.bands import BANDS
from dashboard.data import SweepPoints
from runner.store import Store, open_store
from tests.helpers.apptest import chart, open_page
from tests.test_dashboard_data import SPEC, make_sweep


def _trials(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": i + 1, "config": c, "status": "completed"} for i, c in enumerate(configs)]


def test_choices_made_from_the_sweep() -> None:
    trials = _trials(
        [
            {"lr": 0.1, "bn": True, "act": "relu", "width": 64, "flag": True},
            {"lr": 0.01, "bn": False, "act": "tanh", "width": 128, "flag": False},
        ]
    )
    params = ["lr", "bn", "act", "width", "flag"]
    assert compare.numeric_params(trials, params) == ["lr", "width"]
    assert compare.numeric_params(trials, params, exclude=["lr"]) == ["width"]
    assert compare.default_factor(["lr", "batch_norm"]) == "batch_norm"
    assert compare.default_factor(["lr", "wd"]) == "lr"
    assert compare.default_x(["width", "lr"]) == "lr"
    assert compare.default_x(["width", "wd"]) == "width"
    a, b = compare.sides(trials, "bn", (False, True))
    assert [t["id"] for t in a] == [2] and [t["id"] for t in b] == [1]


def test_best_values_and_finals_against(sqlite_store: Store) -> None:
    ids = make_sweep(sqlite_store, steps=100)
    points = SweepPoints("bn_demo-1")
    points.refresh(sqlite_store)
    trials = sqlite_store.trials("bn_demo-1")
    best = compare.best_values(points, trials, "val_acc", "max")
    assert len(best) == len(trials) and max(best) < 1.0
    groups = dict(
        zip(("off", "on"), compare.sides(trials, "batch_norm", (False, True)), strict=True)
    )
    frame = compare.finals_against(points, trials, "val_acc", "lr", groups)
    assert list(frame.columns) == ["trial", "lr", "status", "group", "number", "final"]
    assert set(frame["group"]) == {"off", "on"} and frame["final"].notna().all()
    number = {t["id"]: t["number"] for t in trials}
    assert list(frame["number"]) == [number[t] for t in frame["trial"]]  # what the hover shows
    assert (
        frame.set_index("trial")["final"][ids[0]]
        == compare.final_values(points, [ids[0]], "val_acc")[ids[0]]
    )


# -- the page ------------------------------------------------------------------------------
def _page(sweep: str = "bn_demo-1") -> AppTest:
    return open_page("compare", timeout=120, sweep=sweep)


def _values(data: Any) -> np.ndarray:
    """A plotly array from the figure's JSON: a list, or a typed array ({dtype, bdata})."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).astype(float)
    return np.array([math.nan if v is None else v for v in data], dtype=float)


def test_band_kinds_and_their_legend(dashboard_url: str) -> None:
    with open_store(dashboard_url, create=True) as s:
        make_sweep(s, steps=200)
        trials = s.trials("bn_demo-1")
        points = SweepPoints("bn_demo-1")
        points.refresh(s)
    series = [points.series(int(t["id"]), "val_acc") for t in trials]
    values = np.concatenate([s.value for s in series if s is not None])
    at = _page()
    assert at.radio(key="q_cmp_band").value == "iqr"
    spec = chart(at, "cmp_band")
    names = [t["name"] for t in spec["data"]]
    assert "BN on: interquartile range" in names and "BN on: median" in names
    assert "median, interquartile range" in spec["layout"]["yaxis"]["title"]["text"]
    fills = [t for t in spec["data"] if t.get("fill") == "toself"]
    drawn = np.concatenate([_values(t["y"]) for t in fills])
    assert drawn.max() <= values[np.isfinite(values)].max()
    assert drawn.min() >= values[np.isfinite(values)].min()
    for kind, text in BANDS.items():
        at.radio(key="q_cmp_band").set_value(kind).run()
        assert not at.exception
        names = [t["name"] for t in chart(at, "cmp_band")["data"]]
        assert f"BN off: {text}" in names, kind


def test_page_while_only_one_level_has_started(dashboard_url: str) -> None:
    """Partial: the first trials of a sweep all have batch_norm=True."""
    with open_store(dashboard_url, create=True) as s:
        s.create_sweep("early", name="early", spec=SPEC, metric="val_acc", mode="max", n_trials=12)
        for i, lr in enumerate([0.1, 0.01]):
            trial = s.add_trial("early", f"e{i}", {"lr": lr, "batch_norm": True, "seed": 0})
            s.add_points(trial, [("val_acc", 10, 0.5, 1e6), ("train_loss", 1, 2.0, 1e6)])
    at = _page("early")
    infos = " | ".join(str(e.value) for e in at.info)
    assert "All trials so far have batch_norm=True" in infos
    at.selectbox(key="q_cmp_factor").set_value("lr").run()
    captions = " | ".join(c.value for c in at.caption)
    assert "1 pair that differs only in lr" in captions
    assert "95% bootstrap CI (BCa, 1 pairs): n/a (needs 2 pairs)" in captions
    assert any("cmp_band" in c.proto.id for c in at.get("plotly_chart"))


def test_page_on_a_running_sweep(dashboard_url: str) -> None:
    """Partial: two trials still running, half-way; the page pairs and draws what there is."""
    with open_store(dashboard_url, create=True) as s:
        make_sweep(s, steps=200, running=[0, 6])
    at = _page()
    captions = " | ".join(c.value for c in at.caption)
    assert "6 pairs that differ only in batch_norm" in captions
    for key in ("cmp_band", "cmp_pairs", "cmp_diffs", "cmp_speed", "cmp_lr"):
        chart(at, key)
    metrics = {m.label: m.value for m in at.metric}
    assert math.isfinite(float(metrics["mean BN on − BN off"]))
