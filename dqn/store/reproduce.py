"""Does a fresh run give exactly the rows of committed results?

Training on the CPU is deterministic and a seed's numbers depend on that seed alone
(docs/reliability.md), so a run of the same config and seeds as a committed study must write
the same rows, byte for byte, as long as the numerics version (dqn.base.provenance.NUMERICS)
is the same. Any difference is a change to learning: a bug, or a deliberate change of the
numbers that needs NUMERICS bumped and the affected studies re-run. The learning tiers
(tests/learning) call `compare` after each training run whose config matches committed
results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dqn.base.config import LATER_DEFAULTS
from dqn.base.provenance import NUMERICS
from dqn.base.schema import TABLES
from dqn.store.store import check
from dqn.store.tables import digest, unit_rows

STEP_COLUMN = {"episodes": "episode", "evals": "env_step", "diagnostics": "env_step"}
ADVICE = ("find the change to learning, or, if the numbers changed on purpose, bump "
          "dqn.base.provenance.NUMERICS and re-run the affected studies (docs/testing.md, "
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


@dataclass
class Comparison:
    """What comparing a fresh run with committed results found, one line per unit."""

    failures: list[str] = field(default_factory=list)
    """Rows, config or numerics version that differ: a change to learning."""
    compared: list[str] = field(default_factory=list)
    """Units whose rows matched the committed ones bit for bit."""
    skipped: list[str] = field(default_factory=list)
    """Units that could not be compared bit for bit here, and why (another machine's CPU
    numerics)."""


def config_changes(new: dict, old: dict) -> list[str]:
    """'key: old -> new' for every config key that differs; a key missing from an older
    record counts as its LATER_DEFAULTS value (added after those results were made)."""
    changed = []
    for key in sorted(set(new) | set(old)):
        a = old.get(key, LATER_DEFAULTS.get(key, "(absent)"))
        b = new.get(key, LATER_DEFAULTS.get(key, "(absent)"))
        if a != b:
            changed.append(f"{key}: {a!r} -> {b!r}")
    return changed


def compare(fresh: Path, committed: Path) -> Comparison:
    """Compare the rows of `fresh` (a results folder just trained) with those of `committed`
    for every variant trained for as many steps on seeds the committed folder holds.

    - config: any key that differs (a changed default, say) is a failure, naming the keys.
    - numerics version: committed rows of another NUMERICS are a failure (stale results).
    - CPU numerics: rows made where the CPU computed differently (dqn.core.device.cpu_numerics)
      cannot be compared bit for bit; the unit is skipped with the reason.
    - rows: every table's rows of the unit's seeds must match byte for byte (sha256); a
      failure names the study, variant, seeds and table, the first differing row, and what to
      do.
    """
    found = Comparison()
    if not (Path(committed) / "run.json").is_file():
        return found
    new, old = check(Path(fresh)), check(Path(committed))
    for variant, meta in (new.run.get("variants") or {}).items():
        was = (old.run.get("variants") or {}).get(variant)
        if not was:
            continue
        units = old.valid.get(variant, [])
        held = {s for u in units for s in u["seeds"]}
        config, old_config = meta.get("config", {}), was.get("config", {})
        if config.get("total_steps") != old_config.get("total_steps"):
            continue  # a shorter training: nothing to reproduce
        for chunk in meta.get("chunks", []):
            seeds = list(chunk["seeds"])
            if not set(seeds) <= held:
                continue
            where = f"{new.run.get('study')} / {variant}, seeds {seeds[0]}-{seeds[-1]}"
            if was.get("config_hash") != meta.get("config_hash"):
                changes = "; ".join(config_changes(config, old_config)) or "the config hash"
                found.failures.append(f"{where}: the config differs from the committed one "
                                      f"({committed}): {changes}. A changed default? {ADVICE}")
                continue
            mine = [u for u in units if set(u["seeds"]) & set(seeds)]
            versions = {u.get("numerics") for u in mine}
            if versions != {NUMERICS}:
                found.failures.append(
                    f"{where}: the committed rows ({committed}) were made by numerics "
                    f"{sorted(versions)}, the code is numerics {NUMERICS!r}: re-run the study "
                    "so its results are current")
                continue
            cpu = chunk.get("cpu_numerics")
            theirs = [u.get("cpu_numerics") for u in mine]
            if cpu is None or any(t != cpu for t in theirs):
                found.skipped.append(f"{where}: the committed rows were made where the CPU "
                                     f"computed {theirs[0] if theirs else None}, this run "
                                     f"{cpu}; only the same CPU numerics reproduce bit for bit")
                continue
            bad = False
            for table in TABLES:
                a = _rows(old.tables[table], variant, seeds)
                b = _rows(new.tables[table], variant, seeds)
                if len(a) != len(b) or (len(a) and digest(a) != digest(b)):
                    bad = True
                    found.failures.append(f"{where}: {table}.csv differs from {committed}: "
                                          f"{first_difference(a, b, table)}; {ADVICE}")
            if not bad:
                found.compared.append(where)
    return found
