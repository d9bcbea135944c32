"""Writing finished units into a study's store, so that no crash loses or mislabels results.

A finished unit is first written whole, with everything needed to apply it, to a journal file
results/<study>/.pending/<time>-<unit>.json (atomically). Applying it then rewrites the CSVs
(the unit's rows in, rows of units that no longer match their record or belong to no unit
out, every other row kept as written) and finally run.json, each atomically; the journal is
removed last. A crash before the journal is complete changes nothing; a crash after it is
finished by `recover`, which every writing command runs first (under the folder's lock).
Applying a journal twice gives the same files, so recovery is always safe.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from dqn.base.config import Config, from_dict
from dqn.base.provenance import NUMERICS, git_commit
from dqn.base.schema import TABLES
from dqn.stats.decisions import MARGIN
from dqn.store import weights
from dqn.store.lock import locked
from dqn.store.store import (
    FORMAT,
    PENDING,
    Check,
    Problem,
    check,
    compatible,
    current,
    read_run,
    record,
)
from dqn.store.tables import merge, to_text, unit_rows, write_atomic, write_text
from dqn.store.units import Unit, UnitResult


class StudyHeader(Protocol):
    """What run.json records of the study as a whole (a parsed study file has these)."""

    name: str
    question: str
    baseline: str
    margin: float  # equivalence margin of the study's verdicts
    final_window: int | None  # evaluations a final score averages (None: the default)
    variants: dict[str, Any]  # in study-file order
    commit_weights: bool  # keep the final weights in git (dqn.store.weights)


def write_unit(out: Path, study: StudyHeader, unit: Unit, result: UnitResult, *,
               seeds: list[int], fresh: bool = False,
               study_file: dict[str, str] | None = None,
               settings: dict[str, Any] | None = None) -> list[str]:
    """Record one finished unit in the study's store; returns notes on units dropped because
    their rows no longer matched their record (they will be retrained).

    seeds: every seed the run asked of the variant (run.json's 'seeds' becomes these and every
    seed still finished). fresh: replace every earlier result of the unit's variant
    (FORCE=1), not just the units holding this unit's seeds. settings: the config keys the
    command line set for every variant (run.json's "settings"; empty: none).
    """
    r = result.records
    chunk = {"seeds": list(unit.seeds), "numerics": NUMERICS, "device": result.device,
             "host": result.host,
             "versions": result.versions, "wall_time_s": round(r.wall_time_s, 2),
             "seed_steps_per_s": round(r.seed_steps_per_s, 1),
             "diverged_seeds": r.diverged_seeds, "git_commit": git_commit()}
    if result.cpu_numerics is not None:  # what an exact reproduction must match
        chunk["cpu_numerics"] = result.cpu_numerics
    if study_file is not None:
        chunk["study_file"] = study_file
    entry = {
        "study": study.name, "question": study.question, "baseline": study.baseline,
        "margin": study.margin, "order": list(study.variants), "variant": unit.variant,
        "config": unit.config.to_dict(),
        "seeds": seeds, "fresh": fresh, "chunk": chunk, "settings": settings or {},
        "rows": {t: to_text(getattr(r, t), study.name, unit.variant).to_csv(index=False)
                 for t in TABLES},
    }
    if study.final_window is not None:  # recorded only when declared
        entry["final_window"] = study.final_window
    with locked(out):
        _clear_stale(out)
        pending = out / PENDING
        pending.mkdir(exist_ok=True)
        path = pending / f"{time.time_ns()}-{uuid.uuid4().hex[:6]}.json"
        write_atomic(path, lambda tmp: tmp.write_text(json.dumps(entry)))
        notes = _apply(out, path)
        if r.weights is not None:  # after the unit is recorded: weights are not results
            # (a crash here loses only them)
            weights.save(out, unit.variant, unit.seeds, unit.config.hash(), r.weights,
                         in_git=study.commit_weights)
        return notes


def recover(out: Path) -> list[str]:
    """Finish every journal a crashed writer left (oldest first); returns notes. Call under
    the folder's lock."""
    notes = []
    _clear_stale(out)
    for path in sorted((out / PENDING).glob("*.json")):
        try:
            json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            # only a complete journal is ever renamed into place; this cannot be ours
            notes.append(f"{path}: not a complete journal, left as it is")
            continue
        notes.append(f"{out}: finished a write interrupted earlier ({path.name})")
        notes += _apply(out, path)
    return notes


def _clear_stale(out: Path) -> None:
    """Remove the temporary files of killed writers: every store file and journal is written
    under the lock, so any found while holding it is garbage."""
    for name in ("run.json", *(f"{t}.csv" for t in TABLES)):
        for stale in out.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)
    for stale in [*(out / PENDING).glob(".*.tmp"), *(out / weights.FOLDER).glob("*/.*.tmp")]:
        stale.unlink(missing_ok=True)


