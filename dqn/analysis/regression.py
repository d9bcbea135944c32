"""Did learning change? Two trainings of the same study (old and new code) compared seed by seed.

For every variant both folders trained with the same config, on the seeds both hold, and for
the AUC and the normalised final score (dqn.analysis.scoring; both on the env's return range,
0 to 1), the table gives the mean paired difference new - old, its one-sided 95% lower bound,
the non-inferiority p-value at the margin (dqn.stats.paired), Holm-adjusted over every row of
the table, and the test's power at no true change. `python -m dqn compare OLD NEW` prints it.

Verdicts: "identical" (every seed's score is the same), "not worse by more than <margin>"
(adjusted p < alpha) or "inconclusive" (the data cannot exclude a loss of that size; more seeds
would tell, the power column says how likely a pass was).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dqn.analysis.results import load
from dqn.analysis.scoring import study_scores
from dqn.stats.estimators import holm
from dqn.stats.paired import lower_bound, noninferiority_p, power_at_no_change

MARGIN = 0.05
"""Largest tolerated loss on the normalised scale: 5% of the env's return range (25 points of
CartPole-v1's 0-500)."""
ALPHA = 0.05
METRICS = {"auc": "AUC", "final_norm": "final score (normalised)"}
COLUMNS = ["variant", "metric", "seeds", "old_mean", "new_mean", "difference",
           "difference_lo", "p_noninferior", "p_adjusted", "power", "verdict"]


class NothingToCompare(ValueError):
    """The two folders share no variant trained with the same config on the same seeds."""


def compare_folders(old: Path, new: Path, margin: float = MARGIN,
                    alpha: float = ALPHA) -> pd.DataFrame:
    """One row per (variant, metric) as described in the module docstring (COLUMNS)."""
    a, b = load(Path(old)), load(Path(new))
    sa, sb = study_scores(a), study_scores(b)
    runs_a, runs_b = a.variant_runs(), b.variant_runs()
    rows = []
    for variant, info in runs_b.items():
        was = runs_a.get(variant)
        if not was or was.get("config_hash") != info.get("config_hash"):
            continue
        x = sa[sa["variant"] == variant].set_index("seed")
        y = sb[sb["variant"] == variant].set_index("seed")
        seeds = sorted(set(x.index) & set(y.index), key=int)
        if len(seeds) < 2:
            continue
        for metric, label in METRICS.items():
            old_v = x.loc[seeds, metric].to_numpy(dtype=float)  # (n,) paired by seed
            new_v = y.loc[seeds, metric].to_numpy(dtype=float)  # (n,)
            d = new_v - old_v  # (n,)
            rows.append({"variant": variant, "metric": label, "seeds": len(seeds),
                         "old_mean": old_v.mean(), "new_mean": new_v.mean(),
                         "difference": d.mean(), "difference_lo": lower_bound(d, 1 - alpha),
                         "p_noninferior": noninferiority_p(d, margin),
                         "power": power_at_no_change(d, margin, alpha),
                         "identical": bool(np.all(d == 0))})
    if not rows:
        raise NothingToCompare(f"{old} and {new} share no variant trained with the same config "
                               "on at least two common seeds")
    out = pd.DataFrame(rows)
    out["p_adjusted"] = holm(out["p_noninferior"].to_numpy())
    out["verdict"] = np.where(
        out["identical"], "identical",
        np.where(out["p_adjusted"] < alpha, f"not worse by more than {margin:g}",
                 "inconclusive"))
    return out[COLUMNS]


def format_table(table: pd.DataFrame, margin: float = MARGIN) -> str:
    """The table as aligned text, with a line on what it tested."""
    shown = table.copy()
    for c in ("old_mean", "new_mean", "difference", "difference_lo", "power"):
        shown[c] = shown[c].map(lambda v: f"{v:.3f}")
    for c in ("p_noninferior", "p_adjusted"):
        shown[c] = shown[c].map(lambda v: f"{v:.2g}")
    head = (f"paired by seed, new - old on the normalised scale; non-inferiority at margin "
            f"{margin:g} (sign-flip test, Holm over {len(table)} rows); power at no true "
            "change")
    return head + "\n" + shown.to_string(index=False)
