"""Claims across many comparisons (numpy/scipy only): false-discovery-rate decisions over a map,
partial-conjunction tests for "in at least u of n cells", and a random-effects pooled effect
across cells. Arrays in, numbers out; no I/O.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from dqn.stats.estimators import finite

Q_FDR = 0.05
"""The false discovery rate the map's BH decisions control."""


def bh_adjust(p: object) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values) of p (k,), NaN kept where p is NaN:

        q_(i) = min_{j >= i} k p_(j) / j   (p sorted ascending, capped at 1)

    Rejecting q <= Q_FDR controls the false discovery rate at Q_FDR for independent or
    positively dependent tests (scipy.stats.false_discovery_control)."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out


def one_sided(p_two_sided: object, p_improvement: object, direction: str) -> np.ndarray:
    """One-sided p-values for "worse" (P(improvement) < 1/2) or "better" from two-sided
    p-values of a test whose null distribution is symmetric (the permutation test with equal
    seed counts): p / 2 when the estimate points that way, else 1 - p / 2. (k,) -> (k,)."""
    p = np.asarray(p_two_sided, dtype=float)
    est = np.asarray(p_improvement, dtype=float)
    if direction not in ("worse", "better"):
        raise ValueError(f"direction must be 'worse' or 'better', not {direction!r}")
    toward = est < 0.5 if direction == "worse" else est > 0.5
    return np.where(toward, p / 2, 1 - p / 2)


def partial_conjunction_p(p: object, u: int) -> float:
    """p-value of "at least u of these n nulls are false" (Benjamini and Heller 2008, Simes
    combination of the n - u + 1 largest p-values):

        p^{u/n} = min_{j = 1..n-u+1} (n - u + 1) / j * p_(u - 1 + j)   (p sorted ascending)

    Valid for independent tests (here: cells of different columns, which share no seeds)."""
    p = np.sort(finite(p))
    n = p.size
    if not 1 <= u <= n:
        raise ValueError(f"u must be in 1..{n}, not {u}")
    tail = p[u - 1:]  # (n - u + 1,) the largest n - u + 1 p-values
    j = np.arange(1, tail.size + 1)
    return float(min(1.0, np.min(tail.size / j * tail)))


def at_least(p: object, alpha: float) -> int:
    """The largest u whose partial-conjunction test rejects at alpha (0 when none does).
    p^{u/n} grows with u, so the claim "in at least u cells" holds for every smaller u too and
    reporting the largest one is a single test at level alpha."""
    n = finite(p).size
    return max((u for u in range(1, n + 1) if partial_conjunction_p(p, u) <= alpha), default=0)


def pooled(estimates: object, se: object, level: float = 0.95) -> dict[str, float]:
    """Random-effects average of k cell estimates (k,) with their standard errors (k,):

        mean   = (1/k) sum y_i                          (equal weights)
        se     = sd(y) / sqrt(k),  CI = mean +- t_{k-1} se
        tau^2  = max(0, var(y) - mean(se_i^2))          (method of moments, equal weights)
        I^2    = tau^2 / (tau^2 + mean(se_i^2))         (share of the spread between cells)

    Equal weights because every cell has the same seed counts, so inverse-variance weights
    would differ only through the estimated variances, which Brunner-Munzel puts at 0 for a
    completely separated cell (P = 0 or 1) and would hand it all the weight. The t interval
    over cells treats the cells as the sample; it needs k >= 2."""
    y, s = np.asarray(estimates, dtype=float), np.asarray(se, dtype=float)
    ok = ~(np.isnan(y) | np.isnan(s))
    y, s = y[ok], s[ok]
    k = y.size
    nan = {"cells": k, "mean": math.nan, "lo": math.nan, "hi": math.nan, "tau2": math.nan,
           "i2": math.nan}
    if k < 2:
        return {**nan, "mean": float(y.mean()) if k else math.nan}
    mean, var = float(y.mean()), float(y.var(ddof=1))
    half = stats.t.ppf(0.5 + level / 2, k - 1) * math.sqrt(var / k)
    within = float(np.mean(s ** 2))
    tau2 = max(0.0, var - within)
    i2 = tau2 / (tau2 + within) if tau2 + within > 0 else 0.0
    return {"cells": k, "mean": mean, "lo": mean - half, "hi": mean + half, "tau2": tau2,
            "i2": i2}
