"""Per-seed scores and per-variant summaries of a study's results (no torch).

Every number the figures, `summary.csv` and `REPORT.md` show comes from here, so one metric
has one definition and one name everywhere:

- final: mean greedy-evaluation return over the last FINAL_WINDOW evaluations of a seed;
- final_norm: final mapped to [0, 1] with the environment's return range (dqn.base.env_facts);
- auc: area under the normalised evaluation curve divided by its step span, in [0, 1];
- steps_to_threshold / reached: first evaluation step at or above the solved threshold
  (NaN and reached=False when never: the seed is censored);
- collapsed: reached the threshold, later fell below half of it on the normalised scale;
- diverged: the seed's loss went NaN/inf.

A study's variants may run on different environments (e.g. CartPole-v0 vs v1): every per-seed
score then uses its variant's own environment, and comparisons across variants use final_norm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.integrate import trapezoid

from dqn.analysis.results import EnvIds, StudyResults, env_of, envs_differ
from dqn.analysis.results import load as load_results
from dqn.base import env_facts
from dqn.stats import adaptive_verdicts, decisions
from dqn.stats.estimators import (
    N_RESAMPLES,
    SEED,
    STATISTICS,
    bootstrap_ci,
    finite,
    iqm,
    iqm_difference_ci,
    median_steps_to_threshold,
    prob_improvement,
)
from dqn.stats.sequential import Design
from dqn.store.tables import write_atomic

FINAL_WINDOW = 3
"""A seed's final score is its mean greedy return over this many last evaluations, unless its
study file declares another `final_window` (run.json records it)."""
WINDOWS = (1, 3, 5, 10)
"""The final-score windows of the sensitivity columns (window_<w>_...): the verdict each
would give, beside the declared window's."""

SCORE_COLUMNS = ["variant", "seed", "final", "final_norm", "auc", "steps_to_threshold",
                 "reached", "collapsed", "diverged", "evals", "last_step"]
COMPARISON_COLUMNS = [
    "effect", "effect_lo", "effect_hi", "p_improvement", "p_improvement_lo", "p_improvement_hi",
    "verdict_p", "verdict_p_adj", "equivalence_p", "equivalence_p_adj", "verdict",
    "decided_stage"]
"""Per metric, against the baseline; the AUC's columns are the same names prefixed auc_."""
SUMMARY_COLUMNS = [
    "variant", "seeds", "final_iqm", "final_iqm_lo", "final_iqm_hi", "final_mean",
    "final_mean_lo", "final_mean_hi", "final_norm_iqm", "final_norm_iqm_lo",
    "final_norm_iqm_hi", "solved_fraction", "auc_iqm", "auc_iqm_lo", "auc_iqm_hi",
    "median_steps_to_threshold", "reached", "collapses", "diverged", "compared_on",
    "equivalence_on",
    *COMPARISON_COLUMNS, *(f"auc_{c}" for c in COMPARISON_COLUMNS),
    "design", "verdict_test", "margin", "family_size", "detectable_effect", "underpowered",
    "equivalence_reachable", "baseline_at_ceiling", "complete",
]
CEILING_SHARE = 0.5
"""The baseline is at the ceiling when at least this share of its seeds ends at the maximum."""


def normalise(x: Any, env_id: str | None) -> np.ndarray:
    """Map returns to [0, 1] as (x - min) / (max - min) with the env's return range; NaN for an
    unknown env. (Acrobot's returns are negative, so dividing by the maximum alone would be
    meaningless.)"""
    x = np.asarray(x, dtype=float)
    facts = env_facts.known(env_id)
    if facts is None:
        return np.full_like(x, np.nan)
    return (x - facts.min_return) / (facts.max_return - facts.min_return)


