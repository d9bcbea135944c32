"""The plan of a study run: which units (variant, seed chunk) to train and where results go.

`make_plan` checks everything that could fail after training before anything trains, and
names the source of each bad value (the study file's [base] or variant table, the command
line): seed count and chunk, every variant's config with its overrides, the variant subset,
the output folder (a writable folder), and for training in this process the device (present)
and memory (enough for the largest unit). Only then does it open the results store: it
finishes a write a crash interrupted, checks every recorded unit against its rows, and leaves
out every seed already finished with the same config by the current numerics (none with
`force`): a seed's records do not depend on the seeds beside it, so only the seeds still
missing are trained, in chunks of `seed_chunk`, and merged with the finished ones.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dqn.base.config import ConfigError, did_you_mean, is_positive_int
from dqn.base.paths import RESULTS_DIR
from dqn.base.schema import TABLES
from dqn.core.device import device_problem, resolve_device
from dqn.core.envs import dims
from dqn.core.footprint import PROCESS_BYTES, available_bytes, unit_bytes
from dqn.run.studyfile import QUICK, StudyError, StudyFile, settings_label
from dqn.store.journal import recover
from dqn.store.lock import locked
from dqn.store.store import check, finished_seeds, outdated_seeds
from dqn.store.units import Unit, seeds_label, split_seeds

MAX_SEEDS = 100_000
"""Seeds per variant beyond which a request is taken for a typo."""


@dataclass(frozen=True)
class Plan:
    """What a run of one study will do."""

    study: StudyFile
    out: Path
    """The study's results folder, out_dir/<study>/."""
    seeds: list[int]
    """Every variant's seeds, 0 .. n-1 (a paired design)."""
    seed_chunk: int
    """Seeds per unit at most (it changes no number, only how much trains at once)."""
    units: list[Unit]
    """The units still to train, in study-file order."""
    force: bool
    """Whether finished results are retrained and replaced."""
    notes: list[str]
    """One line per variant left out or resumed and per unit found damaged, for the log."""
    settings: dict[str, Any]
    """Config keys the command line set for every variant (--set, --steps): run.json's
    "settings" records them."""


def _count(value: object, given: bool, key: str, study: StudyFile) -> int:
    where = f"command line: --{key.replace('_', '-')}" if given else \
        f"{study.path.name}: key '{key}'"
    if not is_positive_int(value):
        raise StudyError(f"{where}: {value!r} must be a positive integer")
    if value > MAX_SEEDS:
        raise StudyError(f"{where}: {value:,} is more than {MAX_SEEDS:,} seeds")
    return value


def check_output(out: Path) -> None:
    """Raise StudyError unless `out` is (or can be made) a folder this process can write."""
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        raise StudyError(f"output folder {out}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise StudyError(f"output folder {out}: cannot write in {existing} "
                         f"({e.strerror or e})") from None
    for name in ("run.json", *(f"{t}.csv" for t in TABLES)):
        if (out / name).exists() and not (out / name).is_file():
            raise StudyError(f"output folder {out}: {name} is not a file")


def _check_machine(study: StudyFile, configs: dict, size: int, device_given: bool) -> None:
    """The device of every variant exists here and the largest unit fits in its memory."""
    for name, config in configs.items():
        where = (f"command line: --device {config.device!r}" if device_given else
                 f"{study.path.name} [variants.{name}]: device {config.device!r}")
        if (problem := device_problem(config.device)) is not None:
            raise StudyError(f"{where}: {problem}")
        device = resolve_device(config.device)
        try:
            obs_dim, n_actions, vectorised = dims(config.env_id)
        except ValueError as e:  # observations or actions DQN cannot take
            raise StudyError(f"{study.path.name} [variants.{name}]: {e}") from None
        need = unit_bytes(config, obs_dim, n_actions, size, vectorised)
        have = available_bytes(device)
        if have is not None and need > have:
            per_seed = (need - PROCESS_BYTES) / size
            fit = max(1, int((have - PROCESS_BYTES) / per_seed))
            raise StudyError(f"{where}: a unit of {size:,} seeds needs about "
                             f"{need / 2**30:.1f} GiB but {have / 2**30:.1f} GiB is available "
                             f"on {device}: train fewer seeds per unit (--seed-chunk {fit:,} "
                             "or less)")


