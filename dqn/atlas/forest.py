"""results/atlas/pooled.png: a forest plot of pooled.csv, drawn from pooled.csv and atlas.csv.

One panel per metric. Each row is an ablation: its cells' P(improvement) as grey dots (one
per recipe x environment), the random-effects average over cells as a black diamond with its
95% CI (dqn.stats.meta.pooled), and the row's partial-conjunction claims at the right
("▼≥u": worse in at least u cells, "▲≥u": better in at least u;
Bonferroni over the table).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

from dqn.atlas.table import METRICS
from dqn.figures.style import savefig

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402


def claims(row: pd.Series) -> str:
    """'▼≥7 ▲≥1': worse in at least 7 cells, better in at least 1 (empty when
    neither claim holds)."""
    said = [f"{g}≥{int(row[f'at_least_{w}'])}" for w, g in (("worse", "▼"),
                                                               ("better", "▲"))
            if row[f"at_least_{w}"] > 0]
    return " ".join(said)


def draw(pooled: pd.DataFrame, table: pd.DataFrame, folder: Path,
         formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Draw the forest plot into folder/pooled.<format>; returns the files."""
    ablations = list(dict.fromkeys(pooled["ablation"]))
    labels = dict(zip(pooled["ablation"], pooled["label"], strict=False))
    done = table[table["status"] == "done"]
    fig, axes = plt.subplots(1, len(METRICS), figsize=(12, 1.4 + 0.34 * len(ablations)),
                             sharey=True)
    for ax, (prefix, what) in zip(axes, METRICS.items(), strict=True):
        rows = pooled[pooled["metric"] == what].set_index("ablation")
        for y, ab in enumerate(ablations):
            cells = done.loc[done["ablation"] == ab, f"{prefix}p_improvement"].to_numpy(float)
            jitter = np.linspace(-0.18, 0.18, cells.size) if cells.size > 1 else np.zeros(1)
            ax.scatter(cells, y + jitter[: cells.size], s=9, color="0.6", zorder=2)
            r = rows.loc[ab]
            ax.plot([r["pooled_p_lo"], r["pooled_p_hi"]], [y, y], color="black", lw=1.6,
                    zorder=3)
            ax.scatter([r["pooled_p"]], [y], marker="D", s=28, color="black", zorder=4)
            ax.text(1.02, y, claims(r), va="center", fontsize=7, transform=ax.get_yaxis_transform())
        ax.axvline(0.5, color="0.3", lw=0.8, ls="--")
        ax.set_xlim(0, 1)
        ax.set_ylim(len(ablations) - 0.5, -0.5)
        ax.set_yticks(range(len(ablations)), [labels[a] for a in ablations], fontsize=8)
        ax.set_xlabel(f"P(ablation > recipe) on the {what}", fontsize=8)
        ax.set_title(what, fontsize=10)
        ax.tick_params(labelsize=7.5)
    level = pooled["claim_level"].iloc[0] if len(pooled) else float("nan")
    fig.suptitle("Each ablation across the atlas's cells: cells (grey), random-effects average "
                 "with 95% CI (black)\nright: worse/better in at least u cells "
                 f"(partial conjunction, each claim at {level:.2g})", fontsize=10,
                 fontweight="bold")
    fig.subplots_adjust(left=0.17, right=0.88, wspace=0.3, top=0.86, bottom=0.1)
    paths = [savefig(fig, folder / f"pooled.{fmt}", fmt) for fmt in formats]
    plt.close(fig)
    return paths
