"""The plan of a study run: which units (variant, seed chunk) to train and where results go.

`make_plan` checks every request once, before anything trains or any file is written: seed
count, seed chunk, command-line overrides (validated as each variant's config), the variant
subset. It then reads the results store to leave out the units already finished with the same
config, seeds and chunk size (all of them with `force`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dqn.config import ConfigError, did_you_mean, is_positive_int
from dqn.paths import RESULTS_DIR
from dqn.store import finished_chunks
from dqn.studyfile import QUICK, StudyError, StudyFile
from dqn.units import Unit, split_seeds


@dataclass(frozen=True)
class Plan:
    """What a run of one study will do."""

    study: StudyFile
    out: Path
    """The study's results folder, out_dir/<study>/."""
    seeds: list[int]
    """Every variant's seeds, 0 .. n-1 (a paired design)."""
    seed_chunk: int
    """Seeds per unit (the effective chunk size, recorded in run.json)."""
    units: list[Unit]
    """The units still to train, in study-file order."""
    force: bool
    """Whether finished results are retrained and replaced."""
    notes: list[str]
    """One line per variant left out or resumed, for the log."""


def make_plan(study: StudyFile, *, out_dir: Path = RESULTS_DIR, seeds: int | None = None,
              steps: int | None = None, device: str | None = None,
              variants: list[str] | None = None, quick: bool = False, force: bool = False,
              seed_chunk: int | None = None) -> Plan:
    """The plan of a run of `study` with these command-line options; raises StudyError
    naming the option and its value for any impossible request."""
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
    size = len(chunks[0])

    out = out_dir / study.name
    units: list[Unit] = []
    notes: list[str] = []
    for name, config in configs.items():
        done = set() if force else finished_chunks(out, name, config, seed_list, size)
        todo = [i for i, c in enumerate(chunks) if c not in done]
        if not todo:
            notes.append(f"[{study.name}] {name}: finished results found (config "
                         f"{config.hash()}), skipping (FORCE=1 re-runs)")
            continue
        if done:
            notes.append(f"[{study.name}] {name}: {len(done)} of {len(chunks)} seed chunks "
                         f"finished (config {config.hash()}), training the other {len(todo)}")
        units += [Unit(name, config, chunks[i], i, len(chunks)) for i in todo]
    return Plan(study, out, seed_list, size, units, force, notes)
