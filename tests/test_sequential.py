"""dqn.stats.sequential: spending by hand, and the adaptive procedure on simulated scores (no
training): its family-wise error under both nulls, early decisions on large effects, and fewer
seeds than a fixed design of the same power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from dqn.stats import decisions, equivalence, sequential
from dqn.stats.sequential import Design


def rank_permutation_p(x: np.ndarray, y: np.ndarray, n_resamples: int = 999) -> float:
    """A Monte-Carlo permutation p-value of P(improvement) = 1/2, written here for speed:
    |rank sum of x - its mean| over `n_resamples` seeded relabellings of the pooled mid-ranks,
    p = (1 + #{relabelled >= observed}) / (1 + n_resamples), valid at any n_resamples."""
    ranks = stats.rankdata(np.concatenate([x, y]))  # (n + m,)
    rng = np.random.default_rng(0)
    relabelled = rng.permuted(np.tile(ranks, (n_resamples, 1)), axis=1)[:, :x.size]
    centre = x.size * (ranks.size + 1) / 2
    observed = abs(ranks[:x.size].sum() - centre)
    extreme = np.abs(relabelled.sum(axis=1) - centre) >= observed - 1e-9
    return float((1 + extreme.sum()) / (1 + n_resamples))


# Monte-Carlo permutation p-values stay valid with fewer relabellings; 999 keep the
# simulations fast and still reach every level used below (smallest p 0.001).
FAST: sequential.Tests = (rank_permutation_p, decisions.capped_equivalence_p)


def test_spending_by_hand():
    a = 0.05
    assert sequential.spent(0.0, a) == 0.0
    assert_allclose(sequential.spent(1.0, a), a)
    assert_allclose(sequential.spent(0.5, a), a * math.log(1 + (math.e - 1) / 2))  # 0.031006
    assert_allclose(sequential.spent(1.0, a, "obrien_fleming"), a)
    # 2 - 2 Phi(1.95996 / 0.5)
    assert_allclose(sequential.spent(0.25, a, "obrien_fleming"),
                    2 * stats.norm.sf(1.959963984540054 * 2), rtol=1e-9)
    with pytest.raises(ValueError, match="choose from"):
        sequential.spent(0.5, a, "linear")


def test_stage_sizes_and_spending():
    d = Design(stage=10, max_seeds=25)
    assert d.sizes() == [10, 20, 25]
    assert_allclose(d.fractions(), [0.4, 0.8, 1.0])
    spend = d.spent_at(0.05 / 4)  # (3,)
    assert_allclose(spend.sum(), 0.05 / 4)
    assert_allclose(spend[0], 0.05 / 4 * math.log(1 + (math.e - 1) * 0.4))
    levels = d.levels(hypotheses=4)  # (3,)
    # stage 1 spends its share as a plain level; later stages' nominal levels exceed their
    # share, because a path that crossed already cannot cross again
    assert_allclose(levels[0], spend[0], rtol=1e-9)
    assert np.all(levels[1:] > spend[1:])


def test_pocock_boundaries_match_the_published_table():
    # Lan-DeMets Pocock-type spending, five equally spaced looks, two-sided alpha 0.05: the
    # critical values 2.438, 2.427, 2.410, 2.397, 2.386 of the standard tables (e.g. the
    # ldbounds / gsDesign output tabulated in Jennison and Turnbull 2000, ch. 7)
    d = Design(stage=2, max_seeds=10)
    c = sequential.boundaries(tuple(d.fractions()), tuple(d.spent_at(0.05)))
    assert_allclose(c, [2.438, 2.427, 2.410, 2.397, 2.386], atol=1e-3)


@pytest.mark.parametrize("spending", sequential.SPENDING)
def test_boundaries_cross_with_the_spent_probability(spending):
    # first-crossing chances from the multivariate normal of (Z_1 .. Z_K), corr sqrt(t_j / t_k)
    d = Design(stage=10, max_seeds=40, spending=spending)
    t, spend = d.fractions(), d.spent_at(0.05 / 3)
    c = np.array(sequential.boundaries(tuple(t), tuple(spend)))
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))  # (K, K)

    def inside(k: int) -> float:  # P(|Z_j| < c_j for j < k)
        if k == 0:
            return 1.0
        mvn = stats.multivariate_normal(np.zeros(k), cov[:k, :k], abseps=1e-9, releps=1e-7)
        return float(mvn.cdf(c[:k], lower_limit=-c[:k]))

    crossing = [inside(k) - inside(k + 1) for k in range(len(t))]
    assert_allclose(crossing, spend, rtol=5e-3)


