"""Declarative studies: load and validate `studies/*.toml`, run their variants, write results.

A study file holds a `question`, the number of `seeds`, `base` overrides for every variant,
named `variants` of config overrides, and optional `expect` tables (learning expectations).
Everything is validated before anything trains, and nothing under results/ is touched first.
The unit of work is one variant's chunk of seeds (`seed_chunk`, default: all seeds in one
chunk), trained by an executor (dqn.executors: in this process, or on a Ray cluster). Results
are written per finished unit on the driver, atomically, so an interrupted study loses at most
the units in flight and a re-run trains only what is missing.

This module imports torch only when it trains, so listing and validating studies stays light.
"""

from __future__ import annotations

import io
import json
import platform
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dqn.config import Config, ConfigError, did_you_mean, from_dict, is_positive_int
from dqn.executors import Executor, LocalExecutor, Unit, UnitResult, UnitsFailed, split_seeds
from dqn.stats import write_atomic

ROOT = Path(__file__).resolve().parent.parent
STUDIES_DIR = ROOT / "studies"
RESULTS_DIR = ROOT / "results"
TABLES = ("episodes", "evals", "diagnostics")
STUDY_KEYS = {
    "question": "one paragraph: the question the study answers",
    "seeds": "seeds per variant (default 20)",
    "seed_chunk": "seeds per unit of work, each batched on one device (default: all seeds)",
    "baseline": "the variant others are compared with (default 'baseline')",
    "base": "config overrides applied to every variant",
    "variants": "named config overrides, one table per variant",
    "expect": "learning expectations per variant, checked by `make regress`",
    "fast": "the CI tier of expectations: seeds, steps and expect tables, run by `make test`",
}
QUICK = {"seeds": 3, "total_steps": 2_000, "learning_starts": 500, "eval_every": 1_000,
         "eval_episodes": 2, "log_every": 250}


class StudyError(ValueError):
    """A broken study file or an impossible request; the message names file, key and value."""


@dataclass(frozen=True)
class Study:
    """A parsed and validated study file."""

    name: str
    path: Path
    question: str
    seeds: int
    baseline: str
    base: dict[str, Any]
    variants: dict[str, dict[str, Any]]
    expect: dict[str, dict[str, Any]] = field(default_factory=dict)
    fast: dict[str, Any] = field(default_factory=dict)
    seed_chunk: int | None = None  # None: each variant's seeds train as one unit

    def configs(self, steps: int | None = None, device: str | None = None,
                quick: bool = False) -> dict[str, Config]:
        """Each variant's resolved config, validated; command-line overrides win."""
        extra: dict[str, Any] = {}
        if quick:
            extra = {k: v for k, v in QUICK.items() if k != "seeds"}
        if steps is not None:
            extra["total_steps"] = steps
        if device is not None:
            extra["device"] = device
        out = {}
        for name, overrides in self.variants.items():
            merged = {**self.base, **overrides, **extra}
            if quick:  # keep each variant's own learning_starts when it already fits
                own = merged.get("learning_starts", Config.learning_starts)
                merged["learning_starts"] = min(own, QUICK["learning_starts"])
            out[name] = from_dict(merged, source=f"{self.path.name} [variants.{name}]")
        return out


def available() -> dict[str, Path]:
    """Study name -> file, for every studies/*.toml."""
    return {p.stem: p for p in sorted(STUDIES_DIR.glob("*.toml"))}


def listing() -> str:
    """Every available study with its question, for `make study` without a NAME."""
    lines = ["Available studies (make study NAME=<name>):"]
    for name, path in available().items():
        try:
            question = load(path).question
        except StudyError as e:
            question = f"BROKEN: {e}"
        lines.append(f"  {name:<18} {' '.join(question.split())}")
    return "\n".join(lines)


def find(name: str | None) -> Study:
    """Load the study called `name`, or raise a StudyError that lists the available ones."""
    studies = available()
    if not name:
        raise StudyError("no study named.\n" + listing())
    if name not in studies:
        raise StudyError(f"unknown study '{name}'{did_you_mean(name, studies)}.\n" + listing())
    return load(studies[name])


