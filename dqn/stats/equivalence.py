"""The verdicts' equivalence tests: is a variant within the margin of the baseline? numpy/scipy.

Two outcomes, two tests:
- Scores without a reachable cap (AUCs, Acrobot, LunarLander): P(improvement) within
  1/2 +- margin, by two one-sided Brunner-Munzel t-tests on the logit scale (range-preserving:
  the interval cannot leave (0, 1); Pauly, Asendorf and Konietschke 2016), never below the
  all-tied bound equivalence_floor.
- Final scores of an environment whose return has a cap that good seeds reach (CartPole):
  there the seeds tie at the cap, and the t approximation is far too liberal (with the baseline
  always at the cap, 19 of 20 variant seeds at the cap give t-based p = 4e-5 where the exact
  chance under the null is 7.6e-3). With the baseline at the cap P(improvement) is half the
  variant's cap rate, so the claim also needs the cap rates, the shares of seeds at the cap, to
  differ by less than cap_rate_margin = 2 x margin (30 points at the default margin; the P
  margin's translation when the baseline always reaches the cap), by an exact unconditional
  test (the tail maximised over the unknown common rate, Chan 1998): capped_equivalence_p, an
  intersection-union test of both.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from dqn.stats.estimators import finite, p_greater

MARGIN = 0.15
"""Default equivalence margin: "equivalent" means |P(improvement) - 1/2| < MARGIN."""
NUISANCE_GRID = 2001
"""Values of the unknown cap rate over which the exact test's tail is maximised."""
AT_CAP = 1e-9
"""Relative tolerance of "at the cap"."""


def cap_rate_margin(margin: float = MARGIN) -> float:
    """Equivalence margin on cap rates: 2 x the P(improvement) margin (with the baseline
    always at the cap, P = cap rate / 2, so |P - 1/2| < margin <=> rates within 2 margin)."""
    return 2 * margin


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
    otherwise), and symmetrically (1 - 2 margin)^m on the other side: 3 seeds give 0.34.
    """
    return float((1 - 2 * margin) ** min(n, m))


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def equivalence_p(x: object, y: object, margin: float = MARGIN) -> float:
    """p-value of "|P(improvement of x over y) - 1/2| < margin" for uncapped scores, by two
    one-sided Brunner-Munzel t-tests on the logit scale, theta = log(P / (1 - P)) with
    se_theta = se / (P (1 - P)) (delta method):

        p = max(T_df.sf((theta - logit(1/2 - margin)) / se_theta),
                T_df.sf((logit(1/2 + margin) - theta) / se_theta)),

    never below equivalence_floor; 1 when P is 0 or 1. NaN below two values per sample."""
    x, y = finite(x), finite(y)
    p, se, df = brunner_munzel(x, y)
    if math.isnan(p):
        return math.nan
    if p <= 0 or p >= 1:  # completely separated
        return 1.0
    if se == 0:  # every value tied: P = 1/2
        tost = 0.0 if abs(p - 0.5) < margin else 1.0
    else:
        theta, se_theta = logit(p), se / (p * (1 - p))
        tost = max(stats.t.sf((theta - logit(0.5 - margin)) / se_theta, df),
                   stats.t.sf((logit(0.5 + margin) - theta) / se_theta, df))
    return float(max(tost, equivalence_floor(x.size, y.size, margin)))


def at_cap(x: object, cap: float) -> np.ndarray:
    """Which of the finite scores x (n,) sit at the cap (within AT_CAP relative)."""
    x = finite(x)
    return x >= cap - AT_CAP * max(1.0, abs(cap))


def _wald(n: int, m: int, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """The ordering of every outcome (X, Y) in (n + 1, m + 1): Wald statistics of the two
    one-sided nulls, with rates shrunk to (X + 1/2) / (n + 1) in the standard error so that
    an outcome at 0 or at n still orders by its distance from the margin:

        z_low = (X / n - Y / m + delta) / se,   z_high = (delta - X / n + Y / m) / se
    """
    rx = np.arange(n + 1)[:, None] / n  # (n + 1, 1)
    ry = np.arange(m + 1)[None, :] / m  # (1, m + 1)
    sx, sy = (rx * n + 0.5) / (n + 1), (ry * m + 0.5) / (m + 1)
    se = np.sqrt(sx * (1 - sx) / n + sy * (1 - sy) / m)  # (n + 1, m + 1)
    return (rx - ry + delta) / se, (delta - rx + ry) / se


def _largest_tail(region: np.ndarray, low: np.ndarray, high: np.ndarray, chunk: int = 128
                  ) -> float:
    """max over grid points g of P((X, Y) in region) for X ~ Bin(n, low[g]),
    Y ~ Bin(m, high[g]); region (n + 1, m + 1) of bools, low and high (G,)."""
    n, m = region.shape[0] - 1, region.shape[1] - 1
    best = 0.0
    for start in range(0, low.size, chunk):
        lo, hi = low[start:start + chunk], high[start:start + chunk]
        px = stats.binom.pmf(np.arange(n + 1)[None, :], n, lo[:, None])  # (g, n + 1)
        py = stats.binom.pmf(np.arange(m + 1)[None, :], m, hi[:, None])  # (g, m + 1)
        best = max(best, float(np.einsum("gi,ij,gj->g", px, region, py).max()))
    return best


def cap_rate_equivalence_p(x: object, y: object, cap: float, margin: float = MARGIN) -> float:
    """p-value of "the cap rates of x (n,) and y (m,) differ by less than
    cap_rate_margin(margin)", exact and unconditional (Chan 1998): with X and Y the seeds at
    the cap, delta the rate margin and z_low, z_high the orderings of _wald, two one-sided
    tests, each the largest tail over the null's boundary (where it is largest):

        p_low  = max over s of P(z_low >= observed | rates s - delta, s)   (r_x - r_y <= -delta)
        p_high = max over s of P(z_high >= observed | rates s, s - delta)  (r_x - r_y >= delta)

    s on a grid of NUISANCE_GRID values in [delta, 1]; p = max(p_low, p_high). NaN when a
    sample is empty."""
    a, b = at_cap(x, cap), at_cap(y, cap)
    n, m = a.size, b.size
    if n == 0 or m == 0:
        return math.nan
    delta = cap_rate_margin(margin)
    if delta >= 1:
        return 0.0
    z_low, z_high = _wald(n, m, delta)  # (n + 1, m + 1) each
    i, j = int(a.sum()), int(b.sum())
    s = np.linspace(delta, 1.0, NUISANCE_GRID)  # (G,) the higher of the two boundary rates
    p_low = _largest_tail(z_low >= z_low[i, j] - 1e-12, s - delta, s)
    p_high = _largest_tail(z_high >= z_high[i, j] - 1e-12, s, s - delta)
    return float(min(1.0, max(p_low, p_high)))


def capped_equivalence_p(x: object, y: object, cap: float | None,
                         margin: float = MARGIN) -> float:
    """The verdicts' equivalence p-value: equivalence_p without a cap; with one, the
    intersection-union test of "P(improvement) within the margin AND cap rates within twice
    it": max(equivalence_p, cap_rate_equivalence_p) (each valid for its own null, so the
    maximum is valid for their union). Cap rates alone would call two samples that never reach
    the cap "equivalent" however far apart they are below it."""
    p = equivalence_p(x, y, margin)
    if cap is None:
        return p
    return float(max(p, cap_rate_equivalence_p(x, y, cap, margin)))


def equivalence_reachable(n: int, m: int, level: float, margin: float = MARGIN,
                          cap_rate: bool = False) -> bool:
    """Whether an equivalence test can reach `level` at all with n and m seeds: its smallest
    p-value, of every seed tied (equivalence_floor) and, on cap rates, of every seed at the
    cap, is below it (on cap rates, both: capped_equivalence_p is the larger of the two). The
    difference test's power says nothing about this."""
    if n < 2 or m < 2:
        return False
    best = equivalence_floor(n, m, margin)
    if cap_rate:
        best = max(best, cap_rate_equivalence_p(np.ones(n), np.ones(m), 1.0, margin))
    return bool(best < level)


