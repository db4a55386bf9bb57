"""Verdicts on seeded sweeps: known answers, interval coverage, the noise floor, refusals.

The simulations are seeded and small (about 200 datasets each), so the rates they check
carry a few points of binomial noise; the tolerances allow for it.
"""

from __future__ import annotations

import math
import time
from dataclasses import FrozenInstanceError, dataclass
from typing import Any

import numpy as np
import pytest
from scipy import stats

from runner.verdicts import (
    MARGIN_SDS,
    MIN_SEEDS,
    best_configuration,
    choose_best,
    compare,
    decide,
    noise_floor,
    pair_verdict,
    verdict,
)

Pairs = list[tuple[np.ndarray, np.ndarray]]
untyped_compare: Any = compare  # the refusals pass wrong types on purpose
untyped_noise_floor: Any = noise_floor
untyped_choose_best: Any = choose_best


def _sweep(
    rng: np.random.Generator,
    *,
    pairs: int,
    seeds: int,
    effect: float,
    spread: float = 0.0,
    noise: float = 1.0,
) -> Pairs:
    """Configuration pairs with their own baseline; B adds `effect` (varying between pairs
    by `spread`) and every seed adds noise."""
    base = rng.normal(0.0, 1.0, pairs)
    shift = effect + spread * rng.normal(0.0, 1.0, pairs)
    return [
        (
            base[i] + rng.normal(0.0, noise, seeds),
            base[i] + shift[i] + rng.normal(0.0, noise, seeds),
        )
        for i in range(pairs)
    ]


def _coverage(rng: np.random.Generator, repeats: int, **sweep: float) -> float:
    true = sweep["effect"]
    hits = 0
    for k in range(repeats):
        result = compare(_sweep(rng, **sweep), n_resamples=1000, seed=k)  # type: ignore[arg-type]
        hits += result.low <= true <= result.high
    return hits / repeats


def test_identical_distributions_are_rarely_called_better() -> None:
    rng = np.random.default_rng(1)
    said = [
        decide(_sweep(rng, pairs=8, seeds=3, effect=0.0), "min", n_resamples=1000, seed=k).verdict
        for k in range(200)
    ]
    assert said.count("better") / len(said) <= 0.025 + 0.02
    assert said.count("undecided") / len(said) >= 0.9


def test_one_pair_of_identical_distributions_is_rarely_called_better() -> None:
    rng = np.random.default_rng(2)
    said = [
        pair_verdict(rng.normal(0, 1, 5), rng.normal(0, 1, 5), "max", n_resamples=1000).verdict
        for _ in range(200)
    ]
    assert said.count("better") / len(said) <= 0.025 + 0.02


def test_large_effect_is_better_for_min_and_worse_for_max() -> None:
    pairs = _sweep(np.random.default_rng(3), pairs=6, seeds=3, effect=-2.0, noise=0.2)
    lower = decide(pairs, "min")
    assert lower.verdict == "better"
    assert "lower" in lower.reason and "excludes 0" in lower.reason
    assert lower.comparison.high < 0 and lower.comparison.estimate == pytest.approx(-2, abs=0.3)
    assert decide(pairs, "max").verdict == "worse"
    flipped = [(b, a) for a, b in pairs]
    assert decide(flipped, "min").verdict == "worse"
    assert decide(flipped, "max").verdict == "better"


@pytest.mark.parametrize(
    ("sweep", "low", "high"),
    [
        # effects that differ between configurations: the interval is near nominal
        (dict(pairs=10, seeds=5, effect=1.0, spread=2.0), 0.90, 1.0),
        # the same effect everywhere: resampling seeds on top of pairs errs wide
        (dict(pairs=20, seeds=5, effect=1.0, spread=0.0), 0.95, 1.0),
        # one pair: seeds only
        (dict(pairs=1, seeds=5, effect=1.0), 0.90, 1.0),
        (dict(pairs=1, seeds=MIN_SEEDS, effect=1.0), 0.90, 1.0),
    ],
)
def test_interval_covers_the_true_difference(
    sweep: dict[str, float], low: float, high: float
) -> None:
    assert low <= _coverage(np.random.default_rng(4), 200, **sweep) <= high