def load(path: Path) -> Study:
    """Parse and validate one study file; every error names the file, the key and the value."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise StudyError(f"{path.name}: not valid TOML: {e}") from None
    where = path.name
    for key, value in data.items():
        if key not in STUDY_KEYS:
            raise StudyError(f"{where}: unknown key '{key}' (value {value!r})"
                             f"{did_you_mean(key, STUDY_KEYS)}")
    question = data.get("question")
    if not isinstance(question, str) or not question.strip():
        raise StudyError(f"{where}: key 'question': {question!r} must be a non-empty string")
    seeds = data.get("seeds", 20)
    if not is_positive_int(seeds):
        raise StudyError(f"{where}: key 'seeds': {seeds!r} must be a positive integer")
    seed_chunk = data.get("seed_chunk")
    if seed_chunk is not None and not is_positive_int(seed_chunk):
        raise StudyError(f"{where}: key 'seed_chunk': {seed_chunk!r} must be a positive integer")
    base = _table(data.get("base", {}), f"{where}: key 'base'")
    variants = _table(data.get("variants"), f"{where}: key 'variants'")
    if not variants:
        raise StudyError(f"{where}: key 'variants': needs at least one [variants.NAME] table")
    for name, overrides in variants.items():
        _table(overrides, f"{where}: key 'variants.{name}'")
    baseline = data.get("baseline", "baseline")
    if baseline not in variants:
        raise StudyError(f"{where}: key 'baseline': {baseline!r} is not a variant "
                         f"(variants: {', '.join(variants)})")
    expect = _table(data.get("expect", {}), f"{where}: key 'expect'")
    fast = _table(data.get("fast", {}), f"{where}: key 'fast'")
    study = Study(path.stem, path, " ".join(question.split()), seeds, baseline, base, variants,
                  expect, fast, seed_chunk)
    try:
        study.configs()
    except ConfigError as e:
        raise StudyError(str(e)) from None
    _validate_expectations(study)
    return study


def _table(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StudyError(f"{what}: {value!r} must be a table")
    return value


def _validate_expectations(study: Study) -> None:
    """Expectations name known variants and known expectation keys (see dqn.expectations)."""
    from dqn.expectations import validate

    validate(study)
    steps = study.fast.get("steps")
    if steps is not None:
        try:
            study.configs(steps=steps)
        except ConfigError as e:
            raise StudyError(f"{e} (with [fast] steps = {steps})") from None


# running ---------------------------------------------------------------------------------
def run(study: Study, *, out_dir: Path = RESULTS_DIR, seeds: int | None = None,
        steps: int | None = None, device: str | None = None,
        variants: list[str] | None = None, quick: bool = False, force: bool = False,
        figures: bool = True, progress: bool = True, seed_chunk: int | None = None,
        executor: Executor | None = None) -> Path:
    """Train every unfinished unit (variant, seed chunk) of `study` and write results under
    out_dir/<study>/ as each unit finishes; `executor` trains them (default: this process).

    All arguments are checked before anything trains or any file is written. When units fail
    for good (the Ray executor retries them first), everything else is written and
    UnitsFailed names them.
    """
    n_seeds = seeds if seeds is not None else (QUICK["seeds"] if quick else study.seeds)
    if not is_positive_int(n_seeds):
        raise StudyError(f"{study.path.name}: seeds: {n_seeds!r} must be a positive integer")
    chunk = seed_chunk if seed_chunk is not None else study.seed_chunk
    if chunk is not None and not is_positive_int(chunk):
        raise StudyError(f"{study.path.name}: seed_chunk: {chunk!r} must be a positive integer")
    try:
        configs = study.configs(steps=steps, device=device, quick=quick)
    except ConfigError as e:
        raise StudyError(str(e)) from None
    if variants:
        unknown = [v for v in variants if v not in configs]
        if unknown:
            raise StudyError(f"{study.path.name}: unknown variant '{unknown[0]}'"
                             f"{did_you_mean(unknown[0], configs)} (variants: "
                             f"{', '.join(configs)})")
        configs = {k: v for k, v in configs.items() if k in variants}
    seed_list = list(range(n_seeds))
    chunks = split_seeds(seed_list, chunk)
    size = len(chunks[0])  # the effective chunk size, recorded in run.json

    out = out_dir / study.name
    units: list[Unit] = []
    for name, config in configs.items():
        done = set() if force else finished_chunks(out, name, config, seed_list, size)
        todo = [i for i, c in enumerate(chunks) if c not in done]
        if not todo:
            print(f"[{study.name}] {name}: finished results found (config {config.hash()}), "
                  "skipping (FORCE=1 re-runs)")
            continue
        if done:
            print(f"[{study.name}] {name}: {len(done)} of {len(chunks)} seed chunks finished "
                  f"(config {config.hash()}), training the other {len(todo)}")
        units += [Unit(name, config, chunks[i], i, len(chunks)) for i in todo]

    executor = executor if executor is not None else LocalExecutor()
    written: set[str] = set()

    def on_done(unit: Unit, result: UnitResult) -> None:
        # FORCE: the first unit written per variant replaces the variant's old results whole
        fresh = force and unit.variant not in written
        written.add(unit.variant)
        write_unit(out, study, unit, result, seeds=seed_list, seed_chunk=size, fresh=fresh)
        _report_unit(study.name, unit, result, executor.name)

    failures = executor.run(units, on_done, label=study.name, progress=progress) if units else []
    if failures:
        raise UnitsFailed(failures)
    if figures:
        make_figures(out)
    return out


def _report_unit(study: str, unit: Unit, result: UnitResult, executor: str) -> None:
    """One line per finished unit, printed above any progress bar."""
    from tqdm import tqdm

    r = result.records
    what = (unit.variant if unit.chunks == 1
            else f"{unit.name} (chunk {unit.index + 1}/{unit.chunks})")
    where = "" if executor == "local" else f" on {result.host} ({result.device})"
    tqdm.write(f"[{study}] {what}: {len(unit.seeds)} seeds in {r.wall_time_s:.0f} s "
               f"({r.seed_steps_per_s:,.0f} seed-steps/s){where}"
               + (f", diverged seeds: {r.diverged_seeds}" if r.diverged_seeds else ""))


def make_figures(study_dir: Path) -> None:
    """Draw the study's figures and summary, reporting (not raising) on incomplete data."""
    from dqn import plots

    for path in plots.make_figures(study_dir):
        print(f"  wrote {path}")


