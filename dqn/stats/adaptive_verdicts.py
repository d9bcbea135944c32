"""The verdicts of an adaptive study, from its per-seed scores (no torch).

An adaptive study (`dqn.run.adaptive`) trains seeds in stages and decides each comparison with the
group-sequential procedure of `dqn.stats.sequential` instead of the fixed design's Shaffer-Holm
family. This module turns per-seed scores into its questions (each variant against the baseline
on the final score and on the AUC, seeds in seed order, so stage k sees seeds 0 .. n_k - 1), decides
them, records them for run.json, and writes them into a summary's verdict columns. Everything
is re-derived from the CSVs with the design run.json records, so `make figures` and `make
report` give the verdicts the run gave.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from dqn.stats import decisions
from dqn.stats.sequential import TESTS, Decision, Design, Tests, decide_study, design_family

PREFIXES = {"": None, "auc_": "auc"}
"""Summary column prefix -> per-seed score (None: the study's final-score metric)."""


def metrics(compared_on: str) -> dict[str, str]:
    """Summary column prefix -> per-seed score compared: the final score ("final", or
    "final_norm" when the variants' environments differ) and the AUC."""
    return {prefix: metric or compared_on for prefix, metric in PREFIXES.items()}


def samples(scores: pd.DataFrame, variants: Sequence[str], baseline: str,
            compared_on: str) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """(variant, metric) -> (the variant's scores (n,), the baseline's (m,)), each in seed
    order, for every variant but the baseline and both metrics."""
    ordered = scores.sort_values(["variant", "seed"], kind="stable")
    out = {}
    for metric in metrics(compared_on).values():
        y = ordered.loc[ordered["variant"] == baseline, metric].to_numpy(float)
        for v in variants:
            if v != baseline:
                out[(v, metric)] = (ordered.loc[ordered["variant"] == v, metric].to_numpy(float),
                                    y)
    return out


def decide(scores: pd.DataFrame, variants: Sequence[str], baseline: str, compared_on: str,
           design: Design, tests: Tests = TESTS,
           cap: float | None = None) -> dict[tuple[str, str], Decision]:
    """Every question of the study decided as far as its seeds reach (dqn.stats.sequential);
    with a `cap` (dqn.analysis.scoring.final_cap), the final score's equivalence test is on
    cap rates (dqn.stats.equivalence)."""
    found = samples(scores, variants, baseline, compared_on)
    capped = {q: cap if q[1] == compared_on else None for q in found}
    return decide_study(found, design, tests, capped)


def record(decided: Mapping[tuple[str, str], Decision], design: Design) -> dict[str, Any]:
    """What run.json's "adaptive" entry holds: the design and, per variant and metric, the
    decision (NaN written as null, which JSON has)."""
    out: dict[str, dict[str, Any]] = {}
    for (variant, metric), d in decided.items():
        out.setdefault(variant, {})[metric] = {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(d).items()}
    return {"design": design.to_dict(), "decisions": out}


def adjusted(p: float, level: float, alpha: float) -> float:
    """A sequential p-value on the fixed design's scale: p * alpha / level, at most 1, where
    level is what p was compared with at its stage. It is below alpha exactly when p <= level
    rejected, so "adj. p < 0.05" reads the same for both designs."""
    if math.isnan(p) or math.isnan(level):
        return math.nan
    if level <= 0:  # a stage that spends nothing on this test (equivalence out of reach)
        return 1.0
    return min(1.0, p * alpha / level)


def fill_summary(out: pd.DataFrame, decided: Mapping[tuple[str, str], Decision],
                 design: Design, compared_on: str, baseline_seeds: int) -> None:
    """Overwrite a summary's verdict columns in place with the sequential decisions: per
    metric the verdict, the stage it was made at (`decided_stage`), the raw p-values of the
    test that made it (or of the last test when none did), those p-values adjusted for the
    levels they met (`adjusted`), and P(improvement) on that test's seeds with its repeated
    confidence interval (valid whenever the question stopped); the power columns use the
    difference test's level."""
    out["design"] = "adaptive"
    out["verdict_test"] = (f"{decisions.TEST.split('; Shaffer')[0]}, group-sequential: stages "
                           f"of {design.stage} seeds up to {design.max_seeds}, "
                           f"{design.spending} alpha spending over the study's possible "
                           "true nulls, exact group-sequential boundaries for the difference "
                           "test, Bonferroni over the stages that can reach it for "
                           "equivalence; P(improvement) intervals are repeated 95% confidence "
                           "intervals")
    capped = out.get("equivalence_on", pd.Series("", index=out.index)).eq("cap rate")
    capped_variants = set(out.loc[capped, "variant"])
    out["family_size"] = design_family({q: 1.0 if q[1] == compared_on and q[0] in capped_variants
                                        else None for q in decided})
    for prefix, metric in metrics(compared_on).items():
        for i, variant in out["variant"].items():
            d = decided.get((variant, metric))
            if d is None or out.loc[i, "seeds"] == 0 or baseline_seeds == 0:
                continue  # the baseline, or no data (the fixed design's words stand)
            out.loc[i, f"{prefix}verdict"] = d.verdict
            out.loc[i, f"{prefix}decided_stage"] = math.nan if d.stage is None else d.stage
            out.loc[i, f"{prefix}verdict_p"] = d.p
            out.loc[i, f"{prefix}equivalence_p"] = d.equivalence_p
            out.loc[i, f"{prefix}verdict_p_adj"] = adjusted(d.p, d.level, design.alpha)
            out.loc[i, f"{prefix}equivalence_p_adj"] = adjusted(
                d.equivalence_p, d.equivalence_level, design.alpha)
            for column in ("p_improvement", "p_improvement_lo", "p_improvement_hi"):
                out.loc[i, f"{prefix}{column}"] = getattr(d, column)
            if prefix == "" and d.seeds > 0 and not math.isnan(d.level):
                effect = decisions.detectable_effect(d.seeds, d.seeds, d.level)
                out.loc[i, "detectable_effect"] = effect
                out.loc[i, "underpowered"] = effect > design.margin
