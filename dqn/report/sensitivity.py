"""The final-window sensitivity table: REPORT.md's section and results/window_sensitivity.csv.

Every study and atlas column keeps its windows.csv beside its summary.csv (dqn.analysis.windows,
cached with it): its final-score verdicts at the last 1, 3, 5 and 10 evaluations, beside the
declared window's. This module gathers them into one tidy CSV and counts, per kind of source
and window, the verdicts that differ from the declared window's.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dqn.analysis import cache
from dqn.analysis.windows import COLUMNS
from dqn.store.tables import write_atomic

CSV = "window_sensitivity.csv"
"""Under results/: every source's windows.csv, one table."""
KINDS = ("study", "atlas column")
PLURAL = {"study": "studies", "atlas column": "atlas columns"}

INTRO = (
    "Each final-score verdict again with the final score over the last 1, 3, 5 and 10 "
    "evaluations instead of the declared window (the study file's `final_window`, default 3), "
    "everything else as declared (same tests, family and design; [{csv}]({csv}) has every "
    "verdict). A verdict that moves rests on the window as well as on the data: read it with "
    "that in mind. Counts of comparisons whose verdict differs from the declared window's:")


def collect(studies: list[Path], columns: list[Path]) -> pd.DataFrame:
    """Every windows.csv of `studies` and atlas `columns` (folders), with `source` (the
    folder's name, atlas/<name> for a column) and `kind` in front."""
    parts = []
    for kind, folders in zip(KINDS, (studies, columns), strict=True):
        for folder in folders:
            table = cache.cached_windows(folder)
            if table.empty:
                continue
            name = folder.name if kind == "study" else f"atlas/{folder.name}"
            parts.append(table.assign(source=name, kind=kind))
    if not parts:
        return pd.DataFrame(columns=["source", "kind", *COLUMNS])
    return pd.concat(parts, ignore_index=True)[["source", "kind", *COLUMNS]]


def write(results_dir: Path, table: pd.DataFrame) -> Path:
    """results_dir/window_sensitivity.csv."""
    return write_atomic(Path(results_dir) / CSV,
                        lambda tmp: table.to_csv(tmp, index=False, float_format="%.6g"))


def counts(table: pd.DataFrame) -> pd.DataFrame:
    """Per kind and window other than the declared one: comparisons, verdicts changed, of them
    decided -> inconclusive and inconclusive -> decided."""
    declared = table[table["declared"]].set_index(["source", "variant"])["verdict"]
    rows = []
    for (kind, window), part in table[~table["declared"]].groupby(["kind", "window"],
                                                                   sort=False):
        was = declared.reindex(pd.MultiIndex.from_frame(part[["source", "variant"]])).to_numpy()
        now = part["verdict"].to_numpy()
        rows.append({"kind": kind, "window": int(window), "comparisons": len(part),
                     "changed": int(part["changed"].sum()),
                     "lost": int(((was != "inconclusive") & (now == "inconclusive")).sum()),
                     "gained": int(((was == "inconclusive") & (now != "inconclusive")).sum())})
    return pd.DataFrame(rows, columns=["kind", "window", "comparisons", "changed", "lost",
                                       "gained"])


def section(table: pd.DataFrame) -> list[str]:
    """REPORT.md's lines: the counts as a markdown table (nothing when there is no table)."""
    if table.empty:
        return []
    lines = ["## Final-score window", "", INTRO.format(csv=CSV), "",
             "| source | window | comparisons | verdict changed | decided -> inconclusive "
             "| inconclusive -> decided |", "|---|---|---|---|---|---|"]
    for r in counts(table).sort_values(["kind", "window"], kind="stable").itertuples():
        lines.append(f"| {PLURAL[r.kind]} | {r.window} | {r.comparisons} | {r.changed} | {r.lost} "
                     f"| {r.gained} |")
    return [*lines, ""]