# results -------------------------------------------------------------------------------------
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
    seed list and chunk size, and whose rows evals.csv holds (run.json is written last, so it
    is the commit point)."""
    meta = read_run(out)["variants"].get(variant)
    evals = out / "evals.csv"
    if not _compatible(meta, config, seeds, seed_chunk) or not evals.exists():
        return set()
    df = pd.read_csv(evals, usecols=["variant", "seed"], dtype={"variant": str})
    have = set(df.loc[df["variant"] == variant, "seed"])
    return {tuple(ch["seeds"]) for ch in _chunks(meta) if set(ch["seeds"]) <= have}


def is_finished(out: Path, variant: str, config: Config, seeds: list[int],
                seed_chunk: int | None = None) -> bool:
    """Whether every seed chunk of `variant` is finished (see finished_chunks)."""
    chunks = split_seeds(seeds, seed_chunk)
    return set(chunks) <= finished_chunks(out, variant, config, seeds, len(chunks[0]))


def write_unit(out: Path, study: Study, unit: Unit, result: UnitResult, *, seeds: list[int],
               seed_chunk: int, fresh: bool = False) -> None:
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


SOURCES = ("dqn", "studies", "pyproject.toml", "Makefile")


def git_commit() -> str:
    """The current commit, with '-dirty' when what produces results has uncommitted changes.

    Only the code, the study files and the dependencies count: rewriting results/ (a re-run
    of tracked results) or the README does not change what a run computes.
    """
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                *SOURCES], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions() -> dict[str, str]:
    """Versions of the software that shaped the numbers."""
    import gymnasium
    import numpy
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "gymnasium": gymnasium.__version__, "numpy": numpy.__version__}
