"""A difference test valid for H0: P(improvement) = 1/2 even when the two samples differ in
spread: the studentized permutation test of the Brunner-Munzel statistic (Janssen 1997;
Neubert and Brunner 2007). numpy/scipy only.

The plain permutation test of P(improvement) (dqn.stats.decisions.permutation_p) is exact for
"same distribution", but with P = 1/2 and different spreads (a variant half at the cap and
half collapsed against a baseline spread in between) it rejects too often. Studentizing, i.e.
permuting T = (P - 1/2) / se rather than P, makes the permutation distribution mimic T's
distribution under P = 1/2 whatever the spreads (asymptotically), while staying exact when
the distributions are the same. Not yet the verdicts' test: see docs/statistics.md.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from dqn.stats.decisions import PERMUTATIONS, SEED
from dqn.stats.estimators import finite

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


def studentized_permutation_p(x: object, y: object, n_resamples: int = PERMUTATIONS,
                              seed: int = SEED) -> float:
    """Two-sided p-value of P(improvement of x (n,) over y (m,)) = 1/2 by permuting the
    studentized statistic: exact (every relabelling, by scipy.stats.permutation_test) when
    there are at most n_resamples distinct ones, else a seeded Monte-Carlo estimate
    (1 + #{|T*| >= |T|}) / (n_resamples + 1). NaN below two values a sample."""
    x, y = finite(x), finite(y)
    if x.size < 2 or y.size < 2:
        return math.nan
    result = stats.permutation_test((x, y), bm_statistic, permutation_type="independent",
                                    vectorized=True, n_resamples=n_resamples,
                                    alternative="greater", rng=seed)
    return float(min(1.0, result.pvalue))
