"""The figures of a study's final scores: per-variant scores, probability of improvement,
the performance profile and, for an adaptive study, the seeds it used (dqn.figures.plots draws them
all)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from dqn.analysis.results import StudyResults
from dqn.analysis.scoring import FINAL_WINDOW
from dqn.base import env_facts
from dqn.figures import style as fs
from dqn.figures.style import CI_TEXT, NORM_TEXT, warn
from dqn.stats.estimators import SEED, finite, profile, profile_band

FIXED_SEEDS = 20
"""The fixed design an adaptive study's seed count is set against (every study's default)."""

def final_scores(study: StudyResults, colours: dict[str, str], out: fs.Output,
                 scores: pd.DataFrame, summary: pd.DataFrame) -> list[Path]:
    """Final-score IQM and CI per variant, every seed as a dot, and the solved threshold."""
    rows = summary[summary["seeds"] > 0].reset_index(drop=True)
    # Mixed environments: seeds and IQMs on the normalised scale (raw returns don't compare).
    col = "final_norm" if study.mixed_env else "final"
    norm = (f", {NORM_TEXT} (the variants run on different environments)"
            if study.mixed_env else "")
    f = fs.Fig(study, "final score per variant", out, height=0.6 * len(rows) + 1.6,
               caption="Final score: mean greedy return over each seed's last "
                       f"{FINAL_WINDOW} evaluations{norm}. Large dot and bar: IQM with its "
                       f"{CI_TEXT}; small dots: single seeds. Right: seeds whose final score "
                       "reaches the solved threshold"
                       + (" of their own environment." + fs.threshold_caption(study)
                          if study.mixed_env else "."))
    ax = f.axes[0]
    jitter = np.random.default_rng(SEED)
    for i, r in rows.iterrows():
        v = r["variant"]
        x = scores.loc[scores["variant"] == v, col].to_numpy(dtype=float)
        ax.scatter(x, i + jitter.uniform(-0.18, 0.18, x.size), s=12, color=colours[v],
                   alpha=0.35, lw=0, label="one seed" if i == 0 else None)
        ax.plot([r[f"{col}_iqm_lo"], r[f"{col}_iqm_hi"]], [i, i], color=colours[v], lw=3.5,
                solid_capstyle="butt")
        ax.plot(r[f"{col}_iqm"], i, "o", color=colours[v], ms=9, mec="white",
                label="IQM with 95% CI" if i == 0 else None)
        if not math.isnan(r["solved_fraction"]):
            solved = round(r["solved_fraction"] * r["seeds"])
            ax.text(1.01, i, f"solved {solved}/{r['seeds']}", transform=ax.get_yaxis_transform(),
                    va="center", fontsize=8.5)
    fs.variant_rows(ax, list(rows["variant"]), study.baseline)
    fs.threshold_line(ax, study, vertical=True)
    fs.span_returns(ax, study, axis="x")
    ax.set_xlabel(f"final score: {fs.eval_label(study)}")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, frameon=False, fontsize=8.5)
    return f.save("final_scores")


def prob_improvement(study: StudyResults, colours: dict[str, str], out: fs.Output,
                     summary: pd.DataFrame) -> list[Path]:
    """P(variant's final score > baseline's) with its CI and verdict, against 0.5."""
    rows = summary[(summary["variant"] != study.baseline) & (summary["seeds"] > 0)]
    rows = rows.reset_index(drop=True)
    score = "normalised final score" if study.mixed_env else "final score"
    norm = (f" (final score {NORM_TEXT}, as the variants run on different environments)"
            if study.mixed_env else "")
    f = fs.Fig(study, f"probability of improvement over {study.baseline}", out,
               height=0.6 * max(1, len(rows)) + 1.4,
               caption="P(improvement): chance that a random seed of the variant gets a "
                       f"higher {score} than a random seed of the baseline{norm} (ties count "
                       "1/2); bar: its 95% Brunner-Munzel interval on the logit scale"
                       + (", repeated over the stages" if study.design is not None else "")
                       + ". Verdicts on final score and on AUC: a studentized permutation "
                       "test of P = 1/2 and an equivalence test, "
                       + ("group-sequential over the stages of the adaptive study"
                          if study.design is not None else "Shaffer-Holm-corrected over the study")
                       + " (README, Verdicts).")
    ax = f.axes[0]
    for i, r in rows.iterrows():
        v = r["variant"]
        ax.plot([r["p_improvement_lo"], r["p_improvement_hi"]], [i, i], color=colours[v],
                lw=3.5, solid_capstyle="butt")
        ax.plot(r["p_improvement"], i, "o", color=colours[v], ms=9, mec="white")
        ax.text(1.01, i, f"{r['verdict']}\nAUC: {r['auc_verdict']}",
                transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    if rows.empty:
        ax.text(0.5, 0.5, "no variant to compare with the baseline", ha="center",
                transform=ax.transAxes)
    fs.variant_rows(ax, list(rows["variant"]), study.baseline)
    ax.axvline(0.5, color="0.45", ls="--", lw=1, label="0.5: no difference")
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"P({score} of variant > {score} of {study.baseline})")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, fontsize=8.5)
    return f.save("prob_improvement")


def performance_profile(study: StudyResults, colours: dict[str, str], out: fs.Output,
                        scores: pd.DataFrame, shown: set[str] | None) -> list[Path] | None:
    """Fraction of seeds whose normalised final score exceeds tau, tau in [0, 1], with a
    pointwise bootstrap band over seeds."""
    known = [v for v in fs.present(study) if study.env_of(v) in env_facts.ENVS]
    if not known:
        envs = study.env_id if not study.mixed_env else sorted(set(study.env_ids.values()))
        warn(f"{study.name}: no return range for env {envs!r}, profile skipped")
        return None
    if study.mixed_env:
        groups: dict[str, list[str]] = {}
        for v in known:
            groups.setdefault(study.env_of(v), []).append(v)
        about = "each variant's own environment's min and max: " + ", ".join(
            f"{env} {env_facts.ENVS[env].min_return:g} to {env_facts.ENVS[env].max_return:g} "
            f"({', '.join(vs)})" for env, vs in groups.items())
    else:
        spec = env_facts.ENVS[study.env_id]
        about = f"{study.env_id}'s min {spec.min_return:g} and max {spec.max_return:g}"
    f = fs.Fig(study, "performance profile of final scores", out,
               caption=f"Normalised final score: (return - min) / (max - min), with {about}. "
                       "A curve further up and right is better; it drops where seeds stop "
                       "scoring above τ. Band: pointwise 95% percentile bootstrap over seeds "
                       "(exact: the resampled count above τ is binomial)."
                       + fs.highlight_caption(shown, len(known))
                       + (fs.threshold_caption(study) if study.mixed_env else ""))
    ax = f.axes[0]
    tau = np.linspace(0, 1, 201)  # (T,)
    for v in sorted(known, key=lambda v: shown is None or v in shown):
        x = finite(scores.loc[scores["variant"] == v, "final_norm"])  # (n,)
        if shown is not None and v not in shown:
            ax.plot(tau, profile(x, tau), color=fs.OTHERS_COLOUR, lw=0.8,
                    drawstyle="steps-post", zorder=1)
            continue
        ax.plot(tau, profile(x, tau), color=colours[v], lw=1.8,
                drawstyle="steps-post", label=f"{fs.label(v, study.baseline)}, {x.size} seeds")
        lo, hi = profile_band(x, tau)
        ax.fill_between(tau, lo, hi, color=colours[v], alpha=0.12, lw=0, step="post")
    if shown is not None:
        ax.plot([], [], color=fs.OTHERS_COLOUR, lw=0.8,
                label=f"{len(known) - len(shown & set(known))} other variants")
    fs.threshold_line(ax, study, vertical=True, normalised=True)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("τ: normalised final score (0 = minimum return, 1 = maximum return)")
    ax.set_ylabel("fraction of seeds with score > τ")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return f.save("performance_profile")


def seeds_used(study: StudyResults, colours: dict[str, str], out: fs.Output,
               summary: pd.DataFrame) -> list[Path] | None:
    """An adaptive study's seeds per variant, with the stage each verdict was reached at."""
    design = study.design
    if design is None:
        return None
    rows = summary.reset_index(drop=True)
    f = fs.Fig(study, "seeds used (adaptive study)", out, height=0.6 * len(rows) + 1.6,
               caption=f"Seeds each variant was trained on: stages of {design.stage} seeds, "
                       f"up to {design.max_seeds}, each variant stopped once both its verdicts "
                       "(final score, AUC) were reached; the baseline gets as many as the "
                       "longest-running variant. Right: each verdict and its stage. Dashed: "
                       f"{FIXED_SEEDS} seeds per variant, the fixed design's default.")
    ax = f.axes[0]
    for i, r in rows.iterrows():
        v = r["variant"]
        ax.barh(i, r["seeds"], color=colours[v], height=0.6)
        if v == study.baseline:
            text = "baseline"
        else:
            text = "\n".join(
                f"{name}: {r[p + 'verdict']}" + (f" at stage {int(r[p + 'decided_stage'])}"
                                                  if not math.isnan(r[p + "decided_stage"])
                                                  else "")
                for p, name in (("", "final"), ("auc_", "AUC")))
        ax.text(1.01, i, text, transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    fs.variant_rows(ax, list(rows["variant"]), study.baseline)
    ax.axvline(FIXED_SEEDS, color="0.45", ls="--", lw=1)
    ax.set_xlim(0, 1.02 * max(design.max_seeds, FIXED_SEEDS))
    ax.set_xlabel(f"seeds trained (total {int(rows['seeds'].sum())}; fixed design: "
                  f"{FIXED_SEEDS * len(rows)})")
    return f.save("seeds_used")
