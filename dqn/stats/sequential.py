"""Group-sequential verdicts for adaptive studies: add seeds in stages, stop once decided.

Pure numpy/scipy, like dqn.stats.decisions, whose tests it reuses. A *question* is one variant
against the baseline on one metric. At stage k every open question has the first n_k seeds of
its variant and of the baseline (n_k = k * stage, capped at max_seeds), and runs the two tests
of the fixed design on them: the studentized permutation test of P(improvement) = 1/2 (better /
worse) and the equivalence test (dqn.stats.equivalence: P within the margin, or cap rates
within twice it on capped final scores). A question is decided at the first
stage where one of them rejects at that stage's level, and stays open otherwise; what is
still open after the last stage is inconclusive.

Error control. The family holds H hypotheses, the most nulls that can be true at once: one per
question whose two nulls exclude each other (P = 1/2 and |P - 1/2| >= margin), two per
question tested for equivalence on cap rates (design_family). Each test gets alpha / H, spent
over the stages by a Lan-DeMets spending function f(t) of the information fraction
t = n_k / max_seeds, so that the chance of a false verdict is at most alpha / H per hypothesis
and alpha in all (union bound over hypotheses, which holds whichever questions stop early):

- the difference test by exact group-sequential boundaries (boundaries): its stage-k level is
  the nominal p at which the first crossing of |Z| has probability (f(t_k) - f(t_{k-1})) / H,
  with Z_k the test's statistic, asymptotically normal with corr(Z_j, Z_k) = sqrt(n_j / n_k)
  (nested seeds). This uses the correlation between stages, which Bonferroni over stages
  ignores: at the last of ten stages the level is about 2.8x Bonferroni's;
- the equivalence test by Bonferroni over stages, spending late: no alpha goes to a stage
  where equivalence cannot be reached at all (dqn.stats.equivalence.equivalence_reachable,
  e.g. 10 v 10 seeds, whose smallest p is 0.7^10 = 0.028); what those stages would have
  spent goes to the first stage that can reach its level.

After early stopping, P(improvement)'s interval is a repeated confidence interval (Jennison and
Turnbull 1989): the logit Brunner-Munzel interval at the stage's critical value of a 95%
design spent the same way, so it covers the true P with probability >= 95% simultaneously at
every stage, hence whenever the study stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, stats

from dqn.stats import decisions
from dqn.stats.equivalence import equivalence_reachable, prob_improvement_interval
from dqn.stats.estimators import CONFIDENCE, finite, prob_improvement

SPENDING = ("pocock", "obrien_fleming")
"""Lan-DeMets spending functions: Pocock-type spends early (decides big effects at the first
stages), O'Brien-Fleming-type keeps nearly all of alpha for the last stage."""


def spent(t: float, alpha: float = decisions.ALPHA, kind: str = "pocock") -> float:
    """Alpha spent by information fraction t in [0, 1] (Lan and DeMets 1983):

        Pocock-type:          f(t) = alpha ln(1 + (e - 1) t)
        O'Brien-Fleming-type: f(t) = 2 - 2 Phi(z_{1 - alpha/2} / sqrt(t))

    Both give f(0) = 0 and f(1) = alpha.
    """
    if kind not in SPENDING:
        raise ValueError(f"spending {kind!r}: choose from {', '.join(SPENDING)}")
    if t <= 0:
        return 0.0
    if kind == "pocock":
        return float(alpha * math.log(1 + (math.e - 1) * min(t, 1.0)))
    return float(2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / math.sqrt(min(t, 1.0))))


GRID = 2001
"""Grid points per stage of the recursive integration in boundaries."""


@lru_cache(maxsize=64)
def boundaries(t: tuple[float, ...], spend: tuple[float, ...]) -> tuple[float, ...]:
    """Two-sided group-sequential critical values c (K,) at information fractions t (K,),
    increasing in (0, 1], such that a statistic Z, standard normal at each stage with
    corr(Z_j, Z_k) = sqrt(t_j / t_k), first crosses |Z_k| >= c_k at stage k with probability
    spend_k (inf where spend_k = 0). Recursive numerical integration (Armitage, McPherson and
    Rowe 1969; Jennison and Turnbull 2000, ch. 19) of the path S_k = Z_k sqrt(t_k), a Brownian
    motion: the density g_k of S_k on the continuation region (|S_j| < c_j sqrt(t_j), j <= k) is

        g_k(s) = integral g_{k-1}(u) phi((s - u) / d_k) / d_k du,   d_k = sqrt(t_k - t_{k-1}),

    and c_k solves  integral g_{k-1}(u) P(|u + d_k N| >= c_k sqrt(t_k)) du = spend_k.
    """
    c = np.empty(len(t))  # (K,)
    grid = mass = np.empty(0)  # S_{k-1}'s open values and their density x trapezoid weight
    before = 0.0
    for k, (tk, pk) in enumerate(zip(t, spend, strict=True)):
        d = math.sqrt(tk - before)
        if pk <= 0:
            c[k] = math.inf
        elif k == 0:
            c[k] = stats.norm.isf(pk / 2)
        else:
            c[k] = optimize.brentq(_crossing, 0.0, 40.0, args=(tk, d, grid, mass, pk),
                                   xtol=1e-12)
        b = min(c[k], 12.0) * math.sqrt(tk)  # beyond 12 SD the density is nil
        new = np.linspace(-b, b, GRID)  # (GRID,) values of S_k still open
        if k == 0:
            density = stats.norm.pdf(new / d) / d
        else:  # (GRID, GRID) @ (GRID,)
            density = (stats.norm.pdf((new[:, None] - grid[None, :]) / d) / d) @ mass
        weights = np.full(GRID, new[1] - new[0])  # trapezoid rule
        weights[[0, -1]] /= 2
        grid, mass, before = new, weights * density, tk
    return tuple(float(v) for v in c)


