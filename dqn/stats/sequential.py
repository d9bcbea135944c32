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
question tested for equivalence on cap rates (design_family). Each gets alpha / H, spent over
the stages by a Lan-DeMets spending function f(t) of the information fraction t = n_k /
max_seeds: at stage k a test rejects when its p <= (f(t_k) - f(t_{k-1})) / H. By the union
bound over hypotheses and stages, P(any false verdict) <= sum of the levels = alpha, whatever
the correlation between stages and whichever questions stop early: a question's stage-k test
uses exactly the seeds a fixed design of n_k seeds would, so each level holds on its own.
(Bonferroni over stages is conservative next to exact group-sequential boundaries, which would
need the joint null distribution of the permutation statistics across stages.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from dqn.stats import decisions
from dqn.stats.estimators import finite, prob_improvement

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

    def levels(self, hypotheses: int) -> np.ndarray:
        """Each hypothesis's rejection level at each stage (K,), summing to alpha / hypotheses:
        (f(t_k) - f(t_{k-1})) / H with t_k = n_k / max_seeds."""
        t = np.array([0, *self.sizes()]) / self.max_seeds  # (K + 1,)
        f = np.array([spent(float(v), self.alpha, self.spending) for v in t])
        return np.diff(f) / hypotheses

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
    """The permutation p-value of P(improvement) = 1/2 at that test."""
    equivalence_p: float
    """The TOST p-value at that test."""
    level: float
    """The level both were compared with."""


Tests = tuple[Callable[[np.ndarray, np.ndarray], float],
              Callable[[np.ndarray, np.ndarray, float], float]]
TESTS: Tests = (decisions.difference_p, decisions.equivalence_p)


def decide_question(x: Sequence[float], y: Sequence[float], design: Design, hypotheses: int,
                    tests: Tests = TESTS, cap: float | None = None) -> Decision:
    """Run one question's stages on its variant's seeds x and the baseline's y, each in seed
    order (n,) (m,), as far as both reach: the decision, or "open" when the seeds run out
    before one is made (and before the last stage). With a `cap`, equivalence is tested on
    cap rates (dqn.stats.equivalence.cap_rate_equivalence_p)."""
    x, y = finite(x), finite(y)
    difference, equivalence = tests
    if cap is not None:
        def equivalence(a: np.ndarray, b: np.ndarray, margin: float) -> float:
            return decisions.capped_equivalence_p(a, b, cap, margin)
    sizes, levels = design.sizes(), design.levels(hypotheses)
    last = Decision("open", None, 0, math.nan, math.nan, math.nan)
    for k, (n, level) in enumerate(zip(sizes, levels, strict=True), start=1):
        if x.size < n or y.size < n:
            return last
        a, b = x[:n], y[:n]
        p, eq = difference(a, b), equivalence(a, b, design.margin)
        if p <= level:
            word = "better" if prob_improvement(a, b) > 0.5 else "worse"
            return Decision(word, k, n, p, eq, float(level))
        if eq <= level:
            return Decision("equivalent", k, n, p, eq, float(level))
        last = Decision("open" if k < len(sizes) else "inconclusive", None, n, p, eq,
                        float(level))
    return last


def decide_study(samples: Mapping[tuple[str, str], tuple[Sequence[float], Sequence[float]]],
                 design: Design, tests: Tests = TESTS,
                 caps: Mapping[tuple[str, str], float | None] | None = None,
                 ) -> dict[tuple[str, str], Decision]:
    """Every question of a study, keyed (variant, metric) -> (variant seeds, baseline seeds)
    in seed order, decided with one Bonferroni family over the most nulls that can be true at
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

