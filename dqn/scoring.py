"""Per-seed scores and per-variant summaries of a study's results (no torch).

Every number the figures, `summary.csv` and `REPORT.md` show comes from here, so one metric
has one definition and one name everywhere:

- final: mean greedy-evaluation return over the last FINAL_WINDOW evaluations of a seed;
- final_norm: final mapped to [0, 1] with the environment's return range (dqn.env_facts);
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.integrate import trapezoid

from dqn import env_facts
from dqn.estimators import (
    N_RESAMPLES,
    SEED,
    bootstrap_ci,
    finite,
    holm,
    iqm,
    median_steps_to_threshold,
    prob_improvement,
    prob_improvement_ci,
    verdict,
    welch_p,
)
from dqn.results import EnvIds, StudyResults, env_of, envs_differ
from dqn.results import load as load_results
from dqn.tables import write_atomic

FINAL_WINDOW = 3
"""A seed's final score is its mean greedy return over this many last evaluations."""

SCORE_COLUMNS = ["variant", "seed", "final", "final_norm", "auc", "steps_to_threshold",
                 "reached", "collapsed", "diverged", "evals", "last_step"]
SUMMARY_COLUMNS = [
    "variant", "seeds", "final_iqm", "final_iqm_lo", "final_iqm_hi", "final_mean",
    "final_mean_lo", "final_mean_hi", "final_norm_iqm", "final_norm_iqm_lo",
    "final_norm_iqm_hi", "solved_fraction", "auc_iqm", "auc_iqm_lo", "auc_iqm_hi",
    "median_steps_to_threshold", "reached", "collapses", "diverged", "compared_on",
    "p_improvement", "p_improvement_lo", "p_improvement_hi", "welch_p", "welch_p_holm",
    "verdict", "complete",
]


def normalise(x: Any, env_id: str | None) -> np.ndarray:
    """Map returns to [0, 1] as (x - min) / (max - min) with the env's return range; NaN for an
    unknown env. (Acrobot's returns are negative, so dividing by the maximum alone would be
    meaningless.)"""
    x = np.asarray(x, dtype=float)
    facts = env_facts.known(env_id)
    if facts is None:
        return np.full_like(x, np.nan)
    return (x - facts.min_return) / (facts.max_return - facts.min_return)


def _seed_scores(curve: pd.DataFrame, env_id: str | None) -> dict[str, Any]:
    steps = curve["env_step"].to_numpy(dtype=float)  # (E,) evaluation steps
    ret = curve["return"].to_numpy(dtype=float)  # (E,)
    norm = normalise(ret, env_id)  # (E,)
    last = ret[-FINAL_WINDOW:]
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


def run_scores(evals: pd.DataFrame, env_ids: EnvIds) -> pd.DataFrame:
    """One row per (variant, seed): the per-run scores defined in this module's docstring.

    `env_ids` is the study's environment, or a variant -> environment mapping.
    """
    rows = []
    for (variant, seed), curve in evals.groupby(["variant", "seed"], sort=False):
        curve = curve.sort_values("env_step", kind="stable")
        rows.append({"variant": variant, "seed": seed,
                     **_seed_scores(curve, env_of(env_ids, variant))})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def study_scores(study: StudyResults) -> pd.DataFrame:
    """run_scores of a loaded study, with run.json's diverged_seeds folded into `diverged`."""
    if study.evals is None:
        return pd.DataFrame(columns=SCORE_COLUMNS)
    scores = run_scores(study.evals, study.envs)
    for v, info in study.variant_runs().items():
        flagged = scores["variant"].eq(v) & scores["seed"].isin(info.get("diverged_seeds", []))
        scores.loc[flagged, "diverged"] = True
    return scores


def _ci_columns(prefix: str, x: np.ndarray, stat: Callable, n_resamples: int,
                seed: int) -> dict[str, float]:
    lo, hi = bootstrap_ci(x, stat, n_resamples=n_resamples, seed=seed)
    value = float(stat(x)) if x.size else math.nan
    return {prefix: value, f"{prefix}_lo": lo, f"{prefix}_hi": hi}


