"""The results store of a study: results/<study>/{episodes,evals,diagnostics}.csv and run.json.

What it guarantees (README "Resuming"):

- run.json records, for every finished unit (a variant's chunk of seeds, of any size), which
  seeds it trained, what produced them (commit, versions, device, the numerics version), how
  many rows it has in each CSV and the sha256 of those rows. A unit counts as finished only
  while its rows match that record; `check` names every unit that does not, and the runner
  retrains it.
- A seed is finished when a matching unit of the variant's current config and the current
  numerics version (dqn.base.provenance.NUMERICS) holds it. Since a seed's records do not depend on
  the seeds it trained beside, chunk sizes do not matter: seeds can be added to a finished
  variant, in chunks of any size, and are merged with the ones already there.
- A unit is written through a journal (dqn.store.journal): its rows go whole to .pending/ first, and
  only then are the CSVs and run.json rewritten, each atomically. Old rows are never removed
  before their replacement is on disk, and a crash at any point is finished by the next
  command that opens the folder for writing.
- Writers hold the folder's lock (dqn.store.lock), so concurrent runs take turns.

No torch here: the analysis reads through this module too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dqn.base.config import Config
from dqn.base.provenance import NUMERICS
from dqn.base.schema import COLUMNS, KEY_COLUMNS, TABLES
from dqn.store.tables import digest, read_text, unit_rows
from dqn.store.units import unit_name

FORMAT = 3
PENDING = ".pending"


class StoreError(RuntimeError):
    """Results that cannot be read or trusted; the message names the file."""


class DamagedResults(StoreError):
    """Results whose files do not match their record; every problem is listed."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("damaged results:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a study's results: the file, the unit (if any) and what."""

    file: Path
    unit: str
    what: str

    def __str__(self) -> str:
        return f"{self.file}: {self.unit + ': ' if self.unit else ''}{self.what}"


# run.json ------------------------------------------------------------------------------------
def read_run(out: Path) -> dict[str, Any]:
    """run.json of a study folder, checked and in the current format (an empty record when
    there is none). Raises StoreError naming the file when it is not a results record."""
    path = out / "run.json"
    if not path.exists():
        return {"format": FORMAT, "variants": {}}
    try:
        run = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreError(f"{path}: not valid JSON ({e}); fix or remove it (the CSVs "
                         "beside it are kept, but nothing in them counts as finished "
                         "without it)") from None
    if not isinstance(run, dict) or not isinstance(run.get("variants"), dict):
        found = (f"a JSON {type(run).__name__}" if not isinstance(run, dict)
                 else f"an object with keys {sorted(run)}" if run else "an empty object")
        raise StoreError(f"{path}: not a results record (expected an object with a "
                         f"'variants' object, found {found}); fix or remove it")
    for name, meta in run["variants"].items():
        ok = (isinstance(meta, dict) and isinstance(meta.get("config"), dict)
              and isinstance(meta.get("seeds"), list) and "config_hash" in meta)
        if not ok:
            raise StoreError(f"{path}: variant {name!r}: not a variant record (needs "
                             "'config', 'config_hash' and 'seeds')")
        if "chunks" not in meta:  # format 1, before seed chunks: one chunk of every seed
            meta["chunks"] = [{k: meta.get(k) for k in (
                "device", "versions", "wall_time_s", "seed_steps_per_s")}
                | {"seeds": meta["seeds"], "diverged_seeds": meta.get("diverged_seeds", [])}]
        meta.pop("seed_chunk", None)  # format 2: the chunk size, which no longer matters
        if not all(isinstance(ch, dict) and isinstance(ch.get("seeds"), list)
                   for ch in meta["chunks"]):
            raise StoreError(f"{path}: variant {name!r}: 'chunks' must be a list of objects "
                             "with 'seeds'")
    return run


def compatible(meta: Mapping[str, Any] | None, config: Config) -> bool:
    """Whether a variant record was trained with this config."""
    return bool(meta) and meta.get("config_hash") == config.hash()


def current(chunk: Mapping[str, Any]) -> bool:
    """Whether a unit was trained by the current numerics (older ones are retrained)."""
    return chunk.get("numerics") == NUMERICS


# checking the CSVs against run.json ----------------------------------------------------------
@dataclass
class Check:
    """A study folder's record, its CSVs as text, and which recorded units they bear out."""

    out: Path
    run: dict[str, Any]
    tables: dict[str, pd.DataFrame | None]
    valid: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    """Recorded units whose rows do not match, unreadable files, journals not yet applied."""
    recorded: dict[str, pd.Series] = field(default_factory=dict)
    """Per table, the rows (mask) of units run.json records, matching or not."""
    unrecorded: dict[str, int] = field(default_factory=dict)
    """Rows per table of no unit run.json records (from a write that did not finish)."""


