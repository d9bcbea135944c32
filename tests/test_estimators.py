"""dqn.stats.estimators: IQM, bootstrap intervals, probability of improvement, Holm and
censored medians, against hand-computed values and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats as sps

from dqn.stats import estimators

# --- aggregates -------------------------------------------------------------------------------

def test_iqm_is_mean_of_middle_half():
    assert_allclose(estimators.iqm([1, 2, 3, 4, 5, 6, 7, 8]), 4.5)  # mean(3, 4, 5, 6)
    assert_allclose(estimators.iqm([100, 0, 1, 0]), 0.5)  # mean(0, 1)


def test_bootstrap_ci_degenerate_samples():
    assert estimators.bootstrap_ci([3.0, 3.0, 3.0]) == (3.0, 3.0)
    assert estimators.bootstrap_ci([7.0]) == (7.0, 7.0)
    assert estimators.bootstrap_ci([7.0, np.nan]) == (7.0, 7.0)
    assert all(math.isnan(v) for v in estimators.bootstrap_ci([]))
    with pytest.raises(ValueError, match="choose from iqm, mean"):
        estimators.bootstrap_ci([1.0, 2.0], "median")


def test_bootstrap_ci_is_seeded_and_agrees_with_scipy():
    x = np.random.default_rng(3).normal(0.0, 1.0, 30)  # (30,)
    lo, hi = estimators.bootstrap_ci(x, "mean", n_resamples=200_000)
    assert (lo, hi) == estimators.bootstrap_ci(x, "mean", n_resamples=200_000)
    assert lo < x.mean() < hi
    # scipy draws other resamples, so the two agree up to Monte-Carlo error
    for stat, name in ((np.mean, "mean"), (estimators.iqm, "iqm")):
        ref = sps.bootstrap((x,), stat, n_resamples=200_000, method="percentile",
                            rng=np.random.default_rng(1)).confidence_interval
        assert_allclose(estimators.bootstrap_ci(x, name, n_resamples=200_000),
                        (ref.low, ref.high), atol=0.01)


def test_resample_counts_are_draws_with_replacement():
    counts = estimators.resample_counts(np.random.default_rng(0), 5, 40_000)  # (40000, 5)
    assert counts.shape == (40_000, 5)
    assert np.all(counts.sum(axis=1) == 5)
    # each value's count is Binomial(5, 1/5): mean 1, variance 4/5
    assert_allclose(counts.mean(axis=0), 1.0, atol=0.02)
    assert_allclose(counts.var(axis=0), 0.8, atol=0.03)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 7, 10, 20])
def test_statistics_of_counts_match_the_expanded_resample(n):
    rng = np.random.default_rng(n)
    x = np.sort(rng.integers(0, 4, n).astype(float))  # (n,) with ties
    y = np.sort(rng.integers(0, 4, n + 1).astype(float))  # (n + 1,)
    cx = rng.multinomial(n, [1 / n] * n, 50)  # (50, n) counts of 50 resamples
    cy = rng.multinomial(n + 1, [1 / (n + 1)] * (n + 1), 50)  # (50, n + 1)
    for i in range(50):
        a, b = np.repeat(x, cx[i]), np.repeat(y, cy[i])  # the resamples themselves
        assert_allclose(estimators.iqm_of_counts(x, cx[i:i + 1].astype(float)),
                        [sps.trim_mean(a, 0.25)])
        assert_allclose(estimators.mean_of_counts(x, cx[i:i + 1].astype(float)), [a.mean()])
        pairwise = np.mean((a[:, None] > b[None, :]) + 0.5 * (a[:, None] == b[None, :]))
        assert_allclose(estimators.prob_improvement_of_counts(
            x, y, cx[i:i + 1].astype(float), cy[i:i + 1].astype(float)), [pairwise])


def test_mid_quantile_by_hand():
    # 0 three times, 1 once: G(0) = 3/8, G(1) = 3/4 + 1/8 = 7/8
    v = np.array([0.0, 0.0, 0.0, 1.0])
    assert_allclose(estimators.mid_quantile(v, [0.1, 0.375, 0.5, 0.875, 0.95]),
                    [0.0, 0.0, 0.25, 1.0, 1.0])
    # distinct values: Hazen's positions (k - 1/2) / N
    v = np.array([4.0, 1.0, 3.0, 2.0])
    assert_allclose(estimators.mid_quantile(v, [0.5, 0.25]), [2.5, 1.5])
    assert_allclose(estimators.mid_quantile(v, [0.5, 0.25]),
                    np.percentile(v, [50, 25], method="hazen"))


def test_bootstrap_ci_of_mean_has_nominal_coverage():
    rng = np.random.default_rng(123)
    covered = [
        lo <= 0.0 <= hi
        for lo, hi in (estimators.bootstrap_ci(rng.normal(0, 1, 30), n_resamples=1000, seed=i)
                       for i in range(200))
    ]
    assert 0.90 <= np.mean(covered) <= 0.99


def test_prob_improvement_by_hand():
    # x vs y = (0, 2): 1 beats 0; 2 beats 0 and ties 2; 3 beats both -> 4.5 of 6 pairs.
    assert_allclose(estimators.prob_improvement([1, 2, 3], [0, 2]), 0.75)
    assert_allclose(estimators.prob_improvement([0, 2], [1, 2, 3]), 0.25)
    assert estimators.prob_improvement([5, 1, 3], [3, 5, 1]) == 0.5
    x, y = np.array([1.5, 2.0, 9.0, 4.0]), np.array([2.0, 3.0, 0.5])
    direct = np.mean((x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :]))
    assert_allclose(estimators.prob_improvement(x, y), direct)
    assert math.isnan(estimators.prob_improvement([], [1.0]))


def test_prob_improvement_ci():
    assert estimators.prob_improvement_ci([5, 6, 7], [1, 2, 3], n_resamples=200) == (1.0, 1.0)
    assert estimators.prob_improvement_ci([1, 1, 1], [1, 1], n_resamples=200) == (0.5, 0.5)
    lo, hi = estimators.prob_improvement_ci([1, 4, 2, 8], [3, 5, 1, 7], n_resamples=500)
    assert 0 <= lo < estimators.prob_improvement([1, 4, 2, 8], [3, 5, 1, 7]) < hi <= 1
    assert all(math.isnan(v) for v in estimators.prob_improvement_ci([1.0], [1.0, 2.0]))


def test_holm_by_hand():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1 -> max(0.06, 0.04)=0.06
    assert_allclose(estimators.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    assert_allclose(estimators.holm([np.nan, 0.02, 0.5]), [np.nan, 0.04, 0.5])
    assert_allclose(estimators.holm([0.6, 0.7]), [1.0, 1.0])
    assert estimators.holm([]).size == 0


def test_holm_is_monotone_in_raw_pvalues():
    p = np.random.default_rng(1).uniform(0, 0.2, 12)
    adj = estimators.holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(adj[order]) >= 0)
    assert np.all(adj >= p)


_RNG = np.random.default_rng(7)
STABILITY_SAMPLES = {
    # (20,) each, 14 and 18 of 20 at the cap
    "tied": (np.concatenate([np.ones(14), _RNG.uniform(0.4, 1.0, 6)]),
             np.concatenate([np.ones(18), _RNG.uniform(0.6, 1.0, 2)])),
    # (10,) each, no ties: P(improvement) moves in steps of 0.01, twice the tolerance
    "distinct": (_RNG.uniform(0.2, 0.8, 10), _RNG.uniform(0.3, 0.9, 10)),
}


@pytest.mark.parametrize("samples", STABILITY_SAMPLES)
@pytest.mark.parametrize("ci", ["prob_improvement_ci", "iqm_ci", "iqm_difference_ci"])
def test_ci_endpoints_are_stable_across_bootstrap_seeds(samples, ci):
    """At the default resample count, a CI endpoint on a [0, 1] scale moves by less than 0.005
    between bootstrap seeds, for P(improvement) (a statistic on a lattice of 1 / (2 n m)) and
    the IQM and IQM difference (every committed study was measured too: see
    estimators.N_RESAMPLES)."""
    x, y = STABILITY_SAMPLES[samples]
    if ci == "iqm_ci":
        ends = np.array([estimators.bootstrap_ci(x, "iqm", seed=s) for s in range(3)])
    else:
        ends = np.array([getattr(estimators, ci)(x, y, seed=s) for s in range(3)])  # (3, 2)
    assert np.ptp(ends, axis=0).max() < 0.005, ends


def test_iqm_difference_ci():
    x, y = np.arange(8.0), np.arange(8.0) + 10
    lo, hi = estimators.iqm_difference_ci(x, y, n_resamples=2000)
    assert lo < sps.trim_mean(x, 0.25) - sps.trim_mean(y, 0.25) < hi < 0
    assert estimators.iqm_difference_ci([3.0, 3.0], [1.0, 1.0]) == (2.0, 2.0)
    assert np.isnan(estimators.iqm_difference_ci([3.0], [1.0, 2.0])).all()


def test_median_steps_to_threshold_with_censoring():
    nan = np.nan
    assert estimators.median_steps_to_threshold([100, 300, 200, nan, nan], [1, 1, 1, 0, 0]) == 300
    assert math.isnan(estimators.median_steps_to_threshold([100, 200, nan, nan, nan],
                                                           [1, 1, 0, 0, 0]))
    # Exactly half censored: half of the seeds had reached it by step 200.
    assert estimators.median_steps_to_threshold([100, 200, nan, nan], [1, 1, 0, 0]) == 200
    assert math.isnan(estimators.median_steps_to_threshold([], []))


def test_performance_profile_and_its_band_by_hand():
    x = [0.1, 0.2, 0.3, 0.9, np.nan]  # NaN left out: n = 4
    tau = np.array([0.0, 0.5, 0.95])
    assert np.array_equal(estimators.profile(x, tau), [1.0, 0.25, 0.0])
    lo, hi = estimators.profile_band(x, tau)
    # at tau = 0.5, resampled counts above are Binomial(4, 1/4): P(0) = 0.316 > 2.5%, so the
    # lower end is 0; P(<= 2) = 0.949 < 97.5% <= P(<= 3) = 0.996, so the upper end is 3/4
    assert np.array_equal(lo, [1.0, 0.0, 0.0]) and np.array_equal(hi, [1.0, 0.75, 0.0])


def test_profile_band_is_the_bootstrap_of_seeds():
    """The exact binomial band equals the percentiles of actually resampling seeds."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=12)
    tau = np.linspace(0, 1, 11)
    lo, hi = estimators.profile_band(x, tau)
    draws = x[rng.integers(0, x.size, (200_000, x.size))]  # (B, n) resampled seeds
    boot = (draws[:, :, None] > tau).mean(axis=1)  # (B, T)
    assert np.array_equal(lo, np.quantile(boot, 0.025, axis=0, method="inverted_cdf"))
    assert np.array_equal(hi, np.quantile(boot, 0.975, axis=0, method="inverted_cdf"))