def test_unequal_seed_counts_and_diverged_runs() -> None:
    nan, inf = math.nan, math.inf
    pairs = [
        ([1.0, 1.1, 0.9, 1.05], [0.5]),
        ([1.2, nan], [0.6, 0.7, 0.65]),
        ([1.0, 1.1], [inf, nan]),  # B diverged on every seed: the pair cannot count
        ([0.9], [0.45, 0.5, -inf]),
    ]
    result = compare(pairs)
    assert (result.n_pairs, result.dropped_a, result.dropped_b, result.dropped_pairs) == (
        3,
        1,
        3,
        1,
    )
    assert result.seeds_resampled
    assert result.estimate == pytest.approx(np.mean([0.5 - 1.0125, 0.65 - 1.2, 0.475 - 0.9]))
    assert result.low <= result.estimate <= result.high


def test_single_seeds_resample_pairs_only() -> None:
    pairs = [([1.0 + i / 10], [0.5 + i / 10]) for i in range(6)]
    result = compare(pairs)
    assert not result.seeds_resampled
    assert result.low == pytest.approx(-0.5) and result.high == pytest.approx(-0.5)
    assert "only the pairs were resampled" in decide(pairs, "min").reason


@pytest.mark.parametrize(
    ("a", "b"), [([1.0], [0.5]), ([1.0, 1.1], [0.5, 0.6]), ([1.0, 1.1, 0.9], [0.5])]
)
def test_one_pair_with_too_few_seeds_is_undecided(a: list[float], b: list[float]) -> None:
    decision = pair_verdict(a, b, "min")
    assert decision.verdict == "undecided"
    assert f"{MIN_SEEDS} or more" in decision.reason and "seeds: 3" in decision.reason
    assert math.isnan(decision.comparison.low) and not decision.comparison.seeds_resampled
    assert decision.comparison.estimate == pytest.approx(np.mean(b) - np.mean(a))


def test_one_pair_with_enough_seeds_decides() -> None:
    decision = pair_verdict([1.0, 1.1, 0.9], [0.5, 0.45, 0.55], "min")
    assert decision.verdict == "better" and decision.comparison.seeds_resampled


def test_same_seed_same_interval() -> None:
    pairs = _sweep(np.random.default_rng(5), pairs=5, seeds=3, effect=0.3)
    assert compare(pairs, seed=7) == compare(pairs, seed=7)
    assert compare(pairs, seed=7) != compare(pairs, seed=8)
    with pytest.raises(FrozenInstanceError):
        compare(pairs).low = 0.0  # type: ignore[misc]


def test_two_hundred_pairs_of_five_seeds_take_well_under_a_second() -> None:
    pairs = _sweep(np.random.default_rng(6), pairs=200, seeds=5, effect=0.1)
    compare(pairs[:2])  # warm up
    start = time.perf_counter()
    compare(pairs)
    assert time.perf_counter() - start < 1.0


@dataclass(frozen=True)
class _Interval:
    low: float
    high: float


@pytest.mark.parametrize(
    ("low", "high", "for_min", "for_max"),
    [
        (-2.0, -1.0, "better", "worse"),
        (1.0, 2.0, "worse", "better"),
        (-1.0, 1.0, "undecided", "undecided"),
        (0.0, 1.0, "undecided", "undecided"),  # touching 0 is not beyond it
        (0.0, 0.0, "undecided", "undecided"),
        (math.nan, math.nan, "undecided", "undecided"),
    ],
)
def test_verdict_from_any_interval(low: float, high: float, for_min: str, for_max: str) -> None:
    assert verdict(_Interval(low, high), "min") == for_min
    assert verdict(_Interval(low, high), "max") == for_max


def test_noise_floor_of_a_known_spread() -> None:
    rng = np.random.default_rng(7)
    sd = 0.3
    finals = {f"lr={i}": rng.normal(i, sd, 5) for i in range(200)}
    floor = noise_floor(finals)
    assert floor.df == 200 * 4
    assert floor.pooled_sd == pytest.approx(sd, rel=0.075)  # 3 standard errors at df=800
    assert floor.floor == pytest.approx(stats.t.ppf(0.975, 800) * math.sqrt(2) * floor.pooled_sd)
    assert floor.message is None and floor.by_config["lr=3"].n == 5


def test_noise_floor_is_exceeded_by_seed_noise_five_percent_of_the_time() -> None:
    """Over small sweeps (6 configurations x 3 seeds), two fresh runs of one configuration
    land further apart than the sweep's floor in about 5 % of cases."""
    rng = np.random.default_rng(9)
    exceeded = []
    for _ in range(2000):
        floor = noise_floor({i: rng.normal(i, 0.3, 3) for i in range(6)}).floor
        assert floor is not None
        exceeded.append(abs(rng.normal(0, 0.3) - rng.normal(0, 0.3)) > floor)
    assert np.mean(exceeded) == pytest.approx(0.05, abs=0.015)


