"""Tests behind the verdicts: is a variant's P(improvement) over the baseline different from 1/2?

Pure numpy/scipy, like dqn.estimators. P(improvement) = P(X > Y) + P(X = Y) / 2 for a variant
seed X and a baseline seed Y (Agarwal et al. 2021). Its test here is a permutation test of
that statistic: under "the variant changes nothing" the seeds' labels are exchangeable, so the
p-value is the share of relabellings whose P is at least as far from 1/2 as the observed one.
It is exact for small samples (every relabelling) and valid with ties (a seed at the cap ties
with another), which the usual normal approximations are not.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from dqn.estimators import finite, p_greater

PERMUTATIONS = 19_999
"""Random relabellings when there are more distinct ones than this (else all, exactly)."""
SEED = 0
ALPHA = 0.05
POWER = 0.8


def permutation_p(x: object, y: object, n_resamples: int = PERMUTATIONS,
                  seed: int = SEED) -> float:
    """Two-sided permutation p-value of P(improvement of x (n,) over y (m,)) = 1/2.

    Exact (all C(n + m, n) relabellings) when there are at most n_resamples of them, else a
    seeded Monte-Carlo estimate. NaN when a sample is empty.
    """
    x, y = finite(x), finite(y)
    if x.size == 0 or y.size == 0:
        return math.nan

    def distance(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.abs(p_greater(a, b, axis) - 0.5)  # two-sided: distance from 1/2

    result = stats.permutation_test((x, y), distance, permutation_type="independent",
                                    vectorized=True, n_resamples=n_resamples,
                                    alternative="greater", rng=seed)
    return float(min(1.0, result.pvalue))


def min_attainable_p(n: int, m: int) -> float:
    """The smallest two-sided p-value permutation_p can give for samples of n and m seeds:
    2 / C(n + m, n) (complete separation, no ties). Above the test's level, no verdict other
    than "too few seeds" is possible: 3 seeds against 3 give at best p = 0.1."""
    return min(1.0, 2.0 / math.comb(n + m, n))


def detectable_effect(n: int, m: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest |P(improvement) - 1/2| the test detects with probability `power` at
    two-sided level `alpha` with n and m seeds (Noether's 1987 normal approximation for the
    Mann-Whitney statistic):

        |P - 1/2| = (z_{1 - alpha/2} + z_{power}) / sqrt(12 c (1 - c) N),  N = n + m, c = n / N
    """
    N = n + m
    c = n / N
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(z / math.sqrt(12 * c * (1 - c) * N))


def seeds_needed(effect: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Seeds per variant (equal groups) to detect P(improvement) = 1/2 + effect with
    probability `power` at two-sided level `alpha`: Noether's formula solved for N, halved,
    rounded up (inf for no effect)."""
    if effect == 0 or not math.isfinite(effect):
        return math.inf
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(math.ceil(z ** 2 / (12 * 0.25 * effect ** 2) / 2))