def _seed_scores(curve: pd.DataFrame, env_id: str | None, window: int) -> dict[str, Any]:
    steps = curve["env_step"].to_numpy(dtype=float)  # (E,) evaluation steps
    ret = curve["return"].to_numpy(dtype=float)  # (E,)
    norm = normalise(ret, env_id)  # (E,)
    last = ret[-window:]
    final = float(np.nanmean(last)) if np.isfinite(last).any() else math.nan
    ok = np.isfinite(norm)
    if ok.sum() >= 2 and steps[ok][-1] > steps[ok][0]:
        auc = float(trapezoid(norm[ok], steps[ok]) / (steps[ok][-1] - steps[ok][0]))
    else:
        auc = float(norm[ok][0]) if ok.any() else math.nan
    facts = env_facts.known(env_id)
    reached_at = math.nan
    collapsed = False
    if facts is not None:
        hit = np.flatnonzero(ret >= facts.threshold)
        if hit.size:
            reached_at = float(steps[hit[0]])
            # "Half the threshold" on the normalised scale, so it means the same for
            # Acrobot's negative returns (threshold -100 -> 0.8, half -> 0.4, i.e. -300) as
            # for CartPole (475 -> 237.5).
            half = 0.5 * float(normalise(facts.threshold, env_id))
            collapsed = bool(np.any(norm[hit[0] + 1:] < half))
    diverged = bool(curve["diverged"].astype(bool).any()) if "diverged" in curve else False
    return {
        "final": final,
        "final_norm": float(normalise(final, env_id)),
        "auc": auc,
        "steps_to_threshold": reached_at,
        "reached": not math.isnan(reached_at),
        "collapsed": collapsed,
        "diverged": diverged,
        "evals": len(curve),
        "last_step": float(steps[-1]) if steps.size else math.nan,
    }


def run_scores(evals: pd.DataFrame, env_ids: EnvIds, window: int | None = None
               ) -> pd.DataFrame:
    """One row per (variant, seed): the per-run scores defined in this module's docstring,
    the final score over the last `window` evaluations (None: FINAL_WINDOW).

    `env_ids` is the study's environment, or a variant -> environment mapping.
    """
    window = FINAL_WINDOW if window is None else window
    rows = []
    for (variant, seed), curve in evals.groupby(["variant", "seed"], sort=False):
        curve = curve.sort_values("env_step", kind="stable")
        rows.append({"variant": variant, "seed": seed,
                     **_seed_scores(curve, env_of(env_ids, variant), window)})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def study_scores(study: StudyResults, window: int | None = None) -> pd.DataFrame:
    """run_scores of a loaded study over its declared final window (or `window`), with
    run.json's diverged_seeds folded into `diverged`."""
    if study.evals is None:
        return pd.DataFrame(columns=SCORE_COLUMNS)
    scores = run_scores(study.evals, study.envs, window or study.final_window)
    for v, info in study.variant_runs().items():
        flagged = scores["variant"].eq(v) & scores["seed"].isin(info.get("diverged_seeds", []))
        scores.loc[flagged, "diverged"] = True
    return scores


def _ci_columns(prefix: str, x: np.ndarray, stat: str, n_resamples: int,
                seed: int) -> dict[str, float]:
    lo, hi = bootstrap_ci(x, stat, n_resamples=n_resamples, seed=seed)
    value = float(STATISTICS[stat][0](x)) if x.size else math.nan
    return {prefix: value, f"{prefix}_lo": lo, f"{prefix}_hi": hi}


def _compare(x: np.ndarray, y: np.ndarray, margin: float, n_resamples: int,
             seed: int, cap: float | None = None) -> dict[str, float]:
    """A variant's seeds x (n,) against the baseline's y (m,) on one metric: the IQM
    difference with its bootstrap CI, P(improvement) with the Brunner-Munzel interval the
    tests agree with (dqn.stats.equivalence.prob_improvement_interval), and both tests' raw
    p-values (the
    equivalence test on cap rates when the metric has a `cap` good seeds reach)."""
    lo, hi = iqm_difference_ci(x, y, n_resamples=n_resamples, seed=seed)
    p_lo, p_hi = decisions.prob_improvement_interval(x, y)
    return {"effect": float(iqm(x) - iqm(y)), "effect_lo": lo, "effect_hi": hi,
            "p_improvement": prob_improvement(x, y), "p_improvement_lo": p_lo,
            "p_improvement_hi": p_hi, "verdict_p": decisions.difference_p(x, y),
            "equivalence_p": decisions.capped_equivalence_p(x, y, cap, margin)}


