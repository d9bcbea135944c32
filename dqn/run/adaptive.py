"""Adaptive seeds: train a study in stages and stop each comparison once it is decided.

Stage k brings every variant with an open question to n_k = k * stage seeds (seeds 0 ..
n_k - 1), and the baseline to as many as the furthest open variant; then every question is
decided again from the CSVs by the group-sequential procedure of dqn.stats.sequential (through
dqn.stats.adaptive_verdicts). A variant whose two questions (final score, AUC) are decided gets no
more seeds; a question still open at max_seeds is inconclusive. Each stage is an ordinary plan
of units (dqn.run.plan) written unit by unit, so an interrupted adaptive study resumes where it
stopped: a seed's numbers do not depend on the stage that trained it, so the decisions
re-derived from the seeds on disk are the ones the run made.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from dqn.analysis.results import envs_differ, recorded_design
from dqn.analysis.results import load as load_results
from dqn.analysis.scoring import SCORE_COLUMNS, final_cap, study_scores
from dqn.base.paths import RESULTS_DIR
from dqn.run.executors import Executor, LocalExecutor
from dqn.run.plan import make_plan
from dqn.run.runner import execute, print_figures
from dqn.run.studyfile import QUICK, StudyError, StudyFile
from dqn.stats.adaptive_verdicts import decide, record
from dqn.stats.sequential import TESTS, Decision, Design, Tests, seeds_wanted
from dqn.store.journal import record_entry
from dqn.store.store import read_run

QUICK_DESIGN = {"stage": QUICK["seeds"], "max_seeds": 2 * QUICK["seeds"]}
"""--quick without --stage / --max-seeds: two stages of the quick seed count."""


def design_for(study: StudyFile, *, adaptive: bool = False, stage: int | None = None,
               max_seeds: int | None = None, quick: bool = False) -> Design | None:
    """The design of this run of `study`: its [adaptive] table, then --quick's, then the
    command line's stage and max_seeds; None for a fixed-seed run. StudyError names the
    source of a bad value."""
    if not adaptive and study.adaptive is None:
        given = [f"--{k.replace('_', '-')} {v}" for k, v in
                 (("stage", stage), ("max_seeds", max_seeds)) if v is not None]
        if given:
            raise StudyError(f"command line: {given[0]} needs --adaptive (ADAPTIVE=1) or an "
                             f"[adaptive] table in {study.path.name}")
        return None
    values = dict(study.adaptive or {})
    if quick:
        values |= QUICK_DESIGN
    cli = {k: v for k, v in (("stage", stage), ("max_seeds", max_seeds)) if v is not None}
    try:
        return Design.from_dict(values | cli | {"margin": study.margin})
    except (TypeError, ValueError) as e:
        where = "command line" if cli else f"{study.path.name} [adaptive]"
        raise StudyError(f"{where}: {e}") from None


def run(study: StudyFile, design: Design, *, out_dir: Path = RESULTS_DIR,
        steps: int | None = None, device: str | None = None, quick: bool = False,
        force: bool = False, figures: bool = True, progress: bool = True,
        seed_chunk: int | None = None, executor: Executor | None = None,
        tests: Tests = TESTS, overrides: dict[str, Any] | None = None,
        settings_folder: bool = False) -> Path:
    """Train `study` in stages of `design` until no comparison is open; returns its results
    folder. Everything is checked first (the largest unit, of max_seeds seeds, must fit);
    results gathered with another design are refused unless `force` starts over."""
    executor = executor if executor is not None else LocalExecutor()
    options = dict(out_dir=out_dir, steps=steps, device=device, quick=quick,
                   seed_chunk=seed_chunk, local=executor.name == "local", adaptive=True,
                   overrides=overrides, settings_folder=settings_folder)
    checked = make_plan(study, seeds=design.max_seeds, force=force, **options)
    out = checked.out
    if not force:
        _check_design(out, design)
    for note in checked.notes:
        if not note.startswith(f"[{study.name}]"):  # the stages say what they train
            print(note)
    if not force:
        _finish_recorded(study, out, executor, progress, options)
    env_ids = {v: c.env_id for v, c in study.configs(steps=steps, quick=quick,
                                                     overrides=overrides).items()}
    compared_on = "final_norm" if envs_differ(env_ids) else "final"
    # the final score's cap as summarize_scores uses it, so the run decides as the report does
    cap = final_cap(compared_on, env_ids, study.baseline, study.baseline)
    sizes = design.sizes()
    print(f"[{study.name}] adaptive: stages of {design.stage} seeds up to {design.max_seeds} "
          f"per variant, {design.spending} alpha spending, alpha {design.alpha:g} over "
          f"{4 * (len(study.variants) - 1)} tests")
    fresh = force
    while True:
        decided = _decisions(out, study, compared_on, design, tests, fresh, cap)
        if not fresh and any(d.seeds for d in decided.values()):
            record_entry(out, "adaptive", record(decided, design))
            _print_decisions(study.name, decided)
        wanted = seeds_wanted(decided, design, study.baseline)
        if not wanted:
            break
        trained = _train(study, wanted, executor, progress, options, force=fresh,
                         stages=sizes)
        if not trained:
            raise StudyError(f"{out}: the seeds asked of {', '.join(wanted)} are finished but "
                             "some have no score to decide on (no evaluation)")
        fresh = False
    if figures:
        print_figures(out)
    return out


def _train(study: StudyFile, wanted: Mapping[str, int], executor: Executor, progress: bool,
           options: Mapping[str, Any], force: bool = False,
           stages: list[int] | None = None) -> int:
    """Bring each variant of `wanted` to seeds 0 .. wanted[variant] - 1, one plan per seed
    count (saying which stage it is when `stages` lists their sizes); returns how many units
    trained."""
    groups: dict[int, list[str]] = defaultdict(list)
    for variant in study.variants:  # study-file order
        if variant in wanted:
            groups[wanted[variant]].append(variant)
    trained = 0
    for n, variants in sorted(groups.items()):
        if stages is not None:
            tqdm.write(f"[{study.name}] stage {stages.index(n) + 1}/{len(stages)}: {n} seeds "
                       f"for {', '.join(variants)}")
        plan = make_plan(study, seeds=n, variants=variants, force=force, **options)
        if plan.units:  # (a plan with nothing to train would only say so)
            execute(plan, executor, figures=False, progress=progress)
        trained += len(plan.units)
    return trained


def _finish_recorded(study: StudyFile, out: Path, executor: Executor, progress: bool,
                     options: Mapping[str, Any]) -> None:
    """Train what run.json records as asked but is not finished (a stage interrupted, a unit
    found damaged), so the decisions are made on every seed recorded."""
    if not (out / "run.json").exists():
        return
    recorded = {variant: max(meta["seeds"]) + 1
                for variant, meta in read_run(out)["variants"].items() if meta["seeds"]}
    _train(study, recorded, executor, progress, options)


def _check_design(out: Path, design: Design) -> None:
    """Results gathered with another design cannot go on with this one (their stopping
    decisions were made at other levels)."""
    if not (out / "run.json").exists():
        return
    recorded = recorded_design(out, read_run(out).get("adaptive"))
    if recorded is None:
        return
    if changes := recorded.changes(design):
        raise StudyError(f"{out}: these results were gathered with another adaptive design "
                         f"({'; '.join(changes)}): continue with the recorded one, or start "
                         "over with --force (FORCE=1)")


def _decisions(out: Path, study: StudyFile, compared_on: str, design: Design, tests: Tests,
               fresh: bool, cap: float | None) -> dict[tuple[str, str], Decision]:
    """Every question decided from the seeds on disk (none when starting fresh), with the
    final score's cap the summary uses (dqn.analysis.scoring.final_cap)."""
    scores = pd.DataFrame(columns=SCORE_COLUMNS)
    if not fresh and (out / "run.json").exists():
        scores = study_scores(load_results(out))
    return decide(scores, list(study.variants), study.baseline, compared_on, design, tests,
                  cap=cap)


def _print_decisions(study: str, decided: dict[tuple[str, str], Decision]) -> None:
    lines = []
    for (variant, metric), d in decided.items():
        where = f" at stage {d.stage}" if d.stage is not None else ""
        seeds = f", {d.seeds} seeds" if d.seeds else ""
        lines.append(f"  {variant} on {metric}: {d.verdict}{where}{seeds}")
    tqdm.write(f"[{study}] decisions:\n" + "\n".join(lines))