def test_noise_floor_pools_only_configurations_with_two_seeds() -> None:
    floor = noise_floor({"a": [1.0, 2.0, 3.0], "b": [4.0, math.nan], "c": [5.0]})
    assert (floor.pooled_sd, floor.df, floor.dropped) == (1.0, 2, 1)
    assert floor.by_config["b"].sd is None and floor.by_config["b"].dropped == 1


def test_noise_floor_unknown_with_one_seed() -> None:
    floor = noise_floor({"a": [1.0], "b": [2.0, math.inf]})
    assert floor.floor is None and floor.pooled_sd is None and floor.df == 0
    assert floor.message is not None
    assert "seeds: 3 in the spec" in floor.message


def test_noise_floor_warns_when_seeds_change_nothing() -> None:
    floor = noise_floor({"a": [0.5, 0.5, 0.5], "b": [0.7, 0.7]})
    assert floor.floor == 0.0
    assert floor.message is not None and "config['seed']" in floor.message


def test_best_configuration_ahead_of_the_rest() -> None:
    finals = {"a": [1.0, 1.1, 0.9], "b": [0.2, 0.25, 0.15], "c": [0.6, 0.62, 0.58]}
    best = best_configuration(finals, "min")
    assert (best.config, best.runner_up, best.distinguishable, best.tied_with) == (
        "b",
        "c",
        True,
        (),
    )
    assert best.mean == pytest.approx(0.2) and best.low < 0.2 < best.high and best.n == 3
    assert "ahead of the runner-up 'c'" in best.message
    assert best_configuration(finals, "max").config == "a"


def test_best_configuration_tied_within_seed_noise() -> None:
    finals = {
        0.1: [0.50, 0.60, 0.40, 0.55],
        0.01: [0.52, 0.62, 0.42, 0.50],
        0.001: [0.55, 0.45, 0.60, 0.50],
        1.0: [5.0, 5.1, 4.9, 5.0],  # clearly worse
        10.0: [math.nan] * 4,  # diverged on every seed
    }
    best = best_configuration(finals, "min")
    assert (best.config, best.runner_up, best.distinguishable) == (0.1, 0.01, False)
    assert best.tied_with == (0.01, 0.001)
    assert best.dropped == 4 and "tied with" in best.message


def test_best_configuration_with_one_seed_or_one_configuration() -> None:
    single = best_configuration({"a": [1.0], "b": [2.0]}, "max")
    assert single.config == "b" and single.tied_with == ("a",) and math.isnan(single.low)
    assert "Fix: run 3 or more seeds" in single.message
    alone = best_configuration({"a": [1.0, 2.0, 3.0]}, "max")
    assert alone.runner_up is None and alone.distinguishable is None


def _gated(rng: np.random.Generator, means: list[float], cap: int = 10) -> tuple[Any, float]:
    """`extend --seeds 1 --where undecided` replayed on normal seeds (sd 1): two each, then
    one more for the best and each undecided one, until decided or the best has `cap`.
    The last Choice, and the seeds run per configuration."""
    finals: dict[Any, list[float]] = {i: list(rng.normal(m, 1.0, 2)) for i, m in enumerate(means)}
    while True:
        choice = choose_best(finals, "max")
        if choice.decided or len(finals[choice.config]) >= cap:
            return choice, sum(len(v) for v in finals.values()) / len(means)
        for config in (choice.config, *choice.undecided):
            finals[config].append(float(rng.normal(means[int(str(config))], 1.0)))


def test_truly_equal_configurations_end_tied_within_the_margin() -> None:
    rng = np.random.default_rng(0)
    runs = [_gated(rng, [0.0] * 8) for _ in range(100)]
    assert np.mean([choice.decided for choice, _ in runs]) >= 0.9
    assert np.mean([seeds for _, seeds in runs]) <= 5.0  # the old gate never stopped
    assert any(choice.within for choice, _ in runs)


def test_a_truly_better_configuration_is_told_apart_and_picked() -> None:
    rng = np.random.default_rng(1)
    runs = [_gated(rng, [3.0] + [0.0] * 7) for _ in range(100)]
    assert all(choice.decided and choice.config == 0 for choice, _ in runs)
    assert np.mean([seeds for _, seeds in runs]) <= 3.0