def final_cap(compared_on: str, env_ids: EnvIds, variant: str, baseline: str) -> float | None:
    """The cap of the final-score comparison of `variant` with `baseline`: the maximum return
    (1 on the normalised scale) when both environments are capped (dqn.base.env_facts),
    else None."""
    facts = [env_facts.known(env_of(env_ids, v)) for v in (variant, baseline)]
    if not all(f is not None and f.capped for f in facts):
        return None
    return 1.0 if compared_on == "final_norm" else facts[0].max_return  # type: ignore[union-attr]


def _describe(s: pd.DataFrame, facts: env_facts.EnvFacts | None, n_resamples: int,
              seed: int) -> dict[str, Any]:
    """The per-variant columns that need no baseline."""
    final = finite(s["final"])
    row: dict[str, Any] = {"seeds": len(s)}
    row.update(_ci_columns("final_iqm", final, "iqm", n_resamples, seed))
    row.update(_ci_columns("final_mean", final, "mean", n_resamples, seed))
    row.update(_ci_columns("final_norm_iqm", finite(s["final_norm"]), "iqm", n_resamples, seed))
    row["solved_fraction"] = (float(np.mean(final >= facts.threshold))
                              if facts is not None and facts.solvable and final.size
                              else math.nan)
    row.update(_ci_columns("auc_iqm", finite(s["auc"]), "iqm", n_resamples, seed))
    row["median_steps_to_threshold"] = median_steps_to_threshold(
        s["steps_to_threshold"], s["reached"])
    row["reached"] = int(s["reached"].sum())
    row["collapses"] = int(s["collapsed"].sum())
    row["diverged"] = int(s["diverged"].sum())
    return row


def summarize_scores(scores: pd.DataFrame, variants: Sequence[str], baseline: str | None,
                     env_ids: EnvIds, incomplete_variants: set[str] | None = None,
                     n_resamples: int = N_RESAMPLES, seed: int = SEED,
                     margin: float = decisions.MARGIN,
                     design: Design | None = None) -> pd.DataFrame:
    """One row per variant (in `variants` order) from run_scores' per-seed rows.

    `env_ids` as for run_scores. Every variant is compared with the baseline on its final
    score and on its AUC; when the variants' environments differ, the final-score comparison
    uses final_norm instead of raw final returns (column `compared_on`). The verdicts of all
    comparisons of the study form one Shaffer-type Holm family (dqn.stats.decisions.decide);
    with the `design` of an adaptive study they are its group-sequential decisions instead
    (dqn.stats.adaptive_verdicts).
    """
    compared_on = "final_norm" if envs_differ(env_ids) else "final"
    metrics = {"": compared_on, "auc_": "auc"}  # column prefix -> per-seed score
    incomplete_variants = incomplete_variants or set()
    base = scores[scores["variant"] == baseline]
    rows = []
    for v in variants:
        s = scores[scores["variant"] == v]
        row = {"variant": v, **_describe(s, env_facts.known(env_of(env_ids, v)), n_resamples,
                                         seed), "compared_on": compared_on}
        cap = final_cap(compared_on, env_ids, v, baseline) if baseline is not None else None
        row["equivalence_on"] = "P(improvement)" if cap is None else "cap rate"
        for prefix, metric in metrics.items():
            x, y = finite(s[metric]), finite(base[metric])
            if v != baseline and x.size and y.size:
                row.update({prefix + k: val for k, val in _compare(
                    x, y, margin, n_resamples, seed, cap if prefix == "" else None).items()})
        row["complete"] = len(s) > 0 and v not in incomplete_variants
        rows.append(row)
    out = pd.DataFrame(rows).reindex(columns=SUMMARY_COLUMNS)
    _decide(out, baseline, len(base), margin)
    if design is not None and baseline is not None:
        decided = adaptive_verdicts.decide(scores, variants, baseline, compared_on, design,
                                           cap=final_cap(compared_on, env_ids, baseline,
                                                         baseline))
        adaptive_verdicts.fill_summary(out, decided, design, compared_on, len(base))
    out["baseline_at_ceiling"] = at_ceiling(base["final_norm"])
    return out


