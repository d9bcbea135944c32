"""A study's results as the analysis reads them: run.json and the tidy CSVs, with every gap.

`load(results/<study>)` stops on damaged results (files that do not match their record) and
lists what is merely unfinished in `incomplete`. No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dqn.base import env_facts
from dqn.base.schema import TABLES
from dqn.stats.decisions import MARGIN
from dqn.stats.sequential import Design
from dqn.store.lock import locked
from dqn.store.store import DamagedResults, Problem, StoreError, check, require_intact
from dqn.store.tables import read_typed

# One env for every variant, or one per variant (a variant missing from the mapping: unknown).
EnvIds = str | Mapping[str, str | None] | None


def env_of(env_ids: EnvIds, variant: str) -> str | None:
    """The environment of one variant under `env_ids` (see EnvIds)."""
    return env_ids.get(variant) if isinstance(env_ids, Mapping) else env_ids


def envs_differ(env_ids: EnvIds) -> bool:
    """Whether `env_ids` names more than one environment (returns then compare normalised)."""
    return isinstance(env_ids, Mapping) and len(set(env_ids.values()) - {None}) > 1


@dataclass
class StudyResults:
    """A study directory's run.json and CSVs (None when missing) and what is incomplete.

    env_ids maps each run.json variant to its environment; env_id is the one environment of
    all variants, None when there is none or when they differ (see `envs`).
    """

    path: Path
    name: str
    run: dict[str, Any] | None
    episodes: pd.DataFrame | None
    evals: pd.DataFrame | None
    diagnostics: pd.DataFrame | None
    variants: list[str]
    baseline: str | None
    env_id: str | None
    question: str
    margin: float = MARGIN
    final_window: int | None = None
    """Evaluations a final score averages, as the study file declared (None: the default)."""
    incomplete: list[str] = field(default_factory=list)
    incomplete_variants: set[str] = field(default_factory=set)
    env_ids: dict[str, str] = field(default_factory=dict)
    design: Design | None = None
    """The group-sequential design of an adaptive study (run.json "adaptive"); None: fixed."""

    @property
    def mixed_env(self) -> bool:
        """Whether the variants run on different environments."""
        return envs_differ(self.env_ids)

    @property
    def envs(self) -> EnvIds:
        """What run_scores/summarize_scores take: the per-variant mapping when envs differ."""
        return self.env_ids if self.mixed_env else self.env_id

    def env_of(self, variant: str) -> str | None:
        """The environment a variant ran on (the study's when run.json does not say)."""
        return env_of(self.envs, variant)

    def variant_runs(self) -> dict[str, dict[str, Any]]:
        """run.json's entry of every variant (empty without run.json)."""
        return (self.run or {}).get("variants") or {}


def load(study_dir: Path) -> StudyResults:
    """Read run.json and the CSVs of results/<study>/.

    Damaged results stop here (StoreError, or DamagedResults listing every problem): a
    run.json that is not a record, CSVs whose rows do not match the units recorded, rows of
    no recorded unit, a write left unfinished. What is merely unfinished (a variant with seed
    chunks still to train, seeds that stop early) is listed in `incomplete` instead, so the
    figures and the report can say so.
    """
    study_dir = Path(study_dir)
    if not (study_dir / "run.json").exists() and any(
            (study_dir / f"{t}.csv").exists() for t in TABLES):
        raise DamagedResults([Problem(study_dir / "run.json", "", "missing, so no row of the "
                                      "CSVs beside it belongs to a finished unit")])
    with locked(study_dir, reading=True):  # a writer's run.json and CSVs, never half of one write
        state = require_intact(check(study_dir))
        frames = {t: read_typed(study_dir / f"{t}.csv") if state.tables[t] is not None
                  else None for t in TABLES}
    run = state.run
    evals = frames["evals"]
    incomplete: list[str] = []
    bad: set[str] = set()
    run_variants: dict[str, Any] = run["variants"]
    for v, info in run_variants.items():
        got = evals[evals["variant"] == v] if evals is not None else evals
        missing = sorted(set(info["seeds"]) - set(got["seed"] if got is not None else []))
        if missing:
            incomplete.append(f"variant {v}: seeds {missing} not trained yet")
            bad.add(v)
        total, every = info["config"].get("total_steps"), info["config"].get("eval_every", 0)
        if total and got is not None and len(got):
            # Half an eval interval of slack tolerates lockstep rounding of the final step
            # but still catches a run stopped before its last scheduled evaluation.
            last = got.groupby("seed")["env_step"].max()
            short = sorted(int(s) for s in last.index[last < total - 0.5 * (every or 0)])
            if short:
                incomplete.append(f"variant {v}: seeds {short} stop before total_steps={total}")
                bad.add(v)

    variants = list(run_variants)
    baseline = run.get("baseline") or (variants[0] if variants else None)
    if baseline in variants:
        variants.remove(baseline)
        variants.insert(0, baseline)
    env_ids = {v: info["config"]["env_id"] for v, info in run_variants.items()
               if info["config"].get("env_id") is not None}
    learn_envs(study_dir, run)
    one_env = set(env_ids.values())
    return StudyResults(
        path=study_dir, name=run.get("study") or study_dir.name, run=run,
        episodes=frames["episodes"], evals=evals, diagnostics=frames["diagnostics"],
        variants=variants, baseline=baseline,
        env_id=one_env.pop() if len(one_env) == 1 else None,
        question=str(run.get("question", "")).strip(),
        margin=float(run.get("margin", MARGIN)),
        final_window=run.get("final_window"),
        incomplete=incomplete, incomplete_variants=bad, env_ids=env_ids,
        design=recorded_design(study_dir, run.get("adaptive")),
    )


def learn_envs(study_dir: Path, run: dict[str, Any]) -> None:
    """Teach dqn.base.env_facts the environments run.json's configs give a return_range
    (those the project does not know), so their scores normalise; StoreError naming the file
    when one cannot be."""
    for v, info in run.get("variants", {}).items():
        config = info.get("config", {})
        if config.get("return_range"):
            try:
                env_facts.learn(config["env_id"], config["return_range"])
            except (KeyError, TypeError, ValueError) as e:
                raise StoreError(f"{study_dir / 'run.json'}: variant {v}: {e}") from None


def recorded_design(study_dir: Path, entry: Any) -> Design | None:
    """The design in run.json's "adaptive" entry (None: a fixed-seed study), checked
    (StoreError naming the file when it is not one)."""
    if entry is None:
        return None
    try:
        return Design.from_dict(entry["design"])
    except (TypeError, KeyError, ValueError) as e:
        raise StoreError(f"{study_dir / 'run.json'}: 'adaptive' entry: not a design "
                         f"({type(e).__name__}: {e})") from None
