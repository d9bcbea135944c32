"""Declarative studies: load and validate `studies/*.toml`, run their variants, write results.

A study file holds a `question`, the number of `seeds`, `base` overrides for every variant,
named `variants` of config overrides, and optional `expect` tables (learning expectations).
Everything is validated before anything trains, and nothing under results/ is touched first.
Results are written per finished variant, atomically, so an interrupted study loses at most the
variant in flight and a re-run trains only what is missing.

This module imports torch only when it trains, so listing and validating studies stays light.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dqn.config import Config, ConfigError, did_you_mean, from_dict

ROOT = Path(__file__).resolve().parent.parent
STUDIES_DIR = ROOT / "studies"
RESULTS_DIR = ROOT / "results"
TABLES = ("episodes", "evals", "diagnostics")
STUDY_KEYS = {
    "question": "one paragraph: the question the study answers",
    "seeds": "seeds per variant (default 20)",
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
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds <= 0:
        raise StudyError(f"{where}: key 'seeds': {seeds!r} must be a positive integer")
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
                  expect, fast)
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
        figures: bool = True, progress: bool = True) -> Path:
    """Train every unfinished variant of `study` and write results under out_dir/<study>/.

    All arguments are checked before anything trains or any file is written.
    """
    n_seeds = seeds if seeds is not None else (QUICK["seeds"] if quick else study.seeds)
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds <= 0:
        raise StudyError(f"{study.path.name}: seeds: {n_seeds!r} must be a positive integer")
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

    from dqn.train import resolve_device, train  # torch only from here on

    out = out_dir / study.name
    for name, config in configs.items():
        if not force and is_finished(out, name, config, seed_list):
            print(f"[{study.name}] {name}: finished results found (config {config.hash()}), "
                  "skipping (FORCE=1 re-runs)")
            continue
        with _progress_bar(study.name, name, config, len(seed_list), progress) as report:
            records = train(config, seed_list, progress=report)
        meta = {
            "config": config.to_dict(), "config_hash": config.hash(), "seeds": seed_list,
            "git_commit": git_commit(), "versions": versions(),
            "device": str(resolve_device(config.device)),
            "wall_time_s": round(records.wall_time_s, 2),
            "seed_steps_per_s": round(records.seed_steps_per_s, 1),
            "diverged_seeds": records.diverged_seeds,
        }
        frames = {t: getattr(records, t) for t in TABLES}
        write_variant(out, study, name, frames, meta)
        print(f"[{study.name}] {name}: {len(seed_list)} seeds in {records.wall_time_s:.0f} s "
              f"({records.seed_steps_per_s:,.0f} seed-steps/s)"
              + (f", diverged seeds: {records.diverged_seeds}" if records.diverged_seeds else ""))
    if figures:
        make_figures(out)
    return out


def make_figures(study_dir: Path) -> None:
    """Draw the study's figures and summary, reporting (not raising) on incomplete data."""
    from dqn import plots

    for path in plots.make_figures(study_dir):
        print(f"  wrote {path}")


class _progress_bar:
    """A tqdm bar per variant: env steps, seed-steps per second, mean recent return."""

    def __init__(self, study: str, variant: str, config: Config, S: int, enabled: bool) -> None:
        self.args = (study, variant, config, S, enabled)

    def __enter__(self):
        from tqdm import tqdm

        study, variant, config, S, enabled = self.args
        self.S = S
        self.bar = tqdm(total=config.total_steps, desc=f"{study}/{variant}", unit="step",
                        disable=not enabled, dynamic_ncols=True, mininterval=1.0)
        return self.report

    def report(self, step: int, recent: dict[str, float]) -> None:
        self.bar.update(step - self.bar.n)
        rate = self.bar.format_dict.get("rate") or 0.0
        post = {"seed-steps/s": f"{rate * self.S:,.0f}", "return": f"{recent['return']:.1f}"}
        if "eval" in recent:
            post["eval"] = f"{recent['eval']:.1f}"
        self.bar.set_postfix(post, refresh=False)

    def __exit__(self, *exc) -> None:
        self.bar.close()


# results -------------------------------------------------------------------------------------
def read_run(out: Path) -> dict[str, Any]:
    """run.json of a study directory, or an empty skeleton."""
    path = out / "run.json"
    if path.exists():
        return json.loads(path.read_text())
    return {"variants": {}}


def is_finished(out: Path, variant: str, config: Config, seeds: list[int]) -> bool:
    """A variant is finished when run.json records it with this exact config and these seeds
    and the evals CSV holds its rows (run.json is written last, so it is the commit point)."""
    meta = read_run(out)["variants"].get(variant)
    if not meta or meta.get("config_hash") != config.hash() or meta.get("seeds") != seeds:
        return False
    evals = out / "evals.csv"
    return evals.exists() and (pd.read_csv(evals, usecols=["variant"])["variant"] == variant).any()


def write_variant(out: Path, study: Study, variant: str, frames: dict[str, pd.DataFrame],
                  meta: dict[str, Any]) -> None:
    """Merge one finished variant into the study's CSVs and run.json, each file atomically.

    CSVs first, run.json last: a crash in between leaves the variant unrecorded, so a re-run
    trains it again and replaces its rows. Rows are ordered by the study file's variant order,
    then seed and env step, so an interrupted-and-resumed study equals an uninterrupted one.
    """
    out.mkdir(parents=True, exist_ok=True)
    order = {name: i for i, name in enumerate(study.variants)}
    for table, df in frames.items():
        path = out / f"{table}.csv"
        new = df.copy()
        new.insert(0, "variant", variant)
        new.insert(0, "study", study.name)
        if path.exists():
            old = pd.read_csv(path)
            new = pd.concat([old[old["variant"] != variant], new], ignore_index=True)
        key = new["variant"].map(order).fillna(len(order))
        new = (new.assign(_order=key)
               .sort_values(["_order", "seed", "env_step"], kind="stable")
               .drop(columns="_order"))
        atomic_write_text(path, new.to_csv(index=False))
    run_info = read_run(out)
    run_info["study"] = study.name
    run_info["question"] = study.question
    run_info["baseline"] = study.baseline
    run_info["variants"][variant] = meta
    run_info["variants"] = {k: run_info["variants"][k]
                            for k in sorted(run_info["variants"], key=lambda v: order.get(v, 1e9))}
    atomic_write_text(out / "run.json", json.dumps(run_info, indent=2) + "\n")


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def git_commit() -> str:
    """The current commit, with '-dirty' when the tree has uncommitted changes."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
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
