"""dqn.stats.sequential: spending by hand, and the adaptive procedure on simulated scores (no
training): its family-wise error under both nulls, early decisions on large effects, and fewer
seeds than a fixed design of the same power."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from dqn.stats import decisions, sequential
from dqn.stats.sequential import Design

# Monte-Carlo permutation p-values stay valid with fewer relabellings; 999 keep the
# simulations fast and still reach every level used below (smallest p 0.001).
FAST: sequential.Tests = (partial(decisions.permutation_p, n_resamples=999),
                          decisions.equivalence_p)


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


def test_stage_sizes_and_levels():
    d = Design(stage=10, max_seeds=25)
    assert d.sizes() == [10, 20, 25]
    levels = d.levels(hypotheses=4)  # (3,)
    assert levels.shape == (3,)
    assert_allclose(levels.sum(), 0.05 / 4)
    assert_allclose(levels[0], 0.05 * math.log(1 + (math.e - 1) * 0.4) / 4)
    assert np.all(levels > 0)


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
    assert_allclose(d.level, 0.05 * math.log(1 + (math.e - 1) * 0.5) / 2)
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
