"""results/REPORT.md: every study's question, summary table, figures and provenance (no torch).

The numbers come from `dqn.analysis.scoring` (the same definitions as summary.csv and the
figures); the output depends only on the results directory, so the same results give the same
report.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from dqn.analysis import cache, overview
from dqn.analysis.overview import cell, interval, number, pvalue
from dqn.analysis.results import StudyResults
from dqn.analysis.results import load as load_results
from dqn.analysis.scoring import FINAL_WINDOW
from dqn.atlas import table as atlas_table
from dqn.base.schema import TABLES
from dqn.figures.plots import ADAPTIVE_FIGURES, FIGURES, FIXED_SEEDS
from dqn.report import sensitivity
from dqn.report.words import HOW_TO_READ
from dqn.stats.estimators import N_RESAMPLES
from dqn.stats.sequential import Design
from dqn.store.store import StoreError
from dqn.store.tables import write_atomic

SKIP_DIRS = {"quick", "bench"}
HEADER = [
    "variant", "seeds", "final IQM [95% CI]", "final mean [95% CI]", "solved fraction",
    "AUC IQM [95% CI]", "median steps to threshold", "collapses", "diverged",
    "P(improvement) on final [95% CI]", "adj. p", "verdict on final",
    "P(improvement) on AUC [95% CI]", "adj. p (AUC)", "verdict on AUC",
]
MIXED_ENV_NOTE = (
    "The variants run on different environments, so raw returns do not compare: final IQM and "
    "mean are in each variant's own return units, solved fraction uses each variant's own "
    "threshold, and P(improvement), its verdict and the Welch test compare the **normalised "
    "final score** (return mapped to [0, 1] by each environment's return range), shown in its "
    "own column."
)
NORM_HEADER = "normalised final IQM [95% CI]"


def find_studies(results_dir: Path) -> list[Path]:
    """Subdirectories holding run.json or a results CSV, by name, without quick/ and bench/."""
    found = []
    for d in sorted(Path(results_dir).iterdir()):
        if not d.is_dir() or d.name in SKIP_DIRS or d.name.startswith("."):
            continue
        if (d / "run.json").exists() or any((d / f"{n}.csv").exists() for n in TABLES):
            found.append(d)
    return found


def summary_table(summary: pd.DataFrame, baseline: str | None) -> list[str]:
    """Markdown table lines for a scoring.summarize() frame.

    When the comparisons are on normalised scores (mixed environments), a column with the
    normalised final IQM follows the raw final mean.
    """
    normalised = "compared_on" in summary and bool((summary["compared_on"] == "final_norm").any())
    header = HEADER[:4] + [NORM_HEADER] + HEADER[4:] if normalised else HEADER
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in summary.iterrows():
        name = r["variant"]
        if name == baseline:
            name = f"**{name}**" + (" (baseline)" if name != "baseline" else "")
        if not r["complete"]:
            name += " (incomplete)"
        steps = r["median_steps_to_threshold"]
        has = r["seeds"] > 0
        cells = [
            name, str(r["seeds"]), interval(r, "final_iqm", ".1f"),
            interval(r, "final_mean", ".1f"),
            number(r["solved_fraction"], ".2f"), interval(r, "auc_iqm", ".2f"),
            (f"{steps:,.0f}" if not math.isnan(steps) else "not reached") if has else "—",
            str(r["collapses"]) if has else "—", str(r["diverged"]) if has else "—",
            "—" if r["variant"] == baseline else interval(r, "p_improvement", ".2f"),
            pvalue(r["verdict_p_adj"]), f"*{r['verdict']}*",
            "—" if r["variant"] == baseline else interval(r, "auc_p_improvement", ".2f"),
            pvalue(r["auc_verdict_p_adj"]), f"*{r['auc_verdict']}*",
        ]
        if normalised:
            cells.insert(4, interval(r, "final_norm_iqm", ".3f"))
        lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    return lines


def _values(study: StudyResults, key: str) -> list[str]:
    """Distinct run.json values of one per-variant field, in variant order."""
    infos = study.variant_runs().values()
    return list(dict.fromkeys(str(i.get(key)) for i in infos if i.get(key) is not None))


def _environments(study: StudyResults) -> str:
    """'Environment X', or each environment with its variants when they differ."""
    if not study.mixed_env:
        return f"Environment {study.env_id or 'unknown'}"
    groups: dict[str, list[str]] = {}
    for v in study.variants:
        groups.setdefault(study.env_of(v) or "unknown", []).append(v)
    return "Environments " + ", ".join(f"{env} ({', '.join(vs)})" for env, vs in groups.items())


def provenance(study: StudyResults) -> str:
    """One line: environment, steps, git commit(s), library versions, device(s), wall time."""
    infos = list(study.variant_runs().values())
    if not infos:
        return "Provenance unknown (no run.json)."
    totals = [i.get("config", {}).get("total_steps") for i in infos]
    steps = list(dict.fromkeys(f"{t:,}" if isinstance(t, int) else "?" for t in totals))
    versions = list(dict.fromkeys(
        ", ".join(f"{k} {v}" for k, v in (i.get("versions") or {}).items()) for i in infos))
    wall = sum(float(i.get("wall_time_s") or 0.0) for i in infos)
    commits = ", ".join(f"`{c}`" for c in _values(study, "git_commit")) or "unknown"
    return (f"{_environments(study)}, {' / '.join(steps)} environment steps "
            f"per seed. Made from git commit {commits} with {'; '.join(versions) or 'unknown'}"
            f" on {', '.join(_values(study, 'device')) or 'unknown device'}; "
            f"total wall time {wall:,.0f} s." + _unreproducible(study))


def _unreproducible(study: StudyResults) -> str:
    """A warning when some unit ran from a study file git does not hold as committed, or
    without git (units recorded before study files were tracked say nothing)."""
    states = dict.fromkeys(
        (ch["study_file"]["path"], ch["study_file"]["git"])
        for info in study.variant_runs().values() for ch in info.get("chunks", [])
        if isinstance(ch.get("study_file"), dict))
    odd = [f"`{path}` ({state})" for path, state in states if state != "committed"]
    if not odd:
        return ""
    return (f" **Not reproducible from the repository as it stands:** study file "
            f"{', '.join(odd)}.")


SPENDING_NAMES = {"pocock": "Pocock", "obrien_fleming": "O'Brien-Fleming"}


def adaptive_note(summary: pd.DataFrame, baseline: str | None, design: Design) -> list[str]:
    """How an adaptive study spent its seeds, and where each verdict was reached."""
    sizes = design.sizes()
    total = int(summary["seeds"].sum())
    fixed = FIXED_SEEDS * len(summary)
    spending = SPENDING_NAMES.get(design.spending, design.spending)
    lines = [f"**Adaptive seeds:** stages of {design.stage} seeds up to {design.max_seeds} "
             f"per variant, {spending}-type alpha spending, "
             f"split over the {int(summary['family_size'].iloc[0])} possible true nulls of the "
             "study (exact group-sequential boundaries for the difference test, Bonferroni "
             "over the stages that can reach it for equivalence; P(improvement) intervals "
             "are repeated 95% confidence intervals, valid whenever a comparison stopped). "
             f"Seeds trained: {total}, against {fixed} for {FIXED_SEEDS} fixed seeds per "
             f"variant ({total - fixed:+d}).", ""]
    for _, r in summary[summary["variant"] != baseline].iterrows():
        said = []
        for prefix, name in (("", "final score"), ("auc_", "AUC")):
            stage = r[f"{prefix}decided_stage"]
            where = (f" at stage {int(stage)} ({sizes[int(stage) - 1]} seeds)"
                     if not math.isnan(stage) else "")
            said.append(f"{name} *{r[f'{prefix}verdict']}*{where}")
        lines.append(f"- {r['variant']} ({r['seeds']} seeds): {'; '.join(said)}")
    return lines + [""]


def caveats(summary: pd.DataFrame, baseline: str | None,
            design: Design | None = None) -> list[str]:
    """The study's ceiling and power notes under its table (the seeds' story for an adaptive
    study)."""
    base = summary[summary["variant"] == baseline]
    others = summary[(summary["variant"] != baseline) & (summary["seeds"] > 0)]
    if base.empty or others.empty:
        return []
    lines = []
    if bool(base["baseline_at_ceiling"].iloc[0]):
        lines.append("**At ceiling:** at least half of the baseline's seeds end at the maximum "
                     "return, so final scores can only show a variant worse; read the verdict "
                     "on AUC (learning speed) first.")
    if design is not None:
        return lines + ([""] if lines else []) + adaptive_note(summary, baseline, design)
    r = others.iloc[0]
    d = float(others["detectable_effect"].max())
    detect = ("cannot reach 80% power for any effect" if d >= 0.5 else
              f"detect |P(improvement) - 0.5| >= {d:.2f} with 80% power")
    reach = others.get("equivalence_reachable", pd.Series(dtype=bool)).astype(bool)
    equivalence = (" The final score's equivalence test can reach the family's level with "
                   "these seeds." if reach.all() and len(reach) else
                   " The final score's equivalence test cannot reach the family's level for "
                   f"{int((~reach).sum())} of {len(reach)} variants even if every seed tied, "
                   "so *equivalent* is out of reach there." if len(reach) else "")
    lines.append(f"**Power:** Shaffer-Holm family with first-step multiplier "
                 f"{int(r['family_size'])}; at "
                 f"{int(base['seeds'].iloc[0])} baseline seeds the comparisons {detect}"
                 + (f", so effects the size of the equivalence margin ({r['margin']:g}) "
                    "are likely to be missed (underpowered)." if d > r["margin"] else ".")
                 + equivalence)
    return lines + [""]


def study_section(study: StudyResults, summary: pd.DataFrame | None,
                  out_dir: Path) -> list[str]:
    """The report's markdown lines for one loaded study and its summary."""
    study_dir = study.path
    # The heading is the directory name, which the contents links at the top point to.
    lines = [f"## {Path(study_dir).name}", ""]
    if study.question:
        lines += ["> " + q for q in study.question.splitlines()] + [""]
    lines += [provenance(study), ""]
    if study.incomplete:
        lines += ["**Incomplete study:**", ""] + [f"- {r}" for r in study.incomplete] + [""]
    if summary is None:
        return lines + ["No variants to report.", ""]
    lines += [f"Baseline: **{study.baseline}**.", ""]
    if study.mixed_env:
        lines += [MIXED_ENV_NOTE, ""]
    lines += summary_table(summary, study.baseline) + [""]
    lines += caveats(summary, study.baseline, study.design)
    figures = [Path(study_dir) / f"{n}.png" for n in (*FIGURES, *ADAPTIVE_FIGURES)]
    figures = [f for f in figures if f.exists()]
    if study.evals is None:
        lines += ["No figures: there are no evaluations to draw.", ""]
    elif not figures:
        lines += [f"Figures not generated yet (`make figures NAME={study_dir.name}`).", ""]
    for f in figures:
        rel = Path(os.path.relpath(f.resolve(), out_dir)).as_posix()
        lines += [f"![{study.name}: {f.stem.replace('_', ' ')}]({rel})", ""]
    return lines


