"""Paired-by-seed comparison of two trainings of the same config: is the new one not worse?

When a change alters training numbers on purpose (a faster kernel, say), the same seeds of the
old and the new code are two draws of the same experiment, paired by seed. With per-seed
differences d_i = new_i - old_i on a score (n,), non-inferiority at margin delta tests

    H0: the differences are centred at or below -delta   against   H1: centred above -delta

by the sign-flip permutation test of mean(d + delta): under H0's boundary, d + delta is
symmetric about 0, so each sign pattern is equally likely. The test is exact (all 2^n sign
patterns) up to EXACT_SEEDS seeds and Monte Carlo beyond (seeded). Its one assumption is that
a change shifts the distribution of d without skewing it; at no change at all the old and new
seeds are exchangeable and d is symmetric exactly. Pure numpy/scipy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from dqn.stats.estimators import finite

EXACT_SEEDS = 16
"""Up to this many pairs every sign pattern is enumerated (2^16 = 65,536)."""
MONTE_CARLO = 99_999
"""Sign patterns drawn beyond EXACT_SEEDS (p-values then no smaller than 1e-5)."""
SEED = 0


def _pairs(d: Any) -> np.ndarray | None:
    """The finite paired differences (n,), or None below two pairs."""
    d = finite(d)
    return d if d.size >= 2 else None


def noninferiority_p(d: Any, margin: float, seed: int = SEED) -> float:
    """One-sided p-value of H0: centre of d <= -margin, from paired differences d (n,)
    (NaN pairs dropped; NaN below two pairs)."""
    d = _pairs(d)
    if d is None:
        return float("nan")
    shifted = d + margin  # (n,)
    exact = d.size <= EXACT_SEEDS
    res = stats.permutation_test(
        (shifted,), lambda x, axis: np.mean(x, axis=axis), vectorized=True,
        permutation_type="samples", alternative="greater",
        n_resamples=np.inf if exact else MONTE_CARLO, random_state=seed)
    return float(res.pvalue)


def lower_bound(d: Any, confidence: float = 0.95) -> float:
    """One-sided Student-t lower confidence bound of the mean of d (n,); d's mean when every
    difference is the same."""
    d = _pairs(d)
    if d is None:
        return float("nan")
    sd = d.std(ddof=1)
    if sd == 0:
        return float(d.mean())
    return float(d.mean() - stats.t.ppf(confidence, d.size - 1) * sd / np.sqrt(d.size))


def power_at_no_change(d: Any, margin: float, alpha: float) -> float:
    """Chance the test declares non-inferiority at level alpha when nothing truly changed,
    for this many pairs with the spread (SD) of the observed differences d (n,); normal
    approximation Phi(margin sqrt(n) / sd - z_(1 - alpha)). 1 when every difference is 0."""
    d = _pairs(d)
    if d is None:
        return float("nan")
    sd = d.std(ddof=1)
    if sd == 0:
        return 1.0
    return float(stats.norm.cdf(margin * np.sqrt(d.size) / sd - stats.norm.ppf(1 - alpha)))
