"""How much the final-score verdicts depend on the final-score window (no torch).

A study declares its final window (study-file key `final_window`, default
dqn.analysis.scoring.FINAL_WINDOW = 3 evaluations) before it runs; its verdicts use that window.
This module re-decides the final-score comparisons of a study with the last 1, 3, 5 and 10
evaluations (scoring.WINDOWS) and everything else as the summary has it: the same tests, the
same family (the AUC comparisons keep their p-values, which no window changes), the same
design for an adaptive study. A verdict that moves with the window rests on the choice of
window, not only on the data; results/window_sensitivity.csv and REPORT.md count them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dqn.analysis.results import StudyResults, envs_differ
from dqn.analysis.scoring import (
    FINAL_WINDOW,
    WINDOWS,
    exclusive_pairs,
    final_cap,
    study_scores,
)
from dqn.stats import adaptive_verdicts, decisions
from dqn.stats.estimators import finite, prob_improvement

COLUMNS = ["variant", "window", "declared", "p_improvement", "verdict_p", "verdict_p_adj",
           "verdict", "changed"]
"""windows.csv: one row per variant (not the baseline) and window; `declared` marks the
study's own window, `changed` a verdict that differs from the declared window's."""


def declared_window(study: StudyResults) -> int:
    """The final window the study declared (FINAL_WINDOW when it declared none)."""
    return int(study.final_window or FINAL_WINDOW)


def window_verdicts(study: StudyResults, summary: pd.DataFrame, window: int) -> pd.DataFrame:
    """The final-score comparisons re-decided with a `window`-evaluation final score: per
    variant but the baseline, its P(improvement), the difference test's raw and adjusted p and
    the verdict, in the summary's variant order."""
    scores = study_scores(study, window)
    compared_on = "final_norm" if envs_differ(study.envs) else "final"
    base = finite(scores.loc[scores["variant"] == study.baseline, compared_on])
    final = summary.copy()
    for i, v in final["variant"].items():
        if v == study.baseline or final.loc[i, "seeds"] == 0:
            continue
        x = finite(scores.loc[scores["variant"] == v, compared_on])
        cap = final_cap(compared_on, study.envs, v, study.baseline)
        final.loc[i, "p_improvement"] = prob_improvement(x, base)
        final.loc[i, "verdict_p"] = decisions.difference_p(x, base)
        final.loc[i, "equivalence_p"] = decisions.capped_equivalence_p(x, base, cap,
                                                                       study.margin)
    k = len(final)
    p_imp = np.concatenate([final["p_improvement"], final["auc_p_improvement"]]).astype(float)
    raw = np.concatenate([final["verdict_p"], final["auc_verdict_p"]]).astype(float)
    eq = np.concatenate([final["equivalence_p"], final["auc_equivalence_p"]]).astype(float)
    n = np.tile(final["seeds"].to_numpy(int), 2)
    adj, _, words = decisions.decide(p_imp, raw, eq, n, np.full_like(n, base.size),
                                     exclusive=exclusive_pairs(final))
    final["verdict_p_adj"], final["verdict"] = adj[:k], words[:k]
    if study.design is not None and study.baseline is not None:
        decided = adaptive_verdicts.decide(
            scores, study.variants, study.baseline, compared_on, study.design,
            cap=final_cap(compared_on, study.envs, study.baseline, study.baseline))
        for i, v in final["variant"].items():
            d = decided.get((v, compared_on))
            if d is not None and final.loc[i, "seeds"] > 0:
                final.loc[i, ["p_improvement", "verdict_p", "verdict"]] = [
                    d.p_improvement, d.p, d.verdict]
                final.loc[i, "verdict_p_adj"] = adaptive_verdicts.adjusted(
                    d.p, d.level, study.design.alpha)
    keep = final["variant"].ne(study.baseline) & final["seeds"].gt(0)
    return final.loc[keep, ["variant", "p_improvement", "verdict_p", "verdict_p_adj",
                            "verdict"]].reset_index(drop=True)


def window_table(study: StudyResults, summary: pd.DataFrame) -> pd.DataFrame:
    """windows.csv's rows (COLUMNS) for every window of scoring.WINDOWS and the declared one;
    the declared window's rows are the summary's own final-score columns."""
    declared = declared_window(study)
    keep = summary["variant"].ne(study.baseline) & summary["seeds"].gt(0)
    own = summary.loc[keep, ["variant", "p_improvement", "verdict_p", "verdict_p_adj",
                             "verdict"]].reset_index(drop=True)
    if own.empty or study.baseline is None:
        return pd.DataFrame(columns=COLUMNS)
    parts = []
    for w in sorted({*WINDOWS, declared}):
        part = own.copy() if w == declared else window_verdicts(study, summary, w)
        part.insert(1, "window", w)
        part.insert(2, "declared", w == declared)
        part["changed"] = part["verdict"].to_numpy() != own["verdict"].to_numpy()
        parts.append(part)
    return pd.concat(parts, ignore_index=True)[COLUMNS]
