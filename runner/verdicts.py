"""Is a difference real, or seed noise? Verdicts on sweeps that run each configuration
with several seeds.

A configuration is one setting of the hyperparameters without the seed; running it with N
seeds shows how much its final metric moves by chance alone. This module turns those
finals into five answers that the CLI, the dashboard and the benchmarks share:

- `noise_floor`: how far two runs of the same configuration land apart by seed alone. A
  difference between two single runs smaller than the floor says nothing.
- `compare`: does setting a factor to B instead of A (batch norm on vs off, say) change the
  final metric? Configurations are paired (same hyperparameters but the factor), and a
  two-level bootstrap resamples both the pairs and the seeds within each pair, so the
  interval carries both sources of doubt: which configurations were run and which seeds.
  Few pairs or few seeds widen it, so that 95 % still means about 95 %.
- `verdict` / `decide`: "better", "worse" or "undecided" for B against A, from whether the
  whole interval lies on one side of zero.
- `best_configuration`: the configuration with the best mean over seeds, and the others
  it cannot be told apart from, instead of crowning whichever got the luckiest seed.
- `choose_best`: whether the best by mean is settled as the one to pick: every other
  configuration is either worse beyond seed noise or cannot beat it by more than a margin
  (a difference not worth telling apart). The ones left are what more seeds should go to
  (`sweepscope extend --where undecided`).

Diverged runs: a NaN or infinite final (a trial whose loss blew up) is not a number to
average, so it is left out and counted (`dropped...` fields), never silently: a side that
diverges more often should be shown as such beside the verdict. A configuration or side
with no finite final left takes no part; when nothing is left, the call raises.

Only numpy (and scipy's t quantile) is needed: no pandas, Streamlit or Ray.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy.special import chdtri, stdtrit

__all__ = [
    "MIN_SEEDS",
    "MORE_SEEDS",
    "MARGIN_SDS",
    "Best",
    "Bounds",
    "Choice",
    "Comparison",
    "Decision",
    "NoiseFloor",
    "Spread",
    "Verdict",
    "best_configuration",
    "choose_best",
    "compare",
    "decide",
    "mean_interval",
    "noise_floor",
    "pair_verdict",
    "verdict",
]

Verdict = Literal["better", "worse", "undecided"]
Seeds = Sequence[float] | NDArray[np.floating[Any]]
Pair = tuple[Seeds, Seeds]
Config = TypeVar("Config", bound=Hashable)  # what names a configuration: a dict key

MORE_SEEDS = "run 2 or more seeds per configuration: seeds: 3 in the spec"
MIN_SEEDS = 3  # per side, to judge one pair (or one configuration) by its seeds alone
MARGIN_SDS = 0.75  # choose_best's default margin, in typical seed sds
_PRIOR_DF = 4  # what the typical seed spread counts for in each configuration's own, in seeds
_CHUNK = 1_000_000  # seed draws made at once: keeps memory near 25 MB whatever the size


class Bounds(Protocol):
    """Anything with an interval: a Comparison, or the dashboard's compare.Interval."""

    @property
    def low(self) -> float: ...

    @property
    def high(self) -> float: ...


@dataclass(frozen=True)
class Spread:
    """One configuration's finals over its seeds: n finite ones, their mean and sample sd
    (None below 2 seeds), and how many non-finite (diverged) finals were left out."""

    n: int
    mean: float | None
    sd: float | None
    dropped: int


@dataclass(frozen=True)
class NoiseFloor:
    """Seed-to-seed spread per configuration and pooled over configurations.

    `pooled_sd` pools configurations with 2 or more seeds and has `df` degrees of freedom.
    `floor` is the difference between two single-seed runs of one configuration that seed
    noise alone exceeds only (1 - confidence) of the time; None when no configuration has 2
    seeds, and then `message` says what to run. `message` also warns when seeds change
    nothing at all.
    """

    by_config: Mapping[Hashable, Spread]
    pooled_sd: float | None
    df: int
    floor: float | None
    confidence: float
    dropped: int
    message: str | None


@dataclass(frozen=True)
class Comparison:
    """B - A, averaged over pairs, with a bootstrap interval (see `compare`).

    `low` and `high` are NaN for one pair with fewer than MIN_SEEDS finite seeds on a side:
    too few to judge it alone. `seeds_resampled` is False when no seed was redrawn (every
    side has one seed, so only the pairs were resampled, or the bounds are NaN).
    `dropped_a` / `dropped_b` count non-finite finals left out per side, `dropped_pairs`
    the pairs left out because a side had no finite final.
    """

    estimate: float
    low: float
    high: float
    n_pairs: int
    confidence: float
    seeds_resampled: bool
    dropped_a: int = 0
    dropped_b: int = 0
    dropped_pairs: int = 0


