"""Learning expectations declared in study files, and the checks that turn them into tests.

Two tiers, both declared next to the study they guard:

    [expect.baseline]              # full tier (`make regress`): the study's seeds and steps
    min_final_iqm = 475            # measured: <value it was calibrated from>
    [expect.clear_memory]
    worse_than = "baseline"

    [fast]                         # fast tier (`make test`, CI): fewer seeds and/or steps
    seeds = 8
    steps = 20000
    [fast.expect.clear_memory]
    worse_than = "baseline"

Each check trains with the current code (see tests/learning/) and is computed with the
analysis module (dqn.stats), so the scores mean the same as in the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dqn.config import did_you_mean, is_positive_int

if TYPE_CHECKING:
    from dqn.study import Study

# key -> (kind, what it checks); kind "number" or "variant"
KEYS: dict[str, tuple[str, str]] = {
    "min_final_iqm": ("number", "IQM over seeds of the final greedy score is at least this"),
    "min_solved_fraction": ("number", "fraction of seeds whose final score reaches the "
                                      "solved threshold is at least this"),
    "max_median_steps_to_threshold": ("number", "median env steps to first reach the solved "
                                                "threshold is at most this"),
    "worse_than": ("variant", "upper end of the 95% CI of P(this > that) is below 0.5"),
    "better_than": ("variant", "lower end of the 95% CI of P(this > that) is above 0.5"),
}
FAST_KEYS = ("seeds", "steps", "expect")


@dataclass(frozen=True)
class Expectation:
    """One declared expectation, with the seeds and steps its tier trains with."""

    study: str
    tier: str  # "fast" or "full"
    variant: str
    key: str
    value: Any
    seeds: int
    steps: int | None  # None: the study's own total_steps

    @property
    def id(self) -> str:
        return f"{self.study}:{self.tier}:{self.variant}.{self.key}={self.value}"

    def variants(self) -> list[str]:
        """Variants that must be trained to check this."""
        other = [self.value] if KEYS[self.key][0] == "variant" else []
        return [self.variant, *other]


def validate(study: Study) -> None:
    """Raise StudyError naming file, table, key and value for any bad expectation."""
    from dqn.study import StudyError

    where = study.path.name
    _validate_tables(study, study.expect, "expect", where)
    fast = study.fast
    for key, value in fast.items():
        if key not in FAST_KEYS:
            raise StudyError(f"{where}: [fast] unknown key '{key}' (value {value!r})"
                             f"{did_you_mean(key, FAST_KEYS)}")
        if key in ("seeds", "steps") and not is_positive_int(value):
            raise StudyError(f"{where}: [fast] key '{key}': {value!r} must be a positive "
                             "integer")
    expect = fast.get("expect", {})
    if not isinstance(expect, dict):
        raise StudyError(f"{where}: key 'fast.expect': {expect!r} must be a table")
    _validate_tables(study, expect, "fast.expect", where)


def _validate_tables(study: Study, tables: dict[str, Any], prefix: str, where: str) -> None:
    from dqn.study import StudyError

    for variant, table in tables.items():
        if variant not in study.variants:
            raise StudyError(f"{where}: [{prefix}.{variant}]: no variant '{variant}'"
                             f"{did_you_mean(variant, study.variants)}")
        if not isinstance(table, dict):
            raise StudyError(f"{where}: key '{prefix}.{variant}': {table!r} must be a table")
        for key, value in table.items():
            if key not in KEYS:
                raise StudyError(f"{where}: [{prefix}.{variant}] unknown key '{key}' "
                                 f"(value {value!r}){did_you_mean(key, KEYS)}")
            if KEYS[key][0] == "variant":
                ok = isinstance(value, str) and value in study.variants and value != variant
                want = "another variant's name"
            else:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                want = "a number"
            if not ok:
                raise StudyError(f"{where}: [{prefix}.{variant}] key '{key}': {value!r} must "
                                 f"be {want}")


def declared(study: Study) -> list[Expectation]:
    """Every expectation of a study, fast tier first."""
    fast = study.fast
    out = [Expectation(study.name, "fast", v, k, val, fast.get("seeds", study.seeds),
                       fast.get("steps"))
           for v, table in fast.get("expect", {}).items() for k, val in table.items()]
    out += [Expectation(study.name, "full", v, k, val, study.seeds, None)
            for v, table in study.expect.items() for k, val in table.items()]
    return out


@dataclass(frozen=True)
class Outcome:
    passed: bool
    message: str


def check(exp: Expectation, study_dir: Path) -> Outcome:
    """Score the trained variants in study_dir and compare with the expectation."""
    from dqn import stats

    data = stats.load_study(study_dir)
    scores = stats.study_scores(data)
    env = stats.ENVS.get(data.env_ids.get(exp.variant) or data.env_id or "")
    mine = scores[scores["variant"] == exp.variant]
    final = mine["final"].to_numpy(dtype=float)
    # variants on different environments are compared on returns normalised per environment
    compared = "final_norm" if data.mixed_env else "final"
    steps = data.run["variants"][exp.variant]["config"]["total_steps"] if data.run else "?"
    context = (f"{len(final)} seeds x {steps} steps, env {data.env_id}; "
               f"CSVs kept in {study_dir}")
    if exp.key == "min_final_iqm":
        value = stats.iqm(final)
        lo, hi = stats.bootstrap_ci(final, stats.iqm)
        passed = value >= exp.value
        what = f"final IQM {value:.1f} (95% CI [{lo:.1f}, {hi:.1f}]), expected >= {exp.value}"
    elif exp.key == "min_solved_fraction":
        value = float((final >= env.threshold).mean()) if env and len(final) else math.nan
        passed = value >= exp.value
        what = (f"solved fraction {value:.2f} (final score >= {env.threshold if env else '?'}),"
                f" expected >= {exp.value}")
    elif exp.key == "max_median_steps_to_threshold":
        value = stats.median_steps_to_threshold(mine["steps_to_threshold"], mine["reached"])
        passed = bool(value <= exp.value)  # NaN (not reached by the median seed) fails
        shown = "not reached" if math.isnan(value) else f"{value:.0f}"
        what = f"median steps to threshold {shown}, expected <= {exp.value}"
    else:
        other = scores[scores["variant"] == exp.value][compared].to_numpy(dtype=float)
        own = mine[compared].to_numpy(dtype=float)
        p = stats.prob_improvement(own, other)
        lo, hi = stats.prob_improvement_ci(own, other)
        passed = hi < 0.5 if exp.key == "worse_than" else lo > 0.5
        bound = "upper CI end < 0.5" if exp.key == "worse_than" else "lower CI end > 0.5"
        what = (f"P({exp.variant} > {exp.value}) = {p:.2f} (95% CI [{lo:.2f}, {hi:.2f}]), "
                f"expected {bound}; {compared} IQM {stats.iqm(own):.3g} vs "
                f"{stats.iqm(other):.3g}")
    return Outcome(bool(passed), f"{exp.study}/{exp.variant} [{exp.tier} tier]: {what}; "
                                 f"{context}")
