"""A large sweep's pages read only what they draw (issue 18): over MANY_TRIALS trials the
live page reads the sweep's metric of every trial and every metric of only the trials it
draws (a fixed random BAND_SAMPLE, the best ones, the highlighted ones), its bands are over
the sample and say so; the Hyperparameters page reads the chosen metric of every trial. At
or below MANY_TRIALS every point is read, as before."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dashboard import live
from dashboard.data import SweepPoints, sample_trials
from runner.store import Store, open_store
from runner.store._sql import SqlStore
from tests.helpers.apptest import chart, open_page, texts

N_TRIALS = 40


def test_the_sample_is_fixed_and_changes_little_as_the_sweep_grows() -> None:
    first = sample_trials(range(1, 10_001), 1_000)
    assert first == sample_trials(reversed(range(1, 10_001)), 1_000)  # any order, same draw
    assert len(first) == len(set(first)) == 1_000 and first == sorted(first)
    grown = sample_trials(range(1, 10_101), 1_000)
    assert len(set(first) & set(grown)) >= 950  # a later trial only replaces a few
    assert sample_trials([3, 1, 2], 5) == [1, 2, 3]


def _fill(store: Store, n: int = N_TRIALS, sweep_id: str = "big") -> list[int]:
    """`n` completed trials, ten train_loss points and one loss each; trial k's values
    scaled by k (the best: the first)."""
    store.create_sweep(
        sweep_id, name=sweep_id, spec={"grid": {"i": []}}, metric="loss", mode="min", n_trials=n
    )
    ids = []
    with store.batch():
        for k in range(n):
            trial = store.add_trial(sweep_id, f"t{k}", {"i": k, "lr": [0.1, 0.01][k % 2]})
            points = [("train_loss", s, (k + 1) / s, 1e6 + s) for s in range(1, 11)]
            store.add_points(trial, [*points, ("loss", 10, (k + 1) / 10, 1e6 + 10)])
            store.set_trial_status(trial, "completed", last_step=10)
            ids.append(trial)
    return ids


def test_points_of_included_trials_only_and_their_new_points(sqlite_store: Store) -> None:
    ids = _fill(sqlite_store)
    full = SweepPoints("big")
    full.refresh(sqlite_store)
    some = SweepPoints("big", only_included=True)
    some.include(ids[:5])
    assert some.refresh(sqlite_store) == 5 * 11
    assert {t for t in ids if some.last_step(t) is not None} == set(ids[:5])
    for t in ids[:5]:
        assert some.finals([t], "train_loss") == full.finals([t], "train_loss")
    # a new point of a held trial arrives; one of a trial not included does not
    sqlite_store.add_points(ids[0], [("train_loss", 11, 0.5, 1e6 + 11)])
    sqlite_store.add_points(ids[9], [("train_loss", 11, 0.5, 1e6 + 11)])
    assert some.refresh(sqlite_store) == 1
    assert some.last_step(ids[0]) == 11 and some.last_step(ids[9]) is None
    # trials included later are read in full, the held ones' points never twice
    some.include(ids[8:10])
    assert some.refresh(sqlite_store) == 2 * 11 + 1
    assert some.last_step(ids[9]) == 11
    assert some.n_points == 7 * 11 + 2
    assert some.refresh(sqlite_store) == 0


def test_one_metric_of_every_trial(sqlite_store: Store) -> None:
    ids = _fill(sqlite_store)
    loss = SweepPoints("big", only_metrics=("loss",))
    assert loss.refresh(sqlite_store) == N_TRIALS
    assert loss.metrics() == ["loss"]
    assert loss.finals(ids[:2], "loss") == {ids[0]: 0.1, ids[1]: 0.2}
    sqlite_store.add_points(ids[3], [("loss", 20, 0.01, 1e6 + 20), ("train_loss", 20, 1, 1e6)])
    assert loss.refresh(sqlite_store) == 1


def test_drawn_trials_are_the_sample_the_best_and_the_highlighted(
    sqlite_store: Store, small_limits: None
) -> None:
    ids = _fill(sqlite_store)
    sweep = sqlite_store.sweep("big", best=False)
    assert sweep is not None and live.sampled(sweep, None)
    frame = live.refresh(sqlite_store, SweepPoints("big", only_metrics=("loss",)), sweep)
    best = live.best_trial(frame)
    assert best == ids[0] and live.ranked_trials(frame)[:3] == ids[:3]
    drawn, sample = live.drawn_trials(frame, ids, best=best, highlight=[ids[-1]])
    assert sample == sample_trials(ids, 10)
    assert set(drawn) == set(sample) | set(ids[:3]) | {ids[-1]}
    # at or below MANY_TRIALS shown (a filter), every shown trial is drawn and banded
    assert live.drawn_trials(frame, ids[:20], best=best) == (ids[:20], ids[:20])


def test_a_running_sweeps_drawn_points_grow_with_new_writes(
    sqlite_store: Store, small_limits: None
) -> None:
    """A refresh reads the new points of the drawn trials and the metric of every trial; a
    trial that joins the sample is read in full."""
    ids = _fill(sqlite_store)
    sweep = sqlite_store.sweep("big", best=False)
    assert sweep is not None
    metric = SweepPoints("big", only_metrics=("loss",))
    drawing = SweepPoints("big", only_included=True)
    frame = live.refresh(sqlite_store, metric, sweep)
    drawn, _ = live.drawn_trials(frame, ids, best=live.best_trial(frame))
    drawing.include(drawn)
    drawing.refresh(sqlite_store)
    late = sqlite_store.add_trial("big", "late", {"i": 99, "lr": 0.1})
    sqlite_store.add_points(late, [("train_loss", 1, 0.001, 1e6), ("loss", 1, 0.0001, 1e6)])
    held = drawn[0]
    sqlite_store.add_points(held, [("train_loss", 11, 0.05, 1e6 + 11)])
    frame = live.refresh(sqlite_store, metric, sweep)
    assert live.best_trial(frame) == late  # ranked from the metric of every trial
    drawn, _ = live.drawn_trials(frame, [*ids, late], best=late)
    drawing.include(drawn)
    drawing.refresh(sqlite_store)
    assert drawing.last_step(held) == 11 and drawing.last_step(late) == 1


# -- the pages -------------------------------------------------------------------------------
@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """What the store is asked for: the trials each filtered full read names, how many
    full reads named no trial, and how many reads of every point there were."""
    found: dict[str, Any] = {"every": 0, "trials": set(), "all_trials": 0}
    every, filtered = SqlStore.point_columns, SqlStore.points

    def point_columns(self: SqlStore, sweep_id: str, **kwargs: Any) -> Any:
        found["every"] += 1
        return every(self, sweep_id, **kwargs)

    def points(self: SqlStore, sweep_id: str, **kwargs: Any) -> Any:
        if kwargs.get("after_id", 0) > 0:  # what was written since the last refresh
            pass
        elif kwargs.get("trial_ids") is None:
            found["all_trials"] += 1
            assert kwargs.get("metrics") is not None, "a read of every point"
        else:
            found["trials"].update(kwargs["trial_ids"])
        return filtered(self, sweep_id, **kwargs)

    monkeypatch.setattr(SqlStore, "point_columns", point_columns)
    monkeypatch.setattr(SqlStore, "points", points)
    yield found


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 'large' sweep of N_TRIALS: over 20 trials, bands over 10, the 3 best as curves,
    metric names from 5."""
    monkeypatch.setattr(live, "MANY_TRIALS", 20)
    monkeypatch.setattr(live, "BAND_SAMPLE", 10)
    monkeypatch.setattr(live, "TOP_CURVES", 3)
    monkeypatch.setattr(live, "NAMES_SAMPLE", 5)