def prob_improvement_interval(x: object, y: object, confidence: float = 0.95,
                              quantile: float | None = None) -> tuple[float, float]:
    """Confidence interval of P(improvement) of x (n,) over y (m,), the one equivalence_p
    inverts: the logit Brunner-Munzel interval (Pauly, Asendorf and Konietschke 2016)

        expit(theta -+ q se_theta),   q = t_df quantile at 1 - (1 - confidence) / 2,

    (with a normal `quantile` z given instead, q is the t_df quantile of the same tail,
    Phi(-z)), so that a 1 - 2 alpha interval inside 1/2 +- margin is the TOST rejecting at
    alpha. Where the t approximation has nothing to work with, the exact tail bounds of
    equivalence_floor, with k = min(n, m) and tail = (1 - confidence) / 2:
    every value tied: 1/2 -+ (1 - tail^(1/k)) / 2; complete separation (P = 1 or 0):
    [tail^(1/k), 1] or [0, 1 - tail^(1/k)] (k disjoint pairs all ordered has chance P^k).
    (NaN, NaN) below two values per sample."""
    x, y = finite(x), finite(y)
    p, se, df = brunner_munzel(x, y)
    if math.isnan(p):
        return math.nan, math.nan
    tail = (1 - confidence) / 2 if quantile is None else float(stats.norm.sf(quantile))
    bound = tail ** (1 / min(x.size, y.size))
    if p >= 1:
        return bound, 1.0
    if p <= 0:
        return 0.0, 1 - bound
    if se == 0:  # every value tied
        return 0.5 - (1 - bound) / 2, 0.5 + (1 - bound) / 2
    theta, se_theta = logit(p), se / (p * (1 - p))
    q = float(stats.t.isf(tail, df))
    return expit(theta - q * se_theta), expit(theta + q * se_theta)


def expit(theta: float) -> float:
    return float(1 / (1 + math.exp(-theta)))
