"""A study's results as the analysis reads them: run.json and the tidy CSVs, with every gap.

`load(results/<study>)` never raises on damaged or partial results: what is missing or
inconsistent is listed in `incomplete` (and the variants affected in `incomplete_variants`),
so figures and the report can say so. No torch here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dqn.store import TABLES

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
    incomplete: list[str] = field(default_factory=list)
    incomplete_variants: set[str] = field(default_factory=set)
    env_ids: dict[str, str] = field(default_factory=dict)

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


def _read_csv(path: Path, incomplete: list[str]) -> pd.DataFrame | None:
    if not path.exists():
        incomplete.append(f"{path.name} missing")
        return None
    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        incomplete.append(f"{path.name} unreadable ({exc.__class__.__name__})")
        return None
    if "variant" in df:
        df["variant"] = df["variant"].astype(str)
    return df


def load(study_dir: Path) -> StudyResults:
    """Read run.json and the CSVs of results/<study>/, listing every gap in `incomplete`."""
    study_dir = Path(study_dir)
    incomplete: list[str] = []
    run = None
    run_path = study_dir / "run.json"
    if run_path.exists():
        try:
            run = json.loads(run_path.read_text())
        except json.JSONDecodeError:
            incomplete.append("run.json unreadable")
    else:
        incomplete.append("run.json missing")
    frames = {name: _read_csv(study_dir / f"{name}.csv", incomplete) for name in TABLES}
    evals = frames["evals"]
    if evals is not None and not {"variant", "seed", "env_step", "return"} <= set(evals):
        incomplete.append("evals.csv lacks columns variant/seed/env_step/return")
        evals = frames["evals"] = None

    run_variants: dict[str, Any] = (run or {}).get("variants", {}) or {}
    variants = list(run_variants)
    csv_variants = [] if evals is None else list(dict.fromkeys(evals["variant"]))
    bad: set[str] = set()
    for v in csv_variants:
        if v not in run_variants:
            variants.append(v)
            if run is not None:
                incomplete.append(f"variant {v}: in evals.csv but not in run.json")
                bad.add(v)
    for v, info in run_variants.items():
        if evals is None:
            bad.add(v)
            continue
        got = evals[evals["variant"] == v]
        if got.empty:
            incomplete.append(f"variant {v}: no rows in evals.csv")
            bad.add(v)
            continue
        missing = sorted(set(info.get("seeds", [])) - set(got["seed"]))
        if missing:
            incomplete.append(f"variant {v}: seeds {missing} missing from evals.csv")
            bad.add(v)
        cfg = info.get("config", {})
        total, every = cfg.get("total_steps"), cfg.get("eval_every", 0)
        if total:
            # Half an eval interval of slack tolerates lockstep rounding of the final step
            # but still catches a run stopped before its last scheduled evaluation.
            last = got.groupby("seed")["env_step"].max()
            short = sorted(int(s) for s in last.index[last < total - 0.5 * (every or 0)])
            if short:
                incomplete.append(f"variant {v}: seeds {short} stop before total_steps={total}")
                bad.add(v)

    baseline = (run or {}).get("baseline") or (variants[0] if variants else None)
    if baseline in variants:
        variants.remove(baseline)
        variants.insert(0, baseline)
    env_ids = {v: info["config"]["env_id"] for v, info in run_variants.items()
               if (info.get("config") or {}).get("env_id") is not None}
    one_env = set(env_ids.values())
    return StudyResults(
        path=study_dir, name=(run or {}).get("study") or study_dir.name, run=run,
        episodes=frames["episodes"], evals=evals, diagnostics=frames["diagnostics"],
        variants=variants, baseline=baseline,
        env_id=one_env.pop() if len(one_env) == 1 else None,
        question=str((run or {}).get("question", "")).strip(),
        incomplete=incomplete, incomplete_variants=bad, env_ids=env_ids,
    )