def make_plan(study: StudyFile, *, out_dir: Path = RESULTS_DIR, seeds: int | None = None,
              steps: int | None = None, device: str | None = None,
              variants: list[str] | None = None, quick: bool = False, force: bool = False,
              seed_chunk: int | None = None, local: bool = True,
              adaptive: bool = False, overrides: dict[str, Any] | None = None,
              settings_folder: bool = False) -> Plan:
    """The plan of a run of `study` with these command-line options; raises StudyError
    naming the source and the value of any impossible request, before any file is written.

    local: the units train in this process, so its device and memory are checked too (a
    cluster's workers check their own). adaptive: a stage of an adaptive run (dqn.run.adaptive);
    a fixed-seed run may not add to results gathered adaptively, whose seed counts were
    chosen by the data, unless it starts over (`force`). overrides: --set KEY=VALUE config
    overrides for every variant. settings_folder: a run with settings other than the study
    file's (overrides, steps) writes to out_dir/<study>-<settings>/, never the study's own
    folder (the command line's default when no --out is given).
    """
    n_seeds = _count(seeds if seeds is not None else (QUICK["seeds"] if quick else study.seeds),
                     seeds is not None, "seeds", study)
    chunk = seed_chunk if seed_chunk is not None else study.seed_chunk
    if chunk is not None:
        chunk = _count(chunk, seed_chunk is not None, "seed_chunk", study)
    try:
        configs = study.configs(steps=steps, device=device, quick=quick, overrides=overrides)
    except ConfigError as e:
        raise StudyError(str(e)) from None
    if variants:
        unknown = [v for v in variants if v not in configs]
        if unknown:
            raise StudyError(f"command line: --variants: unknown variant '{unknown[0]}'"
                             f"{did_you_mean(unknown[0], configs)} (variants of "
                             f"{study.path.name}: {', '.join(configs)})")
        configs = {k: v for k, v in configs.items() if k in variants}
    seed_list = list(range(n_seeds))
    size = min(chunk or n_seeds, n_seeds)
    settings = dict(overrides or {}) | ({"total_steps": steps} if steps is not None else {})
    out = out_dir / (f"{study.name}-{settings_label(settings)}"
                     if settings and settings_folder else study.name)
    check_output(out)
    if local:
        _check_machine(study, configs, size, device is not None)

    notes: list[str] = []
    units: list[Unit] = []
    if out.is_dir():
        with locked(out):
            notes += recover(out)
            state = check(out)
        if not adaptive and not force and state.run.get("adaptive") is not None:
            raise StudyError(f"{out}: these results were gathered adaptively (run.json "
                             "'adaptive'), so their seed counts depend on the data: continue "
                             "them with --adaptive (ADAPTIVE=1), or start over with fixed "
                             "seeds with --force (FORCE=1)")
        notes += [f"{p}: does not match its record, so it counts as unfinished"
                  for p in state.problems if p.unit]
    for name, config in configs.items():
        tag = f"[{study.name}] {name}"
        done = set() if force or not out.is_dir() else finished_seeds(state, name, config)
        if not force and out.is_dir() and (old := outdated_seeds(state, name, config)):
            notes.append(f"{tag}: seeds {seeds_label(old)} were trained by an earlier version "
                         "of the training code, which gives other numbers: retraining them")
        todo = [s for s in seed_list if s not in done]
        if not todo:
            extra = len(done) - n_seeds
            notes.append(f"{tag}: finished results found ({len(done)} seeds, config "
                         f"{config.hash()}"
                         + (f"; {extra} more than asked, all kept" if extra > 0 else "")
                         + "), skipping (FORCE=1 re-runs)")
            continue
        if done:
            notes.append(f"{tag}: {len(done)} seeds finished (config {config.hash()}), "
                         f"training seeds {seeds_label(todo)}")
        chunks = split_seeds(todo, chunk)
        units += [Unit(name, config, c, i, len(chunks)) for i, c in enumerate(chunks)]
    return Plan(study, out, seed_list, size, units, force, notes, settings)
