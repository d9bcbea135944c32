"""The verdicts' equivalence tests (dqn.stats.equivalence): the logit Brunner-Munzel TOST of
|P(improvement) - 1/2| < margin by hand and its size at the margin under unequal spreads, and
the exact cap-rate test: its p-values by hand, and its size at the margin computed exactly
(every outcome's binomial probability) with the baseline at the cap 100%, 95% and 90% of the
time, at 0.05 and at 0.05 / 60; the interval of P(improvement) the tests agree with: by hand,
its duality with the TOST, and its coverage with ties at the cap, where the percentile
bootstrap it replaced under-covers."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from scipy import stats

from dqn.stats.equivalence import (
    MARGIN,
    brunner_munzel,
    cap_rate_equivalence_p,
    cap_rate_margin,
    capped_equivalence_p,
    equivalence_p,
    prob_improvement_interval,
)
from dqn.stats.estimators import prob_improvement_ci


def test_equivalence_p_by_hand() -> None:
    # x = (1, 3), y = (2, 4): placements of x among y (0, 1) / 2, of y among x (1, 2) / 2.
    # P = 0.25; var(0, 0.5) = var(0.5, 1) = 0.125, so se^2 = 0.125/2 + 0.125/2 = 0.125 and
    # df = 2. On the logit scale theta = log(1/3), se_theta = se / (0.25 x 0.75); TOST at
    # margin 0.15 against log(0.35 / 0.65) and log(0.65 / 0.35), above the floor 0.7^2 = 0.49.
    se = math.sqrt(0.125)
    theta, se_theta = math.log(0.25 / 0.75), se / (0.25 * 0.75)
    want = max(stats.t.sf((theta - math.log(0.35 / 0.65)) / se_theta, 2),
               stats.t.sf((math.log(0.65 / 0.35) - theta) / se_theta, 2))
    assert brunner_munzel([1, 3], [2, 4]) == pytest.approx((0.25, se, 2.0))
    assert equivalence_p([1, 3], [2, 4]) == pytest.approx(want)
    assert want > 0.49


def test_equivalence_of_tied_samples_is_bounded_by_the_seed_count() -> None:
    """All seeds tied on both sides: the exact bound (1 - 2 margin)^n, so 20 seeds can show
    equivalence and 3 cannot, however identical they look."""
    assert equivalence_p([5.0] * 20, [5.0] * 20) == pytest.approx(0.7 ** 20)
    assert equivalence_p([5.0] * 3, [5.0] * 3) == pytest.approx(0.343)
    assert equivalence_p([5.0] * 3, [5.0] * 30) == pytest.approx(0.343)  # min(n, m)
    assert equivalence_p([5.0] * 20, [5.0] * 20, margin=0.05) == pytest.approx(0.9 ** 20)
    assert equivalence_p([1.0, 1.0, 1.0], [0.0, 0.0, 0.0]) == 1.0  # separated: P = 1
    assert math.isnan(equivalence_p([1.0], [1.0, 2.0]))


@pytest.mark.parametrize("sd_x, sd_y", [(1, 1), (3, 1), (1, 3)])
def test_tost_holds_its_level_at_the_margin(sd_x, sd_y) -> None:
    """At P(improvement) = 1/2 - margin exactly (normal, spreads as given), over 4,000
    40-vs-40 comparisons, "equivalent" at most 5% plus 3 Monte-Carlo standard errors.
    Measured over 100,000 comparisons: 4.4% (SD 1 vs 1), 4.1% (3 vs 1 and 1 vs 3); at 0.05 / 60
    none at 40 seeds, 0.43 x the level at 80 (equal spreads). At 20 seeds a side equivalence on
    continuous scores is out of reach (se of P about 0.09 > margin / 1.7)."""
    rng = np.random.default_rng(4)
    shift = stats.norm.ppf(0.5 - MARGIN) * math.hypot(sd_x, sd_y)
    sims, alpha = 4000, 0.05
    false = sum(equivalence_p(rng.normal(shift, sd_x, 40), rng.normal(0, sd_y, 40)) < alpha
                for _ in range(sims))
    assert false / sims <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / sims), false / sims
    assert false > 0  # the test is not empty: it does reject near the margin


def test_tost_finds_equivalence_with_enough_seeds() -> None:
    rng = np.random.default_rng(5)
    hits = sum(equivalence_p(rng.normal(0, 1, 80), rng.normal(0, 1, 80)) < 0.05
               for _ in range(100))
    assert hits > 50, hits


def _capped(k: int, n: int) -> list[float]:
    """n seeds, k of them at the cap 1.0 and the rest below it."""
    return [1.0] * k + [0.5] * (n - k)


def test_cap_rate_p_by_hand() -> None:
    """Every seed of both at the cap: the null's most likely way to produce that is rates
    (1 - 0.3, 1), with probability 0.7^20. 19 of 20 against 20 of 20: the outcomes as far
    from the margin are 20/20 and 19/20 against 20/20, P = 0.7^20 + 20 x 0.3 x 0.7^19 =
    0.0076, the exact figure where the t approximation on P says 4e-5."""
    assert cap_rate_margin() == pytest.approx(0.3)
    assert cap_rate_equivalence_p(_capped(20, 20), _capped(20, 20), 1.0) == pytest.approx(
        0.7 ** 20, rel=1e-6)
    want = 0.7 ** 20 + 20 * 0.3 * 0.7 ** 19
    assert cap_rate_equivalence_p(_capped(19, 20), _capped(20, 20), 1.0) == pytest.approx(
        want, rel=1e-6)
    assert cap_rate_equivalence_p(_capped(20, 20), _capped(19, 20), 1.0) == pytest.approx(
        want, rel=1e-6)  # symmetric
    assert cap_rate_equivalence_p(_capped(0, 20), _capped(20, 20), 1.0) == 1.0
    assert math.isnan(cap_rate_equivalence_p([], _capped(3, 3), 1.0))
    # the t-based TOST on the same 19-vs-20 data claims far more than the data show
    assert equivalence_p(_capped(19, 20), _capped(20, 20)) < 1e-3 < want


@functools.cache
def _p_table(n: int, m: int) -> np.ndarray:
    """cap_rate_equivalence_p of every outcome (n + 1, m + 1): i of n against j of m at the cap."""
    return np.array([[cap_rate_equivalence_p(_capped(i, n), _capped(j, m), 1.0)
                      for j in range(m + 1)] for i in range(n + 1)])


def _rejection_rate(n: int, m: int, rate_x: float, rate_y: float, alpha: float) -> float:
    """Exact chance that cap_rate_equivalence_p < alpha, summing over every outcome."""
    p = _p_table(n, m)
    px = stats.binom.pmf(np.arange(n + 1), n, rate_x)
    py = stats.binom.pmf(np.arange(m + 1), m, rate_y)
    return float(px @ (p < alpha) @ py)


@pytest.mark.parametrize("baseline_rate", [1.0, 0.95, 0.9])
def test_cap_rate_test_holds_its_level_exactly(baseline_rate) -> None:
    """At the margin (the variant's cap rate 30 points below the baseline's), the exact
    chance of "equivalent" at 0.05 and at 0.05 / 60, 12 vs 12 seeds: at most the level.
    Measured at 20 vs 20: 0.71, 0.81, 0.79 x 0.05 and 0.96, 0.08, 0.005 x 0.05 / 60."""
    for alpha in (0.05, 0.05 / 60):
        rate = _rejection_rate(12, 12, baseline_rate - 0.3, baseline_rate, alpha)
        assert rate <= alpha * (1 + 1e-9), (alpha, rate)
    # and the other side of the margin (the variant 30 points above)
    assert _rejection_rate(12, 12, baseline_rate, baseline_rate - 0.3, 0.05) <= 0.05


def test_cap_rate_test_has_power_when_rates_agree() -> None:
    assert _rejection_rate(12, 12, 1.0, 1.0, 0.05) == pytest.approx(1.0)
    assert _rejection_rate(12, 12, 0.9, 0.9, 0.05) > 0.05  # above the level: it can decide


def test_capped_equivalence_needs_both_claims() -> None:
    """Neither sample reaches the cap (cap rates 0 and 0: "equivalent" on cap rates alone) but
    they are far apart below it: not equivalent. Every seed at the cap: the cap-rate bound
    0.7^20, the larger of the two p-values."""
    far_x, far_y = list(np.linspace(100, 200, 20)), list(np.linspace(300, 400, 20))
    assert cap_rate_equivalence_p(far_x, far_y, 500.0) < 1e-3
    assert capped_equivalence_p(far_x, far_y, 500.0) == 1.0
    assert capped_equivalence_p(far_x, far_y, None) == equivalence_p(far_x, far_y)
    full = [500.0] * 20
    assert capped_equivalence_p(full, full, 500.0) == pytest.approx(0.7 ** 20, rel=1e-6)


def test_prob_improvement_interval_by_hand() -> None:
    # x = (1, 3), y = (2, 4) as in test_equivalence_p_by_hand: P = 0.25, se^2 = 0.125, df = 2
    theta, se_theta = math.log(0.25 / 0.75), math.sqrt(0.125) / (0.25 * 0.75)
    q = stats.t.isf(0.025, 2)  # 4.303
    want = [1 / (1 + math.exp(-(theta + s * q * se_theta))) for s in (-1, 1)]
    assert prob_improvement_interval([1, 3], [2, 4]) == pytest.approx(want)
    # a normal quantile z is read as the t quantile of the same tail Phi(-z)
    q = stats.t.isf(stats.norm.sf(3.0), 2)
    want = [1 / (1 + math.exp(-(theta + s * q * se_theta))) for s in (-1, 1)]
    assert prob_improvement_interval([1, 3], [2, 4], quantile=3.0) == pytest.approx(want)
    # nothing for the t approximation: the exact bounds, tail 0.025, k = min(n, m)
    half = (1 - 0.025 ** (1 / 20)) / 2  # 0.084
    assert prob_improvement_interval([5.0] * 20, [5.0] * 25) == pytest.approx(
        (0.5 - half, 0.5 + half))
    assert prob_improvement_interval([2.0] * 8, [1.0] * 8) == pytest.approx(
        (0.025 ** (1 / 8), 1.0))
    assert prob_improvement_interval([1.0] * 8, [2.0, 3.0] * 4) == pytest.approx(
        (0.0, 1 - 0.025 ** (1 / 8)))
    assert all(math.isnan(v) for v in prob_improvement_interval([1.0], [1.0, 2.0]))


def test_interval_inside_the_margin_is_the_tost_rejecting() -> None:
    """The 1 - 2 alpha interval lies inside 1/2 +- margin exactly when equivalence_p <= alpha
    (away from the all-tied floor)."""
    rng = np.random.default_rng(8)
    agree = 0
    for _ in range(300):
        x, y = rng.normal(rng.normal(0, 0.3), 1, 60), rng.normal(0, 1, 60)
        lo, hi = prob_improvement_interval(x, y, confidence=0.9)
        agree += (0.5 - MARGIN < lo and hi < 0.5 + MARGIN) == (equivalence_p(x, y) <= 0.05)
    assert agree == 300


def _at_cap(rng: np.random.Generator, rate: float, n: int) -> np.ndarray:
    """n CartPole-like final scores: 500 (the cap) with chance `rate`, else uniform 300-499."""
    x = rng.uniform(300, 499, n)  # (n,)
    x[rng.random(n) < rate] = 500.0
    return x


@pytest.mark.parametrize("n", [10, 20])
@pytest.mark.parametrize("rate_x, rate_y", [(0.85, 0.85), (1.0, 0.85), (0.6, 0.85)])
def test_interval_covers_with_ties_at_the_cap(n, rate_x, rate_y) -> None:
    """Coverage of the 95% interval over 1,000 samples, at least 95% minus 3 Monte-Carlo
    standard errors. Measured over 2,000 (n = 10 | 20): 99.5 | 95.3% at 85% v 85% at the cap,
    100 | 99.8% at 100% v 85%, 97.8 | 96.1% at 60% v 85%; the percentile bootstrap gave 93.0
    | 91.3%, 78.8 | 93.8% and 93.0 | 93.3% (over 400)."""
    # P = P(x > y) + P(x = y) / 2 with ties only at the cap and equal laws below it
    true = round(rate_x * (1 - rate_y) + rate_x * rate_y / 2
                 + (1 - rate_x) * (1 - rate_y) / 2, 12)  # 0.5 exactly, not 0.5 - 1e-17
    rng = np.random.default_rng(9)
    sims = 1000
    covered = 0
    for _ in range(sims):
        lo, hi = prob_improvement_interval(_at_cap(rng, rate_x, n), _at_cap(rng, rate_y, n))
        covered += lo <= true <= hi
    assert covered / sims >= 0.95 - 3 * math.sqrt(0.05 * 0.95 / sims), covered / sims


def test_percentile_bootstrap_under_covers_at_the_cap() -> None:
    """Why the interval above replaced it: at 10 seeds, 100% v 85% at the cap (P = 0.575)."""
    rng = np.random.default_rng(10)
    sims = 300
    covered = sum(lo <= 0.575 <= hi for lo, hi in (
        prob_improvement_ci(_at_cap(rng, 1.0, 10), _at_cap(rng, 0.85, 10),
                            n_resamples=2000, seed=i) for i in range(sims)))
    assert covered / sims < 0.88, covered / sims
