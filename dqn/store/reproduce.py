"""Does a fresh run give exactly the rows of committed results?

Training on the CPU is deterministic and a seed's numbers depend on that seed alone
(docs/reliability.md), so a run of the same config and seeds as a committed study must write
the same rows, byte for byte, as long as the numerics version (dqn.base.provenance.NUMERICS)
is the same. Any difference is a change to learning: a bug, or a deliberate change of the
numbers that needs NUMERICS bumped and the affected studies re-run. The fast learning tier
(tests/learning) calls `differences` after each training run whose config matches committed
results.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dqn.base.provenance import NUMERICS
from dqn.base.schema import TABLES
from dqn.store.store import check
from dqn.store.tables import digest, unit_rows

STEP_COLUMN = {"episodes": "episode", "evals": "env_step", "diagnostics": "env_step"}
ADVICE = ("find the change to learning, or, if the numbers changed on purpose, bump "
          "dqn.base.provenance.NUMERICS and re-run the affected studies (docs/reliability.md, "
          "Regression checks)")


def _rows(table: pd.DataFrame | None, variant: str, seeds: list[int]) -> pd.DataFrame:
    """A unit's text rows, ordered by seed (stable: each seed's rows as written)."""
    if table is None:
        return pd.DataFrame()
    rows = table[unit_rows(table, variant, seeds)]
    order = rows["seed"].astype(int).argsort(kind="stable")
    return rows.iloc[order].reset_index(drop=True)


def first_difference(old: pd.DataFrame, new: pd.DataFrame, table: str) -> str:
    """Where two unit tables first differ: the row's seed and step, the column, both values."""
    for i in range(min(len(old), len(new))):
        a, b = old.iloc[i], new.iloc[i]
        for column in old.columns:
            if a[column] != b[column]:
                step = STEP_COLUMN[table]
                return (f"seed {a['seed']}, {step} {a[step]}: {column} was {a[column]!r}, "
                        f"now {b[column]!r}")
    return f"{len(old)} rows committed, {len(new)} now"


def differences(fresh: Path, committed: Path) -> list[str]:
    """How the rows of `fresh` (a results folder just trained) differ from those of
    `committed` for every variant trained with the same config (config hash) on seeds the
    committed folder holds; an empty list when they agree or nothing is comparable. Each
    message names the study, variant, seeds and table, the first differing row, and what to
    do."""
    if not (Path(committed) / "run.json").is_file():
        return []
    new, old = check(Path(fresh)), check(Path(committed))
    found = []
    for variant, meta in (new.run.get("variants") or {}).items():
        was = (old.run.get("variants") or {}).get(variant)
        if not was or was.get("config_hash") != meta.get("config_hash"):
            continue  # another training: nothing to reproduce
        units = old.valid.get(variant, [])
        held = {s for u in units for s in u["seeds"]}
        for chunk in meta.get("chunks", []):
            seeds = list(chunk["seeds"])
            if not set(seeds) <= held:
                continue
            where = f"{new.run.get('study')} / {variant}, seeds {seeds[0]}-{seeds[-1]}"
            versions = {u.get("numerics") for u in units if set(u["seeds"]) & set(seeds)}
            if versions != {NUMERICS}:
                found.append(f"{where}: the committed rows ({committed}) were made by numerics "
                             f"{sorted(versions)}, the code is numerics {NUMERICS!r}: re-run "
                             "the study so its results are current")
                continue
            for table in TABLES:
                a = _rows(old.tables[table], variant, seeds)
                b = _rows(new.tables[table], variant, seeds)
                if len(a) != len(b) or (len(a) and digest(a) != digest(b)):
                    found.append(f"{where}: {table}.csv differs from {committed}: "
                                 f"{first_difference(a, b, table)}; {ADVICE}")
    return found
