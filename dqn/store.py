"""The results store of a study: results/<study>/{episodes,evals,diagnostics}.csv and run.json.

Every file is written atomically (a temporary sibling, then a rename). A finished unit's rows
go into the CSVs first and its record into run.json last, so run.json is the commit point: a
unit it does not record is not finished, whatever the CSVs hold. No torch here: the analysis
reads through this module too.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from dqn.config import Config
from dqn.provenance import git_commit
from dqn.units import Unit, UnitResult

TABLES = ("episodes", "evals", "diagnostics")


class StudyHeader(Protocol):
    """What run.json records of the study as a whole (a parsed study file has these)."""

    name: str
    question: str
    baseline: str
    variants: Mapping[str, Any]  # in study-file order


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a sibling temp file, then os.replace it onto path."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_run(out: Path) -> dict[str, Any]:
    """run.json of a study directory, or an empty skeleton."""
    path = out / "run.json"
    if path.exists():
        return json.loads(path.read_text())
    return {"variants": {}}


def _compatible(meta: dict[str, Any] | None, config: Config, seeds: list[int],
                seed_chunk: int) -> bool:
    """Whether a run.json variant entry was trained with this config, seeds and chunk size
    (entries written before chunking existed hold one chunk of all their seeds)."""
    return bool(meta) and meta.get("config_hash") == config.hash() \
        and meta.get("seeds") == seeds \
        and meta.get("seed_chunk", len(meta.get("seeds") or [])) == seed_chunk


def _chunks(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """A variant entry's finished chunks; an entry from before chunking is one whole chunk."""
    if "chunks" in meta:
        return meta["chunks"]
    return [{"seeds": meta["seeds"], "device": meta.get("device"),
             "versions": meta.get("versions", {}), "wall_time_s": meta.get("wall_time_s", 0.0),
             "seed_steps_per_s": meta.get("seed_steps_per_s", 0.0),
             "diverged_seeds": meta.get("diverged_seeds", [])}]


def finished_chunks(out: Path, variant: str, config: Config, seeds: list[int],
                    seed_chunk: int) -> set[tuple[int, ...]]:
    """The seed chunks of `variant` that run.json records as trained with this exact config,
    seed list and chunk size, and whose rows evals.csv holds."""
    meta = read_run(out)["variants"].get(variant)
    evals = out / "evals.csv"
    if not _compatible(meta, config, seeds, seed_chunk) or not evals.exists():
        return set()
    df = pd.read_csv(evals, usecols=["variant", "seed"], dtype={"variant": str})
    have = set(df.loc[df["variant"] == variant, "seed"])
    return {tuple(ch["seeds"]) for ch in _chunks(meta) if set(ch["seeds"]) <= have}


def write_unit(out: Path, study: StudyHeader, unit: Unit, result: UnitResult, *,
               seeds: list[int], seed_chunk: int, fresh: bool = False) -> None:
    """Merge one finished unit into the study's CSVs and run.json, each file atomically.

    CSVs first, run.json last: a crash in between leaves the unit unrecorded, so a re-run
    trains it again and replaces its rows. The variant's rows of chunks that run.json does not
    record as finished with this config (an older config, `fresh`, a half-written unit) are
    dropped. Rows are ordered by the study file's variant order, then seed and env step, so
    the files do not depend on the order in which units finish or resume.
    """
    out.mkdir(parents=True, exist_ok=True)
    run_info = read_run(out)
    meta = run_info["variants"].get(unit.variant)
    kept = [] if fresh or not _compatible(meta, unit.config, seeds, seed_chunk) else [
        ch for ch in _chunks(meta) if tuple(ch["seeds"]) != unit.seeds]
    keep_seeds = {s for ch in kept for s in ch["seeds"]}
    order = {name: i for i, name in enumerate(study.variants)}
    for table in TABLES:
        path = out / f"{table}.csv"
        new = _csv_roundtrip(getattr(result.records, table))
        new.insert(0, "variant", unit.variant)
        new.insert(0, "study", study.name)
        if path.exists():
            old = pd.read_csv(path, dtype={"study": str, "variant": str})
            stale = (old["variant"] == unit.variant) & ~old["seed"].isin(keep_seeds)
            new = pd.concat([old[~stale], new], ignore_index=True)
        key = new["variant"].map(order).fillna(len(order))
        new = (new.assign(_order=key)
               .sort_values(["_order", "seed", "env_step"], kind="stable")
               .drop(columns="_order"))
        write_atomic(path, lambda tmp, df=new: df.to_csv(tmp, index=False))
    r = result.records
    chunk = {"seeds": list(unit.seeds), "device": result.device, "host": result.host,
             "versions": result.versions, "wall_time_s": round(r.wall_time_s, 2),
             "seed_steps_per_s": round(r.seed_steps_per_s, 1),
             "diverged_seeds": r.diverged_seeds}
    chunks = sorted([*kept, chunk], key=lambda ch: seeds.index(ch["seeds"][0]))
    run_info["study"] = study.name
    run_info["question"] = study.question
    run_info["baseline"] = study.baseline
    run_info["variants"][unit.variant] = _variant_meta(unit.config, seeds, seed_chunk, chunks)
    run_info["variants"] = {k: run_info["variants"][k]
                            for k in sorted(run_info["variants"], key=lambda v: order.get(v, 1e9))}
    text = json.dumps(run_info, indent=2) + "\n"
    write_atomic(out / "run.json", lambda tmp: tmp.write_text(text))


def _csv_roundtrip(df: pd.DataFrame) -> pd.DataFrame:
    """`df` as it reads back from CSV. Rows merged from an existing CSV were parsed as float64
    while fresh float32 columns would be upcast with spurious digits, so without this the
    files would depend on the order in which units finish."""
    return pd.read_csv(io.StringIO(df.to_csv(index=False)))


def _variant_meta(config: Config, seeds: list[int], seed_chunk: int,
                  chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """A run.json variant entry: provenance summed over its finished chunks, then the chunks."""
    walls = [float(ch["wall_time_s"]) for ch in chunks]
    if len(chunks) == 1:
        rate = chunks[0]["seed_steps_per_s"]
    else:  # seed-steps per second of device time, summed over the chunks' devices
        trained = sum(len(ch["seeds"]) for ch in chunks) * config.total_steps
        rate = round(trained / max(sum(walls), 1e-9), 1)
    versions: dict[str, list[str]] = {}
    for ch in chunks:
        for k, v in (ch.get("versions") or {}).items():
            versions.setdefault(k, []).append(str(v))
    return {
        "config": config.to_dict(), "config_hash": config.hash(), "seeds": seeds,
        "git_commit": git_commit(),
        "versions": {k: " / ".join(dict.fromkeys(v)) for k, v in versions.items()},
        "device": ", ".join(dict.fromkeys(str(ch.get("device")) for ch in chunks)),
        "wall_time_s": round(sum(walls), 2), "seed_steps_per_s": rate,
        "diverged_seeds": sorted({int(s) for ch in chunks for s in ch["diverged_seeds"]}),
        "seed_chunk": seed_chunk, "chunks": chunks,
    }
