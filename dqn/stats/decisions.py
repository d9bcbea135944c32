"""The verdicts: from a study's p-values to its words. Pure numpy/scipy.

P(improvement) = P(X > Y) + P(X = Y) / 2 for a variant seed X and a baseline seed Y (Agarwal
et al. 2021). A comparison is tested twice: is P different from 1/2 (dqn.stats.studentized,
valid whatever the spreads), and is the variant within the margin of the baseline
(dqn.stats.equivalence). A study's tests form one Shaffer-type Holm family (shaffer): a
comparison's "P = 1/2" and "|P - 1/2| >= margin" cannot both be true, so at most one null per
comparison counts.

permutation_p, the plain permutation test of P (exact for "same distribution", too liberal
when spreads differ), is kept for reference and for the tests that show why it was replaced.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from dqn.stats.equivalence import (  # noqa: F401  (re-exported: the verdicts' tests)
    MARGIN,
    brunner_munzel,
    cap_rate_equivalence_p,
    cap_rate_margin,
    capped_equivalence_p,
    equivalence_floor,
    equivalence_p,
    equivalence_reachable,
    prob_improvement_interval,
)
from dqn.stats.estimators import finite, p_greater
from dqn.stats.studentized import (  # noqa: F401
    PERMUTATIONS,
    SEED,
    min_attainable_p,
    studentized_permutation_p,
)

difference_p = studentized_permutation_p
"""The verdicts' test of P(improvement) = 1/2."""
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


# --- verdicts -------------------------------------------------------------------------------

TEST = ("two-sided studentized permutation test of P(improvement) = 1/2; equivalence: "
        "Brunner-Munzel TOST of |P(improvement) - 1/2| < margin on the logit scale, on "
        "capped final scores also an exact test of cap rates within 2 x margin; Shaffer-type "
        "Holm over the study")
"""What summary.csv's verdict_test column says."""
VERDICTS = ("baseline", "better", "worse", "equivalent", "inconclusive", "too few seeds",
            "no data")


def can_decide(n: int, m: int, family_size: int, alpha: float = ALPHA) -> bool:
    """Whether n vs m seeds can give better/worse at all in a family whose first step is
    alpha / family_size: the difference test never goes below min_attainable_p (3 vs 3:
    0.1, so never), and needs two seeds a side."""
    return n > 1 and m > 1 and max(family_size, 1) * min_attainable_p(n, m) < alpha


def verdict(p_improvement: float, p_adj: float, equivalence_p_adj: float,
            decidable: bool = True, alpha: float = ALPHA) -> str:
    """The verdict word of one comparison from its adjusted p-values:

    better / worse: the test of P(improvement) = 1/2 rejects (direction from P);
    equivalent: not that, and the equivalence test rejects "differs by the margin or more";
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


def shaffer(p: np.ndarray, eq_p: np.ndarray,
            exclusive: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Shaffer-type Holm adjusted p-values of k comparisons' two tests each, p (k,) and
    eq_p (k,) (NaN: no test, left out). Where a comparison's two nulls exclude each
    other (exclusive (k,), default all: P = 1/2 and |P - 1/2| >= margin cannot both hold),
    at most one of them is true, so a step's multiplier counts such a pair once:

        t_i = sum over comparisons of (min(1, u_c) if exclusive_c else u_c),
        u_c = the comparison's tests not among the i - 1 smallest p-values,
        adjusted p_(i) = max_{j <= i} min(1, t_j p_(j))

    (Shaffer 1986, method S1: t_i is the most nulls that can be true once the smaller ones
    are false). With no exclusive pair it is Holm's procedure.
    """
    p, eq_p = np.asarray(p, float), np.asarray(eq_p, float)
    k = p.size
    exclusive = np.ones(k, bool) if exclusive is None else np.asarray(exclusive, bool)
    values = np.concatenate([p, eq_p])  # (2k,)
    pair = np.tile(np.arange(k), 2)  # (2k,) which comparison each test belongs to
    left = np.bincount(pair[np.isfinite(values)], minlength=k)  # (k,) tests still in
    adjusted = np.full(2 * k, np.nan)
    running = 0.0
    for i in np.argsort(np.where(np.isfinite(values), values, np.inf), kind="stable"):
        if not np.isfinite(values[i]):
            break
        t = np.where(exclusive, np.minimum(left, 1), left).sum()
        running = max(running, min(1.0, t * values[i]))
        adjusted[i] = running
        left[pair[i]] -= 1
    return adjusted[:k], adjusted[k:]


def decide(p_improvement: np.ndarray, p: np.ndarray, eq_p: np.ndarray,
           n: np.ndarray, m: np.ndarray, alpha: float = ALPHA,
           exclusive: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Verdicts of a study's k comparisons (each (k,): a variant against the baseline on one
    metric, with seed counts n and m), under one Shaffer-type Holm family of their 2 k tests
    (shaffer; `exclusive` as there), so that the chance of any false verdict word in the
    study is at most alpha. NaN p-values (no data) are left out of the family.

    Returns the adjusted p (k,), the adjusted equivalence p (k,) and the words (k,).
    """
    p, eq_p = np.asarray(p, dtype=float), np.asarray(eq_p, dtype=float)
    k = p.size
    adj, eq_adj = shaffer(p, eq_p, exclusive)
    size = family_size(p, eq_p, exclusive)
    words = [verdict(float(p_improvement[i]), adj[i], eq_adj[i],
                     can_decide(int(n[i]), int(m[i]), size, alpha), alpha) for i in range(k)]
    return adj, eq_adj, words


def family_size(p: np.ndarray, eq_p: np.ndarray,
                exclusive: np.ndarray | None = None) -> int:
    """The first step's multiplier of a study's family (shaffer's t_1): the most of its
    tests that can be true nulls at once, one per comparison whose two nulls exclude each
    other, two otherwise."""
    finite_p = np.isfinite(np.asarray(p, float)).astype(int)
    finite_eq = np.isfinite(np.asarray(eq_p, float)).astype(int)
    both = finite_p + finite_eq  # (k,)
    exclusive = np.ones(both.size, bool) if exclusive is None else np.asarray(exclusive, bool)
    return int(np.where(exclusive, np.minimum(both, 1), both).sum())
