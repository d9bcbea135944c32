"""The figures of a study (seven for an adaptive one), written next to its CSVs (deterministic
PNGs, no torch).

Every figure is titled with the study's name and question, colours one variant the same way in
all figures (baseline black), and uses the metric names of `dqn.scoring`. When the variants run
on different environments, returns are drawn normalised to [0, 1] per environment
(`figure_style.on_common_scale`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from dqn import env_facts
from dqn import figure_style as fs
from dqn.estimators import N_RESAMPLES, SEED, bootstrap_ci, finite, iqm
from dqn.figure_style import CI_TEXT, NORM_TEXT, warn
from dqn.results import StudyResults
from dqn.results import load as load_results
from dqn.schema import TABLES
from dqn.scoring import FINAL_WINDOW, study_scores, summarize, write_summary
from dqn.store import StoreError

FIGURES = ("learning_curves", "per_seed_curves", "final_scores", "prob_improvement",
           "diagnostics", "performance_profile")
"""Every study's figures."""
STUDY_CSVS = tuple(f"{t}.csv" for t in TABLES)
ADAPTIVE_FIGURES = ("seeds_used",)
"""An adaptive study's figures besides."""
FIXED_SEEDS = 20
"""The fixed design an adaptive study's seed count is set against (every study's default)."""


def learning_curves(study: StudyResults, colours: dict[str, str], path: Path,
                    n_resamples: int) -> Path:
    """IQM greedy return vs environment steps per variant with a bootstrap band."""
    caption = f"Line: IQM over seeds at each evaluation; band: {CI_TEXT}."
    if study.mixed_env:
        caption += (f" The variants run on different environments: returns are {NORM_TEXT} "
                    "((return - min) / (max - min))." + fs.threshold_caption(study))
    f = fs.Fig(study, "learning curves (IQM of greedy evaluation return)", caption=caption)
    ax = f.axes[0]
    for v in fs.present(study):
        ev = study.evals[study.evals["variant"] == v]
        steps, mid, lo, hi = [], [], [], []
        for step, g in ev.groupby("env_step"):
            r = finite(g["return"])
            if r.size == 0:
                continue
            a, b = bootstrap_ci(r, "iqm", n_resamples=n_resamples)
            steps.append(step)
            mid.append(float(iqm(r)))
            lo.append(a)
            hi.append(b)
        n = ev["seed"].nunique()
        ax.plot(steps, mid, color=colours[v], lw=2 if v == study.baseline else 1.6,
                label=f"{fs.label(v, study.baseline)}, {n} seeds")
        ax.fill_between(steps, lo, hi, color=colours[v], alpha=0.15, lw=0)
    fs.threshold_line(ax, study)
    fs.steps_axis(ax)
    ax.set_ylabel(fs.eval_label(study))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return f.save(path)


def per_seed_curves(study: StudyResults, colours: dict[str, str], path: Path,
                    scores: pd.DataFrame) -> Path:
    """One thin line per seed, one panel per variant, collapsed seeds drawn bold."""
    variants = fs.present(study)
    ncols = min(3, len(variants))
    nrows = math.ceil(len(variants) / ncols)
    caption = ("Thin lines: one seed each. Bold: seeds that collapsed (reached the solved "
               "threshold, then fell below half of it). x: first evaluation after the seed's "
               "loss diverged (NaN/inf). Dashed: solved threshold.")
    if study.mixed_env:
        caption = (caption[:-1] + " of the panel's environment. Returns are " + NORM_TEXT
                   + ", as the variants run on different environments.")
    f = fs.Fig(study, "greedy return of every seed", nrows, ncols, width=4.2 * ncols + 0.8,
               height=3.2 * nrows, sharex=True, sharey=True, caption=caption)
    for ax, v in zip(f.axes, variants, strict=False):
        ev = study.evals[study.evals["variant"] == v]
        sc = scores[scores["variant"] == v].set_index("seed")
        for seed, g in ev.groupby("seed"):
            g = g.sort_values("env_step")
            bold = bool(sc["collapsed"].get(seed, False))
            ax.plot(g["env_step"], g["return"], color=colours[v], lw=1.5 if bold else 0.7,
                    alpha=0.9 if bold else 0.45)
            if "diverged" in g and g["diverged"].astype(bool).any():
                first = g[g["diverged"].astype(bool)].iloc[0]
                ax.plot(first["env_step"], first["return"], "x", color="#d62728", ms=7, mew=2)
        env = f" ({study.env_of(v)})" if study.mixed_env else ""
        ax.set_title(f"{fs.label(v, study.baseline)}{env}: {len(sc)} seeds, "
                     f"{int(sc['collapsed'].sum())} collapsed, {int(sc['diverged'].sum())} "
                     "diverged", fontsize=9.5)
        fs.threshold_line(ax, study, variants=[v])
        fs.steps_axis(ax)
        ax.set_ylabel(fs.eval_label(study))
        ax.label_outer()
    for ax in f.axes[len(variants):]:
        ax.set_visible(False)
    return f.save(path)


