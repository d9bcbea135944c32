"""Tests behind the verdicts: is a variant's P(improvement) over the baseline different from 1/2?

Pure numpy/scipy, like dqn.stats.estimators. P(improvement) = P(X > Y) + P(X = Y) / 2 for a variant
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

from dqn.stats.estimators import finite, holm, p_greater

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

    if min(x.size, y.size) == 1:  # scipy wants two values a sample: enumerate the N labels
        one, rest = (x, y) if x.size == 1 else (y, x)
        pooled = np.concatenate([one, rest])  # (N,)
        others = np.array([np.delete(pooled, i) for i in range(pooled.size)])  # (N, N - 1)
        d = np.abs(p_greater(pooled[:, None], others) - 0.5)  # (N,) each value as the lone one
        return float(np.mean(d >= d[0] - 1e-12))

    n, m = x.size, y.size
    ranks = stats.rankdata(np.concatenate([x, y]))  # (n + m,) mid-ranks of the pooled seeds

    def distance(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        # P = (R - n (n + 1) / 2) / (n m), R the rank sum of the variant's seeds: the same
        # number as counting pairs, in O(n + m) per relabelling instead of O(n m)
        return np.abs((a.sum(axis) - n * (n + 1) / 2) / (n * m) - 0.5)  # distance from 1/2

    # relabelling the seeds relabels their mid-ranks, which the pooled sample fixes
    result = stats.permutation_test((ranks[:n], ranks[n:]), distance,
                                    permutation_type="independent", vectorized=True,
                                    n_resamples=n_resamples, alternative="greater", rng=seed)
    return float(min(1.0, result.pvalue))


def min_attainable_p(n: int, m: int, n_resamples: int = PERMUTATIONS) -> float:
    """The smallest two-sided p-value permutation_p can give for samples of n and m seeds:
    2 / C(n + m, n) (complete separation, no ties) when it enumerates, 1 / (n_resamples + 1)
    when it samples relabellings. Above the test's level, no verdict other than "too few
    seeds" is possible: 3 seeds against 3 give at best p = 0.1."""
    labellings = math.comb(n + m, n)
    if labellings > n_resamples:
        return 1.0 / (n_resamples + 1)
    return min(1.0, 2.0 / labellings)


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


# --- equivalence ----------------------------------------------------------------------------

MARGIN = 0.15
"""Default equivalence margin: "equivalent" means |P(improvement) - 1/2| < MARGIN."""


def brunner_munzel(x: object, y: object) -> tuple[float, float, float]:
    """P(improvement) of x (n,) over y (m,), its standard error and degrees of freedom, by
    Brunner and Munzel (2000), valid with ties (mid-ranks) and unequal variances.

    With placements a_i = #(y < x_i) + #(y = x_i) / 2 of each x among y, and b_j likewise:

        P = mean(a) / m,   se^2 = var(a) / (n m^2) + var(b) / (m n^2)   (var with ddof 1)
        df = se^4 / ((var(a) / (n m^2))^2 / (n - 1) + (var(b) / (m n^2))^2 / (m - 1))

    NaN for fewer than two values in either sample; se = 0 (and df NaN) when every placement
    is the same, i.e. complete separation or every value tied.
    """
    x, y = finite(x), finite(y)
    n, m = x.size, y.size
    if n < 2 or m < 2:
        return math.nan, math.nan, math.nan
    a = p_greater(x[:, None], y[None, :])  # (n,) placements of x among y, divided by m
    b = p_greater(y[:, None], x[None, :])  # (m,) placements of y among x, divided by n
    va, vb = a.var(ddof=1) / n, b.var(ddof=1) / m
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (n - 1) + vb ** 2 / (m - 1)) if se > 0 else math.nan
    return float(a.mean()), se, float(df)


def equivalence_floor(n: int, m: int, margin: float = MARGIN) -> float:
    """The smallest p-value equivalence_p can give for n and m seeds: (1 - 2 margin)^min(n, m).

    The most equivalent-looking data are all n + m values tied. Under the null
    P(improvement) <= 1/2 - margin the chance of that is at most (1 - 2 margin)^n (x ties
    with a y that always sits at one value with probability 1 - 2 margin, and lies below it
    otherwise), and symmetrically (1 - 2 margin)^m on the other side. No p-value below that
    bound is justified, whatever the t approximation says: 3 seeds give 0.34.
    """
    return float((1 - 2 * margin) ** min(n, m))