OVERVIEW_INTRO = (
    "Every comparison of every study, against its study's baseline. Verdicts are "
    "Shaffer-Holm-corrected within each study (group-sequential in adaptive studies); read "
    "*inconclusive* as \"these seeds cannot tell\", never as \"as good as\". Details, "
    "figures and provenance follow per study.")


ATLAS_INTRO = (
    "## The atlas\n\n![The atlas: each ablation against its recipe, per environment]"
    "(atlas/atlas.png)\n\nEach ablation against its recipe, per environment "
    "([atlas.csv](atlas/atlas.csv), [heatmap](atlas/atlas.png), `make atlas-figures`): each cell "
    "is 'final score / AUC', ▲ better, ▼ worse, = equivalent, · inconclusive, ? too few seeds "
    "(Shaffer-Holm within each column; **bold** where the Shaffer-Holm family of the whole "
    "atlas agrees), "
    "n/a the recipe's own setting, blank not trained yet.")


def write_report(results_dir: Path, out: Path | None = None,
                 n_resamples: int = N_RESAMPLES) -> Path:
    """Write REPORT.md (default results_dir/REPORT.md) for every study found; return its path."""
    results_dir = Path(results_dir)
    out = Path(out) if out is not None else results_dir / "REPORT.md"
    dirs = find_studies(results_dir) if results_dir.is_dir() else []
    lines = ["# DQN ablation results", ""]
    if not dirs:
        lines += [f"No studies found under `{results_dir.name}/`.", ""]
    loaded: list[tuple[StudyResults, pd.DataFrame | None]] = []
    damaged = []
    for d in dirs:
        try:
            study = load_results(d)
        except StoreError as e:  # every damaged study is named before stopping
            damaged.append(str(e))
            continue
        loaded.append((study, cache.cached_summary(d, n_resamples, study=study)
                           if study.variants else None))
    if damaged:
        raise StoreError("REPORT.md not written: " + "\n".join(damaged))
    compared = overview.table([(s, m) for s, m in loaded if m is not None])
    atlas_csv = results_dir / "atlas" / atlas_table.ATLAS_CSV
    columns = sorted(d for d in (results_dir / "atlas").glob("*/") if (d / "run.json").is_file())
    windows = sensitivity.collect([s.path for s, m in loaded if m is not None], columns)
    if not windows.empty:
        sensitivity.write(results_dir, windows)
    # contents first, then the atlas (the cross-recipe map), then every study in detail
    contents = [("The atlas", "the-atlas")] if atlas_csv.is_file() else []
    contents += [("How to read the tables", "how-to-read-the-tables")]
    contents += [("All comparisons", "all-comparisons")] if compared else []
    contents += [("Final-score window", "final-score-window")] if not windows.empty else []
    lines += ["## Contents", "", *(f"- [{t}](#{a})" for t, a in contents)]
    if dirs:
        lines += ["- Studies: " + ", ".join(f"[{d.name}](#{d.name.lower()})" for d in dirs)]
    lines += [""]
    if atlas_csv.is_file():
        lines += [ATLAS_INTRO, "", *atlas_table.markdown(atlas_table.read(atlas_csv)), ""]
    lines += ["## How to read the tables", "",
              HOW_TO_READ.format(k=FINAL_WINDOW, resamples=n_resamples)]
    if compared:
        lines += ["## All comparisons", "", OVERVIEW_INTRO, "", *compared, ""]
    lines += sensitivity.section(windows)
    for study, summary in loaded:
        lines += study_section(study, summary, out.parent.resolve())
    text = "\n".join(lines).rstrip() + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(out, lambda tmp: tmp.write_text(text))