def summarize_scores(scores: pd.DataFrame, variants: Sequence[str], baseline: str | None,
                     env_ids: EnvIds, incomplete_variants: set[str] | None = None,
                     n_resamples: int = N_RESAMPLES, seed: int = SEED) -> pd.DataFrame:
    """One row per variant (in `variants` order) from run_scores' per-seed rows.

    `env_ids` as for run_scores. When the variants' environments differ, P(improvement) and
    the Welch test compare final_norm instead of raw final returns (column `compared_on`).
    """
    compared_on = "final_norm" if envs_differ(env_ids) else "final"
    incomplete_variants = incomplete_variants or set()
    base = finite(scores.loc[scores["variant"] == baseline, compared_on])
    rows = []
    for v in variants:
        s = scores[scores["variant"] == v]
        facts = env_facts.known(env_of(env_ids, v))
        final = finite(s["final"])
        row: dict[str, Any] = {"variant": v, "seeds": len(s)}
        row.update(_ci_columns("final_iqm", final, iqm, n_resamples, seed))
        row.update(_ci_columns("final_mean", final, np.mean, n_resamples, seed))
        row.update(_ci_columns("final_norm_iqm", finite(s["final_norm"]), iqm, n_resamples,
                               seed))
        row["solved_fraction"] = (float(np.mean(final >= facts.threshold))
                                  if facts is not None and final.size else math.nan)
        row.update(_ci_columns("auc_iqm", finite(s["auc"]), iqm, n_resamples, seed))
        row["median_steps_to_threshold"] = median_steps_to_threshold(
            s["steps_to_threshold"], s["reached"])
        row["reached"] = int(s["reached"].sum())
        row["collapses"] = int(s["collapsed"].sum())
        row["diverged"] = int(s["diverged"].sum())
        is_base = v == baseline
        x = finite(s[compared_on])
        p, (lo, hi), welch = math.nan, (math.nan, math.nan), math.nan
        if not is_base and x.size and base.size:
            p = prob_improvement(x, base)
            lo, hi = prob_improvement_ci(x, base, n_resamples=n_resamples, seed=seed)
            welch = welch_p(x, base)
        row.update(compared_on=compared_on, p_improvement=p, p_improvement_lo=lo,
                   p_improvement_hi=hi, welch_p=welch)
        row["verdict"] = verdict(lo, hi, is_base) if len(s) else "no data"
        row["complete"] = len(s) > 0 and v not in incomplete_variants
        rows.append(row)
    out = pd.DataFrame(rows, columns=[c for c in SUMMARY_COLUMNS if c != "welch_p_holm"])
    # Holm over the non-baseline variants only: the baseline has no test (NaN) and holm()
    # leaves NaNs out of the family size.
    out["welch_p_holm"] = holm(out["welch_p"].to_numpy(dtype=float))
    return out[SUMMARY_COLUMNS]


def summarize(study: StudyResults | Path, n_resamples: int = N_RESAMPLES,
              seed: int = SEED) -> pd.DataFrame:
    """One row per variant of a study's results (baseline first); see SUMMARY_COLUMNS.
    `study` is loaded results or a results/<study>/ directory."""
    if not isinstance(study, StudyResults):
        study = load_results(study)
    return summarize_scores(study_scores(study), study.variants, study.baseline, study.envs,
                            study.incomplete_variants, n_resamples, seed)


def write_summary(study_dir: Path, summary: pd.DataFrame | None = None,
                  n_resamples: int = N_RESAMPLES) -> Path:
    """Write results/<study>/summary.csv atomically (computing the summary unless given)."""
    if summary is None:
        summary = summarize(Path(study_dir), n_resamples)
    return write_atomic(Path(study_dir) / "summary.csv",
                        lambda tmp: summary.to_csv(tmp, index=False, float_format="%.6g"))