@dataclass(frozen=True)
class Decision:
    """A verdict for B against A, the comparison behind it, and one sentence of why."""

    verdict: Verdict
    reason: str
    comparison: Comparison


@dataclass(frozen=True)
class Best:
    """The configuration with the best mean over its seeds.

    `low` / `high` bound that mean (bootstrap over its seeds; NaN below MIN_SEEDS).
    `tied_with` lists, best mean first, the configurations whose comparison with the best
    is undecided; `distinguishable` says whether the runner-up is not among them (None
    when there is no runner-up). `message` says it in words.
    """

    config: Hashable
    mean: float
    low: float
    high: float
    n: int
    confidence: float
    runner_up: Hashable | None
    distinguishable: bool | None
    tied_with: tuple[Hashable, ...]
    dropped: int
    message: str


@dataclass(frozen=True)
class Choice:
    """Whether the best configuration by mean is settled as the pick (see `choose_best`).

    Every other configuration lands in one of three groups, best mean first: `worse`, told
    apart from the best; `within`, that cannot beat the best by more than `margin`;
    `undecided`, neither yet (more seeds settle it). `decided` when none is undecided.
    `seed_sd` is the typical seed-to-seed sd over configurations (None when no
    configuration has 2 finite finals: then nothing is decided), `margin` the one used,
    `margin_given` whether it was passed rather than MARGIN_SDS x seed_sd.
    """

    config: Hashable
    mean: float
    n: int
    margin: float | None
    margin_given: bool
    seed_sd: float | None
    worse: tuple[Hashable, ...]
    within: tuple[Hashable, ...]
    undecided: tuple[Hashable, ...]
    confidence: float
    dropped: int
    message: str

    @property
    def decided(self) -> bool:
        return not self.undecided


def noise_floor(finals: Mapping[Config, Seeds], *, confidence: float = 0.95) -> NoiseFloor:
    """How far seed noise alone moves the final metric.

    Args:
        finals: final metric values by configuration, one per seed.
        confidence: the share of seed-only differences the floor should cover.

    Returns:
        A NoiseFloor. The floor is t(df) * sqrt(2) * pooled sd: the two-sided
        `confidence` bound on |run1 - run2| for two seeds of one configuration, assuming
        roughly normal seed noise with the same spread in every configuration.

    Raises:
        ValueError: `finals` is empty or holds something other than numbers, or
            `confidence` is outside (0, 1).
    """
    _check_confidence(confidence)
    if not finals:
        raise ValueError(
            "finals is empty: no configuration to measure. "
            "Fix: pass final values by configuration, e.g. {config: [seed0, seed1]}."
        )
    by_config: dict[Hashable, Spread] = {}
    squares, df = 0.0, 0
    for config, values in finals.items():
        data, dropped = _finite(values, f"finals[{config!r}]")
        n = len(data)
        sd = float(data.std(ddof=1)) if n >= 2 else None
        by_config[config] = Spread(n, float(data.mean()) if n else None, sd, dropped)
        if sd is not None:
            squares += (n - 1) * sd**2
            df += n - 1
    dropped_all = sum(s.dropped for s in by_config.values())
    if df == 0:
        unknown = f"seed noise unknown: no configuration has 2 finite finals. Fix: {MORE_SEEDS}."
        return NoiseFloor(by_config, None, 0, None, confidence, dropped_all, unknown)
    pooled = math.sqrt(squares / df)
    floor = _t_quantile(df, (1 + confidence) / 2) * math.sqrt(2) * pooled
    message: str | None = None
    if pooled == 0.0:
        message = (
            "every seed of a configuration gave the same final: the seed changes nothing. "
            "Fix: check that the trainable seeds its model and data from config['seed']."
        )
    return NoiseFloor(by_config, pooled, df, floor, confidence, dropped_all, message)


