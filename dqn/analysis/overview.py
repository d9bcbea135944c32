"""REPORT.md's opening table: every comparison of every study on one page (no torch).

One row per variant against its study's baseline: what it changes, the effect on the final
score, P(improvement), the adjusted p-value, the verdicts on final score and on AUC, the seed
counts and the power flag, all read from `dqn.analysis.scoring.summarize`.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from dqn.analysis.results import StudyResults

HEADER = ["study", "variant", "what it changes", "effect on final (IQM difference) [95% CI]",
          "P(improvement) on final [95% CI]", "adj. p", "verdict on final", "verdict on AUC",
          "seeds (variant v baseline)", "power"]
HIDDEN_KEYS = {"device"}
"""Config keys that change where a run happens, not what it computes."""


def changes(study: StudyResults, variant: str) -> str:
    """The config keys whose value differs from the baseline's, as `key=value` (run.json)."""
    runs = study.variant_runs()
    mine = (runs.get(variant) or {}).get("config", {})
    base = (runs.get(study.baseline) or {}).get("config", {})
    diff = [f"{k}={_value(v)}" for k, v in mine.items()
            if k not in HIDDEN_KEYS and base.get(k) != v]
    return ", ".join(diff) if diff else "nothing (same config)"


def _value(v: Any) -> str:
    return "x".join(map(str, v)) if isinstance(v, list) else str(v)


def number(x: Any, fmt: str) -> str:
    """x formatted, or an em dash for a missing value."""
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def interval(row: pd.Series, col: str, fmt: str) -> str:
    """'value [lo, hi]' from a summary row's col, col_lo and col_hi."""
    if math.isnan(row[col]):
        return "—"
    return (f"{row[col]:{fmt}} [{number(row[col + '_lo'], fmt)}, "
            f"{number(row[col + '_hi'], fmt)}]")


def cell(text: Any) -> str:
    """Text for a markdown table cell (a '|' would end the cell)."""
    return str(text).replace("|", "\\|")


def pvalue(p: float) -> str:
    """A p-value for a table: three decimals, '< 0.001' below that, a dash when missing."""
    return "—" if math.isnan(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def power(row: pd.Series) -> str:
    """The smallest |P(improvement) - 1/2| detectable with 80% power, flagged when it exceeds
    the study's equivalence margin (effects the study calls relevant could be missed)."""
    d = row["detectable_effect"]
    if math.isnan(d):
        return "—"
    text = "none" if d >= 0.5 else f"{d:.2f}"
    return f"{text}, underpowered" if row["underpowered"] else text


def verdicts(row: pd.Series, ceiling: bool) -> tuple[str, str]:
    """The final-score and AUC verdict cells; at the ceiling the AUC one leads (in bold)."""
    final, auc = f"*{row['verdict']}*", f"*{row['auc_verdict']}*"
    if ceiling:
        return f"{final} (at ceiling)", f"**{auc}**"
    return final, auc


def rows(study: StudyResults, summary: pd.DataFrame) -> list[str]:
    """The table rows of one study's comparisons."""
    out = []
    compared = summary[(summary["variant"] != study.baseline) & (summary["seeds"] > 0)]
    base_seeds = int(summary.loc[summary["variant"] == study.baseline, "seeds"].sum())
    for _, r in compared.iterrows():
        fmt = ".3f" if r["compared_on"] == "final_norm" else ".1f"
        final, auc = verdicts(r, bool(r["baseline_at_ceiling"]))
        cells = [f"[{study.name}](#{study.name.lower()})", r["variant"],
                 changes(study, r["variant"]), interval(r, "effect", fmt),
                 interval(r, "p_improvement", ".2f"), pvalue(r["verdict_p_adj"]), final, auc,
                 f"{r['seeds']} v {base_seeds}", power(r)]
        out.append("| " + " | ".join(cell(c) for c in cells) + " |")
    return out


def table(studies: list[tuple[StudyResults, pd.DataFrame]]) -> list[str]:
    """The whole opening table (header and every study's rows), empty without comparisons."""
    body = [line for study, summary in studies for line in rows(study, summary)]
    if not body:
        return []
    return ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER), *body]


def end_of_run(summary: pd.DataFrame, baseline: str | None) -> str:
    """A study's summary as a plain-text table for the terminal at the end of a run: variant,
    seeds, final IQM [95% CI], solved k/n and both verdicts."""
    rows = [("variant", "seeds", "final IQM [95% CI]", "solved", "verdict on final",
             "verdict on AUC")]
    for _, r in summary.iterrows():
        solved = ("—" if math.isnan(r["solved_fraction"]) else
                  f"{round(r['solved_fraction'] * r['seeds'])}/{r['seeds']}")
        name = r["variant"] + (" (baseline)" if r["variant"] == baseline != "baseline" else "")
        rows.append((name, str(r["seeds"]), interval(r, "final_iqm", ".1f"), solved,
                     str(r["verdict"]), str(r["auc_verdict"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)
