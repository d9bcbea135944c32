"""results/REPORT.md: every study's question, summary table, figures and provenance (no torch).

The numbers come from `dqn.scoring` (the same definitions as summary.csv and the figures); the
output depends only on the results directory, so the same results give the same report.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from dqn.estimators import N_RESAMPLES
from dqn.plots import FIGURES
from dqn.results import StudyResults
from dqn.results import load as load_results
from dqn.schema import TABLES
from dqn.scoring import FINAL_WINDOW, summarize
from dqn.store import StoreError
from dqn.tables import write_atomic

SKIP_DIRS = {"quick", "bench"}
HEADER = [
    "variant", "seeds", "final IQM [95% CI]", "final mean [95% CI]", "solved fraction",
    "AUC IQM [95% CI]", "median steps to threshold", "collapses", "diverged",
    "P(improvement over baseline) [95% CI]", "Welch p (Holm)", "verdict",
]
HOW_TO_READ = """\
How to read the tables (one number per seed, then aggregated over seeds per variant):

- **final**: a seed's mean greedy-evaluation return over its last {k} evaluations; **IQM** is
  the interquartile mean over seeds (mean of the middle 50%), **mean** the plain mean.
  Brackets are 95% percentile-bootstrap confidence intervals over seeds (seeded, reproducible).
- **solved fraction**: seeds whose final score reaches the environment's solved threshold.
- **AUC**: area under the seed's evaluation curve, return normalised to [0, 1] by the
  environment's return range, divided by the step span (1 = maximum return from the start).
- **median steps to threshold**: the environment step by which half of the seeds had first
  reached the threshold in a greedy evaluation; "not reached" when more than half never did.
- **collapses**: seeds that reached the threshold and later fell below half of it (on the
  normalised scale); **diverged**: seeds whose loss became NaN/inf.
- **P(improvement over baseline)**: probability that a random seed of the variant has a higher
  final score than a random seed of the baseline (ties count one half).
- **verdict**: *better* / *worse* when the whole CI of P(improvement) lies above / below 0.5,
  otherwise *no clear difference*. **Welch p (Holm)**: Welch's t-test on final scores against
  the baseline, Holm-corrected over the study's variants.
"""
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


def _num(x: Any, fmt: str) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _ci(row: pd.Series, col: str, fmt: str) -> str:
    if math.isnan(row[col]):
        return "—"
    return f"{row[col]:{fmt}} [{_num(row[col + '_lo'], fmt)}, {_num(row[col + '_hi'], fmt)}]"


def _pvalue(p: float) -> str:
    return "—" if math.isnan(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


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
            name, str(r["seeds"]), _ci(r, "final_iqm", ".1f"), _ci(r, "final_mean", ".1f"),
            _num(r["solved_fraction"], ".2f"), _ci(r, "auc_iqm", ".2f"),
            (f"{steps:,.0f}" if not math.isnan(steps) else "not reached") if has else "—",
            str(r["collapses"]) if has else "—", str(r["diverged"]) if has else "—",
            "—" if r["variant"] == baseline else _ci(r, "p_improvement", ".2f"),
            _pvalue(r["welch_p_holm"]), f"*{r['verdict']}*",
        ]
        if normalised:
            cells.insert(4, _ci(r, "final_norm_iqm", ".3f"))
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
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


def study_section(study_dir: Path, out_dir: Path,
                  n_resamples: int = N_RESAMPLES) -> list[str]:
    """The report's markdown lines for one study directory."""
    study = load_results(study_dir)
    # The heading is the directory name, which the contents links at the top point to.
    lines = [f"## {Path(study_dir).name}", ""]
    if study.question:
        lines += ["> " + q for q in study.question.splitlines()] + [""]
    lines += [provenance(study), ""]
    if study.incomplete:
        lines += ["**Incomplete study:**", ""] + [f"- {r}" for r in study.incomplete] + [""]
    if not study.variants:
        return lines + ["No variants to report.", ""]
    summary = summarize(study, n_resamples)
    lines += [f"Baseline: **{study.baseline}**.", ""]
    if study.mixed_env:
        lines += [MIXED_ENV_NOTE, ""]
    lines += summary_table(summary, study.baseline) + [""]
    figures = [Path(study_dir) / f"{n}.png" for n in FIGURES]
    figures = [f for f in figures if f.exists()]
    if study.evals is None:
        lines += ["No figures: there are no evaluations to draw.", ""]
    elif not figures:
        lines += [f"Figures not generated yet (`make figures NAME={study_dir.name}`).", ""]
    for f in figures:
        rel = Path(os.path.relpath(f.resolve(), out_dir)).as_posix()
        lines += [f"![{study.name}: {f.stem.replace('_', ' ')}]({rel})", ""]
    return lines


def write_report(results_dir: Path, out: Path | None = None,
                 n_resamples: int = N_RESAMPLES) -> Path:
    """Write REPORT.md (default results_dir/REPORT.md) for every study found; return its path."""
    results_dir = Path(results_dir)
    out = Path(out) if out is not None else results_dir / "REPORT.md"
    studies = find_studies(results_dir) if results_dir.is_dir() else []
    lines = ["# DQN ablation results", "", HOW_TO_READ.format(k=FINAL_WINDOW)]
    if not studies:
        lines += [f"No studies found under `{results_dir.name}/`.", ""]
    else:
        lines += ["Studies: " + ", ".join(f"[{d.name}](#{d.name.lower()})" for d in studies),
                  ""]
    damaged = []
    for d in studies:
        try:
            lines += study_section(d, out.parent.resolve(), n_resamples)
        except StoreError as e:  # every damaged study is named before stopping
            damaged.append(str(e))
    if damaged:
        raise StoreError("REPORT.md not written: " + "\n".join(damaged))
    text = "\n".join(lines).rstrip() + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(out, lambda tmp: tmp.write_text(text))
