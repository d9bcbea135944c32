"""results/atlas/pooled.csv: each ablation across the atlas's cells, per metric: a
random-effects average P(improvement) with its CI and heterogeneity, and partial-conjunction
claims "worse (better) in at least u cells" (dqn.stats.meta), read from the columns' CSVs.

A cell's P(improvement) and its Brunner-Munzel standard error come from the per-seed scores
(dqn.analysis.scoring), the same numbers the column's summary.csv tests. Cells of one
ablation lie in different columns, which share no seeds, so they are independent: the
pooled CI and the partial-conjunction tests assume that. The partial-conjunction claims are
Bonferroni-corrected over every claim the table makes (ablations x metrics x two
directions), so the chance that any "at least u" in the table is wrong is at most 5%.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dqn.analysis.results import load
from dqn.analysis.scoring import study_scores
from dqn.atlas.spec import AtlasSpec, column_name
from dqn.atlas.table import METRICS
from dqn.stats import decisions, meta
from dqn.stats.decisions import ALPHA
from dqn.store.tables import write_atomic

POOLED_CSV = "pooled.csv"
SCORE = {"": "final", "auc_": "auc"}  # atlas.csv prefix -> per-seed score column
POOLED_COLUMNS = ["ablation", "label", "metric", "cells", "pooled_p", "pooled_p_lo",
                  "pooled_p_hi", "tau2", "i2", "worse_cells", "better_cells",
                  "bh_worse_cells", "bh_better_cells", "at_least_worse", "at_least_better",
                  "claim_level"]
"""worse_cells/better_cells: cells decided so under column Shaffer-Holm; bh_*: under the map's BH;
at_least_*: the largest u with "in at least u cells" shown at claim_level (0: none)."""


def cell_errors(spec: AtlasSpec, out: Path, table: pd.DataFrame) -> pd.DataFrame:
    """Brunner-Munzel P(improvement) and standard error of every done cell, per metric:
    columns recipe, env_id, ablation, p, se, auc_p, auc_se."""
    rows = []
    done = table[table["status"] == "done"]
    for (recipe, env_id), cells in done.groupby(["recipe", "env_id"], sort=False):
        scores = study_scores(load(out / column_name(recipe, env_id)))
        base = scores[scores["variant"] == "baseline"]
        for ab in cells["ablation"]:
            mine = scores[scores["variant"] == ab]
            row = {"recipe": recipe, "env_id": env_id, "ablation": ab}
            for prefix, col in SCORE.items():
                p, se, _ = decisions.brunner_munzel(mine[col], base[col])
                row.update({f"{prefix}p": p, f"{prefix}se": se})
            rows.append(row)
    return pd.DataFrame(rows, columns=["recipe", "env_id", "ablation", "p", "se", "auc_p",
                                       "auc_se"])


def pool(table: pd.DataFrame, errors: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """One row per (ablation, metric) over its done cells; see POOLED_COLUMNS."""
    done = table[table["status"] == "done"].merge(errors, on=["recipe", "env_id", "ablation"])
    groups = list(done.groupby("ablation", sort=False))
    level = alpha / (len(groups) * len(METRICS) * 2)  # Bonferroni over every claim made
    rows = []
    for ab, cells in groups:
        for prefix, what in METRICS.items():
            est = cells[f"{prefix}p_improvement"].to_numpy(float)
            p_two = cells[f"{prefix}verdict_p"].to_numpy(float)
            fit = meta.pooled(cells[f"{prefix}p"], cells[f"{prefix}se"])
            words, bh = cells[f"{prefix}verdict"], cells[f"{prefix}verdict_bh"]
            rows.append({
                "ablation": ab, "label": cells["label"].iloc[0], "metric": what,
                "cells": fit["cells"], "pooled_p": fit["mean"], "pooled_p_lo": fit["lo"],
                "pooled_p_hi": fit["hi"], "tau2": fit["tau2"], "i2": fit["i2"],
                "worse_cells": int((words == "worse").sum()),
                "better_cells": int((words == "better").sum()),
                "bh_worse_cells": int((bh == "worse").sum()),
                "bh_better_cells": int((bh == "better").sum()),
                "at_least_worse": meta.at_least(meta.one_sided(p_two, est, "worse"), level),
                "at_least_better": meta.at_least(meta.one_sided(p_two, est, "better"), level),
                "claim_level": level})
    return pd.DataFrame(rows, columns=POOLED_COLUMNS)


def write(spec: AtlasSpec, out: Path, table: pd.DataFrame) -> Path | None:
    """Write out/pooled.csv from the atlas table and the columns' per-seed scores; None when
    no cell is done."""
    if not (table["status"] == "done").any():
        return None
    pooled = pool(table, cell_errors(spec, out, table))
    return write_atomic(out / POOLED_CSV,
                        lambda tmp: pooled.to_csv(tmp, index=False, float_format="%.6g"))


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])