def equivalence_p(x: object, y: object, margin: float = MARGIN) -> float:
    """p-value of "|P(improvement of x over y) - 1/2| < margin", by two one-sided
    Brunner-Munzel t-tests (TOST; Munzel and Hauschke 2003 for P with ties):

        p = max(T_{df}.sf((P - (1/2 - margin)) / se), T_{df}.sf(((1/2 + margin) - P) / se)),

    never below equivalence_floor. NaN below two values per sample."""
    x, y = finite(x), finite(y)
    p, se, df = brunner_munzel(x, y)
    if math.isnan(p):
        return math.nan
    if se == 0:  # all tied (P = 1/2) or completely separated (P = 0 or 1)
        tost = 0.0 if abs(p - 0.5) < margin else 1.0
    else:
        tost = max(stats.t.sf((p - (0.5 - margin)) / se, df),
                   stats.t.sf(((0.5 + margin) - p) / se, df))
    return float(max(tost, equivalence_floor(x.size, y.size, margin)))


# --- verdicts -------------------------------------------------------------------------------

TEST = ("two-sided permutation test of P(improvement) = 1/2 and Brunner-Munzel TOST of "
        "|P(improvement) - 1/2| < margin, Holm over the study")
"""What summary.csv's verdict_test column says."""
VERDICTS = ("baseline", "better", "worse", "equivalent", "inconclusive", "too few seeds",
            "no data")


def can_decide(n: int, m: int, family_size: int, alpha: float = ALPHA) -> bool:
    """Whether n vs m seeds can give better/worse at all in a Holm family of family_size
    tests: Holm's first step needs p < alpha / family_size, and permutation_p never goes
    below min_attainable_p (3 vs 3: 0.1, so never)."""
    return n > 0 and m > 0 and family_size * min_attainable_p(n, m) < alpha


def verdict(p_improvement: float, p_adj: float, equivalence_p_adj: float,
            decidable: bool = True, alpha: float = ALPHA) -> str:
    """The verdict word of one comparison from its Holm-adjusted p-values:

    better / worse: the test of P(improvement) = 1/2 rejects (direction from P);
    equivalent: not that, and the equivalence test rejects |P - 1/2| >= margin;
    inconclusive: neither; too few seeds: the seed counts cannot reach better/worse.
    """
    if math.isnan(p_improvement):
        return "no data"
    if not decidable:
        return "too few seeds"
    if p_adj < alpha:
        return "better" if p_improvement > 0.5 else "worse"
    if equivalence_p_adj < alpha:
        return "equivalent"
    return "inconclusive"


def decide(p_improvement: np.ndarray, p: np.ndarray, equivalence_p: np.ndarray,
           n: np.ndarray, m: np.ndarray,
           alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Verdicts of a study's k comparisons (each (k,): a variant against the baseline on one
    metric, with seed counts n and m), under one Holm family of all 2 k tests (the k tests of
    P = 1/2 and the k equivalence tests), so that the chance of any false verdict word in the
    study is at most alpha. NaN p-values (no data) are left out of the family.

    Returns the adjusted p (k,), the adjusted equivalence p (k,) and the words (k,).
    """
    p, equivalence_p = np.asarray(p, dtype=float), np.asarray(equivalence_p, dtype=float)
    k = p.size
    adjusted = holm(np.concatenate([p, equivalence_p]))  # (2k,)
    size = family_size(p, equivalence_p)
    words = [verdict(float(p_improvement[i]), adjusted[i], adjusted[k + i],
                     can_decide(int(n[i]), int(m[i]), size, alpha), alpha) for i in range(k)]
    return adjusted[:k], adjusted[k:], words


def family_size(p: np.ndarray, equivalence_p: np.ndarray) -> int:
    """How many tests a study's Holm family holds: every finite p-value of either kind."""
    return int(np.isfinite(p).sum() + np.isfinite(equivalence_p).sum())