def read_tables(out: Path) -> tuple[dict[str, pd.DataFrame | None], list[Problem]]:
    """Each CSV as text (None when missing), and the files that are not a table of ours."""
    tables: dict[str, pd.DataFrame | None] = {}
    problems = []
    for table in TABLES:
        path = out / f"{table}.csv"
        tables[table] = None
        if not path.exists():
            continue
        expected = [*KEY_COLUMNS, *COLUMNS[table]]
        try:
            frame = read_text(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            problems.append(Problem(path, "", f"not a readable CSV ({type(e).__name__})"))
            continue
        if list(frame.columns) != expected:
            problems.append(Problem(path, "", f"columns {list(frame.columns)}, expected "
                                              f"{expected}"))
            continue
        tables[table] = frame
    return tables, problems


def record(tables: Mapping[str, pd.DataFrame | None], variant: str,
           seeds: list[int]) -> dict[str, dict[str, Any]]:
    """A unit's record: its row count and row digest in each table."""
    rows, sha = {}, {}
    for table in TABLES:
        frame = tables[table]
        mine = frame[unit_rows(frame, variant, seeds)] if frame is not None else None
        rows[table] = 0 if mine is None else len(mine)
        sha[table] = "" if mine is None else digest(mine)
    return {"rows": rows, "sha256": sha}


def _mismatch(out: Path, tables: Mapping[str, pd.DataFrame | None], variant: str,
              chunk: dict[str, Any]) -> list[Problem]:
    seeds = chunk["seeds"]
    name = unit_name(variant, seeds)
    found = record(tables, variant, seeds)
    problems = []
    for table in TABLES:
        path = out / f"{table}.csv"
        if tables[table] is None:
            problems.append(Problem(path, name, "file missing or unreadable"))
        elif "rows" not in chunk:  # format 1: no record to compare; every seed must be there
            have = set(tables[table].loc[tables[table]["variant"] == variant, "seed"])
            missing = [s for s in seeds if str(s) not in have]
            if missing:
                problems.append(Problem(path, name, f"no rows for seeds {missing}"))
        elif found["rows"][table] != chunk["rows"].get(table):
            problems.append(Problem(path, name, f"{found['rows'][table]} rows, "
                                                f"{chunk['rows'].get(table)} recorded"))
        elif found["sha256"][table] != chunk["sha256"].get(table):
            problems.append(Problem(path, name, "rows differ from the recorded ones "
                                                "(sha256 mismatch)"))
    return problems


def check(out: Path) -> Check:
    """Read a study folder and check every recorded unit against its rows (read only)."""
    run = read_run(out)
    tables, problems = read_tables(out)
    result = Check(out, run, tables, problems=problems)
    owned: dict[str, set[str]] = {}
    for variant, meta in run["variants"].items():
        for chunk in meta["chunks"]:
            owned.setdefault(variant, set()).update(str(s) for s in chunk["seeds"])
            wrong = _mismatch(out, tables, variant, chunk)
            result.problems += wrong
            if not wrong:
                result.valid.setdefault(variant, []).append(chunk)
    for table, frame in tables.items():
        if frame is not None:
            mine = pd.Series(False, index=frame.index)
            for variant, seeds in owned.items():
                mine |= (frame["variant"] == variant) & frame["seed"].isin(seeds)
            result.recorded[table] = mine
            if (~mine).any():
                result.unrecorded[table] = int((~mine).sum())
    for journal in sorted((out / PENDING).glob("*.json")):
        result.problems.append(Problem(journal, "", "a unit's write did not finish; the next "
                                                    "`make study` of this study completes it"))
    return result


def _matching(state: Check, variant: str, config: Config) -> list[dict[str, Any]]:
    """The units of `variant` trained with this exact config whose rows match their record."""
    if not compatible(state.run["variants"].get(variant), config):
        return []
    return state.valid.get(variant, [])


def finished_seeds(state: Check, variant: str, config: Config) -> set[int]:
    """The seeds of `variant` finished with this exact config by the current numerics, in
    units whose rows match their record."""
    return {int(s) for ch in _matching(state, variant, config) if current(ch)
            for s in ch["seeds"]}


def outdated_seeds(state: Check, variant: str, config: Config) -> list[int]:
    """Seeds of `variant` finished with this config but by older numerics."""
    return sorted(int(s) for ch in _matching(state, variant, config) if not current(ch)
                  for s in ch["seeds"])


def require_intact(state: Check) -> Check:
    """`state`, or DamagedResults listing what is wrong (what figures and reports need)."""
    problems = list(state.problems)
    for table, n in state.unrecorded.items():
        problems.append(Problem(state.out / f"{table}.csv", "",
                                f"{n} rows belong to no unit recorded in run.json"))
    if problems:
        raise DamagedResults(problems)
    return state
