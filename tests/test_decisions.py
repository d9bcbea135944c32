"""The verdicts (dqn.stats.decisions): the plain permutation test of P(improvement) = 1/2
(kept for reference), the Brunner-Munzel estimate, the verdict words of a Shaffer-type Holm
family and the power figures. The verdicts' own tests have their files: test_studentized.py
(difference) and test_equivalence.py.

Hand-sized samples with exact answers, the type-I error of a Holm-corrected family under the
null, and power against Noether's analytic figure.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from dqn.stats.decisions import (
    brunner_munzel,
    can_decide,
    decide,
    detectable_effect,
    family_size,
    min_attainable_p,
    permutation_p,
    seeds_needed,
    shaffer,
    verdict,
)
from dqn.stats.estimators import holm, prob_improvement


def test_complete_separation_gives_the_exact_extreme_p() -> None:
    # 3 vs 3: of the C(6, 3) = 20 relabellings, 2 are as extreme (all above, all below)
    assert permutation_p([4, 5, 6], [1, 2, 3]) == pytest.approx(2 / 20)
    assert min_attainable_p(3, 3) == pytest.approx(0.1)
    # 5 vs 5: 2 / 252
    assert permutation_p([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]) == pytest.approx(2 / 252)
    # unequal n, 4 vs 2: 2 / C(6, 2) = 2 / 15
    assert permutation_p([3, 4, 5, 6], [1, 2]) == pytest.approx(2 / 15)
    # 10 vs 10 has C(20, 10) = 184,756 relabellings, more than the 19,999 sampled: then the
    # plain test's p never goes below 1 / 20,000, and separation gives a few times that (the
    # two extreme labellings are rarely drawn); the verdicts' test re-estimates such a p with
    # 999,999 relabellings, so its floor is 1e-6
    p = permutation_p(np.arange(10.0) + 10, np.arange(10.0))
    assert 1 / 20_000 <= p < 10 / 20_000
    assert min_attainable_p(10, 10) == pytest.approx(1e-6)


def test_ties_are_handled_exactly() -> None:
    assert permutation_p([500, 500, 500], [500, 500, 500]) == 1.0  # nothing to tell apart
    # 2 vs 2 with a tie across: x = (1, 2), y = (2, 3): P = (0 + 0.5 + 0 + 0) / 4 = 0.125.
    # Of the 6 relabellings of {1, 2, 2', 3}: x = {1, 2} or {1, 2'} give P = 0.125, x = {2, 3}
    # or {2', 3} give 0.875 (|P - 1/2| = 0.375 each), x = {1, 3} or {2, 2'} give 0.5: 4 of 6.
    assert permutation_p([1, 2], [2, 3]) == pytest.approx(4 / 6)


def test_identical_evidence_gives_identical_p() -> None:
    """Samples with the same ranks pattern (how many seeds at the cap, how the rest order)
    get the same p, whatever the values below the cap: the test sees only the ordering."""
    base = [500.0] * 19 + [300.0]
    a = [500.0] * 16 + [490.0, 420.0, 350.0, 120.0]
    b = [500.0] * 16 + [499.0, 480.0, 470.0, 10.0]
    assert permutation_p(a, base) == permutation_p(b, base)


def test_type_one_error_of_a_holm_corrected_family_stays_at_the_level() -> None:
    """500 simulated studies of 6 comparisons with no effect at all (scores drawn from one
    distribution with a cap, so ties are common): the share of studies with any better/worse
    verdict after Holm stays within 0.05 plus Monte-Carlo error."""
    rng = np.random.default_rng(1)
    studies, k, n = 500, 6, 6  # 6 vs 6: exact tests (924 relabellings)
    false = 0
    for _ in range(studies):
        base = np.minimum(rng.normal(450, 80, n), 500)
        p = [permutation_p(np.minimum(rng.normal(450, 80, n), 500), base) for _ in range(k)]
        false += bool((holm(p) < 0.05).any())
    rate = false / studies
    assert rate <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / studies), rate


def test_power_matches_noethers_figure() -> None:
    """With a normal shift giving P(improvement) = 1/2 + detectable_effect(20, 20), the test
    rejects at 0.05 in about 80% of simulated 20-vs-20 comparisons."""
    effect = detectable_effect(20, 20)
    # P(X > Y) for X ~ N(d, 1), Y ~ N(0, 1) is Phi(d / sqrt 2)
    shift = math.sqrt(2) * stats.norm.ppf(0.5 + effect)
    rng = np.random.default_rng(2)
    sims = 300
    hits = sum(permutation_p(rng.normal(shift, 1, 20), rng.normal(0, 1, 20),
                             n_resamples=1_999, seed=s) < 0.05 for s in range(sims))
    assert abs(hits / sims - 0.8) < 3 * math.sqrt(0.8 * 0.2 / sims) + 0.03, hits / sims


def test_power_figures_by_hand() -> None:
    # Noether: (1.959964 + 0.841621) / sqrt(12 * 0.25 * 40) = 2.801585 / 10.954451
    assert detectable_effect(20, 20) == pytest.approx(2.801585 / 10.954451, rel=1e-5)
    # seeds for effect 0.25: N = 2.801585^2 / (3 * 0.0625) = 41.86 -> 20.93 per variant -> 21
    assert seeds_needed(0.25) == 21
    assert seeds_needed(0.0) == math.inf


# --- equivalence ------------------------------------------------------------------------------

def test_brunner_munzel_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    x, y = np.round(rng.normal(1, 1, 12)), np.round(rng.normal(0, 2, 9))  # rounded: ties
    p, se, df = brunner_munzel(x, y)
    assert p == pytest.approx(prob_improvement(x, y))
    t = (p - 0.5) / se
    assert t == pytest.approx(stats.brunnermunzel(y, x).statistic)
    assert 2 * stats.t.sf(abs(t), df) == pytest.approx(stats.brunnermunzel(y, x).pvalue)


# --- verdicts ---------------------------------------------------------------------------------

def test_verdicts_of_a_shaffer_family_by_hand() -> None:
    """Three comparisons, six tests. Raw p: difference (0.001, 0.04, 0.5), equivalence
    (0.9, 0.9, 0.002). Each comparison's two nulls exclude each other, so a step's multiplier
    counts the comparisons with a test left: sorted 0.001 x 3 = 0.003 (all three left),
    0.002 x 3 = 0.006 (comparison 1 still has its equivalence test, 3 its difference test),
    0.04 x 3 = 0.12, 0.5 x 3 = 1.5 -> 1, 0.9 x 2 -> 1 (comparison 3 is done), 0.9 x 1 -> 1.
    Holm would multiply by 6, 5, 4, 3, 2, 1."""
    adj, eq_adj, words = decide(np.array([0.2, 0.6, 0.5]), np.array([0.001, 0.04, 0.5]),
                                np.array([0.9, 0.9, 0.002]), np.full(3, 20), np.full(3, 20))
    assert adj == pytest.approx([0.003, 0.12, 1.0])
    assert eq_adj == pytest.approx([1.0, 1.0, 0.006])
    assert words == ["worse", "inconclusive", "equivalent"]
    # with no exclusive pair (cap-rate equivalence tests) it is Holm's procedure
    adj, eq_adj = shaffer(np.array([0.001, 0.04, 0.5]), np.array([0.9, 0.9, 0.002]),
                          np.zeros(3, bool))
    assert adj == pytest.approx([0.006, 0.16, 1.0])
    assert eq_adj == pytest.approx([1.0, 1.0, 0.01])
    assert adj == pytest.approx(holm([0.001, 0.04, 0.5, 0.9, 0.9, 0.002])[:3])
    # mixed: comparison 1 capped (two nulls), 2 and 3 exclusive; raw (0.01, 0.02, 0.03) and
    # equivalence (0.04, NaN, 0.05): t = 2 + 1 + 1 = 4 -> 0.04; comparison 1 has one test left,
    # t = 1 + 1 + 1 = 3 -> 0.06; comparison 2 done: t = 1 + 0 + 1 = 2 -> 0.06; then 0.04 x 2
    # -> 0.08; 0.05 x 1 -> 0.08 (running maximum)
    adj, eq_adj = shaffer(np.array([0.01, 0.02, 0.03]), np.array([0.04, np.nan, 0.05]),
                          np.array([False, True, True]))
    assert adj == pytest.approx([0.04, 0.06, 0.06])
    assert eq_adj[0] == pytest.approx(0.08) and eq_adj[2] == pytest.approx(0.08)
    assert np.isnan(eq_adj[1])
    assert family_size([0.01, 0.02, 0.03], [0.04, np.nan, 0.05], [False, True, True]) == 4
    assert decide(np.array([0.8]), np.array([0.001]), np.array([0.9]), np.array([20]),
                  np.array([20]))[2] == ["better"]


def test_too_few_seeds() -> None:
    assert not can_decide(3, 3, 1)  # 2 / 20 = 0.1: never below 0.05
    assert can_decide(4, 4, 1) and not can_decide(4, 4, 2)  # 2 / 70 = 0.029; x 2 = 0.057
    assert verdict(0.0, 0.1, 1.0, decidable=False) == "too few seeds"
    assert verdict(math.nan, math.nan, math.nan) == "no data"
