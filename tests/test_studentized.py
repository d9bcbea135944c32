"""The verdicts' difference test, the studentized permutation test of P(improvement) = 1/2:
exact against full enumeration on small samples, its fast Monte-Carlo path against scipy's, the
refinement that keeps Monte-Carlo floors out of verdicts, and its size under nulls where
P = 1/2 but the spreads differ (where the plain permutation test of P rejects too often), at
0.05 here and at 0.05 / 60 in the slow tier."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from dqn.stats import decisions, studentized
from dqn.stats.studentized import SE_FLOOR, bm_statistic, studentized_permutation_p


def _t(x: np.ndarray, y: np.ndarray) -> float:
    """|P - 1/2| / se from dqn.stats.decisions.brunner_munzel (an independent formula)."""
    p, se, _ = decisions.brunner_munzel(x, y)
    return abs(p - 0.5) / max(se, SE_FLOOR)


@pytest.mark.parametrize("x, y", [([1.0, 5.0, 2.0, 9.0], [3.0, 4.0, 4.0, 0.5]),
                                  ([2.0, 2.0, 7.0], [1.0, 2.0, 3.0, 8.0, 8.0]),
                                  ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])])
def test_exact_against_full_enumeration(x, y) -> None:
    pooled = np.array(x + y)
    n = len(x)
    observed = _t(np.array(x), np.array(y))
    null = []
    for idx in itertools.combinations(range(pooled.size), n):
        mask = np.zeros(pooled.size, bool)
        mask[list(idx)] = True
        null.append(_t(pooled[mask], pooled[~mask]))
    exact = np.mean(np.array(null) >= observed - 1e-9)
    assert studentized_permutation_p(x, y) == pytest.approx(exact)
    assert bm_statistic(np.array(x), np.array(y)) == pytest.approx(observed)


def test_separated_samples_get_the_smallest_p() -> None:
    # 3 against 3, separated: 2 of the C(6, 3) = 20 relabellings are as extreme
    assert studentized_permutation_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert math.isnan(studentized_permutation_p([1.0], [2.0, 3.0]))


def _capped(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """P(improvement) = 1/2 exactly: half the variant's seeds at the cap (500), half
    collapsed (9-12), against a baseline spread over 300-499."""
    x = np.where(rng.random(20) < 0.5, 500.0, rng.uniform(9, 12, 20))
    return x, rng.uniform(300, 499, 20)


def _spread(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """P = 1/2 exactly: normal with SD 3 against SD 1, both centred at 0."""
    return rng.normal(0, 3, 20), rng.normal(0, 1, 20)


@pytest.mark.parametrize("draw", [_capped, _spread], ids=["capped", "spread"])
def test_size_under_heteroscedastic_nulls(draw) -> None:
    """At 5%, over 400 data sets: the studentized test within Monte-Carlo error of 5%
    (3 standard errors: <= 8.3%). Measured: 5.3% (capped) and 5.0% (spread) over 300 sets,
    where the plain permutation test rejected 17% and 7%."""
    rng = np.random.default_rng(0)
    reps, alpha = 400, 0.05
    data = [draw(rng) for _ in range(reps)]
    rate = np.mean([studentized_permutation_p(x, y, n_resamples=499) <= alpha
                    for x, y in data])
    assert rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / reps)
    if draw is _capped:  # the case is a real trap: the plain test's size is far above 5%
        plain = np.mean([decisions.permutation_p(x, y, n_resamples=499) <= alpha
                         for x, y in data])
        assert plain > alpha + 3 * math.sqrt(alpha * (1 - alpha) / reps)


def test_a_clear_difference_is_detected() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(1.5, 1, 20), rng.normal(0, 1, 20)
    assert studentized_permutation_p(x, y, n_resamples=1999) < 0.01


def test_monte_carlo_path_agrees_with_scipy() -> None:
    """10 vs 10 (184,756 relabellings: sampled). The rank-based statistic equals the
    pairwise one on every relabelling, and the p-value agrees with scipy.stats.permutation_test
    of bm_statistic within Monte-Carlo error (4 standard errors at 19,999 resamples each)."""
    rng = np.random.default_rng(2)
    x, y = np.round(rng.normal(0.8, 1, 10), 1), np.round(rng.normal(0, 2, 10), 1)  # ties
    pooled = np.concatenate([x, y])
    ranks = stats.rankdata(pooled)
    order = np.array([rng.permutation(20) for _ in range(50)])  # (50, 20)
    assert studentized._bm_from_ranks(ranks[order], 10) == pytest.approx(
        bm_statistic(pooled[order][:, :10], pooled[order][:, 10:]))
    ours = studentized_permutation_p(x, y)
    theirs = stats.permutation_test((x, y), bm_statistic, permutation_type="independent",
                                    vectorized=True, n_resamples=19_999,
                                    alternative="greater", rng=5).pvalue
    assert 0.002 < ours < 0.5  # not refined: the comparison is of two 19,999 estimates
    assert abs(ours - theirs) < 4 * math.sqrt(2 * ours * (1 - ours) / 20_000)


def test_small_p_values_are_refined_below_the_floor() -> None:
    """Separated 20 vs 20: a first estimate at the 19,999 floor (5e-5, about the first step of
    a 708-test family) is estimated again with 999,999 relabellings, where the two extreme
    relabellings are still rarely drawn: p = 1e-6, 70 x below 0.05 / 354."""
    x, y = np.arange(20.0) + 100, np.arange(20.0)
    assert studentized_permutation_p(x, y, refined=0) == pytest.approx(1 / 20_000)
    p = studentized_permutation_p(x, y)
    assert p == pytest.approx(1 / 1_000_000)
    assert p == studentized.min_attainable_p(20, 20)
    assert 70 * p < 0.05 / 354
    # a p-value far from any level is not re-estimated: same value with or without
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 20), rng.normal(0, 1, 20)
    assert studentized_permutation_p(a, b) == studentized_permutation_p(a, b, refined=0)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="a known miss: measured 29 (capped) and 20 (spread) "
                   "rejections of 12,000 at 0.05 / 60, 2.9x and 2.0x the level: at 20 seeds "
                   "the studentized test is only asymptotically exact in the far tail")
@pytest.mark.parametrize("draw", [_capped, _spread], ids=["capped", "spread"])
def test_size_at_a_bonferroni_level(draw) -> None:
    """At 0.05 / 60 over 12,000 data sets (expected 10 rejections at the nominal rate):
    at most the level plus 3 Poisson standard errors. About 14 minutes on one core. Strict
    xfail: it records the miss, and says so if a better test passes it."""
    rng = np.random.default_rng(7)
    reps, alpha = 12_000, 0.05 / 60
    hits = sum(studentized_permutation_p(*draw(rng), refined=0) <= alpha for _ in range(reps))
    expected = alpha * reps
    assert hits <= expected + 3 * math.sqrt(expected), hits