def _apply(out: Path, path: Path) -> list[str]:
    j = json.loads(path.read_text())
    state = check(out)  # what is on disk now, each unit checked against its record
    notes = [f"{p}: dropped, it will be retrained" for p in state.problems
             if p.unit and not p.file.name.endswith(".json")]
    config = from_dict(j["config"])
    variant, chunk = j["variant"], j["chunk"]
    kept = {v: list(chunks) for v, chunks in state.valid.items() if v != variant}
    meta = state.run["variants"].get(variant)
    if not j["fresh"] and compatible(meta, config):
        # the variant's other units stay, unless trained by older numerics or holding one of
        # this unit's seeds (a seed is never recorded twice)
        mine = set(chunk["seeds"])
        kept[variant] = [ch for ch in state.valid.get(variant, [])
                         if current(ch) and not mine & set(ch["seeds"])]
    order = {name: i for i, name in enumerate(j["order"])}
    tables = {}
    for table in TABLES:
        new = pd.read_csv(io.StringIO(j["rows"][table]), dtype=str,
                          keep_default_na=False, na_filter=False)
        old = state.tables[table]
        keep = None
        if old is not None:
            keep = pd.Series(False, index=old.index)
            for v, chunks in kept.items():
                for ch in chunks:
                    keep |= unit_rows(old, v, ch["seeds"])
            # this unit's own rows, from an earlier try, are not news
            known = state.recorded[table] | unit_rows(old, variant, chunk["seeds"])
            if (~known).any():
                notes.append(f"{out / table}.csv: dropped {int((~known).sum())} rows that "
                             "belong to no recorded unit")
        tables[table] = merge(old, keep, new, order)
        write_text(out / f"{table}.csv", tables[table])
    run = _next_run(state, j, config, kept, tables)
    write_atomic(out / "run.json", lambda tmp: tmp.write_text(json.dumps(run, indent=2) + "\n"))
    path.unlink()
    return notes