def _crossing(ck: float, tk: float, d: float, grid: np.ndarray, mass: np.ndarray,
              target: float) -> float:
    """P(still open before stage k, |S_k| >= ck sqrt(tk)) - target, for brentq."""
    b = ck * math.sqrt(tk)
    tail = stats.norm.cdf((-b - grid) / d) + stats.norm.sf((b - grid) / d)  # (GRID,)
    return float(np.sum(mass * tail)) - target


@dataclass(frozen=True)
class Design:
    """How an adaptive study adds seeds and spends its error rate."""

    stage: int = 10
    """Seeds added per stage to every open variant."""
    max_seeds: int = 100
    """Seeds per variant after which an open question is inconclusive."""
    alpha: float = decisions.ALPHA
    """Family-wise error rate of the whole study."""
    spending: str = "pocock"
    """Spending function (SPENDING)."""
    margin: float = decisions.MARGIN
    """Equivalence margin on |P(improvement) - 1/2|."""

    def __post_init__(self) -> None:
        for key in ("stage", "max_seeds"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"{key}: {value!r} must be an integer of at least 2 (the "
                                 "tests need two seeds per sample)")
        if self.stage > self.max_seeds:
            raise ValueError(f"stage: {self.stage} seeds is more than max_seeds "
                             f"{self.max_seeds}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha: {self.alpha!r} must lie in (0, 1)")
        if self.spending not in SPENDING:
            raise ValueError(f"spending: {self.spending!r}: choose from {', '.join(SPENDING)}")
        if not 0 < self.margin < 0.5:
            raise ValueError(f"margin: {self.margin!r} must lie in (0, 0.5)")

    def sizes(self) -> list[int]:
        """Seeds per variant at the end of each stage (K,): stage, 2 stage, ..., max_seeds."""
        return [min(k * self.stage, self.max_seeds)
                for k in range(1, math.ceil(self.max_seeds / self.stage) + 1)]

    def fractions(self) -> np.ndarray:
        """Information fraction of each stage (K,): t_k = n_k / max_seeds."""
        return np.array(self.sizes()) / self.max_seeds

    def spent_at(self, alpha: float) -> np.ndarray:
        """alpha spent at each stage (K,): f(t_k) - f(t_{k-1}), summing to alpha."""
        f = [spent(float(v), alpha, self.spending) for v in (0, *self.fractions())]
        return np.diff(f)

    def levels(self, hypotheses: int) -> np.ndarray:
        """The difference test's nominal level at each stage (K,): 2 Phi(-c_k) with c_k the
        exact boundaries of this design's spending of alpha / hypotheses (at stage 1, and
        for one stage, the spent alpha itself; later ones larger)."""
        c = boundaries(tuple(self.fractions()), tuple(self.spent_at(self.alpha) / hypotheses))
        return 2 * stats.norm.sf(np.array(c))

    def equivalence_levels(self, hypotheses: int, cap_rate: bool = False) -> np.ndarray:
        """The equivalence test's level at each stage (K,), summing to alpha / hypotheses
        (Bonferroni over stages): zero at the stages where equivalence cannot reach its level
        (equivalence_reachable, on cap rates when `cap_rate`), whose share goes to the first
        stage that can; all zero if none can."""
        spend = self.spent_at(self.alpha) / hypotheses  # (K,)
        levels = np.zeros_like(spend)
        for k, n in enumerate(self.sizes()):
            if equivalence_reachable(n, n, float(spend[:k + 1].sum()), self.margin, cap_rate):
                levels[k], levels[k + 1:] = spend[:k + 1].sum(), spend[k + 1:]
                break
        return levels

    def ci_quantiles(self, confidence: float = CONFIDENCE) -> np.ndarray:
        """Critical values (K,) of repeated confidence intervals at `confidence`: the exact
        boundaries of 1 - confidence spent the design's way."""
        return np.array(boundaries(tuple(self.fractions()),
                                   tuple(self.spent_at(1 - confidence))))

    def to_dict(self) -> dict[str, object]:
        return {"stage": self.stage, "max_seeds": self.max_seeds, "alpha": self.alpha,
                "spending": self.spending, "margin": self.margin}

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> Design:
        """The design with these fields; ValueError naming an unknown or bad key."""
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown key '{unknown[0]}' (keys: "
                             f"{', '.join(cls.__dataclass_fields__)})")
        return cls(**values)  # type: ignore[arg-type]

    def changes(self, other: Design) -> list[str]:
        """'key: mine -> other' for every field on which `other` differs."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if a[k] != b[k]]


@dataclass(frozen=True)
class Decision:
    """Where one question stands."""

    verdict: str
    """better / worse / equivalent; inconclusive after the last stage; open before it."""
    stage: int | None
    """1-based stage at which it was decided (None: not decided)."""
    seeds: int
    """Seeds per sample the last test used (0: none yet)."""
    p: float
    """The difference test's p-value of P(improvement) = 1/2 at that test."""
    equivalence_p: float
    """The equivalence test's p-value at that test."""
    level: float
    """The level the difference test's p was compared with."""
    equivalence_level: float = math.nan
    """The level the equivalence p was compared with (0 where equivalence is unreachable)."""
    p_improvement: float = math.nan
    """P(improvement) on the seeds of that test."""
    p_improvement_lo: float = math.nan
    """Its repeated confidence interval at that stage (Design.ci_quantiles): lower end."""
    p_improvement_hi: float = math.nan
    """Upper end."""


