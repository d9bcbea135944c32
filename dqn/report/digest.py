"""The findings page's per-study section: each single-study comparison's decided variants,
from its summary.csv (no torch)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from dqn.analysis.overview import pvalue
from dqn.atlas import table as atlas_table
from dqn.report.markdown import find_studies
from dqn.report.words import metric_words, num, span


def _study_cells(rows: pd.DataFrame, p: str, base: pd.Series, key: str) -> str:
    """'no_masking (P = 0.00 [0.00, 0.00], adj. p 0.003, IQM 9.27 against 500)', ..."""
    def one(r: pd.Series) -> str:
        # the deciding test's adjusted p: the equivalence test's for *equivalent*
        test = "equivalence_p_adj" if r[f"{p}verdict"] == "equivalent" else "verdict_p_adj"
        text = (f"{r['variant']} (P = {r[p + 'p_improvement']:.2f} "
                f"[{r[p + 'p_improvement_lo']:.2f}, {r[p + 'p_improvement_hi']:.2f}], "
                f"adj. p {pvalue(r[p + test])}")
        if not p:
            text += f", IQM {num(r[key])} against {num(base[key])}"
        return text + ")"
    return ", ".join(one(r) for _, r in rows.iterrows())


def study_line(name: str, summary: pd.DataFrame, baseline: str) -> str:
    """One bullet per study: per metric, each decided word with its variants' P(improvement),
    adjusted p and (final score) IQMs; how many are inconclusive."""
    base = summary[summary["variant"] == baseline].iloc[0]
    rows = summary[summary["variant"] != baseline]
    key = "final_norm_iqm" if (rows["compared_on"] == "final_norm").any() else "final_iqm"
    parts = [metric_words(what, rows, p, lambda hit, p=p: _study_cells(hit, p, base, key))
             for p, what in atlas_table.METRICS.items()]
    seeds = f"{span(rows['seeds'])} seeds a side" if rows["seeds"].nunique() == 1 and \
        rows["seeds"].iloc[0] == base["seeds"] else (
        f"{span(rows['seeds'])} seeds against the baseline's {base['seeds']}")
    if base["design"] == "adaptive":
        seeds += f" ({summary['seeds'].sum()} trained in all)"
    scale = " normalised" if key == "final_norm_iqm" else ""
    variants = f"{len(rows)} variant{'s' if len(rows) != 1 else ''}"
    return (f"- **[{name}](../results/REPORT.md#{name.lower()})** ({variants} against "
            f"`{baseline}`, {seeds}, {base['design']} design; baseline{scale} final IQM "
            f"{num(base[key])}). " + ". ".join(parts) + ".")


def per_study(studies: list[tuple[str, pd.DataFrame, str]]) -> list[str]:
    """A bullet per single-environment study with a baseline (mostly the tuned default on
    CartPole), from its summary.csv."""
    lines = ["### Per study", "",
             "Each study's own comparisons (its Shaffer-Holm family is the study, so a verdict "
             "here and the atlas's cell for the same ablation answer different families and "
             "need not agree), from its summary.csv: the decided variants with P(improvement) "
             "[95% CI], the adjusted p-value and, on the final score, the IQM against the "
             "baseline's.", ""]
    lines += [study_line(name, summary, baseline) for name, summary, baseline in studies
              if (summary["variant"] != baseline).any()]
    return lines + [""]


def read_studies(results_dir: Path) -> list[tuple[str, pd.DataFrame, str]]:
    """(name, summary.csv, baseline) of every study under results_dir with a summary.csv."""
    found = []
    for d in find_studies(results_dir):
        run, summary = d / "run.json", d / "summary.csv"
        if run.is_file() and summary.is_file():
            baseline = json.loads(run.read_text()).get("baseline")
            if baseline:
                found.append((d.name, pd.read_csv(summary, keep_default_na=False,
                                                  na_values=[""]), baseline))
    return found