def _decide(out: pd.DataFrame, baseline: str | None, m: int, margin: float) -> None:
    """Fill the verdict, adjusted-p and power columns of a summary in place."""
    k = len(out)
    prefixes = ("", "auc_")
    p_imp = np.concatenate([out[f"{p}p_improvement"].to_numpy(float) for p in prefixes])
    raw = np.concatenate([out[f"{p}verdict_p"].to_numpy(float) for p in prefixes])
    eq = np.concatenate([out[f"{p}equivalence_p"].to_numpy(float) for p in prefixes])
    n = np.tile(out["seeds"].to_numpy(int), 2)
    exclusive = exclusive_pairs(out)
    adj, eq_adj, words = decisions.decide(p_imp, raw, eq, n, np.full_like(n, m),
                                          exclusive=exclusive)
    size = decisions.family_size(raw, eq, exclusive)
    level = decisions.ALPHA / max(size, 1)  # the family's first step: the hardest to pass
    for i, p in enumerate(prefixes):
        block = slice(i * k, (i + 1) * k)
        out[f"{p}verdict_p_adj"] = adj[block]
        out[f"{p}equivalence_p_adj"] = eq_adj[block]
        out[f"{p}verdict"] = words[block]
    out["design"] = "fixed"
    out["verdict_test"] = decisions.TEST
    out["margin"] = margin
    out["family_size"] = size
    out["detectable_effect"] = [
        decisions.detectable_effect(int(s), m, level) if s > 0 and m > 0 else math.nan
        for s in out["seeds"]]
    out["underpowered"] = out["detectable_effect"].gt(margin) | out["detectable_effect"].isna()
    out["equivalence_reachable"] = [
        decisions.equivalence_reachable(int(s), m, level, margin, on == "cap rate")
        for s, on in zip(out["seeds"], out["equivalence_on"], strict=True)]
    is_base = out["variant"] == baseline
    for p in prefixes:
        out.loc[is_base, f"{p}verdict"] = "baseline"
    out.loc[is_base, ["detectable_effect", "underpowered", "equivalence_reachable"]] = [
        math.nan, False, False]
    out.loc[out["seeds"] == 0, ["verdict", "auc_verdict"]] = "no data"


def exclusive_pairs(summary: pd.DataFrame) -> np.ndarray:
    """(2 k,) per comparison of a summary (final scores, then AUCs): whether its two nulls
    exclude each other (dqn.stats.decisions.shaffer). They do for P(improvement) = 1/2 against
    |P - 1/2| >= margin, not for a cap-rate equivalence test."""
    on = summary.get("equivalence_on", pd.Series("P(improvement)", index=summary.index))
    final = on.ne("cap rate").to_numpy(bool)
    return np.concatenate([final, np.ones(len(summary), bool)])


def at_ceiling(final_norm: Any) -> bool:
    """Whether at least CEILING_SHARE of the seeds end at the environment's maximum return
    (normalised final score 1), where final scores can only show a variant worse."""
    x = finite(final_norm)
    return bool(x.size) and float(np.mean(x >= 1 - 1e-9)) >= CEILING_SHARE


def summarize(study: StudyResults | Path, n_resamples: int = N_RESAMPLES,
              seed: int = SEED, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per variant of a study's results (baseline first); see SUMMARY_COLUMNS.
    `study` is loaded results or a results/<study>/ directory; `scores` its study_scores
    when already computed."""
    if not isinstance(study, StudyResults):
        study = load_results(study)
    if scores is None:
        scores = study_scores(study)
    return summarize_scores(scores, study.variants, study.baseline, study.envs,
                            study.incomplete_variants, n_resamples, seed, study.margin,
                            study.design)


def write_summary(study_dir: Path, summary: pd.DataFrame | None = None,
                  n_resamples: int = N_RESAMPLES) -> Path:
    """Write results/<study>/summary.csv atomically (computing the summary unless given)."""
    if summary is None:
        summary = summarize(Path(study_dir), n_resamples)
    return write_atomic(Path(study_dir) / "summary.csv",
                        lambda tmp: summary.to_csv(tmp, index=False, float_format="%.6g"))