def test_the_design_is_exact_on_a_normal_path():
    # 40,000 simulated stage statistics of nested samples (cumulative sums): the chance of any
    # crossing is the alpha spent (within 3 Monte-Carlo standard errors), not the
    # Bonferroni-over-stages bound's smaller one
    d, alpha = Design(stage=10, max_seeds=50), 0.05
    n = np.array(d.sizes())
    rng = np.random.default_rng(0)
    sums = rng.normal(size=(40_000, d.max_seeds)).cumsum(axis=1)[:, n - 1]  # (sims, K)
    p = 2 * stats.norm.sf(np.abs(sums / np.sqrt(n)))  # (sims, K) stage-wise p-values
    rate = np.mean((p <= d.levels(1)).any(axis=1))
    bonferroni = np.mean((p <= d.spent_at(alpha)).any(axis=1))
    se = math.sqrt(alpha * (1 - alpha) / 40_000)
    assert abs(rate - alpha) < 3 * se, rate
    assert bonferroni < alpha - 3 * se, bonferroni


def test_equivalence_spends_nothing_where_it_cannot_be_reached():
    d = Design(stage=10, max_seeds=100)
    spend = d.spent_at(0.05 / 18)
    levels = d.equivalence_levels(18)
    # 10 v 10: smallest equivalence p 0.7^10 = 0.028, above the 0.00044 spent; 20 v 20:
    # 0.7^20 = 0.0008 below the 0.00082 spent by then, which stage 2 gets whole
    assert levels[0] == 0
    assert_allclose(levels[1], spend[:2].sum())
    assert_allclose(levels[2:], spend[2:])
    assert_allclose(levels.sum(), 0.05 / 18)
    assert not Design(stage=2, max_seeds=4).equivalence_levels(18).any()  # never reachable


def test_repeated_confidence_intervals_cover_at_every_stage_at_once():
    # true P(improvement) = Phi(0.5 / sqrt(2)) = 0.638 for N(0.5, 1) against N(0, 1)
    d, true = Design(stage=10, max_seeds=50), float(stats.norm.cdf(0.5 / math.sqrt(2)))
    q = d.ci_quantiles()  # (K,)
    rng = np.random.default_rng(1)
    misses = 0
    for _ in range(2000):
        x, y = rng.normal(0.5, 1, d.max_seeds), rng.normal(0, 1, d.max_seeds)
        for n, z in zip(d.sizes(), q, strict=True):
            lo, hi = equivalence.prob_improvement_interval(x[:n], y[:n], quantile=float(z))
            if not lo <= true <= hi:
                misses += 1
                break
    assert misses / 2000 <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 2000), misses


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"stage": 1}, "stage: 1 must be an integer of at least 2"),
    ({"stage": 20, "max_seeds": 10}, "more than max_seeds"),
    ({"spending": "linear"}, "spending: 'linear'"),
    ({"margin": 0.5}, "margin: 0.5"),
    ({"alpha": 0.0}, "alpha: 0.0"),
])
def test_design_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Design(**kwargs)


def test_complete_separation_is_decided_at_the_first_stage():
    x, y = np.arange(5.0) + 100, np.arange(5.0)  # every x above every y
    d = sequential.decide_question(x, y, Design(stage=5, max_seeds=10), hypotheses=2)
    # exact permutation p = 2 / C(10, 5) = 0.0079; level 0.05 ln(1 + (e - 1) / 2) / 2 = 0.0155
    assert d.verdict == "better" and d.stage == 1 and d.seeds == 5
    assert_allclose(d.p, 2 / math.comb(10, 5))
    assert_allclose(d.level, 0.05 * math.log(1 + (math.e - 1) * 0.5) / 2, rtol=1e-9)
    # the repeated 95% interval at stage 1 of 2: separation bound tail^(1/5), tail = Phi(-c_1)
    tail = 0.05 * math.log(1 + (math.e - 1) * 0.5) / 2
    assert (d.p_improvement, d.p_improvement_hi) == (1.0, 1.0)
    assert_allclose(d.p_improvement_lo, tail ** (1 / 5), rtol=1e-9)
    flipped = sequential.decide_question(y, x, Design(stage=5, max_seeds=10), hypotheses=2)
    assert flipped.verdict == "worse" and flipped.stage == 1