def test_a_large_sweeps_live_page_reads_and_bands_over_a_sample(
    dashboard_url: str, small_limits: None, reads: dict[str, Any]
) -> None:
    with open_store(dashboard_url, create=True) as s:
        ids = _fill(s)
    at = open_page("live", sweep="big")
    assert reads["every"] == 0
    sample = sample_trials(ids, 10)
    best = ids[:3]  # the smallest losses
    assert reads["trials"] == set(sample) | set(best)
    captions = texts(at, "caption")
    assert "band (median, interquartile range over a random 10 of the 40 trials" in captions
    assert "the 3 best by loss as curves" in captions
    assert "table shows loss only" in captions
    spec = chart(at, "live_chart_train_loss")
    names = [t.get("name") or "" for t in spec["data"]]
    assert any("all trials (random 10 of 40)" in name for name in names), names
    # the table still has every trial, ranked by the metric read for each
    assert len(at.dataframe[0].value) == N_TRIALS


def test_a_large_sweeps_hyperparameters_page_reads_one_metric(
    dashboard_url: str, small_limits: None, reads: dict[str, Any]
) -> None:
    with open_store(dashboard_url, create=True) as s:
        ids = _fill(s)
    at = open_page("hparams", timeout=120, sweep="big")
    assert reads["every"] == 0
    assert reads["trials"] == set(sample_trials(ids, 5))  # the metric names
    assert set(sample_trials(ids, 5)) < set(sample_trials(ids, 10))  # the live page's too
    assert at.selectbox[0].options == ["train_loss", "loss"]
    assert "(40 of 40)" in texts(at, "caption")  # a final for every trial, in the lines


def test_a_sweep_at_the_limit_reads_every_point_as_before(
    dashboard_url: str, monkeypatch: pytest.MonkeyPatch, reads: dict[str, Any]
) -> None:
    monkeypatch.setattr(live, "MANY_TRIALS", N_TRIALS)
    with open_store(dashboard_url, create=True) as s:
        _fill(s)
    at = open_page("live", sweep="big")
    assert reads["every"] >= 1 and not reads["trials"] and reads["all_trials"] == 0
    assert "random" not in texts(at, "caption")
    at = open_page("hparams", sweep="big")
    assert not reads["trials"] and reads["all_trials"] == 0