def final_scores(study: StudyResults, colours: dict[str, str], path: Path,
                 scores: pd.DataFrame, summary: pd.DataFrame) -> Path:
    """Final-score IQM and CI per variant, every seed as a dot, and the solved threshold."""
    rows = summary[summary["seeds"] > 0].reset_index(drop=True)
    # Mixed environments: seeds and IQMs on the normalised scale (raw returns don't compare).
    col = "final_norm" if study.mixed_env else "final"
    norm = (f", {NORM_TEXT} (the variants run on different environments)"
            if study.mixed_env else "")
    f = fs.Fig(study, "final score per variant", height=0.6 * len(rows) + 1.6,
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
    ax.set_xlabel(f"final score: {fs.eval_label(study)}")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, frameon=False, fontsize=8.5)
    return f.save(path)


def prob_improvement(study: StudyResults, colours: dict[str, str], path: Path,
                     summary: pd.DataFrame) -> Path:
    """P(variant's final score > baseline's) with its CI and verdict, against 0.5."""
    rows = summary[(summary["variant"] != study.baseline) & (summary["seeds"] > 0)]
    rows = rows.reset_index(drop=True)
    score = "normalised final score" if study.mixed_env else "final score"
    norm = (f" (final score {NORM_TEXT}, as the variants run on different environments)"
            if study.mixed_env else "")
    f = fs.Fig(study, f"probability of improvement over {study.baseline}",
               height=0.6 * max(1, len(rows)) + 1.4,
               caption="P(improvement): chance that a random seed of the variant gets a "
                       f"higher {score} than a random seed of the baseline{norm} (ties count "
                       f"1/2); bar: {CI_TEXT}. Verdicts on final score and on AUC: a "
                       "permutation test of P = 1/2 and an equivalence test, "
                       + ("group-sequential over the stages of the adaptive study"
                          if study.design is not None else "Holm-corrected over the study")
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
    return f.save(path)


def diagnostics(study: StudyResults, colours: dict[str, str], path: Path) -> Path | None:
    """Loss and mean Q of taken actions vs environment steps, mean over seeds per variant."""
    diag = study.diagnostics
    if diag is None or not {"loss", "q_mean", "env_step", "variant"} <= set(diag):
        warn(f"{study.name}: no diagnostics.csv, diagnostics.png skipped")
        return None
    f = fs.Fig(study, "training diagnostics (mean over seeds)", 2, 1, height=6.0, sharex=True,
               caption="Means over each logging interval, then over seeds; NaN/inf values "
                       "(before learning starts, after a seed diverged) are left out. A "
                       "logarithmic axis is used when values span more than two decades.")
    labels = {"loss": "TD loss", "q_mean": "mean Q of taken actions"}
    for ax, col in zip(f.axes, labels, strict=True):
        plotted = [np.empty(0)]
        for v in [v for v in study.variants if v in set(diag["variant"])]:
            d = diag.loc[diag["variant"] == v, ["env_step", col]]
            d = d.assign(**{col: d[col].where(np.isfinite(d[col]))})
            m = d.groupby("env_step")[col].mean().dropna()
            ax.plot(m.index, m.to_numpy(), color=colours[v], lw=1.6,
                    label=fs.label(v, study.baseline))
            plotted.append(m.to_numpy(dtype=float))
        fs.log_scale_if_wide(ax, np.concatenate(plotted))
        ax.set_ylabel(labels[col])
        fs.steps_axis(ax)
    f.axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    f.axes[0].label_outer()
    return f.save(path)


def performance_profile(study: StudyResults, colours: dict[str, str], path: Path,
                        scores: pd.DataFrame) -> Path | None:
    """Fraction of seeds whose normalised final score exceeds tau, tau in [0, 1]."""
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
    f = fs.Fig(study, "performance profile of final scores",
               caption=f"Normalised final score: (return - min) / (max - min), with {about}. "
                       "A curve further up and right is better; it drops where seeds stop "
                       "scoring above τ."
                       + (fs.threshold_caption(study) if study.mixed_env else ""))
    ax = f.axes[0]
    tau = np.linspace(0, 1, 201)
    for v in known:
        x = finite(scores.loc[scores["variant"] == v, "final_norm"])
        ax.plot(tau, (x[None, :] > tau[:, None]).mean(axis=1), color=colours[v], lw=1.8,
                drawstyle="steps-post", label=f"{fs.label(v, study.baseline)}, {x.size} seeds")
    fs.threshold_line(ax, study, vertical=True, normalised=True)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("τ: normalised final score (0 = minimum return, 1 = maximum return)")
    ax.set_ylabel("fraction of seeds with score > τ")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return f.save(path)


def seeds_used(study: StudyResults, colours: dict[str, str], path: Path,
               summary: pd.DataFrame) -> Path | None:
    """An adaptive study's seeds per variant, with the stage each verdict was reached at."""
    design = study.design
    if design is None:
        return None
    rows = summary.reset_index(drop=True)
    f = fs.Fig(study, "seeds used (adaptive study)", height=0.6 * len(rows) + 1.6,
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
    return f.save(path)


def make_figures(study_dir: Path, n_resamples: int = N_RESAMPLES) -> list[Path]:
    """Write summary.csv and the PNGs of results/<study>/; return the files written.

    Gaps in the data are printed as warnings and the figures that need the missing part are
    skipped, so an incomplete study still gets whatever can be drawn.
    """
    study_dir = Path(study_dir)
    if not any((study_dir / name).is_file() for name in ("run.json", *STUDY_CSVS)):
        # never a stray summary.csv in a folder that holds no study
        raise StoreError(f"{study_dir}: no run.json or study CSVs here, so no study's results")
    study = load_results(study_dir)
    for reason in study.incomplete:
        warn(f"{study.name}: {reason}")
    scores = study_scores(study)
    summary = summarize(study, n_resamples, scores=scores)
    written = [write_summary(study_dir, summary=summary)]
    if study.evals is None or not fs.present(study):
        warn(f"{study.name}: no evaluations, figures skipped")
        return written
    colours = fs.variant_colours(study.variants, study.baseline)
    out = {name: study_dir / f"{name}.png" for name in (*FIGURES, *ADAPTIVE_FIGURES)}
    shown = fs.on_common_scale(study)  # eval returns as the curves draw them
    makers: list[Callable[[], Path | None]] = [
        lambda: learning_curves(shown, colours, out["learning_curves"], n_resamples),
        lambda: per_seed_curves(shown, colours, out["per_seed_curves"], scores),
        lambda: final_scores(study, colours, out["final_scores"], scores, summary),
        lambda: prob_improvement(study, colours, out["prob_improvement"], summary),
        lambda: diagnostics(study, colours, out["diagnostics"]),
        lambda: performance_profile(study, colours, out["performance_profile"], scores),
        lambda: seeds_used(study, colours, out["seeds_used"], summary),
    ]
    with sns.axes_style("whitegrid"), plt.rc_context({"axes.titlesize": 10}):
        for make in makers:
            path = make()
            if path is not None:
                written.append(path)
    return written
