"""The verdicts' difference test: is a variant's P(improvement) over the baseline 1/2? The
studentized permutation test of the Brunner-Munzel statistic (Janssen 1997; Neubert and
Brunner 2007). numpy/scipy only.

The plain permutation test of P(improvement) (dqn.stats.decisions.permutation_p) is exact for
"same distribution", but with P = 1/2 and different spreads (a variant half at the cap and
half collapsed against a baseline spread in between) it rejects too often. Studentizing, i.e.
permuting T = (P - 1/2) / se rather than P, makes the permutation distribution mimic T's
distribution under P = 1/2 whatever the spreads (asymptotically), while staying exact when
the distributions are the same.

p-values are exact (every relabelling) when there are at most PERMUTATIONS distinct
relabellings. Otherwise they are Monte-Carlo estimates, and a small estimate is estimated
again with REFINED relabellings, so that no verdict rests on the Monte-Carlo floor: the
smallest level any family here uses (0.05 over the atlas's 354 comparisons) is 70 times
REFINED's floor of 1e-6.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from dqn.stats.estimators import finite

PERMUTATIONS = 19_999
"""Random relabellings of a first estimate (every relabelling when there are fewer)."""
REFINED = 999_999
"""Random relabellings of a second, independent estimate when the first is below REFINE_BELOW."""
REFINE_BELOW = 0.002
"""A first estimate below this is estimated again with REFINED relabellings: with 19,999
the Monte-Carlo error could move it across a level (99.9% interval at p = 0.002: 0.0014-0.0027)."""
SEED = 0
CHUNK = 50_000
"""Relabellings drawn at a time (memory: CHUNK x (n + m) floats a few times over)."""
SE_FLOOR = 1e-9
"""Standard error used where Brunner-Munzel's is 0 (every placement equal: complete
separation or all tied), so T stays finite and ordered: a separated relabelling gets the
largest |T| there is, as it should."""


def bm_statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """|T| = |P - 1/2| / se of Brunner and Munzel (2000), vectorised over leading axes:
    x (..., n), y (..., m) -> (...,). With placements a_i of each x among the y (divided by m)
    and b_j of each y among the x (divided by n):

        P = mean(a),  se^2 = var(a) / n + var(b) / m   (var with ddof 1)
    """
    x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
    n, m = x.shape[-1], y.shape[-1]
    gt = (x[..., :, None] > y[..., None, :]) + 0.5 * (x[..., :, None] == y[..., None, :])
    a = gt.mean(axis=-1)  # (..., n) placements of x among y
    b = 1.0 - gt.mean(axis=-2)  # (..., m) placements of y among x
    se = np.sqrt(a.var(axis=-1, ddof=1) / n + b.var(axis=-1, ddof=1) / m)
    return np.abs(a.mean(axis=-1) - 0.5) / np.maximum(se, SE_FLOOR)


def _bm_from_ranks(ranks: np.ndarray, n: int) -> np.ndarray:
    """bm_statistic of relabelled samples from pooled mid-ranks, in O(N log N) a relabelling
    rather than O(n m): ranks (B, N), the first n of each row the variant's.

    A seed's placement among the other sample is its pooled mid-rank less its mid-rank within
    its own sample (ties keep equal pooled ranks, so within-sample mid-ranks of the ranks are
    those of the values): a_i = (R_i - R_i^(x)) / m, b_j = (R_j - R_j^(y)) / n.
    """
    m = ranks.shape[1] - n
    rx, ry = ranks[:, :n], ranks[:, n:]  # (B, n), (B, m)
    a = (rx - stats.rankdata(rx, axis=1)) / m  # (B, n)
    b = (ry - stats.rankdata(ry, axis=1)) / n  # (B, m)
    se = np.sqrt(a.var(axis=1, ddof=1) / n + b.var(axis=1, ddof=1) / m)  # (B,)
    return np.abs(a.mean(axis=1) - 0.5) / np.maximum(se, SE_FLOOR)


def _monte_carlo_p(x: np.ndarray, y: np.ndarray, n_resamples: int, seed: int) -> float:
    """(1 + #{|T*| >= |T|}) / (n_resamples + 1) over seeded random relabellings."""
    n = x.size
    ranks = stats.rankdata(np.concatenate([x, y]))  # (N,) pooled mid-ranks
    observed = _bm_from_ranks(ranks[None], n)[0]
    rng = np.random.default_rng(seed)
    hits, left = 0, n_resamples
    while left:
        b = min(CHUNK, left)
        shuffled = rng.permuted(np.broadcast_to(ranks, (b, ranks.size)), axis=1)  # (b, N)
        # the same tolerance as scipy.stats.permutation_test's, for equal statistics
        hits += int(np.sum(_bm_from_ranks(shuffled, n) >= observed * (1 - 1e-14)))
        left -= b
    return (hits + 1) / (n_resamples + 1)


def relabellings(n: int, m: int) -> int:
    """Distinct relabellings of n and m seeds: C(n + m, n)."""
    return math.comb(n + m, n)


def studentized_permutation_p(x: object, y: object, n_resamples: int = PERMUTATIONS,
                              seed: int = SEED, refined: int = REFINED) -> float:
    """Two-sided p-value of P(improvement of x (n,) over y (m,)) = 1/2 by permuting the
    studentized statistic: exact (every relabelling, by scipy.stats.permutation_test) when
    there are at most n_resamples distinct ones, else a seeded Monte-Carlo estimate
    (1 + #{|T*| >= |T|}) / (n_resamples + 1), estimated again (independently) with `refined`
    relabellings when below REFINE_BELOW. NaN below two values a sample."""
    x, y = finite(x), finite(y)
    if x.size < 2 or y.size < 2:
        return math.nan
    if relabellings(x.size, y.size) <= n_resamples:
        result = stats.permutation_test((x, y), bm_statistic, permutation_type="independent",
                                        vectorized=True, n_resamples=n_resamples,
                                        alternative="greater", rng=seed)
        return float(min(1.0, result.pvalue))
    p = _monte_carlo_p(x, y, n_resamples, seed)
    if p < REFINE_BELOW and refined > n_resamples:
        p = _monte_carlo_p(x, y, refined, seed + 1)
    return float(p)


def min_attainable_p(n: int, m: int, n_resamples: int = PERMUTATIONS,
                     refined: int = REFINED) -> float:
    """The smallest two-sided p-value studentized_permutation_p can give for n and m seeds:
    2 / C(n + m, n) (complete separation, no ties) when it enumerates, 1 / (refined + 1)
    when it samples. Above a test's level no verdict other than "too few seeds" is possible:
    3 seeds against 3 give at best p = 0.1."""
    labellings = relabellings(n, m)
    if labellings > n_resamples:
        return 1.0 / (max(refined, n_resamples) + 1)
    return min(1.0, 2.0 / labellings)