def _next_run(state: Check, j: dict[str, Any], config: Config,
              kept: dict[str, list[dict[str, Any]]],
              tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """run.json after applying journal `j`: every kept unit and the new one, each with the
    record of its rows as now written."""
    run = {k: v for k, v in state.run.items() if k not in ("variants", "format")}
    run.update(format=FORMAT, study=j["study"], question=j["question"], baseline=j["baseline"],
               margin=j.get("margin", MARGIN))
    run.pop("final_window", None)  # the study file as it is now declares it, or not
    if j.get("final_window") is not None:
        run["final_window"] = j["final_window"]
    if "settings" in j:  # the command line's overrides of the run that wrote this unit
        run.pop("settings", None)
        if j["settings"]:
            run["settings"] = j["settings"]
    variants = {}
    for v, meta in state.run["variants"].items():
        if kept.get(v):
            chunks = [ch | record(tables, v, ch["seeds"]) for ch in kept[v]]
            variants[v] = meta | {"chunks": chunks} | _totals(meta, chunks)
    chunks = sorted([*(kept.get(j["variant"]) or []), j["chunk"]],
                    key=lambda ch: min(ch["seeds"]))
    chunks = [ch | record(tables, j["variant"], ch["seeds"]) for ch in chunks]
    # the seeds asked for last, and every seed still finished beside them
    seeds = sorted({*j["seeds"], *(s for ch in chunks for s in ch["seeds"])})
    base = {"config": config.to_dict(), "config_hash": config.hash(), "seeds": seeds}
    variants[j["variant"]] = base | _totals(base, chunks) | {"chunks": chunks}
    order = {name: i for i, name in enumerate(j["order"])}
    run["variants"] = {v: variants[v] for v in sorted(variants, key=lambda v: (
        order.get(v, len(order)), v))}
    return run


def _totals(meta: dict[str, Any], chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """A variant's provenance summed over its finished chunks."""
    walls = [float(ch.get("wall_time_s") or 0.0) for ch in chunks]
    if len(chunks) == 1:
        rate = chunks[0].get("seed_steps_per_s")
    else:  # seed-steps per second of device time, summed over the chunks' devices
        trained = sum(len(ch["seeds"]) for ch in chunks) * meta["config"]["total_steps"]
        rate = round(trained / max(sum(walls), 1e-9), 1)
    versions: dict[str, list[str]] = {}
    for ch in chunks:
        for k, v in (ch.get("versions") or {}).items():
            versions.setdefault(k, []).append(str(v))
    commits = [ch["git_commit"] for ch in chunks if ch.get("git_commit")]
    return {
        "git_commit": " / ".join(dict.fromkeys(commits)) if commits
        else meta.get("git_commit", "unknown"),
        "versions": {k: " / ".join(dict.fromkeys(v)) for k, v in versions.items()},
        "device": ", ".join(dict.fromkeys(str(ch.get("device")) for ch in chunks)),
        "wall_time_s": round(sum(walls), 2), "seed_steps_per_s": rate,
        "diverged_seeds": sorted({int(s) for ch in chunks for s in ch.get("diverged_seeds")
                                  or []}),
    }


def record_entry(out: Path, key: str, entry: dict[str, Any] | None) -> None:
    """Set a top-level run.json entry (e.g. "adaptive": an adaptive study's design and
    decisions; "settings": command-line overrides) to `entry`, or remove it for None; every
    other key is kept. A study without run.json gets none."""
    if not (out / "run.json").exists():
        return
    with locked(out):
        if not (out / "run.json").exists():
            return
        read_run(out)  # a results record, or StoreError naming the file
        run = json.loads((out / "run.json").read_text())  # as written, every other key kept
        if run.get(key) == entry:
            return  # nothing to write
        run.pop(key, None)
        if entry is not None:
            run[key] = entry
        write_atomic(out / "run.json",
                     lambda tmp: tmp.write_text(json.dumps(run, indent=2) + "\n"))


def migrate(out: Path) -> list[Problem]:
    """Bring a format-1 run.json to the current format without retraining: every unit whose
    rows are all there gets the record of its rows as they are now. Returns the units that
    could not be vouched for (left out of the record, so a re-run retrains them)."""
    with locked(out):
        state = check(out)
        run = {k: v for k, v in state.run.items() if k != "variants"} | {"format": FORMAT}
        run["variants"] = {}
        for v, meta in state.run["variants"].items():
            if state.valid.get(v):
                chunks = [ch | record(state.tables, v, ch["seeds"]) for ch in state.valid[v]]
                run["variants"][v] = meta | {"chunks": chunks}
        write_atomic(out / "run.json",
                     lambda tmp: tmp.write_text(json.dumps(run, indent=2) + "\n"))
        return [p for p in state.problems if p.unit]


__all__ = ["write_unit", "recover", "record_entry", "migrate"]