def test_choose_best_known_answers() -> None:
    finals = {"a": [1.0, 1.1, 0.9], "b": [0.2, 0.25, 0.15], "c": [0.6, 0.62, 0.58]}
    clear = choose_best(finals, "min")
    assert (clear.config, clear.worse, clear.within, clear.decided) == ("b", ("c", "a"), (), True)
    assert not clear.margin_given and clear.seed_sd is not None
    assert clear.margin == pytest.approx(MARGIN_SDS * clear.seed_sd)
    assert "no other beats it by more than the margin" in clear.message
    assert choose_best(finals, "max").config == "a"
    # b's mean is a hair above a's; c is far behind both.
    close = {"a": [0.50, 0.60, 0.40, 0.55], "b": [0.52, 0.62, 0.42, 0.50], "c": [0.0] * 4}
    loose = choose_best(close, "max", margin=10.0)
    assert (loose.config, loose.within, loose.worse, loose.decided) == ("b", ("a",), ("c",), True)
    assert (
        loose.margin_given
        and "margin 10 at 95% confidence: 1 tied with it within the margin, 1 worse"
        in loose.message
    )
    tight = choose_best(close, "max", margin=0.0)  # a can never be shown not to beat b
    assert (tight.undecided, tight.worse, tight.decided) == (("a",), ("c",), False)
    assert "1 could still beat it by more than the margin 0 at 95% confidence" in tight.message
    assert choose_best(close, "max").undecided == ("a",)  # 4 seeds: too few to tie them


def test_choose_best_with_one_seed_diverged_runs_and_a_noisy_configuration() -> None:
    single = choose_best({"a": [1.0], "b": [2.0]}, "max")
    assert single.seed_sd is None and single.undecided == ("a",) and not single.decided
    assert "seed noise unknown" in single.message and "Fix" in single.message
    alone = choose_best({"a": [1.0, 2.0]}, "max")
    assert alone.decided and "only configuration" in alone.message
    finals = {i: [0.90 + 0.01 * i, 0.91 + 0.01 * i, 0.92 + 0.01 * i] for i in range(5)}
    finals[9] = [0.1, 0.9, 0.5]  # diverging now and then: far wider than the rest
    finals[10] = [math.nan] * 3
    choice = choose_best(finals, "max")
    assert choice.dropped == 3 and 10 not in (*choice.worse, *choice.within, *choice.undecided)
    assert choice.seed_sd == pytest.approx(0.01, rel=0.5)  # the median: not widened by 9


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: verdict(_Interval(0, 1), "maximize"), "mode 'maximize'.*Fix: use 'min'"),
        (
            lambda: choose_best({"a": [1.0]}, "max", margin=-0.1),
            r"margin -0.1 is not a number >= 0.*Fix",
        ),
        (lambda: choose_best({"a": [1.0]}, "max", margin=math.nan), "margin nan is not a number"),
        (lambda: choose_best({"a": [1.0]}, "max", margin=math.inf), "margin inf is not a number"),
        (lambda: choose_best({"a": [1.0]}, "max", margin=True), "margin True is not a number"),
        (lambda: untyped_choose_best({"a": [1.0]}, "max", margin="0.1"), "margin '0.1' is not"),
        (lambda: choose_best({"a": [1.0]}, "top"), "mode 'top'"),
        (lambda: decide([([1.0], [2.0])], "lowest"), "mode 'lowest'"),
        (lambda: best_configuration({"a": [1.0]}, "MIN"), "mode 'MIN'"),
        (lambda: compare([([1.0], [2.0])], confidence=95), r"confidence 95 is outside \(0, 1\)"),
        (lambda: compare([([1.0], [2.0])], confidence=1.0), "confidence 1.0"),
        (lambda: compare([([1.0], [2.0])], confidence=math.nan), "confidence nan"),
        (lambda: noise_floor({"a": [1.0]}, confidence=0), "confidence 0"),
        (lambda: compare([([1.0], [2.0])], n_resamples=10), "n_resamples 10.*Fix: use 100"),
        (lambda: compare([]), "pairs is empty.*Fix"),
        (lambda: untyped_compare([([1.0], [2.0], [3.0])]), r"pairs\[0\] is .*Fix"),
        (
            lambda: untyped_compare([([1.0], ["x"])]),
            r"pairs\[0\]\[1\] is \['x'\], not a list of numbers",
        ),
        (lambda: untyped_compare([(1.0, [2.0])]), r"pairs\[0\]\[0\] is 1.0"),
        (lambda: compare([([math.nan], [1.0]), ([2.0], [])]), "none of the 2 pairs.*diverged"),
        (lambda: noise_floor({}), "finals is empty.*Fix"),
        (lambda: untyped_noise_floor({"a": "high"}), r"finals\['a'\] is 'high'"),
        (lambda: best_configuration({"a": [math.nan]}, "min"), "all runs diverged"),
    ],
)
def test_refusals_name_the_argument_value_and_fix(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]
