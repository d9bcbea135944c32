"""The atlas heatmap, results/atlas/atlas.png, drawn from atlas.csv alone.

One panel per metric (final score, AUC). Rows are ablations, columns recipes on environments.
A cell with a verdict (better, worse, equivalent) is coloured by P(improvement) - 1/2 on a
diverging scale (blue: the ablation helps, red: it hurts) and carries the verdict's glyph,
bold and framed where the verdict also survives the atlas-wide Shaffer-Holm family. A cell without a
verdict is grey: inconclusive ("?" when the column's seeds could miss an effect as large as
the equivalence margin, dqn.stats.decisions.detectable_effect; "-" otherwise). White cells: "n/a"
where the ablation is the recipe's own setting; pale empty cells have not been trained. A "*"
after an environment marks a column whose baseline sits at the return cap
(dqn.analysis.scoring.at_ceiling).
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
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

GLYPHS = {"better": "\u25b2", "worse": "\u25bc", "equivalent": "="}
GREY = "#d9d9d9"
EMPTY = "#f4f4f4"
DARK = 0.3  # |P - 1/2| above which a cell's glyph and frame are white
CMAP = "RdBu"  # red (P < 1/2: the ablation hurts) to blue (P > 1/2: it helps)
SHORT_ENV = {"CartPole-v1": "CartPole", "Acrobot-v1": "Acrobot", "LunarLander-v3": "LunarLander"}


def _cell(ax: plt.Axes, x: int, y: int, row: pd.Series, prefix: str, cmap, norm) -> None:
    """Draw one cell: its colour, glyph and frame."""
    status, word = row["status"], row.get(f"{prefix}verdict")
    face, text, weight, frame, ink = EMPTY, "", "normal", False, "0.15"
    if status == "recipe's own setting":
        face, text = "white", "n/a"
    elif status == "done" and word in GLYPHS:
        shift = float(row[f"{prefix}p_improvement"]) - 0.5
        face = cmap(norm(shift))
        ink = "white" if abs(shift) > DARK else "0.15"  # readable on the darkest colours
        text = GLYPHS[word]
        frame = row.get(f"{prefix}verdict_atlas") == word
        weight = "bold" if frame else "normal"
    elif status == "done":
        face = GREY
        text = "?" if bool(row["underpowered"]) else "-"
    ax.add_patch(Rectangle((x, y), 1, 1, facecolor=face, edgecolor="white", linewidth=1.5))
    if frame:
        ax.add_patch(Rectangle((x + 0.08, y + 0.08), 0.84, 0.84, fill=False,
                               edgecolor=ink, linewidth=1.3))
    ax.text(x + 0.5, y + 0.5, text, ha="center", va="center", fontweight=weight,
            fontsize=9 if text != "n/a" else 6.5, color=ink)


def draw(table: pd.DataFrame, folder: Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Draw the heatmap of an atlas.csv table into folder/atlas.<format>; returns the files."""
    columns = list(dict.fromkeys(zip(table["recipe"], table["env_id"], strict=True)))
    ablations = list(dict.fromkeys(table["ablation"]))
    labels = dict(zip(table["ablation"], table["label"], strict=False))
    at = {(r["recipe"], r["env_id"], r["ablation"]): r for _, r in table.iterrows()}
    cmap, norm = plt.get_cmap(CMAP), TwoSlopeNorm(vcenter=0.0, vmin=-0.5, vmax=0.5)
    panel = 0.36 * len(columns)
    fig = plt.figure(figsize=(2.4 + 2 * panel + 1.0, 2.6 + 0.3 * len(ablations)))
    grid = fig.add_gridspec(1, 3, width_ratios=[panel, panel, 0.12], wspace=0.06,
                            left=2.2 / fig.get_figwidth(), right=0.93, top=0.84, bottom=0.2)
    recipes = [r for r, _ in columns]
    ceiling = {(r["recipe"], r["env_id"]) for _, r in table.iterrows()
               if r["status"] == "done" and str(r["baseline_at_ceiling"]) == "True"}
    for i, (prefix, what) in enumerate(METRICS.items()):
        ax = fig.add_subplot(grid[0, i])
        for x, (recipe, env_id) in enumerate(columns):
            for y, ab in enumerate(ablations):
                _cell(ax, x, y, at[(recipe, env_id, ab)], prefix, cmap, norm)
        ax.set_xlim(0, len(columns))
        ax.set_ylim(len(ablations), 0)
        ax.set_xticks(np.arange(len(columns)) + 0.5,
                      [SHORT_ENV.get(e, e) + ("*" if c in ceiling else "") for c in columns
                       for e in [c[1]]], rotation=90, fontsize=7.5)
        ax.set_yticks(np.arange(len(ablations)) + 0.5,
                      [labels[a] for a in ablations] if i == 0 else [], fontsize=8)
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        starts = [x for x in range(len(columns)) if x == 0 or recipes[x] != recipes[x - 1]]
        for a, b in zip(starts, [*starts[1:], len(columns)], strict=True):
            if a:
                ax.axvline(a, color="0.2", linewidth=1.0)
            ax.text((a + b) / 2, -0.3, recipes[a], ha="center", va="bottom", fontsize=7.5)
        ax.set_title(what, fontsize=10, pad=20)
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), cax=fig.add_subplot(grid[0, 2]))
    bar.set_label("P(ablation > recipe) - 1/2, coloured where there is a verdict", fontsize=8)
    handles = [Patch(facecolor="white", edgecolor="0.6", label=f"{g}  {w}")
               for w, g in GLYPHS.items()]
    handles += [Patch(facecolor="white", edgecolor="black", label="framed, bold: also atlas-wide"),
                Patch(facecolor=GREY, label="-  inconclusive"),
                Patch(facecolor=GREY, label="?  inconclusive, underpowered"),
                Patch(facecolor="white", edgecolor="0.6",
                      label="n/a  the recipe's own setting"),
                Patch(facecolor=EMPTY, edgecolor="0.6",
                      label="not trained yet, or its column unfinished"),
                Patch(facecolor="white", edgecolor="white",
                      label="* baseline at the return cap: final scores can only show worse")]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=7.5, frameon=False)
    fig.suptitle("The atlas: each ablation against its recipe, per environment\n(verdicts at "
                 "5%, Shaffer-Holm within each column)", fontsize=11, fontweight="bold")
    paths = [savefig(fig, folder / f"atlas.{fmt}", fmt) for fmt in formats]
    plt.close(fig)
    return paths