Tests = tuple[Callable[[np.ndarray, np.ndarray], float],
              Callable[[np.ndarray, np.ndarray, float | None, float], float]]
"""(difference p of x, y; equivalence p of x, y, cap, margin)."""
TESTS: Tests = (decisions.difference_p, decisions.capped_equivalence_p)


def decide_question(x: Sequence[float], y: Sequence[float], design: Design, hypotheses: int,
                    tests: Tests = TESTS, cap: float | None = None) -> Decision:
    """Run one question's stages on its variant's seeds x and the baseline's y, each in seed
    order (n,) (m,), as far as both reach: the decision, or "open" when the seeds run out
    before one is made (and before the last stage). With a `cap`, equivalence is also tested
    on cap rates (dqn.stats.equivalence.capped_equivalence_p)."""
    x, y = finite(x), finite(y)
    difference, equivalence = tests
    sizes, levels = design.sizes(), design.levels(hypotheses)
    eq_levels = design.equivalence_levels(hypotheses, cap_rate=cap is not None)
    quantiles = design.ci_quantiles()
    last = Decision("open", None, 0, math.nan, math.nan, math.nan)
    for k, n in enumerate(sizes, start=1):
        if x.size < n or y.size < n:
            return last
        a, b = x[:n], y[:n]
        p, eq = difference(a, b), equivalence(a, b, cap, design.margin)
        estimate = prob_improvement(a, b)
        lo, hi = prob_improvement_interval(a, b, quantile=float(quantiles[k - 1]))
        if p <= levels[k - 1]:
            verdict = "better" if estimate > 0.5 else "worse"
        elif eq <= eq_levels[k - 1]:
            verdict = "equivalent"
        else:
            verdict = "open" if k < len(sizes) else "inconclusive"
        last = Decision(verdict, None if verdict in ("open", "inconclusive") else k, n, p, eq,
                        float(levels[k - 1]), float(eq_levels[k - 1]), estimate, lo, hi)
        if last.stage is not None:
            return last
    return last


def decide_study(samples: Mapping[tuple[str, str], tuple[Sequence[float], Sequence[float]]],
                 design: Design, tests: Tests = TESTS,
                 caps: Mapping[tuple[str, str], float | None] | None = None,
                 ) -> dict[tuple[str, str], Decision]:
    """Every question of a study, keyed (variant, metric) -> (variant seeds, baseline seeds)
    in seed order, decided with one family over the most nulls that can be true at
    once (design_family); `caps` per question as decide_question's `cap`."""
    caps = caps or {}
    hypotheses = design_family({q: caps.get(q) for q in samples})
    return {q: decide_question(x, y, design, hypotheses, tests, caps.get(q))
            for q, (x, y) in samples.items()}


def design_family(caps: Mapping[tuple[str, str], float | None]) -> int:
    """How many of a study's nulls can be true at once, per question (its cap or None): one
    where the equivalence null excludes the difference null (P = 1/2 against
    |P - 1/2| >= margin), two where equivalence is tested on cap rates."""
    return sum(1 if cap is None else 2 for cap in caps.values())


def seeds_wanted(decided: Mapping[tuple[str, str], Decision], design: Design,
                 baseline: str) -> dict[str, int]:
    """Seeds each variant should have by the end of the next stage: the next stage size for
    a variant with an open question, what it used for one that is decided, and for the
    baseline the most any open variant needs (an empty dict once nothing is open)."""
    sizes = design.sizes()
    wanted: dict[str, int] = {}
    for (variant, _), d in decided.items():
        if d.verdict == "open":
            step = next(s for s in sizes if s > d.seeds)
            wanted[variant] = max(wanted.get(variant, 0), step)
    if wanted:
        wanted[baseline] = max(wanted.values())
    return wanted