def compare(
    pairs: Sequence[Pair],
    *,
    confidence: float = 0.95,
    n_resamples: int = 4000,
    seed: int = 0,
) -> Comparison:
    """The mean over pairs of mean(B seeds) - mean(A seeds), with a two-level bootstrap.

    Each resample draws pairs with replacement, then within each drawn pair draws A's and
    B's seeds with replacement (independently), and averages B - A over the pairs. The
    interval is the percentile one, widened for few pairs to Student's t width
    (Hesterberg's expanded percentile), since a plain one over 3 to 10 pairs covers well
    under its nominal share. It errs wide (about 98-99 % for 95 %) when the effect is the
    same in every pair, and stays near nominal when the effect differs between pairs.

    One pair is judged by its seeds alone: MIN_SEEDS or more per side, each side's spread
    corrected for the few seeds and the tails read from Welch's t; fewer give NaN bounds.

    Args:
        pairs: (A's finals over seeds, B's finals over seeds) per configuration pair; the
            sides may have different numbers of seeds.
        confidence: the interval's coverage, in (0, 1).
        n_resamples: bootstrap resamples, at least 100.
        seed: seeds the random draws, so a page shows the same interval on every rerun.

    Returns:
        A Comparison of B - A.

    Raises:
        ValueError: no pairs, a pair that is not two lists of numbers, no pair with a
            finite final on both sides, or a bad confidence or n_resamples.
    """
    _check_confidence(confidence)
    _check_resamples(n_resamples)
    if len(pairs) == 0:
        raise ValueError(
            "pairs is empty: nothing to compare. Fix: pass (A seeds, B seeds) for each "
            "configuration run at both levels of the factor."
        )
    sides_a, sides_b = [], []
    dropped_a = dropped_b = dropped_pairs = 0
    for i, pair in enumerate(pairs):
        if isinstance(pair, str | bytes) or len(pair) != 2:
            raise ValueError(
                f"pairs[{i}] is {pair!r}, not (A seeds, B seeds). "
                "Fix: give each pair as two lists of finals, e.g. ([0.31, 0.30], [0.25, 0.27])."
            )
        a, lost_a = _finite(pair[0], f"pairs[{i}][0]")
        b, lost_b = _finite(pair[1], f"pairs[{i}][1]")
        dropped_a, dropped_b = dropped_a + lost_a, dropped_b + lost_b
        if len(a) and len(b):
            sides_a.append(a)
            sides_b.append(b)
        else:
            dropped_pairs += 1
    if not sides_a:
        raise ValueError(
            f"none of the {len(pairs)} pairs has a finite final on both sides (all runs "
            "diverged or are missing). Fix: compare runs that finished with a number."
        )
    n_pairs = len(sides_a)
    estimate = float(np.mean([b.mean() - a.mean() for a, b in zip(sides_a, sides_b, strict=True)]))
    counts = dict(dropped_a=dropped_a, dropped_b=dropped_b, dropped_pairs=dropped_pairs)
    rng = np.random.default_rng(seed)
    if n_pairs == 1:
        low, high = _seeds_interval(sides_a[0], sides_b[0], confidence, n_resamples, rng)
        resampled = not math.isnan(low)
        return Comparison(estimate, low, high, 1, confidence, resampled, **counts)

    a_values, a_counts = _pad(sides_a)
    b_values, b_counts = _pad(sides_b)
    width = max(a_values.shape[1], b_values.shape[1])
    chunk = max(1, _CHUNK // (n_pairs * width))
    stats = []
    for start in range(0, n_resamples, chunk):
        picks = rng.integers(0, n_pairs, size=(min(chunk, n_resamples - start), n_pairs))
        mean_a = _resampled_means(a_values, a_counts, picks, rng)
        mean_b = _resampled_means(b_values, b_counts, picks, rng)
        stats.append((mean_b - mean_a).mean(axis=1))
    # Hesterberg's expanded percentile: a plain percentile interval over n pairs is as
    # narrow as mean +- z * sd * sqrt((n-1)/n); widen it to sqrt(n/(n-1)) * t(n-1).
    t = _t_quantile(n_pairs - 1, (1 - confidence) / 2) * math.sqrt(n_pairs / (n_pairs - 1))
    low, high = _tail_quantiles(np.concatenate(stats), _normal_cdf(t))
    seeds_resampled = bool(a_counts.max() > 1 or b_counts.max() > 1)
    return Comparison(estimate, low, high, n_pairs, confidence, seeds_resampled, **counts)


def verdict(interval: Bounds, mode: str) -> Verdict:
    """Whether B beats A, given an interval of B - A.

    Args:
        interval: anything with `low` and `high` (a Comparison, compare.Interval).
        mode: "min" when lower is better (loss), "max" when higher is (accuracy).

    Returns:
        "better" when the whole interval is on B's good side of 0, "worse" when it is all
        on the bad side, else (or with NaN bounds) "undecided".

    Raises:
        ValueError: mode is neither "min" nor "max".
    """
    _check_mode(mode)
    return _judge(interval.low, interval.high, mode)


def decide(
    pairs: Sequence[Pair],
    mode: str,
    *,
    confidence: float = 0.95,
    n_resamples: int = 4000,
    seed: int = 0,
) -> Decision:
    """`compare` the pairs and give the verdict for B against A with a reason.

    Args:
        pairs, confidence, n_resamples, seed: as for `compare`.
        mode: "min" or "max", as for `verdict`.

    Returns:
        A Decision; one pair with fewer than MIN_SEEDS seeds on a side is always
        "undecided": so few runs cannot tell an effect from seed noise.

    Raises:
        ValueError: as `compare` and `verdict` do.
    """
    _check_mode(mode)
    result = compare(pairs, confidence=confidence, n_resamples=n_resamples, seed=seed)
    if math.isnan(result.low):
        return Decision(
            "undecided",
            f"one pair needs {MIN_SEEDS} or more finite seeds per side to tell an effect "
            f"from seed noise. Fix: run {MIN_SEEDS} or more seeds per configuration "
            f"(seeds: {MIN_SEEDS} in the spec).",
            result,
        )
    said = verdict(result, mode)
    span = f"{confidence:.0%} interval of B - A [{result.low:.4g}, {result.high:.4g}]"
    if said == "undecided":
        reason = f"the {span} includes 0: the difference is within noise"
    else:
        direction = "lower" if (said == "better") == (mode == "min") else "higher"
        reason = f"B is {direction} than A ({said}): the {span} excludes 0"
    if not result.seeds_resampled:
        reason += "; one seed per side, so only the pairs were resampled"
    return Decision(said, reason, result)


def pair_verdict(
    a: Seeds,
    b: Seeds,
    mode: str,
    *,
    confidence: float = 0.95,
    n_resamples: int = 4000,
    seed: int = 0,
) -> Decision:
    """The verdict for one configuration pair: B's seeds against A's, bootstrapped over
    seeds only. Args, Returns and Raises as for `decide` with pairs=[(a, b)]."""
    return decide([(a, b)], mode, confidence=confidence, n_resamples=n_resamples, seed=seed)


def best_configuration(
    finals: Mapping[Config, Seeds],
    mode: str,
    *,
    confidence: float = 0.95,
    n_resamples: int = 4000,
    seed: int = 0,
) -> Best:
    """The configuration with the best mean over seeds, and those tied with it.

    Ranking by the mean over seeds (not by the single best run) and naming every
    configuration the best cannot be told apart from keeps a lucky seed from crowning a
    winner. The best's own mean is still a little optimistic when many are tied (it was
    picked for being high): confirm it with fresh seeds.

    Args:
        finals: final metric values by configuration, one per seed.
        mode: "min" when lower is better, "max" when higher is.
        confidence, n_resamples, seed: as for `compare`.

    Returns:
        A Best. Configurations compare by their seeds alone, so below MIN_SEEDS seeds
        every one is tied with the best.

    Raises:
        ValueError: bad mode or confidence, `finals` empty, or no configuration with a
            finite final.
    """
    _check_mode(mode)
    _check_confidence(confidence)
    _check_resamples(n_resamples)
    cleaned, dropped = _clean_finals(finals)
    sign = 1.0 if mode == "max" else -1.0
    ranked = sorted(cleaned, key=lambda c: -sign * float(cleaned[c].mean()))
    best = ranked[0]
    draws = (confidence, n_resamples, np.random.default_rng(seed))
    low, high = _seeds_interval(None, cleaned[best], *draws)
    tied = tuple(
        other
        for other in ranked[1:]
        if _judge(*_seeds_interval(cleaned[other], cleaned[best], *draws), mode) != "better"
    )
    runner_up = ranked[1] if len(ranked) > 1 else None
    distinguishable = None if runner_up is None else runner_up not in tied
    if runner_up is None:
        message = f"{best!r} is the only configuration with a finite final"
    elif distinguishable:
        message = f"{best!r} is best, ahead of the runner-up {runner_up!r} beyond seed noise"
    else:
        names = ", ".join(repr(c) for c in tied[:5]) + (" ..." if len(tied) > 5 else "")
        message = f"{best!r} has the best mean but is tied with {names} (within seed noise)"
    if len(cleaned[best]) < MIN_SEEDS:
        message += (
            f"; {len(cleaned[best])} seed(s) cannot separate it from the others. "
            f"Fix: run {MIN_SEEDS} or more seeds per configuration"
        )
    return Best(
        best,
        float(cleaned[best].mean()),
        low,
        high,
        len(cleaned[best]),
        confidence,
        runner_up,
        distinguishable,
        tied,
        dropped,
        message,
    )


def choose_best(
    finals: Mapping[Config, Seeds],
    mode: str,
    *,
    margin: float | None = None,
    confidence: float = 0.95,
) -> Choice:
    """Is the configuration with the best mean settled as the one to pick?

    Each other configuration is compared with the best by the difference of their means:
    `worse` when the two-sided `confidence` interval of that difference excludes 0 (as
    `verdict` says), `within` when the one-sided `confidence` bound says it beats the
    best by at most `margin`, else `undecided`. Once none is undecided, picking the best
    loses at most `margin` against any other: the rest are tied with it within the
    margin, or worse. Proving "no difference beyond the margin" this one-sided way is
    what lets truly tied configurations stop needing seeds; `margin=0` asks to tell
    every one apart.

    Seed noise: few seeds measure a configuration's spread badly (two give it one degree
    of freedom), so each one's variance is its own pooled with the typical one over the
    sweep's configurations (the median, robust to a few diverging ones), the typical one
    counting as 4 seeds; a configuration with many seeds is judged by its own spread.
    The intervals are Welch's t on those variances.

    Args:
        finals: final metric values by configuration, one per seed.
        mode: "min" when lower is better, "max" when higher is.
        margin: the largest difference in the metric not worth telling apart, 0 or more;
            None for MARGIN_SDS x the typical seed sd.
        confidence: the intervals' coverage, in (0, 1).

    Returns:
        A Choice; every other configuration is undecided while no configuration has 2
        finite finals (seed noise unknown).

    Raises:
        ValueError: bad mode, confidence or margin, `finals` empty, or no configuration
            with a finite final.
    """
    _check_mode(mode)
    _check_confidence(confidence)
    _check_margin(margin)
    cleaned, dropped = _clean_finals(finals)
    sign = 1.0 if mode == "max" else -1.0
    ranked = sorted(cleaned, key=lambda c: -sign * float(cleaned[c].mean()))
    best = ranked[0]
    typical = _typical_variance(list(cleaned.values()))
    seed_sd = None if typical is None else math.sqrt(typical)
    used = margin if margin is not None else None if seed_sd is None else MARGIN_SDS * seed_sd
    groups: dict[str, list[Hashable]] = {"worse": [], "within": [], "undecided": []}
    for other in ranked[1:]:
        said = "undecided"
        if typical is not None and used is not None:
            said = _against_best(cleaned[best], cleaned[other], sign, typical, used, confidence)
        groups[said].append(other)
    choice = Choice(
        best,
        float(cleaned[best].mean()),
        len(cleaned[best]),
        used,
        margin is not None,
        seed_sd,
        tuple(groups["worse"]),
        tuple(groups["within"]),
        tuple(groups["undecided"]),
        confidence,
        dropped,
        "",
    )
    return replace(choice, message=_choice_message(choice))


def _against_best(
    best: NDArray[np.float64],
    other: NDArray[np.float64],
    sign: float,
    typical: float,
    margin: float,
    confidence: float,
) -> str:
    """ "worse", "within" or "undecided" for `other` against `best` (see choose_best)."""
    gap = sign * float(best.mean() - other.mean())  # >= 0: how far other is behind
    (var_b, df_b), (var_o, df_o) = _moderated(best, typical), _moderated(other, typical)
    share_b, share_o = var_b / len(best), var_o / len(other)
    se = math.sqrt(share_b + share_o)
    if se == 0.0:
        return "worse" if gap > 0 else "within"
    df = (share_b + share_o) ** 2 / (share_b**2 / df_b + share_o**2 / df_o)
    alpha = 1 - confidence
    if gap + _t_quantile(df, alpha / 2) * se > 0:  # the t quantile is negative
        return "worse"
    if gap + _t_quantile(df, alpha) * se >= -margin:
        return "within"
    return "undecided"


def _moderated(values: NDArray[np.float64], typical: float) -> tuple[float, float]:
    """A configuration's seed variance pooled with the typical one (worth _PRIOR_DF
    seeds), and its degrees of freedom."""
    own_df = len(values) - 1
    own = float(values.var(ddof=1)) if own_df else 0.0
    return (_PRIOR_DF * typical + own_df * own) / (_PRIOR_DF + own_df), _PRIOR_DF + own_df


def _typical_variance(groups: Sequence[NDArray[np.float64]]) -> float | None:
    """The median over configurations with 2 or more seeds of their seed variance, each
    scaled to be median-unbiased (a variance over d degrees of freedom has the median
    sigma^2 x chi2_d median / d); None when no configuration has 2 seeds."""
    scaled = [
        float(g.var(ddof=1)) * (len(g) - 1) / float(chdtri(len(g) - 1, 0.5))
        for g in groups
        if len(g) >= 2
    ]
    return float(np.median(scaled)) if scaled else None


def _choice_message(choice: Choice) -> str:
    best = f"{choice.config!r} has the best mean"
    others = len(choice.worse) + len(choice.within) + len(choice.undecided)
    if others == 0:
        return f"{choice.config!r} is the only configuration with a finite final"
    if choice.seed_sd is None or choice.margin is None:
        return (
            f"{best}; seed noise unknown: no configuration has 2 finite finals, so none "
            f"can be told apart. Fix: {MORE_SEEDS}"
        )
    how = "" if choice.margin_given else f" ({MARGIN_SDS:g} x the typical seed sd)"
    margin = f"the margin {choice.margin:.3g}{how} at {choice.confidence:.0%} confidence"
    if choice.decided:
        return (
            f"{best}, and no other beats it by more than {margin}: {len(choice.within)} "
            f"tied with it within the margin, {len(choice.worse)} worse beyond seed noise"
        )
    names = ", ".join(repr(c) for c in choice.undecided[:5])
    names += " ..." if len(choice.undecided) > 5 else ""
    return f"{best}, but {len(choice.undecided)} could still beat it by more than {margin}: {names}"


def mean_interval(
    values: Seeds, *, confidence: float = 0.95, n_resamples: int = 4000, seed: int = 0
) -> tuple[float, float, float, int]:
    """One configuration's mean over its seeds, with an interval over its seeds.

    Returns:
        (mean, low, high, n): n finite values (diverged runs are left out), NaN bounds
        below MIN_SEEDS seeds, a NaN mean with none.

    Raises:
        ValueError: bad confidence or n_resamples, or a value that is not a number.
    """
    _check_confidence(confidence)
    _check_resamples(n_resamples)
    data, _ = _finite(values, "values")
    if not len(data):
        return math.nan, math.nan, math.nan, 0
    low, high = _seeds_interval(None, data, confidence, n_resamples, np.random.default_rng(seed))
    return float(data.mean()), low, high, len(data)


def _seeds_interval(
    a: NDArray[np.float64] | None,
    b: NDArray[np.float64],
    confidence: float,
    n_resamples: int,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """An interval for mean(b) - mean(a) (or mean(b) alone) over seeds only; NaN bounds
    below MIN_SEEDS seeds on a side.

    A plain bootstrap of 3 to 5 seeds covers 80-90 % where it claims 95 %: it sees the
    spread as sd * sqrt((n-1)/n) and normal tails where Student's are due. So each side's
    seeds are spread about their mean by sqrt(n/(n-1)) before redrawing, and the tails
    read at the probability where Welch's t, not z, puts them."""
    sides = [b] if a is None else [a, b]
    if min(len(side) for side in sides) < MIN_SEEDS:
        return math.nan, math.nan
    diffs = np.zeros(n_resamples)
    for sign, side in zip((1.0, -1.0), (b, a), strict=True):
        if side is None:
            continue
        n = len(side)
        spread = side.mean() + (side - side.mean()) * math.sqrt(n / (n - 1))
        diffs += sign * spread[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)
    shares = [side.var(ddof=1) / len(side) for side in sides]
    alpha = 1 - confidence
    if sum(shares) == 0.0:
        return _tail_quantiles(diffs, alpha / 2)
    df = sum(shares) ** 2 / sum(v**2 / (len(s) - 1) for v, s in zip(shares, sides, strict=True))
    return _tail_quantiles(diffs, _normal_cdf(_t_quantile(df, alpha / 2)))


def _tail_quantiles(stats: NDArray[np.float64], tail: float) -> tuple[float, float]:
    """The `tail` and 1 - `tail` quantiles of bootstrap statistics."""
    low, high = np.quantile(stats, [tail, 1 - tail])
    return float(low), float(high)


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def _resampled_means(
    values: NDArray[np.float64],
    counts: NDArray[np.intp],
    picks: NDArray[np.int64],
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """For each drawn pair (picks: resamples x pairs), the mean of its seeds redrawn with
    replacement. values: pairs x width, padded past each row's count."""
    n = counts[picks]  # resamples x pairs
    width = values.shape[1]
    if width == 1:
        single: NDArray[np.float64] = values[picks, 0]
        return single
    draws = (rng.random((*picks.shape, width)) * n[..., None]).astype(np.intp)  # in [0, n)
    taken = values[picks[..., None], draws]
    used = np.arange(width) < n[..., None]  # the first n draws of a row make its resample
    means: NDArray[np.float64] = np.where(used, taken, 0.0).sum(axis=-1) / n
    return means


def _pad(groups: list[NDArray[np.float64]]) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Ragged seed lists as one zero-padded array and each row's count."""
    counts = np.array([len(g) for g in groups], dtype=np.intp)
    out = np.zeros((len(groups), int(counts.max())))
    for row, group in enumerate(groups):
        out[row, : len(group)] = group
    return out, counts


def _clean_finals(
    finals: Mapping[Config, Seeds],
) -> tuple[dict[Hashable, NDArray[np.float64]], int]:
    """Each configuration's finite finals (those with none left out), and how many
    non-finite ones were dropped; raises when no configuration has a finite final."""
    cleaned: dict[Hashable, NDArray[np.float64]] = {}
    dropped = 0
    for config, values in finals.items():
        data, lost = _finite(values, f"finals[{config!r}]")
        dropped += lost
        if len(data):
            cleaned[config] = data
    if not cleaned:
        raise ValueError(
            "finals has no configuration with a finite final"
            + (" (all runs diverged)" if dropped else "")
            + ". Fix: pass final values by configuration, e.g. {config: [seed0, seed1]}."
        )
    return cleaned, dropped


def _finite(values: Seeds, name: str) -> tuple[NDArray[np.float64], int]:
    """`values` as a float array without its NaN/inf entries, and how many were left out."""
    try:
        data = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        data = None
    if data is None or data.ndim != 1:
        raise ValueError(
            f"{name} is {values!r}, not a list of numbers. "
            "Fix: pass the final metric values over seeds, e.g. [0.31, 0.29, 0.30]."
        )
    keep = np.isfinite(data)
    finite: NDArray[np.float64] = data[keep]
    return finite, int((~keep).sum())


def _t_quantile(df: float, p: float) -> float:
    """Student's t quantile with `df` degrees of freedom."""
    return float(stdtrit(df, p))


def _judge(low: float, high: float, mode: str) -> Verdict:
    if mode == "min":
        low, high = -high, -low  # now B is better when the interval is above 0
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "undecided"


def _check_mode(mode: str) -> None:
    if mode not in ("min", "max"):
        raise ValueError(
            f"mode {mode!r} is neither 'min' nor 'max'. "
            "Fix: use 'min' when lower is better (loss), 'max' when higher is (accuracy)."
        )


def _check_confidence(confidence: float) -> None:
    if isinstance(confidence, bool) or not (
        isinstance(confidence, int | float) and 0.0 < confidence < 1.0
    ):
        raise ValueError(f"confidence {confidence!r} is outside (0, 1). Fix: use e.g. 0.95.")


def _check_margin(margin: float | None) -> None:
    if margin is None:
        return
    if isinstance(margin, bool) or not (
        isinstance(margin, int | float) and math.isfinite(margin) and margin >= 0
    ):
        raise ValueError(
            f"margin {margin!r} is not a number >= 0. Fix: give the largest difference in "
            "the metric not worth telling apart (e.g. 0.005 for accuracy), 0 to tell every "
            f"configuration apart, or None for {MARGIN_SDS:g} x the typical seed sd."
        )


def _check_resamples(n_resamples: int) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 100:
        raise ValueError(
            f"n_resamples {n_resamples!r} is too few for a bootstrap interval. "
            "Fix: use 100 or more, e.g. 4000."
        )
