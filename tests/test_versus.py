"""Sweep against sweep: pairing two sweeps' trials on what they share (without AppTest),
the paired analysis across two sweeps' points, and the page's empty and partial states."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import compare
from dashboard.data import SweepPoints
from runner.store import Store, open_store
from tests.helpers.apptest import open_page, texts
from tests.test_dashboard_data import SPEC, make_sweep


def _trials(first_id: int, configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": first_id + i, "config": c} for i, c in enumerate(configs)]


def _grid(fixed: dict[str, Any], **grid: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [dict(fixed)]
    for key, values in grid.items():
        out = [{**c, key: v} for c in out for v in values]
    return out


def test_the_same_grid_pairs_every_trial_and_names_what_differs() -> None:
    a = _trials(1, _grid({"dataset": "digits"}, lr=[0.1, 0.01], bn=[True, False]))
    b = _trials(11, _grid({"dataset": "mnist1d"}, lr=[0.1, 0.01], bn=[True, False]))
    match = compare.pair_sweeps(("A", a, ["lr", "bn"]), ("B", b, ["lr", "bn"]))
    pairs = match.pairing.pairs
    assert list(zip(pairs["a"], pairs["b"], strict=True)) == [(1, 11), (2, 12), (3, 13), (4, 14)]
    assert pairs["pair"].iloc[0] == "lr=0.1, bn=True"
    assert match.shared == ("lr", "bn")
    assert match.differing == {"dataset": ("digits", "mnist1d")}
    assert match.unpaired_a == match.unpaired_b == ()
    assert match.pairing.levels == ("A", "B")


def test_grids_that_partly_overlap_pair_what_matches() -> None:
    a = _trials(1, _grid({}, lr=[0.1, 0.01, 0.001], bn=[True, False]))
    b = _trials(21, _grid({}, lr=[0.01, 0.001, 0.0001], bn=[True, False]))
    match = compare.pair_sweeps(("A", a, ["lr", "bn"]), ("B", b, ["lr", "bn"]))
    pairs = match.pairing.pairs
    assert len(pairs) == 4
    assert set(pairs["lr"]) == {0.01, 0.001}
    assert all(
        next(t for t in a if t["id"] == ra)["config"]
        == next(t for t in b if t["id"] == rb)["config"]
        for ra, rb in zip(pairs["a"], pairs["b"], strict=True)
    )
    assert match.unpaired_a == (1, 2)  # lr=0.1 has no partner in B
    assert match.unpaired_b == (25, 26)  # nor lr=0.0001 in A


def test_a_hyperparameter_one_sweep_fixes_pairs_on_its_fixed_value() -> None:
    a = _trials(1, _grid({"beta1": 0.9}, lr=[0.1, 0.01]))
    b = _trials(11, _grid({}, lr=[0.1, 0.01], beta1=[0.8, 0.9]))
    match = compare.pair_sweeps(("A", a, ["lr"]), ("B", b, ["lr", "beta1"]))
    assert match.shared == ("lr", "beta1")
    assert list(match.pairing.pairs["b"]) == [12, 14]  # the beta1=0.9 trials
    assert match.unpaired_b == (11, 13) and match.only_a == match.only_b == ()


def test_a_hyperparameter_only_one_sweep_has_is_not_paired_on() -> None:
    a = _trials(1, _grid({}, lr=[0.1, 0.01]))
    b = _trials(11, _grid({}, lr=[0.1, 0.01], wd=[0.0, 1e-4]))
    match = compare.pair_sweeps(("A", a, ["lr"]), ("B", b, ["lr", "wd"]))
    assert match.shared == ("lr",) and match.only_b == ("wd",)
    assert list(zip(match.pairing.pairs["a"], match.pairing.pairs["b"], strict=True)) == [
        (1, 11),
        (2, 13),
    ]  # in id order: the first lr=0.1 and lr=0.01 trial of B
    assert match.unpaired_b == (12, 14)


def test_disjoint_grids_and_the_same_sweep() -> None:
    a = _trials(1, _grid({}, lr=[0.1, 0.3]))
    b = _trials(11, _grid({}, lr=[0.2, 0.4]))
    match = compare.pair_sweeps(("A", a, ["lr"]), ("B", b, ["lr"]))
    assert match.pairing.pairs.empty
    assert match.unpaired_a == (1, 2) and match.unpaired_b == (11, 12)
    # One setting each, held fixed at different values: that is what the two compare.
    fixed = compare.pair_sweeps(("A", a[:1], []), ("B", b[:1], []))
    assert len(fixed.pairing.pairs) == 1 and fixed.differing == {"lr": (0.1, 0.2)}
    with pytest.raises(ValueError, match="pick two different sweeps"):
        compare.pair_sweeps(("A", a, ["lr"]), ("A", a, ["lr"]))


def test_default_sweeps_compare_the_chosen_one_with_the_one_before() -> None:
    ids = ["c", "b", "a"]  # newest first
    assert compare.default_sweeps(ids, None) == ("b", "c")
    assert compare.default_sweeps(ids, "b") == ("a", "b")
    assert compare.default_sweeps(ids, "a") == ("c", "a")  # the oldest: the newest other
    assert compare.default_sweeps(ids, "gone") == ("b", "c")
    with pytest.raises(ValueError, match="needs two"):
        compare.default_sweeps(["a"], "a")


def test_labels_are_names_unless_the_same() -> None:
    assert compare.sweep_labels({"id": "x-1", "name": "x"}, {"id": "y-1", "name": "y"}) == (
        "x",
        "y",
    )
    assert compare.sweep_labels({"id": "x-1", "name": "x"}, {"id": "x-2", "name": "x"}) == (
        "x-1",
        "x-2",
    )


OTHER_SPEC: dict[str, Any] = {
    **SPEC,
    "fixed": {**SPEC["fixed"], "dataset": "synthetic-v2"},
    "grid": {"lr": [0.01, 0.001, 0.0001], "batch_norm": [True, False], "seed": [0, 1]},
}


def _two_sweeps(store: Store) -> tuple[list[int], list[int]]:
    first = make_sweep(store, sweep_id="bn_demo-1", steps=100)
    second = make_sweep(
        store, sweep_id="bn_demo-2", steps=100, spec={**OTHER_SPEC, "name": "bn_demo_v2"}
    )
    return first, second


def test_paired_analysis_reads_each_side_from_its_sweep(sqlite_store: Store) -> None:
    _two_sweeps(sqlite_store)
    loaded = []
    for sweep_id in ("bn_demo-1", "bn_demo-2"):
        sweep = sqlite_store.sweep(sweep_id)
        assert sweep is not None
        points = SweepPoints(sweep_id)
        points.refresh(sqlite_store)
        trials = sqlite_store.trials(sweep_id)
        loaded.append((sweep, trials, points))
    (sa, ta, pa), (sb, tb, pb) = loaded
    match = compare.pair_sweeps(
        (sa["id"], ta, list(sa["spec"]["grid"])), (sb["id"], tb, list(sb["spec"]["grid"]))
    )
    pairs = match.pairing.pairs
    assert len(pairs) == 8 and len(match.unpaired_a) == len(match.unpaired_b) == 4
    assert match.differing == {"dataset": ("synthetic", "synthetic-v2")}
    finals = compare.pair_finals(match.pairing, "val_acc", pa, pb)
    diffs = compare.paired_differences(match.pairing, finals)
    expected_a = compare.final_values(pa, list(pairs["a"]), "val_acc")
    expected_b = compare.final_values(pb, list(pairs["b"]), "val_acc")
    assert diffs["final A"].tolist() == expected_a.tolist()
    assert np.allclose(
        diffs["B - A"], expected_b.to_numpy() - expected_a.to_numpy(), equal_nan=True
    )
    steps = compare.pair_steps(match.pairing, "val_acc", 0.5, "max", pa, pb)
    assert set(steps.index) == set(pairs["a"]) | set(pairs["b"])


# -- the page ------------------------------------------------------------------------------
def _page(**query: str) -> AppTest:
    return open_page("versus", timeout=120, **query)


def _charts(at: AppTest) -> set[str]:
    return {c.proto.id for c in at.get("plotly_chart")}


def test_page_with_one_sweep_asks_for_another(dashboard_url: str) -> None:
    with open_store(dashboard_url, create=True) as s:
        make_sweep(s, steps=50)
    assert "this page compares two" in texts(_page(), "info")


def test_page_pairs_two_partly_overlapping_sweeps(dashboard_url: str) -> None:
    with open_store(dashboard_url, create=True) as s:
        _two_sweeps(s)
    at = _page()
    assert at.selectbox(key="q_vs_a").value == "bn_demo-1"  # the older one
    assert at.selectbox(key="q_vs_b").value == "bn_demo-2"
    captions = texts(at, "caption")
    assert "8 pairs of trials with the same batch_norm, lr, seed" in captions
    assert "dataset synthetic → synthetic-v2" in captions
    infos = texts(at, "info")
    assert "4 trials of bn_demo without a partner" in infos
    assert "4 trials of bn_demo_v2 without a partner" in infos
    for key in ("vs_band", "vs_pairs", "vs_diffs"):
        assert any(key in c for c in _charts(at)), key
    assert {m.label for m in at.metric} >= {"mean bn_demo_v2 − bn_demo"}


def test_page_with_sweeps_that_share_no_setting(dashboard_url: str) -> None:
    with open_store(dashboard_url, create=True) as s:
        make_sweep(s, steps=50)
        make_sweep(
            s,
            sweep_id="bn_demo-3",
            steps=50,
            spec={**SPEC, "grid": {"lr": [0.5], "batch_norm": [True], "seed": [3]}},
        )
    at = _page()
    assert "nothing to pair" in texts(at, "warning")
    at.selectbox(key="q_vs_b").set_value("bn_demo-3").run()
    at.selectbox(key="q_vs_a").set_value("bn_demo-3").run()
    assert "pick two different sweeps" in texts(at, "warning")


def test_page_with_a_sweep_that_has_no_points_yet(dashboard_url: str) -> None:
    with open_store(dashboard_url, create=True) as s:
        make_sweep(s, steps=50)
        s.create_sweep("fresh", name="fresh", spec=SPEC, metric="val_acc", mode="max", n_trials=1)
        s.add_trial("fresh", "a", {"lr": 0.1, "batch_norm": True, "seed": 0, **SPEC["fixed"]})
    at = _page(q_vs_a="bn_demo-1", q_vs_b="fresh")
    assert "No metric has points in both sweeps yet" in texts(at, "info")


def test_page_judges_two_seeded_sweeps_by_configuration(dashboard_url: str) -> None:
    from tests.test_verdict_pages import SEEDS, seeded_bn_sweep

    with open_store(dashboard_url, create=True) as s:
        seeded_bn_sweep(s, effect=0.0, sweep_id="bn_seeded-1")
        seeded_bn_sweep(s, effect=0.0, sweep_id="bn_seeded-2", offset=0.05)  # after a fix
    at = _page()
    captions = texts(at, "caption")
    assert "8 configuration pairs with the same batch_norm, lr, each side with all its" in captions
    assert "**bn_seeded-2** is **better** than **bn_seeded-1**" in texts(at, "success")
    assert "Noise floor ±" in texts(at, "markdown")
    assert {m.label: m.value for m in at.metric}["mean bn_seeded-2 − bn_seeded-1"] == "+0.05"
    table = at.dataframe[0].value
    assert len(table) == 8 and set(table["seeds A (bn_seeded-1)"]) == {f"{SEEDS}/{SEEDS}"}


def test_page_with_one_seed_says_the_noise_floor_is_unknown(dashboard_url: str) -> None:
    with open_store(dashboard_url, create=True) as s:
        _two_sweeps(s)
    warnings = texts(_page(), "warning")
    assert "Noise floor unknown" in warnings and "seeds: 3 in the spec" in warnings