def test_a_question_stays_open_until_its_seeds_reach_the_next_stage():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=15), rng.normal(size=40)
    d = sequential.decide_question(x, y, Design(stage=10, max_seeds=40), hypotheses=2)
    assert d.verdict == "open" and d.seeds == 10  # stage 2 needs 20 variant seeds
    decided = {("v", "final"): d}
    assert sequential.seeds_wanted(decided, Design(stage=10, max_seeds=40), "base") == {
        "v": 20, "base": 20}
    done = {("v", "final"): sequential.Decision("worse", 1, 10, 0.0, 1.0, 0.01)}
    assert sequential.seeds_wanted(done, Design(stage=10, max_seeds=40), "base") == {}


def simulate(shift: float, design: Design, sims: int, variants: int = 3,
             seed: int = 0) -> list[dict]:
    """`sims` adaptive studies of `variants` variants whose scores are the baseline's shifted
    by `shift` (normal scores capped at 1, so many seeds tie at the cap, as in CartPole)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(sims):
        base = np.minimum(rng.normal(0.8, 0.3, design.max_seeds), 1.0)  # (max_seeds,)
        samples = {(f"v{i}", "final"): (
            np.minimum(rng.normal(0.8 + shift, 0.3, design.max_seeds), 1.0), base)
            for i in range(variants)}
        out.append(sequential.decide_study(samples, design, FAST))
    return out


def shift_for(p_improvement: float) -> float:
    """The shift of N(0, 0.3^2) scores with P(X > Y) = p_improvement (uncapped)."""
    return float(0.3 * math.sqrt(2) * stats.norm.ppf(p_improvement))


def test_family_wise_error_under_no_effect_stays_below_alpha():
    studies = simulate(0.0, Design(stage=10, max_seeds=30), sims=500)
    false = np.mean([any(d.verdict in ("better", "worse") for d in s.values())
                     for s in studies])
    # alpha plus two Monte-Carlo standard errors of a rate of 0.05 over 500 studies
    assert false <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 500), false


def test_false_equivalence_at_the_margin_stays_below_alpha():
    # P(improvement) = 1/2 + margin before capping; the cap pulls P towards 1/2, so aim above
    design = Design(stage=10, max_seeds=30, margin=0.15)
    studies = simulate(shift_for(0.70), design, sims=500)
    false = np.mean([any(d.verdict == "equivalent" for d in s.values()) for s in studies])
    assert false <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 500), false


def test_large_effects_are_decided_at_the_first_or_second_stage():
    studies = simulate(shift_for(0.05), Design(stage=10, max_seeds=100), sims=30,
                       variants=3)
    stages = [d.stage for s in studies for d in s.values()]
    assert all(st in (1, 2) for st in stages), stages
    assert all(d.verdict == "worse" for s in studies for d in s.values())


def fixed_power(shift: float, n: int, hypotheses: int, sims: int, seed: int) -> float:
    """Power of the fixed design (n seeds, one stage at level alpha / hypotheses, the first
    step of the fixed procedure's Holm family) to call a shifted variant better."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(sims):
        base = np.minimum(rng.normal(0.8, 0.3, n), 1.0)
        x = np.minimum(rng.normal(0.8 + shift, 0.3, n), 1.0)
        hits += FAST[0](x, base) <= 0.05 / hypotheses and np.mean(x) > np.mean(base)
    return hits / sims


def test_adaptive_uses_fewer_seeds_than_a_fixed_design_of_the_same_power():
    shift, design = -shift_for(0.25), Design(stage=10, max_seeds=60)  # P = 0.75 uncapped
    studies = simulate(shift, design, sims=200, variants=1, seed=3)
    decided = [s[("v0", "final")] for s in studies]
    power = np.mean([d.verdict == "better" for d in decided])
    mean_seeds = np.mean([d.seeds for d in decided])
    # the smallest fixed design at least as powerful (the same two hypotheses)
    n_fixed = next(n for n in range(10, 61, 5)
                   if fixed_power(shift, n, hypotheses=2, sims=200, seed=4) >= power)
    assert power >= 0.8
    assert mean_seeds < n_fixed, (mean_seeds, n_fixed, power)
