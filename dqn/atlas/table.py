"""results/atlas/atlas.csv: one row per cell of the atlas (an ablation under a recipe on an
environment), read from the columns' CSVs alone.

Each column is a study (dqn.run.atlas), so each cell's numbers are its study's summary.csv row:
the IQM difference with its bootstrap CI, P(improvement) with its CI, both tests' raw and
adjusted p-values, and the verdicts, whose Shaffer-type Holm family is the column (every
ablation of one recipe on one environment, both metrics, both tests), exactly as `make study`
on that column reports them. A map of many columns asks many more questions than one study,
so every cell also gets an atlas-wide verdict (`verdict_atlas`, `auc_verdict_atlas`): the same
tests under one Shaffer-type Holm family of every test of every finished column, which bounds
the chance of any false verdict word anywhere in the map by 5%. An exploratory map is better
read at a false discovery rate: `verdict_bh` (`auc_verdict_bh`) decides better/worse by
Benjamini-Hochberg at 5% over every difference test of the map (both metrics), with its
q-value, so that on average at most 5% of the decided cells are wrong. A column is finished
when every variant of its study file is trained; until then its cells have no verdicts (their
family is the whole column).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from dqn.analysis import cache, scoring
from dqn.atlas.spec import AtlasSpec, column_name
from dqn.stats import decisions, meta
from dqn.store.tables import write_atomic

ATLAS_CSV = "atlas.csv"
METRICS = {"": "final score", "auc_": "AUC"}  # column prefix -> what it compares
PER_METRIC = ["effect", "effect_lo", "effect_hi", "p_improvement", "p_improvement_lo",
              "p_improvement_hi", "verdict_p", "verdict_p_adj", "equivalence_p",
              "equivalence_p_adj", "verdict"]
STATUS = ("done", "column incomplete", "not run", "recipe's own setting")
"""A cell's status: done (every variant of its column is trained, so its verdicts come from the
column's whole Shaffer-Holm family); column incomplete (this variant is trained, others of
its column are not: no verdict yet, since the family is the column's); not run; or the recipe's own
setting (the ablation leaves the recipe's config unchanged, so there is no comparison)."""
COLUMNS = ["recipe", "env_id", "ablation", "label", "status", "seeds", "baseline_seeds",
           "baseline_final_iqm", "final_iqm", "baseline_auc_iqm", "auc_iqm",
           *PER_METRIC, "verdict_atlas_p_adj", "verdict_atlas",
           *(f"auc_{c}" for c in PER_METRIC), "auc_verdict_atlas_p_adj", "auc_verdict_atlas",
           "family_size", "atlas_family_size", "detectable_effect", "underpowered",
           "baseline_at_ceiling", "verdict_bh_q", "verdict_bh", "auc_verdict_bh_q",
           "auc_verdict_bh", "equivalence_on"]


def column_summary(folder: Path) -> pd.DataFrame | None:
    """A column's summary (dqn.analysis.cache: recomputed only when its data or the analysis
    code changed; 1,000,000 bootstrap resamples per CI, minutes for a column). None when the
    column has no results."""
    if not (folder / "run.json").is_file():
        return None
    return cache.cached_summary(folder)


def cells(spec: AtlasSpec, out: Path) -> pd.DataFrame:
    """Every cell of the atlas, in column then row order (COLUMNS)."""
    cache.refresh([out / column_name(r, e) for r, e in spec.columns()])  # stale ones, in parallel
    rows = []
    for recipe, env_id in spec.columns():
        name = column_name(recipe, env_id)
        study_file = out / f"{name}.toml"
        variants = (tomllib.loads(study_file.read_text()).get("variants", {})
                    if study_file.is_file() else None)
        summary = column_summary(out / name)
        by_variant = {} if summary is None else {r["variant"]: r for _, r in summary.iterrows()
                                                  if r["seeds"] and r["complete"]}
        base = by_variant.get("baseline")
        whole = variants is not None and set(variants) <= set(by_variant)
        for ab in spec.ablations:
            row = {"recipe": recipe, "env_id": env_id, "ablation": ab.name, "label": ab.label}
            s = by_variant.get(ab.name)
            if variants is not None and ab.name not in variants:
                row["status"] = "recipe's own setting"
            elif s is None or base is None:
                row["status"] = "not run"
            elif not whole:
                row["status"] = "column incomplete"
            else:
                row.update(status="done", seeds=s["seeds"], baseline_seeds=base["seeds"],
                           baseline_final_iqm=base["final_iqm"], final_iqm=s["final_iqm"],
                           baseline_auc_iqm=base["auc_iqm"], auc_iqm=s["auc_iqm"])
                for p in METRICS:
                    row.update({p + c: s[p + c] for c in PER_METRIC})
                row.update({c: s.get(c) for c in ("family_size", "detectable_effect",
                                                  "underpowered", "baseline_at_ceiling",
                                                  "equivalence_on")})
            rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    for p in METRICS:  # words, also where no cell has one yet
        for c in ("verdict_atlas", "verdict_bh"):
            table[f"{p}{c}"] = table[f"{p}{c}"].astype(object)
    _atlas_verdicts(table)
    return table


def _atlas_verdicts(table: pd.DataFrame) -> None:
    """Fill verdict_atlas and its adjusted p: every done cell's tests (both metrics, both
    tests) as one Shaffer-type Holm family (dqn.stats.decisions.decide); and verdict_bh with
    its q-value: the difference tests under Benjamini-Hochberg (dqn.stats.meta.bh_adjust)."""
    done = table.index[table["status"] == "done"]
    k = len(done)
    if k == 0:
        return
    pick = (lambda col: np.concatenate([table.loc[done, p + col].to_numpy(float)  # noqa: E731
                                        for p in METRICS]))
    n = np.tile(table.loc[done, "seeds"].to_numpy(int), 2)
    m = np.tile(table.loc[done, "baseline_seeds"].to_numpy(int), 2)
    est, p_diff, p_eq = pick("p_improvement"), pick("verdict_p"), pick("equivalence_p")
    exclusive = scoring.exclusive_pairs(table.loc[done])  # (2 k,) as within a column
    adj, _, words = decisions.decide(est, p_diff, p_eq, n, m, exclusive=exclusive)
    table["atlas_family_size"] = decisions.family_size(p_diff, p_eq, exclusive)
    q = meta.bh_adjust(p_diff)  # the map's difference tests, FDR
    bh = np.where((q <= meta.Q_FDR) & (est < 0.5), "worse",
                  np.where((q <= meta.Q_FDR) & (est > 0.5), "better", "inconclusive"))
    for i, p in enumerate(METRICS):
        block = slice(i * k, (i + 1) * k)
        table.loc[done, f"{p}verdict_atlas_p_adj"] = adj[block]
        table.loc[done, f"{p}verdict_atlas"] = words[block]
        table.loc[done, f"{p}verdict_bh_q"] = q[block]
        table.loc[done, f"{p}verdict_bh"] = bh[block]


def write(spec: AtlasSpec, out: Path) -> Path:
    """Write out/atlas.csv atomically; returns its path."""
    table = cells(spec, out)
    out.mkdir(parents=True, exist_ok=True)
    return write_atomic(out / ATLAS_CSV,
                        lambda tmp: table.to_csv(tmp, index=False, float_format="%.6g"))


def read(path: Path) -> pd.DataFrame:
    """An atlas.csv as written by `write`."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def tally(table: pd.DataFrame) -> str:
    """A few lines counting the cells by status and verdict, for the end of `make atlas`."""
    status = table["status"].value_counts()
    lines = [f"atlas: {len(table)} cells: " + ", ".join(f"{status.get(s, 0)} {s}"
                                                         for s in STATUS)]
    done = table[table["status"] == "done"]
    for p, what in METRICS.items():
        for scope, col in (("column Shaffer-Holm", f"{p}verdict"), ("atlas-wide Shaffer-Holm",
                                                             f"{p}verdict_atlas")):
            counts = done[col].value_counts()
            lines.append(f"  {what}, {scope}: " + ", ".join(
                f"{counts.get(w, 0)} {w}" for w in ("better", "worse", "equivalent",
                                                     "inconclusive", "too few seeds")))
    lines.append("per ablation, over its done cells (column Shaffer-Holm; final score | AUC):")
    width = max(map(len, table["label"]), default=0)
    for label, cells_ in done.groupby("label", sort=False):
        words = [", ".join(f"{n} {w}" for w, n in cells_[f"{p}verdict"].value_counts().items())
                 for p in METRICS]
        lines.append(f"  {label:<{width}} {len(cells_):>2} cells: {words[0]} | {words[1]}")
    return "\n".join(lines)


WORD_GLYPHS = {"better": "▲", "worse": "▼", "equivalent": "=", "inconclusive": "·",
               "too few seeds": "?"}
"""The verdict words as one character each, for the text version of the heatmap."""


def markdown(table: pd.DataFrame) -> list[str]:
    """The atlas as a markdown table: a row per ablation, a column per (recipe, environment),
    each cell 'final score / AUC' verdict glyphs (column Shaffer-Holm; bold where the
    atlas-wide family agrees), n/a for the recipe's own setting, blank when not trained."""
    columns = list(dict.fromkeys(zip(table["recipe"], table["env_id"], strict=True)))
    at = {(r["recipe"], r["env_id"], r["ablation"]): r for _, r in table.iterrows()}

    def glyph(row: pd.Series, p: str) -> str:
        word = row[f"{p}verdict"]
        g = WORD_GLYPHS.get(word, "")
        decided = word in ("better", "worse", "equivalent")
        return f"**{g}**" if decided and row[f"{p}verdict_atlas"] == word else g

    lines = ["| ablation | " + " | ".join(f"{r} {e.split('-')[0]}" for r, e in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for ab, label in dict(zip(table["ablation"], table["label"], strict=True)).items():
        cells = []
        for recipe, env_id in columns:
            row = at[(recipe, env_id, ab)]
            pair = f"{glyph(row, '')} / {glyph(row, 'auc_')}"
            cells.append("n/a" if row["status"] == "recipe's own setting" else
                         "" if row["status"] != "done" or pair == " / " else pair)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def compute_used(spec: AtlasSpec, out: Path) -> pd.DataFrame:
    """What the trained variants of each column cost, from its run.json: seed-steps (seeds x
    total_steps), the units' summed wall time and the devices they ran on."""
    rows = []
    for recipe, env_id in spec.columns():
        path = out / column_name(recipe, env_id) / "run.json"
        variants = json.loads(path.read_text())["variants"] if path.is_file() else {}
        rows.append({"recipe": recipe, "env_id": env_id, "variants": len(variants),
                     "seed_steps": sum(len(v["seeds"]) * v["config"]["total_steps"]
                                       for v in variants.values()),
                     "wall_time_s": sum(c["wall_time_s"] for v in variants.values()
                                        for c in v["chunks"]),
                     "devices": ",".join(sorted({c["device"] for v in variants.values()
                                                 for c in v["chunks"]}))})
    return pd.DataFrame(rows)
