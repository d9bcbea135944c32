"""dqn.estimators: IQM, bootstrap intervals, probability of improvement, Holm and
censored medians, against hand-computed values and scipy."""

from __future__ import annotations

import math

import numpy as np
from numpy.testing import assert_allclose
from scipy import stats as sps

from dqn import estimators

# --- aggregates -------------------------------------------------------------------------------

def test_iqm_is_mean_of_middle_half():
    assert_allclose(estimators.iqm([1, 2, 3, 4, 5, 6, 7, 8]), 4.5)  # mean(3, 4, 5, 6)
    assert_allclose(estimators.iqm([100, 0, 1, 0]), 0.5)  # mean(0, 1)


def test_bootstrap_ci_degenerate_samples():
    assert estimators.bootstrap_ci([3.0, 3.0, 3.0]) == (3.0, 3.0)
    assert estimators.bootstrap_ci([7.0]) == (7.0, 7.0)
    assert estimators.bootstrap_ci([7.0, np.nan]) == (7.0, 7.0)
    assert all(math.isnan(v) for v in estimators.bootstrap_ci([]))


def test_bootstrap_ci_is_seeded_and_matches_scipy():
    x = np.array([1.0, 4.0, 2.0, 8.0, 5.0, 7.0])
    lo, hi = estimators.bootstrap_ci(x, np.mean, n_resamples=500)
    assert (lo, hi) == estimators.bootstrap_ci(x, np.mean, n_resamples=500)
    ref = sps.bootstrap((x,), np.mean, n_resamples=500, method="percentile",
                        **{estimators._RNG_KW: np.random.default_rng(estimators.SEED)}
                        ).confidence_interval
    assert_allclose((lo, hi), (ref.low, ref.high))
    assert lo < x.mean() < hi


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


def test_ci_endpoints_are_stable_across_bootstrap_seeds():
    """For these samples, at the default resample count, a CI endpoint on a [0, 1] scale moves
    by less than 0.005 between bootstrap seeds, for P(improvement) (a statistic on a grid of
    1 / (2 n m)) and the IQM and IQM difference of scores with many seeds tied at the cap.
    (Not every committed study does: see estimators.N_RESAMPLES.)"""
    rng = np.random.default_rng(7)
    x = np.concatenate([np.ones(14), rng.uniform(0.4, 1.0, 6)])  # (20,) 14 of 20 at the cap
    y = np.concatenate([np.ones(18), rng.uniform(0.6, 1.0, 2)])  # (20,)
    for ci in (lambda s: estimators.prob_improvement_ci(x, y, seed=s),
               lambda s: estimators.bootstrap_ci(x, estimators.iqm, seed=s),
               lambda s: estimators.iqm_difference_ci(x, y, seed=s)):
        ends = np.array([ci(s) for s in range(3)])  # (3, 2)
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
