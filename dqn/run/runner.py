"""Run a study: train its plan's units with an executor and write each one as it finishes.

Results are written per finished unit on the driver (dqn.store.store), so an interrupted study loses
at most the units in flight and a re-run trains only what is missing. The figures and
summary.csv are drawn at the end (dqn.figures.plots).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from dqn.analysis.overview import end_of_run
from dqn.base.paths import RESULTS_DIR
from dqn.base.provenance import study_file
from dqn.figures.plots import make_figures
from dqn.run.executors import Executor, ExecutorError, LocalExecutor, UnitsFailed
from dqn.run.plan import Plan, make_plan
from dqn.run.ray_executor import DEFAULT_GPUS_PER_UNIT, DEFAULT_MAX_RETRIES, RayExecutor
from dqn.run.studyfile import StudyFile
from dqn.store.journal import record_entry, write_unit
from dqn.store.store import read_run
from dqn.store.units import Unit, UnitResult

EXECUTORS = ("local", "ray")


def make_executor(name: str = "local", *, address: str | None = None,
                  max_retries: int = DEFAULT_MAX_RETRIES,
                  gpus_per_unit: float = DEFAULT_GPUS_PER_UNIT) -> Executor:
    """The executor called `name`, its options checked; raises ExecutorError naming the bad one.

    Ray-only options given with the local executor are an error rather than silently ignored.
    """
    if name not in EXECUTORS:
        raise ExecutorError(f"unknown executor {name!r} (choose from {', '.join(EXECUTORS)})")
    if name == "local":
        if address is not None:
            raise ExecutorError(f"--address {address!r} needs --executor ray "
                                "(the local executor trains in this process)")
        return LocalExecutor()
    return RayExecutor(address=address, max_retries=max_retries, gpus_per_unit=gpus_per_unit)


def run(study: StudyFile, *, out_dir: Path = RESULTS_DIR, seeds: int | None = None,
        steps: int | None = None, device: str | None = None,
        variants: list[str] | None = None, quick: bool = False, force: bool = False,
        figures: bool = True, progress: bool = True, seed_chunk: int | None = None,
        executor: Executor | None = None, overrides: dict[str, Any] | None = None,
        settings_folder: bool = False) -> Path:
    """Plan (see dqn.run.plan.make_plan: every option is checked before anything trains or any
    file is written) and execute a run of `study`; returns its results folder."""
    executor = executor if executor is not None else LocalExecutor()
    plan = make_plan(study, out_dir=out_dir, seeds=seeds, steps=steps, device=device,
                     variants=variants, quick=quick, force=force, seed_chunk=seed_chunk,
                     local=executor.name == "local", overrides=overrides,
                     settings_folder=settings_folder)
    if force:  # a fixed-seed run replaces an adaptive one: its design no longer applies
        record_entry(plan.out, "adaptive", None)
    return execute(plan, executor, figures=figures, progress=progress)


def execute(plan: Plan, executor: Executor, *, figures: bool = True,
            progress: bool = True) -> Path:
    """Train the plan's units with `executor`, writing each as it finishes, then draw the
    figures. When units fail for good (the Ray executor retries them first), everything else
    is written and UnitsFailed names them."""
    for note in plan.notes:
        print(note)
    written: set[str] = set()
    source = study_file(plan.study.path)

    def on_done(unit: Unit, result: UnitResult) -> None:
        # FORCE: the first unit written per variant replaces the variant's old results whole
        fresh = plan.force and unit.variant not in written
        written.add(unit.variant)
        notes = write_unit(plan.out, plan.study, unit, result, seeds=plan.seeds,
                           fresh=fresh, study_file=source, settings=plan.settings)
        for note in notes:
            tqdm.write(note)
        _report_unit(plan.study.name, unit, result, executor.name,
                     every_seed=len(unit.seeds) == len(plan.seeds))

    failures = (executor.run(plan.units, on_done, label=plan.study.name, progress=progress)
                if plan.units else [])
    if failures:
        raise UnitsFailed(failures)
    if figures:
        print_figures(plan.out)
    return plan.out


def print_figures(out: Path) -> None:
    """Draw a study's figures and summary.csv, naming each file, then the summary table."""
    for path in make_figures(out):
        print(f"  wrote {path}")
    summary = pd.read_csv(out / "summary.csv")
    print(end_of_run(summary, read_run(out).get("baseline")))


def _report_unit(study: str, unit: Unit, result: UnitResult, executor: str,
                 every_seed: bool) -> None:
    """One line per finished unit, printed above any progress bar."""
    r = result.records
    what = (unit.variant if every_seed else unit.name) + (
        f" (chunk {unit.index + 1}/{unit.chunks})" if unit.chunks > 1 else "")
    where = "" if executor == "local" else f" on {result.host} ({result.device})"
    tqdm.write(f"[{study}] {what}: {len(unit.seeds)} seeds in {r.wall_time_s:.0f} s "
               f"({r.seed_steps_per_s:,.0f} seed-steps/s){where}"
               + (f", diverged seeds: {r.diverged_seeds}" if r.diverged_seeds else ""))
